/**
 * Seeded pseudo-random numbers for the simulator (pure, no global state).
 *
 * Generator: xoshiro128** (Blackman & Vigna, 2018) — 128 bits of state, period 2^128 − 1,
 * passes BigCrush, and needs only 32-bit integer operations, which V8 runs without boxing.
 * The state is seeded from a string or number through splitmix32, so every seed (including 0)
 * gives a well-mixed, non-zero state. The same seed gives the same stream on every platform:
 * only integer arithmetic (Math.imul, shifts) and exactly rounded float operations are used,
 * except in `normal()` / `poisson()`, which call Math.log/Math.sqrt/Math.cos — V8's
 * implementations (fdlibm ports) are deterministic across runs and machines for one Node build.
 *
 * `hash32` / `hashUnit` give *stateless* randomness keyed by integers, used where several
 * simulated parties must draw the same value independently (colluders agreeing on a wrong
 * answer, a hardware class's rounding of one unit).
 */

/** splitmix32 step: a bijective 32-bit mixer (used for seeding and stateless hashing). */
export function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A stateless 32-bit hash of up to four integers (order-sensitive). */
export function hash32(a: number, b = 0, c = 0, d = 0): number {
  let h = mix32(a | 0);
  h = mix32((h ^ b) | 0);
  h = mix32((h ^ c) | 0);
  return mix32((h ^ d) | 0);
}

/** A stateless uniform in [0, 1) keyed by integers. */
export function hashUnit(a: number, b = 0, c = 0, d = 0): number {
  return hash32(a, b, c, d) / 4294967296;
}

/** Turn a user seed (number or string) into a 32-bit integer, deterministically. */
export function seedToInt(seed: number | string): number {
  if (typeof seed === 'number' && Number.isSafeInteger(seed)) {
    // Fold the high bits in so seeds beyond 2^32 do not collide with small ones.
    return (mix32(seed >>> 0) ^ Math.floor(seed / 4294967296)) >>> 0;
  }
  const s = String(seed);
  let h = 0x811c9dc5; // FNV-1a over UTF-16 code units
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** xoshiro128** with helpers for the distributions the simulator needs. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  #spare = NaN; // the second normal of a Box–Muller pair

  /** @param seed any number or string; the same seed gives the same stream. */
  constructor(seed: number | string) {
    let s = seedToInt(seed);
    const next = (): number => (s = mix32(s));
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next();
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1; // all-zero state is a fixed point
  }

  /** A derived, independent generator (for a sub-stream that must not shift the main one). */
  fork(label: number): Rng {
    return new Rng(hash32(this.uint32(), label));
  }

  /** Uniform 32-bit unsigned integer. */
  uint32(): number {
    const b = this.#b;
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return r;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.uint32() >>> 5; // 27 bits
    const lo = this.uint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform double in (0, 1] (safe for logarithms). */
  nextOpen(): number {
    return 1 - this.next();
  }

  /** Uniform integer in [0, n) for 1 ≤ n ≤ 2^32 (rejection sampling, no modulo bias). */
  int(n: number): number {
    if (n <= 1) return 0;
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.uint32();
      if (x < limit) return x % n;
    }
  }

  /** Bernoulli(p). */
  chance(p: number): boolean {
    return p >= 1 || (p > 0 && this.next() < p);
  }

  /** Standard normal (Box–Muller; caches the pair's second value). */
  normal(): number {
    if (!Number.isNaN(this.#spare)) {
      const s = this.#spare;
      this.#spare = NaN;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.nextOpen()));
    const th = 2 * Math.PI * this.next();
    this.#spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  /** Exponential with rate 1. */
  exponential(): number {
    return -Math.log(this.nextOpen());
  }

  /**
   * Poisson(lambda) by inversion of the CDF (Knuth's sequential search with one uniform).
   * Exact up to float rounding; cost O(1 + lambda), so meant for the small means of the
   * lottery (−ln(1 − c) ≈ 0.29 at c = 1/4). For lambda > 30 a normal approximation would be
   * needed; the simulator never asks for that (c ≤ 1 − e^-30 is enforced by the caller).
   */
  poisson(lambda: number): number {
    if (!(lambda > 0)) return 0;
    let p = Math.exp(-lambda);
    let cdf = p;
    const u = this.next();
    let k = 0;
    while (u >= cdf) {
      k++;
      p *= lambda / k;
      const nc = cdf + p;
      if (nc === cdf) break; // float tail exhausted (u within rounding of 1)
      cdf = nc;
    }
    return k;
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
