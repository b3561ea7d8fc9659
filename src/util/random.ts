/**
 * cqseg's one seeded random module. Every draw cqseg makes outside libtorch (splits,
 * epoch shuffles, synthetic scenes, augmentation parameters, bootstrap resamples, and the
 * seeds of the private libtorch generators that draw per-pixel fields) comes from here,
 * and the same seed gives the same numbers on every machine.
 *
 * Generator: xoshiro128** (Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators", 2018), its four state words seeded by splitmix32; `next()` gives doubles
 * in [0, 1) with 53 random bits from two 32-bit outputs.
 *
 * Named streams: `stream(seed, ...name)` is a generator that depends only on the seed and
 * its name, never on how much another stream drew or in which order streams were made:
 *   stream(seed, 'split')                        data/split.ts: the train/val order
 *   stream(seed, 'loader', epoch)                data/loader.ts: one epoch's shuffle
 *   stream(seed, 'synth', domain, index)         data/synth: one synthetic scene
 *   stream(seed, 'augment', epoch, batch)        train/trainer.ts: one step's augmentation draws
 *   stream(seed, 'bootstrap')                    eval/evaluate.ts: bootstrap resamples
 * The names are part of the results: renaming a stream changes the figures it feeds.
 * `fork()` hands out a child of a generator in sequence (a pipeline's stages).
 *
 *   const rng = stream(7, 'synth', 'lq', 12);
 *   rng.uniform(-20, 20); rng.bool(0.5); rng.int(3, 11); rng.normal(); rng.shuffle([1, 2, 3]);
 */

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** murmur3's 32-bit finaliser: a bijective mix of one word. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The two 32-bit words of a finite number: integers up to 2^53 keep all their bits. */
function words(v: number, what: string): [number, number] {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${what} must be a finite number, got ${String(v)}`);
  const lo = v >>> 0;
  const hi = (Math.floor(Math.abs(v) / 4294967296) >>> 0) ^ (v < 0 ? 0x5bd1e995 : 0) ^ (Number.isInteger(v) ? 0 : mix32(Math.round((v % 1) * 1e9)));
  return [lo, hi];
}

export class Rng {
  private s: Uint32Array;

  /** seed: any finite number (integers up to 2^53 keep all their bits). */
  constructor(seed: number) {
    const [lo, hi] = words(seed, "Argument 'seed' passed to 'Rng'");
    this.s = Rng.stateFrom(lo ^ Math.imul(hi, 0x9e3779b9));
  }

  private static stateFrom(word: number): Uint32Array {
    const st = { s: word };
    const s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) s[i] = splitmix32(st);
    if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
    return s;
  }

  /** A generator whose state words come from a 64-bit key, two words (stream()). */
  static fromKey(k0: number, k1: number): Rng {
    const r = new Rng(0);
    const a = Rng.stateFrom(k0 >>> 0);
    const b = Rng.stateFrom(k1 >>> 0);
    r.s = Uint32Array.of(a[0], a[1], b[0], b[1]);
    if ((r.s[0] | r.s[1] | r.s[2] | r.s[3]) === 0) r.s[0] = 1;
    return r;
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

  /** Standard normal (Box-Muller, one of the pair). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** One element of a non-empty list (random.choice). */
  choice<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** True with probability p (albumentations' `random.random() < p`). */
  bool(p: number): boolean {
    return this.next() < p;
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(xs: readonly T[]): T[] {
    const a = xs.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  /** A 53-bit non-negative integer, used as the seed of a libtorch generator. */
  seed(): number {
    return (this.u32() >>> 11) * 4294967296 + this.u32();
  }

  /** The next child generator of this one (seeded from its stream), e.g. one per pipeline stage. */
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

/** FNV-1a over a string's UTF-16 code units. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The generator of the stream `name` under `seed` (see the file's header for the names in
 * use): a hash of the seed and each part of the name, in order; strings and numbers never
 * collide (each part is tagged with its type).
 */
export function stream(seed: number, ...name: (string | number)[]): Rng {
  const [lo, hi] = words(seed, "Argument 'seed' passed to 'stream'");
  // two independent 32-bit hashes of (seed, name): a 64-bit key
  const keys = [0x2545f491, 0x9e3779b9].map((salt) => {
    let h = mix32(mix32(lo ^ salt) ^ hi);
    for (const part of name) {
      if (typeof part === 'string') h = mix32(h ^ hashString(part) ^ 0x5f356495);
      else {
        const [a, b] = words(part, `a numeric part of stream ${JSON.stringify(name)}`);
        h = mix32(mix32(h ^ a ^ 0x3c6ef372) ^ b);
      }
    }
    return h;
  });
  return Rng.fromKey(keys[0], keys[1]);
}

/** A number is the seed of a new generator; a generator is used as is (its stream advances). */
export function toRng(seed: number | Rng): Rng {
  return seed instanceof Rng ? seed : new Rng(seed);
}
