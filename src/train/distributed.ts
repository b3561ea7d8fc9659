/**
 * Data-parallel training across processes: who this process is (torchrun's environment
 * variables) and the launcher behind `cqseg train --nproc N`.
 *
 * A worker is any `cqseg train` started with WORLD_SIZE > 1 and RANK, MASTER_ADDR,
 * MASTER_PORT (LOCAL_RANK, LOCAL_WORLD_SIZE optional) in its environment, exactly what
 * torchrun sets, so the same command joins a job of several machines. `--nproc N` starts N
 * such workers on this machine (with NNODES and NODE_RANK, this machine's share of a job of
 * several: RANK = NODE_RANK * N + local rank) and supervises them: the output of rank 0
 * passes through, other ranks' errors are prefixed with their rank, and when one worker fails
 * the others are stopped and the error names the rank.
 */
import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { CqsegError } from '../util/errors';

export interface WorkerEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
}

class DistError extends CqsegError {
  constructor(message: string) {
    super(message, 'ERR_DIST');
  }
}

function intVar(env: NodeJS.ProcessEnv, name: string, min: number, dflt?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (dflt !== undefined) return dflt;
    throw new DistError(`data-parallel training: environment variable ${name} is not set (WORLD_SIZE > 1 needs RANK, MASTER_ADDR, MASTER_PORT as torchrun sets them)`);
  }
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new DistError(`data-parallel training: ${name} must be an integer >= ${min}, got '${raw}'`);
  return v;
}

/** This process's place in a data-parallel job, from torchrun's variables; null when WORLD_SIZE is unset or 1. */
export function workerFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv | null {
  const worldSize = intVar(env, 'WORLD_SIZE', 1, 1);
  if (worldSize === 1) return null;
  const rank = intVar(env, 'RANK', 0);
  if (rank >= worldSize) throw new DistError(`data-parallel training: RANK ${rank} is not below WORLD_SIZE ${worldSize}`);
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) throw new DistError('data-parallel training: environment variable MASTER_ADDR is not set (the address of the machine running rank 0)');
  const masterPort = intVar(env, 'MASTER_PORT', 1);
  if (masterPort > 65535) throw new DistError(`data-parallel training: MASTER_PORT must be a port number, got ${masterPort}`);
  const localWorldSize = intVar(env, 'LOCAL_WORLD_SIZE', 1, worldSize);
  return { rank, worldSize, localRank: intVar(env, 'LOCAL_RANK', 0, rank), localWorldSize, masterAddr, masterPort };
}

/** A free TCP port on 127.0.0.1 (for a one-machine job's rendezvous). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Lines of a stream, each passed to `emit` with a prefix. */
function prefixLines(stream: NodeJS.ReadableStream, prefix: string, emit: (s: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) emit(`${prefix}${l}\n`);
  });
  stream.on('end', () => { if (rest) emit(`${prefix}${rest}\n`); });
}

export interface LaunchOptions {
  /** the command line to run in each worker: node and its arguments */
  argv: string[];
  /** workers on this machine */
  nproc: number;
  env?: NodeJS.ProcessEnv;
  /** after one worker fails, how long the others get to stop before SIGKILL (default 5 s) */
  graceMs?: number;
}

/**
 * Starts `nproc` workers on this machine and waits for them. Resolves to 0 when all succeed;
 * throws a DistError naming the first rank that failed (exit status or signal) after
 * stopping the others.
 */
export async function launchWorkers(o: LaunchOptions): Promise<number> {
  const env = o.env ?? process.env;
  const nnodes = intVar(env, 'NNODES', 1, 1);
  const nodeRank = intVar(env, 'NODE_RANK', 0, 0);
  if (nodeRank >= nnodes) throw new DistError(`NODE_RANK ${nodeRank} is not below NNODES ${nnodes}`);
  if (nnodes > 1 && (!env.MASTER_ADDR || !env.MASTER_PORT)) throw new DistError('a job of several machines (NNODES > 1) needs MASTER_ADDR and MASTER_PORT: the address and a free port of the machine with NODE_RANK 0');
  const masterAddr = env.MASTER_ADDR || '127.0.0.1';
  const masterPort = env.MASTER_PORT ? intVar(env, 'MASTER_PORT', 1) : await freePort();
  const worldSize = nnodes * o.nproc;
  const threads = String(Math.max(1, Math.floor(os.cpus().length / o.nproc)));
  const children: ChildProcess[] = [];
  let failure: string | null = null;
  const stopAll = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    const t = setTimeout(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); }, o.graceMs ?? 5000);
    t.unref();
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    failure ??= `stopped by ${sig}`;
    stopAll();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const exits = Array.from({ length: o.nproc }, (_, local) => {
      const rank = nodeRank * o.nproc + local;
      const child = spawn(o.argv[0], o.argv.slice(1), {
        env: {
          ...env, WORLD_SIZE: String(worldSize), RANK: String(rank), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(o.nproc),
          MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort), CQSEG_WORKER_THREADS: env.CQSEG_WORKER_THREADS ?? threads,
        },
        stdio: ['ignore', rank === 0 ? 'pipe' : 'ignore', 'pipe'],
      });
      children.push(child);
      if (rank === 0) {
        child.stdout!.setEncoding('utf8').on('data', (d: string) => process.stdout.write(d));
        child.stderr!.setEncoding('utf8').on('data', (d: string) => process.stderr.write(d));
      } else {
        prefixLines(child.stderr!, `[rank ${rank}] `, (s) => process.stderr.write(s));
      }
      return new Promise<void>((resolve) => {
        child.on('error', (err) => {
          failure ??= `rank ${rank} could not start: ${err.message}`;
          stopAll();
          resolve();
        });
        child.on('exit', (code, signal) => {
          if (code !== 0 && failure === null) {
            failure = `rank ${rank} (pid ${child.pid}) ${signal ? `was killed by ${signal}` : `exited with status ${code}`}`;
            stopAll();
          }
          resolve();
        });
      });
    });
    await Promise.all(exits);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (failure !== null) throw new DistError(`data-parallel training failed: ${failure}; the other workers were stopped (its error, if it printed one, is above)`);
  return 0;
}

/** The command line that runs `cqseg ARGS` again in a worker (this node, this cqseg). */
export function workerArgv(args: string[]): string[] {
  return [process.execPath, path.join(__dirname, '..', '..', '..', 'bin', 'cqseg'), ...args];
}
