/**
 * The tests' op table: raw kernels (to compare them with libtorch directly), the caching
 * allocator's counters, and the loop that measures call overhead (bench/core.ts). These
 * ops are not in the production table; the addon exposes this table only when it loads
 * with CQSEG_TESTING_OPS=1 (scripts/run-tests.js and scripts/bench.js set it).
 */
import { CqsegError } from '../util/errors';
import { typedCalls } from './call';
import { OpSignature } from './manifest';
import { bindManifest, native } from './native';

export const TESTING_OPS = {
  allocatorStats: { returns: 'ints', args: [] },
  allocatorEmptyCache: { returns: 'void', args: [] },
  depthwiseWeightGrad: { returns: 'T', args: ['T', 'T', 'i', 'i', 'ints', 'ints'] },
  depthwiseInputGrad: { returns: 'T', args: ['T', 'T', 'i', 'i', 'ints', 'ints'] },
  winogradConv2d: { returns: 'T', args: ['T', 'T'] },
  winogradConv2dGrads: { returns: 'Ts', args: ['T', 'T', 'T'] },
  benchAddLoop: { returns: 'number', args: ['T', 'T', 'i'] },
} as const satisfies Record<string, OpSignature>;

function table(): { call: (id: number, ...args: unknown[]) => unknown; ids: Map<string, number> } {
  const { testingCall, testingBind } = native;
  if (!testingCall || !testingBind) {
    throw new CqsegError('the tests\' op table is off: load the addon with CQSEG_TESTING_OPS=1 (scripts/run-tests.js and scripts/bench.js set it)', 'ERR_ADDON');
  }
  return { call: testingCall, ids: bindManifest((e) => testingBind(e), TESTING_OPS) };
}

let bound: ReturnType<typeof table> | null = null;
const get = (): ReturnType<typeof table> => (bound ??= table());

export const testing = typedCalls(TESTING_OPS, (op) => get().ids.get(op)!, (id, ...args) => get().call(id, ...args));
