/**
 * Child process of the caching-allocator tests (memory.test.ts): a fresh process, so the
 * arena holds only the blocks made here. Prints one JSON line: named allocator stats
 * snapshots and values read back.
 */
import { testing } from '../../src/tensor/testing';
import * as T from '../../src/tensor';

const MiB = 1 << 20;
const stats = (): { idle: number; mapped: number; hits: number; misses: number; peakMapped: number; peakInUse: number; freeRanges: number } => {
  const [idle, mapped, hits, misses, peakMapped, peakInUse, freeRanges] = testing.callV('allocatorStats');
  return { idle, mapped, hits, misses, peakMapped, peakInUse, freeRanges };
};
const floats = (mib: number, v: number): T.Tensor => T.full([(mib * MiB) / 4], v);
const out: Record<string, unknown> = { installed: T.useCachingAllocator() };
out.start = stats();
const a = floats(8, 1);
const guard = floats(2, 2); // after a: keeps a's range from merging into the top
a.dispose();
out.afterFreeA = stats();
const c = floats(3, 3);
const d = floats(4, 4); // both cut from a's 8 MiB range
out.afterSplit = stats();
c.dispose();
d.dispose(); // merges with c's range and the 1 MiB remainder: one 8 MiB range again
out.afterMerge = stats();
const e = T.arange(0, 2 * MiB); // 8 MiB of float32 counting up: fits the merged range exactly
out.afterReuse = stats();
// views share their storage: read them inside tidy so that they are gone afterwards
out.eValues = T.tidy(() => [e.narrow(0, 0, 1).item(), e.narrow(0, 2 * MiB - 1, 1).item()]);
out.guardValue = T.tidy(() => guard.narrow(0, MiB / 2 - 1, 1).item());
e.dispose();
guard.dispose();
out.afterAllFree = stats();
testing.callV('allocatorEmptyCache');
out.afterEmpty = stats();
const small = T.ones([100]);
small.dispose();
out.afterSmall = stats();
const big = floats(16, 5);
big.dispose();
out.afterBig = stats(); // CQSEG_CACHE_MIB may trim this
try {
  T.zeros([2 ** 48]); // 1 PiB: more than the reservation and than any machine
  out.hugeError = 'no error';
} catch (err) {
  out.hugeError = (err as Error).message;
}
out.afterHuge = stats();
console.log(JSON.stringify(out));
