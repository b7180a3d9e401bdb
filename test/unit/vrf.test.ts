/**
 * ECVRF properties beyond the RFC vectors: seeded round trips, rejection of every mutation of
 * pi / pk / alpha, malformed and malicious untrusted inputs (never a throw), caller misuse (a
 * typed throw), the per-key cache, libp2p Ed25519 keys as VRF keys, and the lottery run with
 * real VRF tickets.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { Suite } from '../../src/vrf/index.ts';
import {
  isWinner,
  lotteryAlpha,
  lotteryThreshold,
  vrfKeygen,
  vrfProofToHash,
  vrfProve,
  vrfPublicKey,
  vrfValidateKey,
  vrfVerify,
  winProbability,
} from '../../src/vrf/index.ts';
import { isDrillError } from '../../src/util/errors.ts';

const SUITES: Suite[] = ['tai', 'ell2'];
const Q = ed25519.Point.Fn.ORDER;
const P = ed25519.Point.Fp.ORDER;

const seed32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const alphaArb = fc.uint8Array({ minLength: 0, maxLength: 64 });

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isDrillError(e) ? e.code : 'NOT_A_DRILL_ERROR';
  }
  return undefined;
}

function flip(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

describe.each(SUITES)('ECVRF %s', (suite) => {
  it('round-trips prove → verify, beta = proof_to_hash (seeded)', () => {
    fc.assert(
      fc.property(seed32, alphaArb, (sk, alpha) => {
        const pk = vrfPublicKey(sk);
        const pi = vrfProve(suite, sk, alpha);
        expect(pi.length).toBe(80);
        const r = vrfVerify(suite, pk, alpha, pi);
        expect(r.valid).toBe(true);
        expect(r.beta).toEqual(vrfProofToHash(suite, pi));
        expect(r.beta!.length).toBe(64);
        expect(vrfProve(suite, sk, alpha)).toEqual(pi); // deterministic
      }),
      { seed: 9381, numRuns: 12 },
    );
  });

  it('rejects any flipped bit in pi, pk or alpha (seeded)', () => {
    const { sk, pk } = vrfKeygen(new Uint8Array(32).fill(suite === 'tai' ? 1 : 2));
    const alpha = new TextEncoder().encode('matrix-drill slot 42');
    const pi = vrfProve(suite, sk, alpha);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 80 * 8 - 1 }), fc.integer({ min: 0, max: 32 * 8 - 1 }), fc.integer({ min: 0, max: alpha.length * 8 - 1 }), (bPi, bPk, bAlpha) => {
        expect(vrfVerify(suite, pk, alpha, flip(pi, bPi))).toEqual({ valid: false, beta: null });
        expect(vrfVerify(suite, flip(pk, bPk), alpha, pi).valid).toBe(false);
        expect(vrfVerify(suite, pk, flip(alpha, bAlpha), pi).valid).toBe(false);
      }),
      { seed: 42, numRuns: 25 },
    );
  });

  it('answers false, never throws, for malformed or malicious untrusted data', () => {
    const { sk, pk } = vrfKeygen(new Uint8Array(32).fill(9));
    const alpha = Uint8Array.of(1, 2, 3);
    const pi = vrfProve(suite, sk, alpha);
    const bad = (pk2: Uint8Array, pi2: Uint8Array): boolean => vrfVerify(suite, pk2, alpha, pi2).valid;
    // Lengths.
    expect(bad(pk, pi.subarray(0, 79))).toBe(false);
    expect(bad(pk, Uint8Array.of(...pi, 0))).toBe(false);
    expect(bad(pk, new Uint8Array(0))).toBe(false);
    expect(bad(pk.subarray(0, 31), pi)).toBe(false);
    expect(bad(Uint8Array.of(...pk, 0), pi)).toBe(false);
    // s + q encodes the same scalar mod q: accepting it would make proofs malleable.
    const s = bytesToNumberLE(pi.subarray(48));
    const malleable = Uint8Array.of(...pi.subarray(0, 48), ...numberToBytesLE(s + Q, 32));
    expect(bad(pk, malleable)).toBe(false);
    // Non-canonical Gamma (y ≥ p) and a Gamma off the curve.
    const nonCanonical = numberToBytesLE(P + 1n, 32); // y = p + 1 ≡ 1: the identity, non-canonically
    expect(bad(pk, Uint8Array.of(...nonCanonical, ...pi.subarray(32)))).toBe(false);
    // Small-order public keys (all 8 torsion points) and a non-canonical key.
    for (const t of ED25519_TORSION_SUBGROUP) {
      expect(vrfValidateKey(hexToBytes(t))).toBe(false);
      expect(bad(hexToBytes(t), pi)).toBe(false);
    }
    expect(vrfValidateKey(nonCanonical)).toBe(false);
    const identityWithSignBit = numberToBytesLE(1n, 32);
    identityWithSignBit[31]! |= 0x80; // x = 0 with the sign bit set: not canonical
    expect(vrfValidateKey(identityWithSignBit)).toBe(false);
    expect(vrfValidateKey(pk)).toBe(true);
    expect(vrfValidateKey(pk.subarray(1))).toBe(false);
  });

  it('never throws and never accepts random bytes as pk and pi (seeded)', () => {
    fc.assert(
      fc.property(
        // Mostly the right lengths, so that decoding and the arithmetic run, sometimes not.
        fc.oneof({ arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }), weight: 4 }, { arbitrary: fc.uint8Array({ maxLength: 40 }), weight: 1 }),
        fc.oneof({ arbitrary: fc.uint8Array({ minLength: 80, maxLength: 80 }), weight: 4 }, { arbitrary: fc.uint8Array({ maxLength: 96 }), weight: 1 }),
        alphaArb,
        (pk, pi, alpha) => {
          expect(vrfVerify(suite, pk, alpha, pi)).toEqual({ valid: false, beta: null });
        },
      ),
      { seed: 7, numRuns: 40 },
    );
    // A valid key with random proofs: decodes, computes, and still rejects.
    const { pk } = vrfKeygen(new Uint8Array(32).fill(21));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 80, maxLength: 80 }), (pi) => {
        expect(vrfVerify(suite, pk, Uint8Array.of(1), pi).valid).toBe(false);
      }),
      { seed: 8, numRuns: 20 },
    );
  });

  it('keeps verifying correctly once a producer key is cached (decoded point, then comb table)', () => {
    // The verifier caches a key after its first valid proof and builds a c·Y table after the
    // second; the third and later proofs take the table path. All must agree with proof_to_hash,
    // and forgeries under a cached key must still fail.
    const { sk, pk } = vrfKeygen(new Uint8Array(32).fill(suite === 'tai' ? 11 : 12));
    for (let i = 0; i < 6; i++) {
      const alpha = Uint8Array.of(i, 0xee);
      const pi = vrfProve(suite, sk, alpha);
      expect(vrfVerify(suite, pk, alpha, pi)).toEqual({ valid: true, beta: vrfProofToHash(suite, pi) });
      expect(vrfVerify(suite, pk, alpha, flip(pi, 32 * 8 + i)).valid).toBe(false); // a bit of c
      expect(vrfVerify(suite, pk, Uint8Array.of(i, 0xef), pi).valid).toBe(false);
    }
    // A proof by another key, checked against the cached key, fails.
    const other = vrfKeygen(new Uint8Array(32).fill(13));
    expect(vrfVerify(suite, pk, Uint8Array.of(0, 0xee), vrfProve(suite, other.sk, Uint8Array.of(0, 0xee))).valid).toBe(false);
  });

  it('does not accept a proof made for the other suite', () => {
    const { sk, pk } = vrfKeygen(new Uint8Array(32).fill(5));
    const alpha = Uint8Array.of(7);
    const pi = vrfProve(suite, sk, alpha);
    const other: Suite = suite === 'tai' ? 'ell2' : 'tai';
    expect(vrfVerify(other, pk, alpha, pi).valid).toBe(false);
  });
});

describe('ECVRF keys', () => {
  it('uses the RFC 8032 Ed25519 public key, so a libp2p identity seed is a VRF key', async () => {
    const seed = new Uint8Array(32).map((_, i) => (i * 7 + 3) & 255);
    const id = await generateKeyPairFromSeed('Ed25519', seed);
    expect(vrfPublicKey(seed)).toEqual(id.publicKey.raw);
    expect(vrfPublicKey(id.raw.subarray(0, 32))).toEqual(id.publicKey.raw);
    expect(vrfKeygen(seed).pk).toEqual(ed25519.getPublicKey(seed));
  });

  it('makes fresh random keys without a seed', () => {
    const a = vrfKeygen();
    const b = vrfKeygen();
    expect(a.sk.length).toBe(32);
    expect(a.sk).not.toEqual(b.sk);
    expect(vrfValidateKey(a.pk)).toBe(true);
  });

  it('notices a caller reusing its sk buffer for another key', () => {
    const sk = new Uint8Array(32).fill(1);
    const alpha = Uint8Array.of(1);
    const pi1 = vrfProve('tai', sk, alpha);
    sk.fill(2); // same buffer object, new key: the per-key cache must not serve the old key
    const pi2 = vrfProve('tai', sk, alpha);
    expect(pi2).not.toEqual(pi1);
    expect(vrfVerify('tai', vrfPublicKey(new Uint8Array(32).fill(2)), alpha, pi2).valid).toBe(true);
    expect(vrfPublicKey(sk)).toEqual(ed25519.getPublicKey(new Uint8Array(32).fill(2)));
  });
});

describe('ECVRF caller misuse throws typed errors', () => {
  const sk = new Uint8Array(32).fill(4);
  const pk = vrfPublicKey(sk);
  const pi = vrfProve('tai', sk, new Uint8Array(0));
  it('unknown suite → VRF_BAD_SUITE', () => {
    expect(code(() => vrfProve('ecvrf' as Suite, sk, new Uint8Array(0)))).toBe('VRF_BAD_SUITE');
    expect(code(() => vrfVerify('TAI' as Suite, pk, new Uint8Array(0), pi))).toBe('VRF_BAD_SUITE');
    expect(code(() => vrfProofToHash('x' as Suite, pi))).toBe('VRF_BAD_SUITE');
  });
  it('wrong types and sk lengths → VRF_BAD_ARGUMENT', () => {
    expect(code(() => vrfProve('tai', sk.subarray(1), new Uint8Array(0)))).toBe('VRF_BAD_ARGUMENT');
    expect(code(() => vrfProve('tai', sk, 'alpha' as unknown as Uint8Array))).toBe('VRF_BAD_ARGUMENT');
    expect(code(() => vrfVerify('tai', 'pk' as unknown as Uint8Array, new Uint8Array(0), pi))).toBe('VRF_BAD_ARGUMENT');
    expect(code(() => vrfVerify('tai', pk, new Uint8Array(0), null as unknown as Uint8Array))).toBe('VRF_BAD_ARGUMENT');
    expect(code(() => vrfPublicKey(new Uint8Array(64)))).toBe('VRF_BAD_ARGUMENT');
    expect(code(() => vrfKeygen(new Uint8Array(16)))).toBe('VRF_BAD_ARGUMENT');
    expect(code(() => vrfValidateKey([1, 2] as unknown as Uint8Array))).toBe('VRF_BAD_ARGUMENT');
  });
  it('an undecodable proof → VRF_BAD_PROOF from vrfProofToHash', () => {
    expect(code(() => vrfProofToHash('tai', pi.subarray(1)))).toBe('VRF_BAD_PROOF');
    const s = bytesToNumberLE(pi.subarray(48));
    expect(code(() => vrfProofToHash('tai', Uint8Array.of(...pi.subarray(0, 48), ...numberToBytesLE(s + Q, 32))))).toBe('VRF_BAD_PROOF');
  });
});

describe('lottery with real VRF tickets', () => {
  it('wins at the rate 1 − (1 − c)^(w/W), and every verifier agrees on who won', () => {
    // 200 slots with real proofs: p ≈ 0.293 (w/W = 1/2, c = 1/2), binomial sd ≈ 6.4; 5 sd bound.
    const { sk, pk } = vrfKeygen(new Uint8Array(32).fill(77));
    const rnd = new Uint8Array(32).fill(0xab);
    const T = lotteryThreshold(0.5, 1n, 2n);
    const p = winProbability(0.5, 1n, 2n);
    const N = 200;
    let wins = 0;
    for (let slot = 0; slot < N; slot++) {
      const alpha = lotteryAlpha(rnd, slot);
      const pi = vrfProve('tai', sk, alpha);
      const mine = isWinner(vrfProofToHash('tai', pi), T);
      const r = vrfVerify('tai', pk, alpha, pi);
      expect(r.valid && isWinner(r.beta, T)).toBe(mine);
      if (mine) wins++;
    }
    expect(Math.abs(wins - N * p)).toBeLessThan(5 * Math.sqrt(N * p * (1 - p)));
  });
});
