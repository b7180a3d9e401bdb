/**
 * The simulator's lottery reproduces the known results of the hashrate lottery:
 *  - P(no leader) = 1 − c however the weight is split (so Sybil splitting gains nothing);
 *  - the fast mode (Poisson splitting + Fenwick draws) has the same law as real RFC 9381
 *    ECVRF proofs against the exact bigint threshold (chi-square on a small population);
 *  - block share converges to weight share.
 */
import { describe, expect, it } from 'vitest';
import { lotteryThreshold, TICKET_SPACE } from '../../src/vrf/lottery.ts';
import { resolveScenario } from '../../src/sim/scenario.ts';
import { runSimulation } from '../../src/sim/engine.ts';
import { summarize } from '../../src/sim/report.ts';
import { drawWinnersFast, lotteryLambda } from '../../src/sim/lottery.ts';
import { FenwickSampler } from '../../src/sim/sampling.ts';
import { Rng } from '../../src/sim/rng.ts';
import { binnedChi2, chi2TwoSample } from '../../src/sim/stats.ts';
import { vrfProofToHash, vrfProve } from '../../src/vrf/ecvrf.ts';

const vrf = { prove: vrfProve, proofToHash: vrfProofToHash };

/** Exact P(no leader) from the consensus thresholds: Π (1 − T_i / 2^256). */
function exactNoLeader(c: number, weights: bigint[]): number {
  const total = weights.reduce((a, b) => a + b, 0n);
  let q = 1;
  for (const w of weights) {
    const t = lotteryThreshold(c, w, total);
    // 1 − T/2^256 with 60 bits of the quotient (doubles cannot hold 2^256 exactly)
    q *= Number(((TICKET_SPACE - t) << 60n) / TICKET_SPACE) / 2 ** 60;
  }
  return q;
}

/** 4-sigma band of a binomial proportion. */
function band(p: number, n: number): number {
  return 4 * Math.sqrt((p * (1 - p)) / n);
}

describe('no-leader probability is 1 − c whatever the split', () => {
  it('exactly, from the bigint thresholds', () => {
    const rng = new Rng(7);
    for (const c of [0.05, 0.25, 0.5, 0.9]) {
      const splits: bigint[][] = [
        [1n],
        [1n, 1n],
        Array.from({ length: 1000 }, () => 1n),
        Array.from({ length: 50 }, () => BigInt(1 + rng.int(1_000_000))),
        [10n ** 15n, 1n, 3n],
      ];
      for (const s of splits) expect(exactNoLeader(c, s)).toBeCloseTo(1 - c, 12);
    }
  });

  it('empirically, in the fast mode, for one machine or the same machine split into 1,000 Sybils', () => {
    const slots = 40_000;
    for (const identities of [1, 1000]) {
      const s = resolveScenario({
        seed: 11, trainers: 50, slots, hashrate: { dist: 'lognormal', mu: 0, sigma: 1 },
        behaviours: [{ kind: 'sybil', count: 1, identities, hashrateShare: 0.3 }],
        pod: { unitsPerSlot: 0 }, lottery: { c: 0.25 },
      });
      const sum = summarize(runSimulation(s));
      expect(Math.abs(sum.noLeaderRate - 0.75)).toBeLessThan(band(0.75, slots));
      // The Sybil machine leads a slot (some identity wins) with probability 1 − (1 − c)^0.3
      // whether it is one identity or 1,000: splitting buys no extra slots.
      const sy = sum.fairness.sybils[0]!;
      expect(sy.identities).toBe(identities);
      expect(sy.hashrateShare).toBeCloseTo(0.3, 10);
      const p = 1 - 0.75 ** 0.3;
      expect(sy.expectedSlotsLedRate).toBeCloseTo(p, 10);
      expect(Math.abs(sy.slotsLedRate - p)).toBeLessThan(band(p, slots));
    }
  });
});

describe('fast mode = ECVRF + exact threshold, in distribution', () => {
  const hashrate = [1, 2, 3, 4, 10];
  const c = 0.8;
  const base = { trainers: hashrate.length, hashrate: { dist: 'fixed', values: hashrate }, pod: { unitsPerSlot: 0 }, lottery: { c } };

  // Exact per-trainer win probabilities from the consensus threshold, with the same integer
  // weights the ECVRF mode uses (scaled to 2^40, see src/sim/lottery.ts).
  const W = hashrate.reduce((a, b) => a + b, 0);
  const w = hashrate.map((h) => BigInt(Math.round((h / W) * 2 ** 40)));
  const tot = w.reduce((a, b) => a + b, 0n);
  const pExact = w.map((x) => Number((lotteryThreshold(c, x, tot) << 60n) / TICKET_SPACE) / 2 ** 60);
  // Exact distribution of the number of leaders (Poisson-binomial), folded at ≥ 3.
  let dist = [1];
  for (const p of pExact) {
    const next = new Array(dist.length + 1).fill(0);
    dist.forEach((q, k) => {
      next[k] += q * (1 - p);
      next[k + 1] += q * p;
    });
    dist = next;
  }
  const leaderDist = [dist[0]!, dist[1]!, dist[2]!, dist.slice(3).reduce((a, b) => a + b, 0)];

  function run(mode: 'fast' | 'ecvrf', slots: number, seed: number): { wins: number[]; leaders: number[] } {
    const leaders = [0, 0, 0, 0];
    const r = runSimulation(resolveScenario({ ...base, seed, slots, lottery: { c, mode } }), { vrf, onSlot: (row) => void leaders[Math.min(3, row.leaders)]!++ });
    return { wins: Array.from(r.trainers.wins), leaders };
  }

  it('ECVRF wins and leaders per slot fit the exact law; fast mode fits it and agrees with ECVRF', () => {
    const ecvrf = run('ecvrf', 240, 5); // 1,200 real proofs
    const fast = run('fast', 60_000, 6);
    for (const r of [ecvrf, fast]) {
      const slots = r.leaders.reduce((a, b) => a + b, 0);
      // wins per trainer against the exact expectation (cells scaled to the observed total)
      expect(binnedChi2(r.wins, pExact, 0).p).toBeGreaterThan(0.001);
      // leaders per slot: exact Poisson-binomial; goodness of fit with expected counts
      const chi = r.leaders.reduce((a, o, k) => a + (o - slots * leaderDist[k]!) ** 2 / (slots * leaderDist[k]!), 0);
      expect(chi).toBeLessThan(16.27); // chi-square(3) at p = 0.001
    }
    expect(chi2TwoSample(ecvrf.wins, fast.wins).p).toBeGreaterThan(0.001);
    expect(chi2TwoSample(ecvrf.leaders, fast.leaders).p).toBeGreaterThan(0.001);
  }, 120_000);

  it('the Poisson-split draw gives each trainer its exact marginal 1 − (1 − c)^(w/W)', () => {
    const fen = new FenwickSampler(hashrate.length);
    hashrate.forEach((h, i) => fen.set(i, h));
    const rng = new Rng(99);
    const lambda = lotteryLambda(c);
    const wins = new Array(hashrate.length).fill(0);
    const N = 200_000;
    const out: number[] = [];
    for (let s = 0; s < N; s++) for (const i of drawWinnersFast(fen, lambda, rng, out)) wins[i]++;
    hashrate.forEach((h, i) => {
      const p = 1 - (1 - c) ** (h / W);
      expect(Math.abs(wins[i] / N - p)).toBeLessThan(band(p, N));
    });
  });

  it('c = 1: every trainer with weight wins every slot', () => {
    const r = runSimulation(resolveScenario({ ...base, slots: 50, lottery: { c: 1 } }));
    expect(Array.from(r.trainers.wins)).toEqual([50, 50, 50, 50, 50]);
    expect(r.lottery.noLeaderSlots).toBe(0);
  });
});

describe('block share converges to weight share', () => {
  it('over many slots, within sampling error, and the chi-square test accepts', () => {
    const sum = summarize(runSimulation(resolveScenario({
      seed: 3, trainers: 40, slots: 200_000, hashrate: { dist: 'pareto', alpha: 1.2, min: 1 }, pod: { unitsPerSlot: 0 }, lottery: { c: 0.25 },
    })));
    expect(sum.fairness.pearson).toBeGreaterThan(0.99);
    expect(sum.fairness.chi2p).toBeGreaterThan(0.001);
  });

  it('through PoD credit: the lottery follows verified work, and cheaters caught by R = 3 win in proportion to their reduced credit', () => {
    const sum = summarize(runSimulation(resolveScenario({
      seed: 4, trainers: 300, slots: 20_000, behaviours: [{ kind: 'cheater', fraction: 0.2, cheatRate: 0.5 }],
    })));
    const ch = sum.fairness.byBehaviour.cheater!;
    expect(ch.creditShare).toBeLessThan(ch.hashrateShare * 0.6); // lost about half their credit
    expect(Math.abs(ch.winShare - ch.expectedWinShare)).toBeLessThan(0.02);
    expect(sum.fairness.chi2p).toBeGreaterThan(0.001);
  });
});
