/**
 * A small seeded PRNG for augmentation parameters (per-sample draws), kept apart from
 * libtorch's global generators so that drawing augmentation parameters never moves
 * the stream that dropout or weight init use, and the same seed gives the same draws
 * on every machine.
 *
 * Generator: xoshiro128** (Blackman & Vigna), seeded through splitmix32; `next()`
 * gives 53-bit doubles in [0, 1) from two 32-bit outputs. Per-pixel fields (Gaussian
 * noise, elastic displacement) are not drawn here: `seed()` hands out a 53-bit seed
 * for a private libtorch CPU generator (see `seededUniform`/`seededNormal` in tensor/kernels.ts).
 *   const rng = new Rng(42);
 *   rng.uniform(-20, 20); rng.bool(0.5); rng.int(3, 11); const child = rng.fork();
 */

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

export class Rng {
  private s: Uint32Array;

  /** seed: any finite number (integers up to 2^53 keep all their bits). */
  constructor(seed: number) {
    if (typeof seed !== 'number' || !Number.isFinite(seed)) {
      throw new TypeError(`Argument 'seed' passed to 'Rng' must be a finite number, got ${String(seed)}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(Math.abs(seed) / 4294967296) >>> 0;
    const st = { s: lo ^ Math.imul(hi, 0x9e3779b9) ^ (seed < 0 ? 0x5bd1e995 : 0) };
    this.s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) this.s[i] = splitmix32(st);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** Next raw 32-bit unsigned integer. */
  u32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.u32() >>> 5;
    const b = this.u32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform in [lo, hi] (hi reached only up to rounding), as Python's random.uniform. */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [lo, hi], both ends included (random.randint). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** One element of a non-empty list (random.choice). */
  choice<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** True with probability p (albumentations' `random.random() < p`). */
  bool(p: number): boolean {
    return this.next() < p;
  }

  /** A 53-bit non-negative integer, used as the seed of a libtorch generator. */
  seed(): number {
    return (this.u32() >>> 11) * 4294967296 + this.u32();
  }

  /** An independent child stream (seeded from this one), e.g. one per pipeline stage. */
  fork(): Rng {
    return new Rng(this.seed());
  }

  /** The four 32-bit state words, to save and later `setState`. */
  getState(): number[] {
    return Array.from(this.s);
  }

  setState(state: number[]): void {
    if (!Array.isArray(state) || state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new TypeError(`Argument 'state' passed to 'Rng.setState' must be four uint32 words, got ${JSON.stringify(state)}`);
    }
    this.s = Uint32Array.from(state);
  }
}

/** A number becomes a new Rng; an Rng is used as is (its stream advances). */
export function toRng(seed: number | Rng): Rng {
  return seed instanceof Rng ? seed : new Rng(seed);
}
