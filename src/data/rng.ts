/**
 * A small seeded PRNG (mulberry32) for everything in data/ that draws: splits, shuffles,
 * synthetic scene parameters. Same seed, same numbers, on every machine.
 */

export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = hashSeed(seed) >>> 0;
  }

  /** Uniform [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi] (both included). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }

  /** A child generator for a sub-stream (e.g. one image), independent of how much this one was used. */
  fork(salt: number): Rng {
    return new Rng(hashSeed(this.s ^ Math.imul(salt + 1, 0x9e3779b1)));
  }

  /** Fisher-Yates shuffle of a copy. */
  shuffle<T>(xs: readonly T[]): T[] {
    const a = xs.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

/** splitmix32-style integer hash of a seed (any finite number; fractional parts are kept). */
export function hashSeed(seed: number, salt = 0): number {
  let x = (Math.floor(seed) ^ Math.imul(Math.round((seed % 1) * 1e6), 0x85ebca6b) ^ Math.imul(salt, 0xc2b2ae35)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}
