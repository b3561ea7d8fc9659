/** `cqseg synth --out DIR`: writes the synthetic domain-shift benchmark (hq, lq, sp). */
import { Command, UsageError } from '../command';
import { writeSynth } from '../../data/synth';
import { intFlag, parseArgs, sizeFlag } from '../args';

const HELP = `usage: cqseg synth --out DIR [--size HxW] [--count N] [--seed S]

Writes a deterministic synthetic throat benchmark (same seed, identical files): scenes
with the paper's classes (0 other, 1 tonsil, 2 uvula, 3 tongue, 4 back_wall) in three
camera domains, as folder datasets:
  DIR/hq/train, DIR/hq/val   clean professional-camera look (PNG)
  DIR/lq                     old cameras: low resolution, blur, haze, poor light,
                             color cast, heavy JPEG
  DIR/sp                     smartphones: other white balance and tone curve,
                             saturation, noise, over-sharpening, vignetting, JPEG
plus DIR/classes.json and DIR/manifest.json (seed and every image's parameters).

options:
  --out DIR      output folder (created; existing files of the same names are replaced)
  --size HxW     image size (default 128x192)
  --count N      hq images (default 160, 20% of them in hq/val); lq and sp get 3N/8 each
  --seed S       seed (default 0)
`;

export const command: Command = {
  name: 'synth',
  summary: 'write the synthetic domain-shift benchmark (hq / lq / sp folder datasets)',
  help: HELP,
  async run(args) {
    const { flags, positionals } = parseArgs(args, { out: {}, size: {}, count: {}, seed: {} });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const out = flags.out as string | undefined;
    if (!out) throw new UsageError('--out DIR is required');
    const size = sizeFlag(flags.size, 'size');
    const t0 = Date.now();
    const m = await writeSynth({ out, size, count: intFlag(flags.count, 'count', 2), seed: intFlag(flags.seed, 'seed', 0) });
    const counts = Object.entries(m.counts).map(([k, v]) => `${k} ${v}`).join(', ');
    process.stdout.write(`wrote ${m.images.length} images (${counts}) at ${m.size.join('x')}, seed ${m.seed}, to ${out} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return 0;
  },
};
