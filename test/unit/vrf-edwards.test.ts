/**
 * The VRF's lean edwards25519 arithmetic (src/vrf/edwards.ts) against noble's Point, on seeded
 * random points and scalars, including the neutral element and small-order points.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { add, combMulPublic, combMulSecret, combTable, dbl, EXT_ZERO, fromNoble, mulAddPublic, negCached, toCached, toNoble } from '../../src/vrf/edwards.ts';

const Point = ed25519.Point;
const Q = Point.Fn.ORDER;
const scalar = fc.bigInt({ min: 1n, max: Q - 1n });
const point = scalar.map((k) => Point.BASE.multiply(k));
const torsion = ED25519_TORSION_SUBGROUP.map((h) => Point.fromHex(h));
const same = (a: ReturnType<typeof toNoble>, b: ReturnType<typeof toNoble>): boolean => a.equals(b);

describe('lean edwards25519 arithmetic agrees with noble', () => {
  it('doubles and adds (including torsion points and the neutral element)', () => {
    fc.assert(
      fc.property(point, point, fc.integer({ min: 0, max: 7 }), (a, b, t) => {
        const bt = b.add(torsion[t]!); // a point with a torsion component
        expect(same(toNoble(dbl(fromNoble(a))), a.double())).toBe(true);
        expect(same(toNoble(add(fromNoble(a), toCached(fromNoble(bt)))), a.add(bt))).toBe(true);
        expect(same(toNoble(add(fromNoble(a), negCached(toCached(fromNoble(bt))))), a.subtract(bt))).toBe(true);
        expect(same(toNoble(add(fromNoble(a), toCached(fromNoble(a)))), a.double())).toBe(true);
        expect(same(toNoble(add(fromNoble(a), toCached(EXT_ZERO))), a)).toBe(true);
        expect(same(toNoble(add(EXT_ZERO, toCached(fromNoble(a)))), a)).toBe(true);
      }),
      { seed: 25519, numRuns: 40 },
    );
  });

  it('multiplies with the comb, secret and public', () => {
    fc.assert(
      fc.property(point, scalar, fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (p, k, c) => {
        const t5 = combTable(fromNoble(p), 5, 51);
        expect(same(toNoble(combMulSecret(t5, k, 5, 51)), p.multiply(k))).toBe(true);
        const t6 = combTable(fromNoble(p), 6, 22);
        expect(same(toNoble(combMulPublic(t6, c, 6, 22)), p.multiplyUnsafe(c))).toBe(true);
      }),
      { seed: 8032, numRuns: 8 },
    );
    const t5 = combTable(fromNoble(Point.BASE), 5, 51);
    expect(same(toNoble(combMulSecret(t5, 0n, 5, 51)), Point.ZERO)).toBe(true);
    expect(same(toNoble(combMulSecret(t5, (1n << 255n) - 1n, 5, 51)), Point.BASE.multiplyUnsafe(((1n << 255n) - 1n) % Q))).toBe(true);
  });

  it('computes double-scalar products (Straus) for 253- and 128-bit scalars', () => {
    fc.assert(
      fc.property(point, point, fc.bigInt({ min: 0n, max: Q - 1n }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (a, b, s, c) => {
        const want = a.multiplyUnsafe(s).add(b.multiplyUnsafe(c));
        expect(same(toNoble(mulAddPublic([fromNoble(a), fromNoble(b)], [s, c])), want)).toBe(true);
      }),
      { seed: 9380, numRuns: 15 },
    );
    expect(same(toNoble(mulAddPublic([fromNoble(Point.BASE)], [0n])), Point.ZERO)).toBe(true);
  });
});
