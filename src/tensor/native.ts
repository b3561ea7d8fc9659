/**
 * Loads the libtorch addon and exposes its small surface: `call(opId, ...args)`
 * over a table of ops, buffer copies in and out, and live-tensor accounting.
 * Loading order: env CQSEG_NATIVE (explicit path to the .node file), then the
 * local build (build/Release/cqseg_native.node). If none loads, one error lists the fixes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CqsegError } from '../util/errors';
import { ArgKind, OPS } from './manifest';

/** Error raised by libtorch or the addon; `code` is ERR_TORCH, ERR_INVALID_ARG, ERR_OUT_OF_MEMORY or ERR_NATIVE. */
export class TorchError extends CqsegError {
  constructor(message: string, code = 'ERR_TORCH') {
    super(message, code);
  }
}

/** An opaque handle on one at::Tensor. */
export interface NativeHandle {
  dispose(): void;
  isDisposed(): boolean;
}

export interface NativeBinding {
  call(op: number, ...args: unknown[]): unknown;
  fromBuffer(view: ArrayBufferView, shape: number[], dtype: number, device?: string): NativeHandle;
  toBuffer(h: NativeHandle): ArrayBuffer;
  memory(): { liveTensors: number; liveBytes: number; created: number };
  setErrorClass(cls: new (msg: string) => Error): void;
  /** binds a manifest (manifest.ts) to the op table: the ops' ids, in its order */
  bind(entries: [string, readonly ArgKind[]][]): number[];
  /** the tests' table (testing.ts), present when the addon loaded with CQSEG_TESTING_OPS=1 */
  testingCall?(op: number, ...args: unknown[]): unknown;
  testingBind?(entries: [string, readonly ArgKind[]][]): number[];
  torchVersion: string;
  NativeTensor: new () => NativeHandle;
}

function repoRoot(): string {
  // dist/src/tensor/native.js or src/tensor/native.ts: walk up to the folder holding package.json
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..', '..');
}

function load(): NativeBinding {
  const candidates: string[] = [];
  if (process.env.CQSEG_NATIVE) candidates.push(path.resolve(process.env.CQSEG_NATIVE));
  candidates.push(path.join(repoRoot(), 'build', 'Release', 'cqseg_native.node'));
  const failures: string[] = [];
  for (const file of candidates) {
    if (!fs.existsSync(file)) {
      failures.push(`${file}: not found`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const binding = require(file) as NativeBinding;
      binding.setErrorClass(TorchError);
      return binding;
    } catch (err) {
      failures.push(`${file}: ${(err as Error).message}`);
    }
  }
  throw new CqsegError(
    'cqseg could not load its libtorch addon.\n' +
      failures.map((f) => `  - ${f}`).join('\n') +
      '\nPossible solutions:\n' +
      '  - run `npm run setup` (finds or installs libtorch, then builds the addon)\n' +
      '  - install Debian\'s libtorch: `apt-get install libtorch-dev`, then `npm run setup`\n' +
      '  - or point LIBTORCH at a libtorch prefix (e.g. the `torch` folder of a pip PyTorch) and run `npm run setup`\n' +
      '  - or set CQSEG_NATIVE to a built cqseg_native.node',
    'ERR_ADDON',
  );
}

export const native: NativeBinding = load();

/**
 * Binds a manifest to an op table; a table that differs from it (a stale build) is an
 * ERR_ADDON error naming the ops and the fix.
 */
export function bindManifest(bind: (entries: [string, readonly ArgKind[]][]) => number[], manifest: Record<string, { args: readonly ArgKind[] }>): Map<string, number> {
  const names = Object.keys(manifest);
  let ids: number[];
  try {
    ids = bind(names.map((n) => [n, manifest[n].args]));
  } catch (err) {
    throw new CqsegError(`cqseg's addon does not match its TypeScript: ${(err as Error).message}; rebuild it with \`npm run setup\``, 'ERR_ADDON');
  }
  return new Map(names.map((n, i) => [n, ids[i]]));
}

const opIds = bindManifest((e) => native.bind(e), OPS);

/** The numeric id of a production op (manifest.ts). */
export function opId(name: keyof typeof OPS): number {
  return opIds.get(name)!;
}
