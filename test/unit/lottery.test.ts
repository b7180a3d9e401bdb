/**
 * The VRF lottery threshold: exact bigint values against an independent high-precision
 * reference, edge cases, monotonicity, agreement with the float formula, and the win rate of
 * uniform 64-byte outputs.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sha512 } from '@noble/hashes/sha2.js';
import {
  DEFAULT_C,
  LOTTERY_ALPHA_TAG,
  MAX_TOTAL_WEIGHT,
  TICKET_SPACE,
  betaToTicket,
  isWinner,
  lotteryAlpha,
  lotteryThreshold,
  winProbability,
} from '../../src/vrf/lottery.ts';
import { isDrillError } from '../../src/util/errors.ts';

const TWO_256 = 2 ** 256;

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isDrillError(e) ? e.code : 'NOT_A_DRILL_ERROR';
  }
  return undefined;
}

describe('lotteryThreshold', () => {
  it('matches floor(2^256·(1 − (1 − c)^(w/W))) from an independent 200-digit reference', () => {
    // Computed with Python's decimal module at 200 significant digits, c taken as the exact
    // rational value of the double (fractions.Fraction(c)).
    const cases: Array<[number, bigint, bigint, bigint]> = [
      [0.25, 1n, 3n, 10587994317224183843816960034371375144707871121187425274288572604369372397043n],
      [0.5, 1n, 2n, 33914717729852067806019783465708279545762552194397326977635730407156374857450n],
      [0.25, 3n, 4n, 22472066159229935787760987751438183315505436147710605461066857283707076428806n],
      [0.999999, 1n, 1000000n, 1599715780912978570974562663095069480002691243670867183422843087378905488n],
      [1e-9, 5n, 7n, 82708635181327092625913005866029405530837601430340713789877539214970n],
      [0.25, 1n, 10n ** 30n, 33311308205312680284369338703712123916485161835n],
      [0.1, 123456789n, 987654321n, 1514991101909236461101770558254158978044539404856504221402653656137528637246n],
      [0.75, 1n << 100n, MAX_TOTAL_WEIGHT, 597990751108106278762941418612033425775680047788383678775564705987072n],
    ];
    for (const [c, w, W, want] of cases) expect(lotteryThreshold(c, w, W), `c=${c} w=${w} W=${W}`).toBe(want);
  });

  it('gives zero weight a zero threshold, so it never wins', () => {
    expect(lotteryThreshold(0.25, 0n, 100n)).toBe(0n);
    expect(lotteryThreshold(1, 0n, 100n)).toBe(0n);
    expect(lotteryThreshold(0.5, 0n, 0n)).toBe(0n);
    const allZero = new Uint8Array(64); // the smallest possible ticket still loses
    expect(isWinner(allZero, lotteryThreshold(0.25, 0n, 5n))).toBe(false);
  });

  it('gives the full weight exactly floor(2^256·c)', () => {
    expect(lotteryThreshold(0.25, 7n, 7n)).toBe(1n << 254n);
    expect(lotteryThreshold(0.5, 1n, 1n)).toBe(1n << 255n);
    // 0.1 is not dyadic: its double is 3602879701896397/2^55.
    expect(lotteryThreshold(0.1, 9n, 9n)).toBe((3602879701896397n << 256n) / (1n << 55n));
    expect(lotteryThreshold(1, 3n, 3n)).toBe(TICKET_SPACE);
    expect(lotteryThreshold(1, 1n, 3n)).toBe(TICKET_SPACE);
  });

  it('is non-decreasing in weight (seeded)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-6, max: 0.999, noNaN: true }),
        fc.bigInt({ min: 1n, max: 1n << 100n }),
        fc.bigInt({ min: 0n, max: 1n << 100n }),
        fc.bigInt({ min: 0n, max: 1000n }),
        (c, total, w0, dw) => {
          const a = w0 % (total + 1n);
          const b = a + dw > total ? total : a + dw;
          expect(lotteryThreshold(c, a, total) <= lotteryThreshold(c, b, total)).toBe(true);
        },
      ),
      { seed: 20261122, numRuns: 300 },
    );
    // Adjacent weights of a small total differ strictly.
    let prev = -1n;
    for (let w = 0n; w <= 50n; w++) {
      const t = lotteryThreshold(DEFAULT_C, w, 50n);
      expect(t > prev).toBe(true);
      prev = t;
    }
  });

  it('agrees with the float formula within 1e-12 relative (seeded)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-9, max: 1 - 1e-9, noNaN: true }),
        fc.bigInt({ min: 1n, max: 1n << 80n }),
        fc.bigInt({ min: 1n, max: 1n << 80n }),
        (c, total, w0) => {
          const w = ((w0 - 1n) % total) + 1n;
          const exact = Number(lotteryThreshold(c, w, total)) / TWO_256;
          const approx = winProbability(c, w, total);
          expect(Math.abs(exact - approx) / approx).toBeLessThan(1e-12);
        },
      ),
      { seed: 9381, numRuns: 500 },
    );
  });

  it('splitting weight over many keys leaves P(no leader) = 1 − c', () => {
    // Π (1 − T_i/2^256) over a split of the whole weight equals 1 − c (to float precision).
    const parts = [1n, 2n, 3n, 5n, 8n, 13n, 21n, 34n, 55n, 89n];
    const total = parts.reduce((a, b) => a + b, 0n);
    let none = 1;
    for (const w of parts) none *= 1 - Number(lotteryThreshold(DEFAULT_C, w, total)) / TWO_256;
    expect(none).toBeCloseTo(1 - DEFAULT_C, 14);
  });

  it('rejects caller misuse with VRF_BAD_LOTTERY_PARAM', () => {
    expect(code(() => lotteryThreshold(0.25, 5n, 4n))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => lotteryThreshold(0.25, -1n, 4n))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => lotteryThreshold(0, 1n, 4n))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => lotteryThreshold(1.5, 1n, 4n))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => lotteryThreshold(Number.NaN, 1n, 4n))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => lotteryThreshold(0.25, 1n, MAX_TOTAL_WEIGHT + 1n))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => lotteryThreshold(0.25, 1 as unknown as bigint, 4n))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => winProbability(0.25, 5, 4))).toBe('VRF_BAD_LOTTERY_PARAM');
  });
});

describe('tickets', () => {
  it('reads the first 32 bytes of beta big-endian', () => {
    const beta = new Uint8Array(64);
    beta[31] = 1;
    beta[32] = 0xff; // beyond the ticket: ignored
    expect(betaToTicket(beta)).toBe(1n);
    beta[0] = 0x80;
    expect(betaToTicket(beta)).toBe((1n << 255n) + 1n);
    expect(betaToTicket(new Uint8Array(64).fill(0xff))).toBe(TICKET_SPACE - 1n);
    expect(code(() => betaToTicket(new Uint8Array(32)))).toBe('VRF_BAD_ARGUMENT');
  });

  it('wins exactly when ticket < threshold', () => {
    const beta = new Uint8Array(64);
    beta[31] = 10;
    expect(isWinner(beta, 11n)).toBe(true);
    expect(isWinner(beta, 10n)).toBe(false);
    expect(isWinner(new Uint8Array(64).fill(0xff), TICKET_SPACE)).toBe(true);
  });

  it('wins at the rate 1 − (1 − c)^(w/W) with uniform 64-byte outputs (seeded)', () => {
    // SHA-512 outputs stand in for VRF outputs (both uniform); test/unit/vrf.test.ts repeats
    // this with real VRF proofs. N = 20,000: the binomial sd is ≈ 39 wins; 5 sd bounds it.
    const w = 3n;
    const W = 10n;
    const T = lotteryThreshold(DEFAULT_C, w, W);
    const p = winProbability(DEFAULT_C, w, W);
    const N = 20_000;
    let wins = 0;
    const rnd = new Uint8Array(32).fill(7);
    for (let slot = 0; slot < N; slot++) if (isWinner(sha512(lotteryAlpha(rnd, slot)), T)) wins++;
    const sd = Math.sqrt(N * p * (1 - p));
    expect(Math.abs(wins - N * p)).toBeLessThan(5 * sd);
  });
});

describe('lotteryAlpha', () => {
  it('is tag ‖ randomness ‖ u64be(slot)', () => {
    const rnd = new Uint8Array(32).map((_, i) => i);
    const a = lotteryAlpha(rnd, 0x0102030405);
    expect(a.length).toBe(LOTTERY_ALPHA_TAG.length + 40);
    expect(Buffer.from(a.subarray(0, LOTTERY_ALPHA_TAG.length)).toString()).toBe('matrix-drill/lottery/v1');
    expect([...a.subarray(LOTTERY_ALPHA_TAG.length, LOTTERY_ALPHA_TAG.length + 32)]).toEqual([...rnd]);
    expect([...a.subarray(-8)]).toEqual([0, 0, 0, 1, 2, 3, 4, 5]);
    expect(lotteryAlpha(rnd, Number.MAX_SAFE_INTEGER).subarray(-8)).toEqual(new Uint8Array([0, 0x1f, 255, 255, 255, 255, 255, 255]));
  });

  it('rejects bad randomness and slots', () => {
    expect(code(() => lotteryAlpha(new Uint8Array(31), 1))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => lotteryAlpha(new Uint8Array(32), -1))).toBe('VRF_BAD_LOTTERY_PARAM');
    expect(code(() => lotteryAlpha(new Uint8Array(32), 1.5))).toBe('VRF_BAD_LOTTERY_PARAM');
  });
});
