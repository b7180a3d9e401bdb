/**
 * The simulator's PoD rounds (real decideUnit / allclose policy / CreditLedger) reproduce the
 * known results:
 *  - a cheater falsifying a fraction q of units under spot-check probability p is caught within
 *    k units with probability 1 − (1 − p·q)^k;
 *  - with no cheaters and hardware noise inside the comparison tolerance, no honest credit is lost;
 *  - noise beyond the tolerance does cost honest trainers; replication catches every random
 *    falsification, while colluders can outvote honest replicas.
 */
import { describe, expect, it } from 'vitest';
import { resolveScenario } from '../../src/sim/scenario.ts';
import { runSimulation } from '../../src/sim/engine.ts';
import { summarize } from '../../src/sim/report.ts';
import { KIND } from '../../src/sim/population.ts';
import { PodSimulator } from '../../src/sim/pod.ts';
import { buildPopulation } from '../../src/sim/population.ts';
import { CreditLedger } from '../../src/pod/ledger.ts';
import { Rng } from '../../src/sim/rng.ts';

describe('spot-check detection', () => {
  it('P(caught within k units) = 1 − (1 − p·q)^k', () => {
    const p = 0.2;
    const q = 0.25;
    const s = resolveScenario({
      seed: 21, trainers: 2000, slots: 1, hashrate: { dist: 'constant', value: 1 },
      behaviours: [{ kind: 'cheater', fraction: 0.25, cheatRate: q }],
      pod: { mode: 'spot-check', sampleP: p, unitsPerSlot: 1000, reputation: { enabled: false } },
      lottery: { epochSlots: 40, lookbackEpochs: 0 },
    });
    const run = runSimulation(s); // 40 warm-up + 1 slot of 1,000 units ≈ 20 units per trainer
    const t = run.pod!.trainers;
    for (const k of [1, 3, 5, 10, 15]) {
      let n = 0;
      let caught = 0;
      for (let i = 0; i < run.population.n; i++) {
        if (run.population.kind[i] !== KIND.cheater || t.units[i]! < k) continue;
        n++;
        if (t.firstCaughtAt[i]! !== -1 && t.firstCaughtAt[i]! <= k) caught++;
      }
      const expected = 1 - (1 - p * q) ** k;
      expect(n).toBeGreaterThan(300);
      expect(Math.abs(caught / n - expected)).toBeLessThan(4 * Math.sqrt((expected * (1 - expected)) / n));
    }
    // A falsified result is caught with probability p when its trainer ran the unit first,
    // and always when it was the checker (p checker runs per primary run): overall
    // (p + p)/(1 + p), plus a little from tie-breaker runs.
    const sum = summarize(run);
    expect(sum.pod!.detectionRate).toBeGreaterThan((2 * p) / (1 + p) - 0.02);
    expect(sum.pod!.detectionRate).toBeLessThan((2 * p) / (1 + p) + 0.04);
  });

  it('reputation (adaptive replication) lowers the checking rate of trusted trainers only', () => {
    const s = resolveScenario({ seed: 2, trainers: 10, pod: { mode: 'spot-check', sampleP: 0.5, reputation: { enabled: true, trustAfter: 10, minP: 0.05 } } });
    const pop = buildPopulation(s, new Rng(1));
    const sim = new PodSimulator(s.pod, pop, 0, 1, new Rng(2), new CreditLedger(), pop.hashrate.reduce<string[]>((a, _x, i) => [...a, `t${i}`], []));
    sim.trainers.reputation[0] = 3;
    sim.trainers.reputation[1] = 20;
    sim.trainers.reputation[2] = 1000;
    expect(sim.checkProbability(0)).toBe(0.5);
    expect(sim.checkProbability(1)).toBe(0.25);
    expect(sim.checkProbability(2)).toBe(0.05);
  });
});

describe('honest credit and float noise', () => {
  const honest = (over: Record<string, unknown>) => resolveScenario({ seed: 5, trainers: 200, slots: 2000, hardware: [{ name: 'a', share: 1 }, { name: 'b', share: 1 }, { name: 'c', share: 1 }], ...over });

  it('no cheaters, noise inside the tolerance: every honest execution is credited (replicate R = 3)', () => {
    const run = runSimulation(honest({ noiseUlp: 1000 }));
    const c = run.pod!.counters;
    expect(c.honestFaulty).toBe(0);
    expect(c.failedUnits).toBe(0);
    expect(c.executions).toBe(3 * c.units); // never a tie-breaker
    const credited = run.pod!.trainers.credit.reduce((a, b) => a + b, 0);
    expect(credited).toBe(c.executions * run.scenario.pod.flops);
    expect(summarize(run).pod!.honestFalsePenaltyRate).toBe(0);
  });

  it('no cheaters, noise inside the tolerance: nothing forfeited in spot-check mode', () => {
    const run = runSimulation(honest({ noiseUlp: 1000, pod: { mode: 'spot-check', sampleP: 0.3 } }));
    const c = run.pod!.counters;
    expect(c.checkedUnits).toBeGreaterThan(0);
    expect(c.honestFaulty).toBe(0);
    expect(c.forfeitedFlops).toBe(0);
    expect(run.pod!.trainers.credit.reduce((a, b) => a + b, 0)).toBe(c.executions * run.scenario.pod.flops);
  });

  it('noise far beyond the tolerance costs honest trainers (units fail or honest replicas are outvoted)', () => {
    const sum = summarize(runSimulation(honest({ noiseUlp: 200_000 })));
    expect(sum.pod!.honestUncreditedRate).toBeGreaterThan(0.1);
    expect(sum.pod!.failedUnits).toBeGreaterThan(0);
  });

  it('one hardware class: results are bit-identical even under the exact policy', () => {
    const sum = summarize(runSimulation(resolveScenario({ seed: 8, trainers: 100, slots: 500, noiseUlp: 5000, hardware: [{ name: 'only', share: 1 }], pod: { policy: 'exact' } })));
    expect(sum.pod!.honestFalsePenaltyRate).toBe(0);
    expect(sum.pod!.failedUnits).toBe(0);
  });
});

describe('cheaters under replication', () => {
  it('R = 3 catches every random falsification, lazy trainers earn nothing, wrong results are never accepted', () => {
    const run = runSimulation(resolveScenario({ seed: 9, trainers: 300, slots: 2000, behaviours: [{ kind: 'cheater', fraction: 0.1, cheatRate: 0.3 }, { kind: 'lazy', fraction: 0.05 }] }));
    const sum = summarize(run);
    expect(sum.pod!.detectionRate).toBe(1);
    expect(sum.pod!.wrongAcceptedRate).toBe(0);
    for (let i = 0; i < run.population.n; i++) if (run.population.kind[i] === KIND.lazy) expect(run.pod!.trainers.credit[i]).toBe(0);
    expect(sum.fairness.byBehaviour.lazy!.winShare).toBe(0);
  });

  it('R = 1 accepts unverified and credits nobody; without quarantine colluders can outvote honest replicas at R = 3', () => {
    const r1 = summarize(runSimulation(resolveScenario({ seed: 9, trainers: 100, slots: 300 }, { replicas: 1 })));
    expect(r1.pod!.unverifiedUnits).toBe(r1.pod!.units);
    expect(r1.blocks).toBe(0); // no verified credit → no lottery weight
    const col = summarize(runSimulation(resolveScenario({ seed: 10, trainers: 300, slots: 3000, behaviours: [{ kind: 'colluder', fraction: 0.4, groups: 1, cheatRate: 1 }], pod: { quarantine: false } })));
    expect(col.pod!.wrongAcceptedRate).toBeGreaterThan(0.1);
    expect(col.pod!.detectionRate).toBeLessThan(1);
  });
});
