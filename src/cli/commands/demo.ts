import { Command } from '../command';
import { smokeTrain } from '../smoke';

export const command: Command = {
  name: 'demo',
  summary: 'run the main job (for now: a short training smoke run of a small U-Net)',
  help: 'usage: cqseg demo [--steps N] [--size S]\n\nA short training smoke run until the full demo exists.\n',
  run: (args) => smokeTrain(args),
};
