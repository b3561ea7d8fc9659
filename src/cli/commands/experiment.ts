import { loadExperimentConfig } from '../../experiment/config';
import { runExperiment } from '../../experiment/runner';
import { textTables } from '../../experiment/report';
import * as path from 'path';
import { Command, UsageError } from '../command';
import { parseArgs } from '../args';

export const command: Command = {
  name: 'experiment',
  summary: "run the paper's grid: train modes, build banks, evaluate every DCIN configuration, write reports",
  help: `usage: cqseg experiment CONFIG.json

Runs the experiment a JSON config describes (paths relative to the config file):
  {
    "out": "experiment",
    "source": { "train": "data/hq/train", "val": "data/hq/val" },
    "targets": { "lq": "data/lq", "sp": "data/sp" },
    "modes": ["baseline", "aug", "cqg"],
    "train": { "encoder": "efficientnet-b2", "size": [512, 768], "epochs": 15, "batchSize": 2 },
    "dcin": ["none", "exri", "gris", "lris", "full", "full-robust", "auto"],
    "exri": "data/hq/train/images/expert_choice.png",
    "bootstrap": 1000,
    "figureImages": 3
  }
Writes OUT/models/<mode>/ (run folders), OUT/banks/<mode>/, OUT/figures/, results.json,
report.md and report.html. Re-running with unchanged settings and data reuses finished
models and banks.
`,
  async run(args) {
    const { positionals } = parseArgs(args, {});
    if (positionals.length !== 1) throw new UsageError('expected one CONFIG.json (see --help)');
    const cfg = loadExperimentConfig(positionals[0]);
    const r = await runExperiment(cfg);
    process.stdout.write(`${textTables(r)}\n\nreport: ${path.join(cfg.out, 'report.html')} (also report.md, results.json)\n`);
    return 0;
  },
};
