/**
 * cqseg command-line interface: `cqseg COMMAND [options]`. Commands are the modules of
 * src/cli/commands/ (each exports `command`); each has --help; errors go to stderr with
 * a non-zero exit status.
 */
import * as fs from 'fs';
import * as path from 'path';
import { describeFailure } from '../util/errors';
import { Command } from './command';

function loadCommands(): Command[] {
  const dir = path.join(__dirname, 'commands');
  const out: Command[] = [];
  for (const f of fs.readdirSync(dir).sort()) {
    if (!f.endsWith('.js')) continue;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(dir, f)) as { command?: Command; commands?: Command[] };
    if (mod.command) out.push(mod.command);
    if (mod.commands) out.push(...mod.commands);
  }
  return out;
}

function help(commands: Command[]): string {
  const lines = ['usage: cqseg COMMAND [options]', '', 'commands:'];
  for (const c of commands) lines.push(`  ${c.name.padEnd(16)} ${c.summary}`);
  lines.push('', "Run `cqseg COMMAND --help` for a command's options.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const commands = loadCommands();
  if (argv.length === 0 || ['--help', '-h', 'help'].includes(argv[0])) {
    process.stdout.write(help(commands) + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  // longest match first, so 'data check' wins over 'data'
  const cmd = [...commands].sort((a, b) => b.name.length - a.name.length)
    .find((c) => c.name.split(' ').every((w, i) => argv[i] === w));
  if (!cmd) {
    process.stderr.write(`cqseg: unknown command '${argv[0]}'\n\n${help(commands)}\n`);
    return 2;
  }
  const rest = argv.slice(cmd.name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.help.trimEnd() + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    // the one place errors become exit statuses: user errors by message, bugs as bugs
    const f = describeFailure(err);
    process.stderr.write(`cqseg ${cmd.name}: ${f.message}\n`);
    return f.exitCode;
  }
}
