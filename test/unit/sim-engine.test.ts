/**
 * Simulator plumbing: reproducibility (same seed → bit-identical results), scenario checks that
 * name the field at fault, the example scenario files, and the sampling/statistics helpers.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { resolveScenario } from '../../src/sim/scenario.ts';
import { runSimulation } from '../../src/sim/engine.ts';
import { summarize, summaryJson } from '../../src/sim/report.ts';
import { Rng, seedToInt } from '../../src/sim/rng.ts';
import { buildPopulation, KIND } from '../../src/sim/population.ts';
import { AliasTable, FenwickSampler } from '../../src/sim/sampling.ts';
import { binnedChi2, chi2Sf, gammaQ, pearson } from '../../src/sim/stats.ts';
import { applySweepValue, parseSweep } from '../../src/sim/sweep.ts';
import { isDrillError } from '../../src/util/errors.ts';
import { vrfProofToHash, vrfProve } from '../../src/vrf/ecvrf.ts';
import type { SlotRow } from '../../src/sim/engine.ts';

const fixedClock = { now: () => 0 };

function jsonOf(raw: unknown, over = {}): string {
  return summaryJson(summarize(runSimulation(resolveScenario(raw, over), fixedClock)));
}

describe('reproducibility', () => {
  const raw = {
    trainers: 150, slots: 1500,
    behaviours: [
      { kind: 'cheater', fraction: 0.1, cheatRate: 0.3 }, { kind: 'lazy', fraction: 0.02 },
      { kind: 'colluder', fraction: 0.05, groups: 2, cheatRate: 0.5 }, { kind: 'flaky', fraction: 0.1, missRate: 0.3 },
      { kind: 'sybil', count: 2, identities: 5 },
    ],
  };
  it('the same seed gives the same JSON, bit for bit, in both PoD modes, with and without quarantine', () => {
    const small = { ...raw, pod: { jobUnits: 50 } }; // several quarantines, releases and reopenings per run
    for (const over of [{ seed: 42 }, { seed: 'abc', sampleP: 0.2 }, { seed: 5, replicas: 2, cheaters: 0.3, colluders: 0.5 }, { seed: 5, replicas: 2, cheaters: 0.3, colluders: 0.5, quarantine: false }]) {
      const a = jsonOf(small, over);
      expect(jsonOf(small, over)).toBe(a);
      const j = JSON.parse(a);
      expect(j.elapsedMs).toBe(0);
      if (j.pod.quarantine) {
        expect(j.pod.quarantined).toBeGreaterThan(0);
        expect(j.pod.reopenedUnits).toBeGreaterThan(0);
      }
    }
    expect(JSON.parse(jsonOf(small, { seed: 5, replicas: 2, cheaters: 0.3, colluders: 0.5 })).pod.released).toBeGreaterThan(0);
  });
  it('a different seed gives different results', () => {
    expect(jsonOf(raw, { seed: 1 })).not.toBe(jsonOf(raw, { seed: 2 }));
  });
  it('the summary has the documented fields', () => {
    const s = JSON.parse(jsonOf(raw, { seed: 3 }));
    for (const k of ['emptySlotRate', 'multiLeaderRate', 'elapsedMs']) expect(typeof s[k]).toBe('number');
    for (const k of ['pearson', 'chi2p']) expect(typeof s.fairness[k]).toBe('number');
    for (const k of ['catchRate', 'catchRateSamples', 'catchRateCaught', 'detectionRate', 'honestFalsePenaltyRate', 'cheaterCreditShare', 'verificationOverhead', 'quarantined', 'released', 'reopenedUnits', 'wrongAccepted', 'wrongAcceptedRate', 'faultBans', 'jobs']) expect(typeof s.pod[k]).toBe('number');
    expect(s.pod.quarantine).toBe(true);
    expect(s.scenario.pod).toMatchObject({ quarantine: true, jobUnits: 64 });
    expect(s.scenario.lottery.faultEpochs).toBe(2);
    expect(s.pod.missedDeadlines).toBeGreaterThan(0); // flaky trainers
    expect(s.fairness.sybils).toHaveLength(2);
  });
});

describe('slot loop', () => {
  it('per-slot invariants hold every slot (flaky leaders, credit window, PoD)', () => {
    const s = resolveScenario({
      seed: 12, trainers: 200, slots: 3000, lottery: { windowEpochs: 3, epochSlots: 16, lookbackEpochs: 2 },
      behaviours: [{ kind: 'flaky', fraction: 0.3, missRate: 0.5 }, { kind: 'cheater', fraction: 0.1, cheatRate: 1 }],
    });
    let prev = -1;
    let slots = 0;
    const run = runSimulation(s, {
      onSlot: (r: Readonly<SlotRow>) => {
        expect(r.slot).toBe(prev + 1 === 0 ? run0(s) : prev + 1);
        expect(r.epoch).toBe(Math.floor(r.slot / 16));
        expect(r.produced).toBeLessThanOrEqual(r.leaders);
        expect(r.totalWeight).toBeGreaterThan(0); // the window always holds 3 epochs of credit
        expect(r.units).toBe(4);
        prev = r.slot;
        slots++;
      },
    });
    expect(slots).toBe(3000);
    expect(run.warmupSlots).toBe(3 * 16);
    expect(run.lottery.emptySlots).toBeGreaterThan(run.lottery.noLeaderSlots); // offline flaky leaders
    expect(run.lottery.missedLeaderships).toBeGreaterThan(0);
    // Cheaters falsifying everything are never credited, so they never win.
    const sum = summarize(run);
    expect(sum.fairness.byBehaviour.cheater!.winShare).toBe(0);
  });

  it('ECVRF mode with PoD credit as weights: deterministic, and it needs a VRF implementation', () => {
    const raw = { seed: 4, trainers: 6, slots: 24, hashrate: { dist: 'constant', value: 1 }, lottery: { mode: 'ecvrf', c: 0.9, epochSlots: 8 } };
    const vrf = { prove: vrfProve, proofToHash: vrfProofToHash };
    let proofs = 0;
    const counting = { prove: (...a: Parameters<typeof vrfProve>) => (proofs++, vrfProve(...a)), proofToHash: vrfProofToHash };
    const a = runSimulation(resolveScenario(raw), { vrf: counting, now: () => 0 });
    const b = runSimulation(resolveScenario(raw), { vrf, now: () => 0 });
    expect(summaryJson(summarize(a))).toBe(summaryJson(summarize(b)));
    expect(proofs).toBeLessThanOrEqual(6 * 24); // only trainers with weight prove
    expect(a.lottery.leaders).toBeGreaterThan(0);
    expect(() => runSimulation(resolveScenario(raw))).toThrow(/no VRF implementation/);
  }, 60_000);
});

function run0(s: { lottery: { lookbackEpochs: number; epochSlots: number } }): number {
  return (s.lottery.lookbackEpochs + 1) * s.lottery.epochSlots;
}

describe('scenario checks', () => {
  const field = (raw: unknown, over = {}): string | undefined => {
    try {
      resolveScenario(raw, over);
      return undefined;
    } catch (e) {
      if (isDrillError(e, 'USER_INPUT')) return (e.meta as { field: string }).field;
      throw e;
    }
  };
  it('names the field at fault', () => {
    expect(field({ trainers: 0 })).toBe('scenario.trainers');
    expect(field({ pod: { replicas: 0 } })).toBe('scenario.pod.replicas');
    expect(field({ pod: { policy: 'nearly' } })).toBe('scenario.pod.policy');
    expect(field({ lottery: { c: 1.5 } })).toBe('scenario.lottery.c');
    expect(field({ hashrate: { dist: 'zipf' } })).toBe('scenario.hashrate.dist');
    expect(field({ behaviours: [{ kind: 'cheater', fraction: 0.7 }, { kind: 'lazy', fraction: 0.5 }] })).toBe('scenario.behaviours');
    expect(field({ behaviours: [{ fraction: 0.1 }] })).toBe('scenario.behaviours[0].kind');
    expect(field({ pod: { sampleRate: 0.1 } })).toBe('scenario.pod.sampleRate');
    expect(field({ trainers: 20_000, lottery: { mode: 'ecvrf' } })).toBe('scenario.lottery.mode');
    expect(field({ pod: { jobUnits: 0 } })).toBe('scenario.pod.jobUnits');
    expect(field({ pod: { quarantine: 'yes' } })).toBe('scenario.pod.quarantine');
    expect(field({ lottery: { faultEpochs: -1 } })).toBe('scenario.lottery.faultEpochs');
    expect(field(['x'])).toBe('scenario');
  });
  it('flags override the file: --cheaters adds a cheater group, --sample-p selects spot-check', () => {
    const s = resolveScenario({ pod: { mode: 'replicate' } }, { cheaters: 0.2, cheatRate: 0.4, sampleP: 0.05, trainers: 7, c: 0.5, noise: 3, seed: 'x' });
    expect(s.behaviours).toEqual([{ kind: 'cheater', fraction: 0.2, cheatRate: 0.4 }]);
    expect(s.pod.mode).toBe('spot-check');
    expect(s.pod.sampleP).toBe(0.05);
    expect([s.trainers, s.lottery.c, s.noiseUlp, s.seed]).toEqual([7, 0.5, 3, 'x']);
  });
  it('--colluders splits the cheaters into one colluding group and independent cheaters', () => {
    const a = resolveScenario({ behaviours: [{ kind: 'lazy', fraction: 0.01 }] }, { cheaters: 0.2, colluders: 0.25, cheatRate: 0.5 });
    expect(a.behaviours).toEqual([
      { kind: 'cheater', fraction: 0.2 * 0.75, cheatRate: 0.5 },
      { kind: 'colluder', fraction: 0.2 * 0.25, groups: 1, cheatRate: 0.5 },
      { kind: 'lazy', fraction: 0.01 },
    ]);
    // Without --cheaters: the scenario's cheaters and colluders together, its rate and group count.
    const b = resolveScenario({ behaviours: [{ kind: 'cheater', fraction: 0.1, cheatRate: 0.3 }, { kind: 'colluder', fraction: 0.1, groups: 2, cheatRate: 1 }] }, { colluders: 1, quarantine: false, faultEpochs: 0, jobUnits: 9 });
    expect(b.behaviours).toEqual([{ kind: 'colluder', fraction: 0.2, groups: 2, cheatRate: 0.3 }]);
    expect([b.pod.quarantine, b.lottery.faultEpochs, b.pod.jobUnits]).toEqual([false, 0, 9]);
    const pop = buildPopulation(resolveScenario({ trainers: 1000 }, { cheaters: 0.2, colluders: 0.5 }), new Rng(1));
    expect(pop.kind.filter((k) => k === KIND.colluder).length).toBe(100);
    expect(pop.kind.filter((k) => k === KIND.cheater).length).toBe(100);
  });
  it('every example scenario in scenarios/ resolves', () => {
    const dir = join(import.meta.dirname, '../../scenarios');
    const files = readdirSync(dir).filter((f) => /\.(json|ya?ml)$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      const s = resolveScenario(f.endsWith('.json') ? JSON.parse(text) : parseYaml(text));
      expect(s.trainers).toBeGreaterThan(0);
    }
  });
  it('sweeps parse and change one parameter', () => {
    expect(parseSweep('sample-p=0.1,0.5')).toEqual({ param: 'sample-p', values: [0.1, 0.5] });
    expect(() => parseSweep('replicas=1.5')).toThrow(/--sweep/);
    expect(() => parseSweep('speed=1')).toThrow(/--sweep/);
    expect(parseSweep('quarantine=0,1')).toEqual({ param: 'quarantine', values: [0, 1] });
    expect(() => parseSweep('quarantine=2')).toThrow(/--sweep/);
    expect(() => parseSweep('colluders=1.5', '--cross')).toThrow(/--cross/);
    const ch = resolveScenario({ behaviours: [{ kind: 'cheater', fraction: 0.2, cheatRate: 1 }] });
    expect(applySweepValue(ch, 'colluders', 1).behaviours).toEqual([{ kind: 'colluder', fraction: 0.2, groups: 1, cheatRate: 1 }]);
    expect(applySweepValue(ch, 'quarantine', 0).pod.quarantine).toBe(false);
    expect(ch.pod.quarantine).toBe(true);
    const base = resolveScenario({ behaviours: [{ kind: 'sybil', count: 1, identities: 2 }] });
    expect(applySweepValue(base, 'identities', 50).behaviours[0]).toMatchObject({ identities: 50 });
    expect(base.behaviours[0]).toMatchObject({ identities: 2 });
  });
});

describe('helpers', () => {
  it('Rng: deterministic, uniform, seeds separate', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    expect(new Rng(6).next()).not.toBe(xs[0]);
    expect(seedToInt('a')).not.toBe(seedToInt('b'));
    const r = new Rng(1);
    const N = 100_000;
    let s = 0;
    let pois = 0;
    for (let i = 0; i < N; i++) {
      s += r.next();
      pois += r.poisson(0.3);
    }
    expect(Math.abs(s / N - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(pois / N - 0.3)).toBeLessThan(0.01);
  });
  it('AliasTable and FenwickSampler draw in proportion to weight, never a zero weight', () => {
    const w = [0, 1, 2, 0, 5, 2];
    const alias = new AliasTable(w);
    const fen = new FenwickSampler(w.length);
    w.forEach((x, i) => fen.set(i, x));
    const r = new Rng(3);
    const ca = new Array(w.length).fill(0);
    const cf = new Array(w.length).fill(0);
    for (let i = 0; i < 50_000; i++) {
      ca[alias.sample(r.next())]++;
      cf[fen.sample(r.next())]++;
    }
    expect(ca[0] + ca[3] + cf[0] + cf[3]).toBe(0);
    expect(binnedChi2(ca, w, 0).p).toBeGreaterThan(0.001);
    expect(binnedChi2(cf, w, 0).p).toBeGreaterThan(0.001);
    fen.set(4, 0);
    expect(fen.total).toBe(5);
    expect(fen.sample(0.999999)).toBe(5);
    expect(new FenwickSampler(3).sample(0.5)).toBe(-1);
  });
  it('statistics match known values', () => {
    expect(chi2Sf(3.841458820694124, 1)).toBeCloseTo(0.05, 8);
    expect(chi2Sf(18.307038053275146, 10)).toBeCloseTo(0.05, 8);
    expect(gammaQ(1, 2)).toBeCloseTo(Math.exp(-2), 12);
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(binnedChi2([10, 0], [0, 1]).p).toBe(0); // an impossible observation
  });
});
