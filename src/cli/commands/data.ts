/** `cqseg data check DATASET`: reads every image and mask and reports every problem. */
import { Command, UsageError } from '../command';
import { parseArgs, sizeFlag } from '../args';
import { checkDataset, formatReport } from '../../data/check';
import { parseMaskMode } from '../../data/classes';
import { OverlapOrder } from '../../data/coco';
import { openDataset } from '../../data/open';
import { PAPER_SIZE } from '../../data/loader';

const HELP = `usage: cqseg data check DATASET [options]

Reads every image and mask of DATASET and reports every problem, with counts and file
names: unreadable or corrupt images, missing or extra masks, duplicate stems, mask size
different from its image, class values outside the class map, empty dataset, images
smaller than the training size, unreadable or empty region-of-interest (ROI) masks.
Exit status 1 when there are errors, 0 otherwise. With ROI masks, the class shares
inside the ROI (what evaluation counts) are reported too.

DATASET is a folder with images/ and masks/ (same stems); a dataset description .json
pairing images with masks (and ROI masks) by patterns such as
"images/{id}_training.tif" / "1st_manual/{id}_manual1.gif", or by a pairs list (see
the README, "Dataset descriptions"); a pairs .csv with image,mask[,roi] columns; a COCO
instance-segmentation .json (images next to it, in images/, or --images DIR); or an
unlabelled list (a folder of images, a .txt or .csv of paths).

options:
  --classes FILE|paper|binary   class map (default: DATASET/classes.json, else binary;
                                COCO: paper = other, tonsil, uvula, tongue, back_wall)
  --mask-mode MODE              exact (default): gray value = class index, RGB masks by
                                exact palette color; binary: any value > 0 is class 1
                                (masks stored 0/1, 0/255, 1-bit PNG, GIF); threshold[:T]:
                                value >= T (default 128) is class 1 (lossy binary masks);
                                nearest: nearest class gray level / palette color (lossy
                                multi-class masks). A description's "maskMode" wins.
  --images DIR                  COCO: the image folder
  --overlap area|order|class    COCO: painting order of overlapping annotations
                                (default area: larger first, smaller on top)
  --size HxW                    training size, smaller images are reported (default ${PAPER_SIZE.join('x')})
  --all                         list every file of each problem (default: 10 per problem)
  --json                        print the report as JSON
`;

export const commands: Command[] = [{
  name: 'data check',
  summary: 'read a dataset and report every problem (exit 1 on errors)',
  help: HELP,
  async run(args) {
    const { flags, positionals: positional } = parseArgs(args, {
      classes: {}, 'mask-mode': {}, images: {}, overlap: {}, size: {}, all: { type: 'boolean' }, json: { type: 'boolean' },
    });
    if (positional.length !== 1) throw new UsageError('needs exactly one DATASET (see --help)');
    const get = (k: string): string | undefined => flags[k] as string | undefined;
    const overlap = get('overlap') as OverlapOrder | undefined;
    if (overlap !== undefined && !['area', 'order', 'class'].includes(overlap)) throw new UsageError(`--overlap must be area, order or class, got '${overlap}'`);
    const ds = openDataset(positional[0], {
      classes: get('classes'),
      maskMode: get('mask-mode') !== undefined ? parseMaskMode(get('mask-mode')!) : undefined,
      images: get('images'),
      overlap,
    });
    const size = sizeFlag(flags.size, 'size');
    const report = await checkDataset(ds, { size });
    if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else process.stdout.write(formatReport(report, { maxFiles: flags.all ? Infinity : 10 }) + '\n');
    return report.errors > 0 ? 1 : 0;
  },
}];
