/**
 * cqseg command-line interface: `cqseg COMMAND [options]`. Each command has --help;
 * errors go to stderr with a non-zero exit status.
 */
import { smokeTrain } from './smoke';

interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  demo: {
    summary: 'run the main job (for now: a short training smoke run of a small U-Net)',
    usage: 'cqseg demo [--steps N] [--size S]',
    run: async (args) => smokeTrain(args),
  },
};

function help(): string {
  const lines = ['usage: cqseg COMMAND [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  lines.push('', 'Run `cqseg COMMAND --help` for a command\'s options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name === undefined ? 1 : 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`cqseg: unknown command '${name}'\n\n${help()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${cmd.usage}\n\n${cmd.summary}\n`);
    return 0;
  }
  return cmd.run(rest);
}
