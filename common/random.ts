// Seeded randomness. Everything random in a run (initial weights, batches, dropout masks,
// synthetic data) comes from here as a pure function of a seed and a key, so results never
// depend on which worker computed what, or when.

/** murmur3's 32-bit finaliser: a bijective avalanche of one word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashString(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  }
  return fmix32(h ^ s.length);
}

/**
 * A 32-bit seed derived from a key, e.g. `deriveSeed(seed, 'batch', source, epoch)`. Different
 * keys give independent-looking streams; the same key always gives the same seed.
 */
export function deriveSeed(...parts: ReadonlyArray<number | string>): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    if (typeof part === 'number') {
      if (!Number.isSafeInteger(part)) throw new RangeError(`deriveSeed: ${part} is not a safe integer`);
      // Both 32-bit halves, so large integers (step counters) never collide.
      h = fmix32(h ^ fmix32((part >>> 0) ^ 0x5bd1e995));
      h = fmix32(h ^ fmix32(Math.floor(part / 0x100000000) >>> 0));
    } else {
      h = hashString(part, h ^ 0x27d4eb2f);
    }
  }
  return h;
}

/** sfc32: small, fast, passes PractRand to large sizes; state is four uint32 words. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | undefined;

  constructor(seed: number) {
    this.a = fmix32(seed ^ 0xa341316c);
    this.b = fmix32(seed ^ 0xc8013ea4);
    this.c = fmix32(seed ^ 0xad90777d);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  static fromKey(...parts: ReadonlyArray<number | string>): Rng {
    return new Rng(deriveSeed(...parts));
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Marsaglia polar method). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const s = this.spareNormal;
      this.spareNormal = undefined;
      return s;
    }
    for (;;) {
      const u = 2 * this.next() - 1;
      const v = 2 * this.next() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const m = Math.sqrt((-2 * Math.log(s)) / s);
        this.spareNormal = v * m;
        return u * m;
      }
    }
  }

  /** A permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = p[i]!;
      p[i] = p[j]!;
      p[j] = tmp;
    }
    return p;
  }
}
