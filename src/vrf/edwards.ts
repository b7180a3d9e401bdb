/**
 * Lean edwards25519 point arithmetic for the VRF's hot loops (the prover's comb and the
 * verifier's double-scalar products), on plain bigints in extended coordinates (X:Y:Z:T).
 *
 * Why not noble's Point ops throughout: they are correct and general but reduce every field
 * product with `%` and allocate a checked Point per operation. Here a product is reduced by
 * folding 2^255 ≡ 19 (about 30% cheaper than `%` in V8), intermediate sums stay unreduced, table
 * points are kept in the "cached" form (Y−X, Y+X, 2d·T, 2Z) that saves one product per addition,
 * and runs of doublings skip T. Points come in from and go back out to noble (decoding,
 * encoding, hash to curve stay there); tests check every operation against noble.
 *
 * The formulas are the complete ones of Hisil–Wong–Carter–Dawson 2008 for a = −1 (as in ref10):
 * no input needs a special case, so the sequence of operations never depends on the values.
 * Note that bigint arithmetic in JavaScript is not constant-time in the strict sense, as with
 * every JS implementation, noble included.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';

const Point = ed25519.Point;

/** p = 2^255 − 19. */
export const P = Point.Fp.ORDER;
const P2 = 2n * P;
const MASK = (1n << 255n) - 1n;
const D2 = Point.Fp.mul(Point.CURVE().d, 2n); // k = 2d of add-2008-hwcd-3

/** Reduce 0 ≤ t < 2^520 to [0, p): two folds of 2^255 ≡ 19, then one conditional subtraction. */
function red(t: bigint): bigint {
  t = (t & MASK) + 19n * (t >> 255n); // < 2^270
  t = (t & MASK) + 19n * (t >> 255n); // < 2^255 + 2^20 < 2p
  return t >= P ? t - P : t;
}

/** A point in extended coordinates, x = X/Z, y = Y/Z, x·y = T/Z; coordinates in [0, p). */
export interface Ext {
  X: bigint;
  Y: bigint;
  Z: bigint;
  T: bigint;
}

/** A point prepared as an addend: (Y − X, Y + X, 2d·T, 2Z), each in [0, p). */
export interface Cached {
  ymx: bigint;
  ypx: bigint;
  t2d: bigint;
  z2: bigint;
}

/** The neutral element. */
export const EXT_ZERO: Ext = { X: 0n, Y: 1n, Z: 1n, T: 0n };

/** From a noble point. Its arithmetic keeps coordinates in [0, p); reducing again is cheap insurance. */
export function fromNoble(p: EdwardsPoint): Ext {
  return { X: p.X % P, Y: p.Y % P, Z: p.Z % P, T: p.T % P };
}

/** To a noble point, for encoding. */
export function toNoble(p: Ext): EdwardsPoint {
  return new Point(p.X, p.Y, p.Z, p.T);
}

/** The cached (addend) form of p. */
export function toCached(p: Ext): Cached {
  return { ymx: red(p.Y - p.X + P), ypx: red(p.Y + p.X), t2d: red(p.T * D2), z2: red(2n * p.Z) };
}

/** −p: (x, y) ↦ (−x, y). */
export function negExt(p: Ext): Ext {
  return { X: p.X === 0n ? 0n : P - p.X, Y: p.Y, Z: p.Z, T: p.T === 0n ? 0n : P - p.T };
}

/** −p in cached form: negation swaps Y−X with Y+X and negates T. */
export function negCached(c: Cached): Cached {
  return { ymx: c.ypx, ypx: c.ymx, t2d: c.t2d === 0n ? 0n : P - c.t2d, z2: c.z2 };
}

/** 2·p (dbl-2008-hwcd, a = −1): 4 squarings + 4 products; `withT = false` skips T (3 products). */
export function dbl(p: Ext, withT = true): Ext {
  const A = red(p.X * p.X);
  const B = red(p.Y * p.Y);
  const C = red(2n * p.Z * p.Z);
  const s = p.X + p.Y;
  const E = red(s * s) + P2 - A - B; // (X+Y)² − A − B, in (0, 3p)
  const G = B - A + P; // D + B with D = −A, in (0, 2p)
  const F = G + P - C; // G − C, in (0, 3p)
  const H = P2 - A - B; // D − B, in (0, 2p]
  return { X: red(E * F), Y: red(G * H), Z: red(F * G), T: withT ? red(E * H) : 0n };
}

/** p + q for q in cached form (add-2008-hwcd-3, complete for edwards25519): 8 products. */
export function add(p: Ext, q: Cached): Ext {
  const A = red((p.Y - p.X + P) * q.ymx);
  const B = red((p.Y + p.X) * q.ypx);
  const C = red(p.T * q.t2d);
  const D = red(p.Z * q.z2);
  const E = B - A + P;
  const F = D - C + P;
  const G = D + C;
  const H = B + A;
  return { X: red(E * F), Y: red(G * H), Z: red(F * G), T: red(E * H) };
}

/**
 * Comb table for p: t teeth spaced d doublings apart; entry m = Σ_{bit i of m} 2^(i·d)·p, in
 * cached form (entry 0 is the neutral element). Costs (t−1)·d doublings + 2^t − t − 1 additions.
 */
export function combTable(p: Ext, t: number, d: number): Cached[] {
  const teeth: Ext[] = [p];
  for (let i = 1; i < t; i++) {
    let b = teeth[i - 1]!;
    for (let j = 0; j < d; j++) b = dbl(b, j === d - 1);
    teeth.push(b);
  }
  const full: Ext[] = [EXT_ZERO];
  const table: Cached[] = [toCached(EXT_ZERO)];
  for (let m = 1; m < 1 << t; m++) {
    const hb = 31 - Math.clz32(m);
    const rest = m ^ (1 << hb);
    const e = rest === 0 ? teeth[hb]! : add(full[rest]!, toCached(teeth[hb]!));
    full.push(e);
    table.push(toCached(e));
  }
  return table;
}

/** The comb digits of n, most significant column first: digit j has bit i = bit (i·d + j) of n. */
function combDigits(n: bigint, t: number, d: number): number[] {
  const bits = n.toString(2).padStart(t * d, '0');
  const top = t * d - 1;
  const digits: number[] = [];
  for (let j = d - 1; j >= 0; j--) {
    let digit = 0;
    for (let i = 0; i < t; i++) digit |= (bits.charCodeAt(top - (i * d + j)) - 48) << i;
    digits.push(digit);
  }
  return digits;
}

/**
 * n·p from p's comb table, for a SECRET n in [0, 2^(t·d)): one doubling and one complete
 * addition per column whatever the digit (a zero digit adds the neutral entry), and each lookup
 * scans the whole table.
 */
export function combMulSecret(table: Cached[], n: bigint, t: number, d: number): Ext {
  let acc = EXT_ZERO;
  for (const digit of combDigits(n, t, d)) {
    acc = dbl(acc);
    let sel = table[0]!;
    for (let m = 1; m < table.length; m++) sel = m === digit ? table[m]! : sel;
    acc = add(acc, sel);
  }
  return acc;
}

/** n·p from p's comb table for a PUBLIC n in [0, 2^(t·d)) (variable time: zero digits skipped). */
export function combMulPublic(table: Cached[], n: bigint, t: number, d: number): Ext {
  let acc = EXT_ZERO;
  const digits = combDigits(n, t, d);
  for (let j = 0; j < digits.length; j++) {
    const digit = digits[j]!;
    acc = dbl(acc, digit !== 0 || j === digits.length - 1);
    if (digit !== 0) acc = add(acc, table[digit]!);
  }
  return acc;
}

/** Width-w NAF digits of n ≥ 0, least significant first (odd digits in (−2^(w−1), 2^(w−1))). */
function wnaf(n: bigint, w: number): number[] {
  const out: number[] = [];
  const full = 1 << w;
  const half = full >> 1;
  const mask = BigInt(full - 1);
  while (n > 0n) {
    let digit = 0;
    if (n & 1n) {
      digit = Number(n & mask);
      if (digit >= half) digit -= full;
      n -= BigInt(digit);
    }
    out.push(digit);
    n >>= 1n;
  }
  return out;
}

/** Odd multiples p, 3p, …, (2^(w−1) − 1)·p in cached form. */
function oddMultiples(p: Ext, w: number): Cached[] {
  const p2 = toCached(dbl(p));
  const out: Cached[] = [toCached(p)];
  let acc = p;
  for (let i = 1; i < 1 << (w - 2); i++) {
    acc = add(acc, p2);
    out.push(toCached(acc));
  }
  return out;
}

/** wNAF width for the variable-base products: 5 (8 odd multiples) minimises table + additions for 128–253-bit scalars. */
const WNAF_W = 5;

/**
 * Σ scalars[i]·points[i] for PUBLIC scalars ≥ 0 (Straus–Shamir with width-5 NAF: one shared
 * chain of doublings, one addition per non-zero digit). Variable time.
 */
export function mulAddPublic(points: Ext[], scalars: bigint[]): Ext {
  const tables = points.map((p) => oddMultiples(p, WNAF_W));
  const negTables = tables.map((t) => t.map(negCached));
  const digits = scalars.map((s) => wnaf(s, WNAF_W));
  const len = Math.max(0, ...digits.map((d) => d.length));
  let acc = EXT_ZERO;
  for (let j = len - 1; j >= 0; j--) {
    let nextAdds = 0;
    for (const d of digits) if (d[j]) nextAdds++;
    // T is only needed when an addition follows.
    acc = dbl(acc, nextAdds > 0 || j === 0);
    for (let i = 0; i < digits.length; i++) {
      const digit = digits[i]![j];
      if (!digit) continue;
      acc = add(acc, digit > 0 ? tables[i]![(digit - 1) >> 1]! : negTables[i]![(-digit - 1) >> 1]!);
    }
  }
  return acc;
}
