/**
 * The simulator models the grid's defences (src/coordinator/scheduler.ts): random replica sets,
 * per-job quarantine with re-verification of the units a faulty trainer decided, forfeit of its
 * job credit, release of honest trainers a faulty majority outvoted, and the lottery ban.
 *  - spot-check catch rate = P · (h² + 2h³(1 − h)) with h the chance a drawn trainer is honest
 *    (derived below), the figure a live-grid test compares with;
 *  - R = 2 with colluders: without quarantine a unit goes wrong exactly as often as the random
 *    draw puts colluders in the majority (no advantage from the draw); with quarantine, jobs
 *    long enough for every colluder to meet honest replicas deliver essentially no wrong result
 *    and colluders keep no credit;
 *  - an honest trainer outvoted by colluders is released when its unit is re-decided;
 *  - a quarantined trainer's lottery weight is 0 for faultEpochs epochs;
 *  - re-decisions credit nobody twice.
 */
import { describe, expect, it } from 'vitest';
import { resolveScenario } from '../../src/sim/scenario.ts';
import { runSimulation } from '../../src/sim/engine.ts';
import { summarize } from '../../src/sim/report.ts';
import { KIND } from '../../src/sim/population.ts';
import type { PodEvent } from '../../src/sim/pod.ts';

/** |x − e| within z binomial standard deviations of e over n trials. */
function withinBinomial(x: number, e: number, n: number, z = 4): boolean {
  return Math.abs(x - e) <= z * Math.sqrt((e * (1 - e)) / n);
}

describe('spot-check audits (the grid\'s --replicas 1 --audit P)', () => {
  it('catch rate = P · (h⁴ + 4h³(1 − h)), h = chance a drawn trainer returns the right result', () => {
    // Random cheaters only (each wrong answer unique), cheatRate 1, equal hashrates.
    // A falsified primary result is found faulty iff the unit is audited (P) and the dispute
    // then resolves against it. As in the grid, a dispute is settled by a jury of 2·2 + 1 = 5
    // results (the audit round has 2 replicas; maxReplicas 5 = the grid's 2·1 + 3): the primary
    // and four drawn trainers (auditor and tie-breakers), each right with probability
    // h = (N − F)/(N − 1). The right class wins iff at least 3 of the 4 are right:
    //   P(caught | audited) = h⁴ + 4h³(1 − h).
    // (P · h — "audited by an honest worker" — is the first-order term.)
    // Two settings: few cheaters; and many (h ≈ 0.7, where the jury matters), with short jobs
    // so that quarantined cheaters barely thin the pool within a job (h is computed for the
    // full population).
    for (const { f, P, jobUnits } of [{ f: 0.1, P: 0.3, jobUnits: 64 }, { f: 0.3, P: 0.5, jobUnits: 8 }]) {
      const N = 1000;
      const s = resolveScenario({
        seed: 31, trainers: N, slots: 200, hashrate: { dist: 'constant', value: 1 },
        behaviours: [{ kind: 'cheater', fraction: f, cheatRate: 1 }],
        pod: { mode: 'spot-check', sampleP: P, unitsPerSlot: 200, quarantine: true, jobUnits },
        lottery: { epochSlots: 8, lookbackEpochs: 0 },
      });
      const p = summarize(runSimulation(s)).pod!;
      const h = (N - f * N) / (N - 1);
      const expected = P * (h ** 4 + 4 * h ** 3 * (1 - h));
      expect(p.catchRateSamples).toBeGreaterThan(3500);
      expect(p.catchRate).toBe(p.catchRateCaught / p.catchRateSamples);
      expect(withinBinomial(p.catchRate, expected, p.catchRateSamples)).toBe(true);
      expect(p.quarantined).toBeGreaterThan(0);
    }
  });
});

describe('colluders under R = 2, with and without quarantine', () => {
  // 50 trainers, 10 colluders (one group, cheatRate 1), jobs of 256 units: every trainer runs
  // ~10 units of a job, as in a grid of tens of workers.
  const raw = (quarantine: boolean): unknown => ({
    seed: 3, trainers: 50, slots: 400, hashrate: { dist: 'constant', value: 1 },
    behaviours: [{ kind: 'colluder', fraction: 0.2, groups: 1, cheatRate: 1 }],
    pod: { mode: 'replicate', replicas: 2, jobUnits: 256, unitsPerSlot: 16, quarantine },
    lottery: { epochSlots: 16, lookbackEpochs: 0 },
  });
  const off = summarize(runSimulation(resolveScenario(raw(false)))).pod!;
  const on = summarize(runSimulation(resolveScenario(raw(true)))).pod!;

  it('without quarantine a unit is wrong exactly as often as the random draw gives colluders the majority', () => {
    // N = 50, C = 10. Wrong iff both first replicas collude, or one does and the dispute's jury
    // (5 results: the two plus three drawn from the other N − 2) holds 3 colluders, i.e. at least
    // 2 of the 3 drawn: C(C−1)/(N(N−1)) + 2C(N−C)/(N(N−1)) · p3, p3 hypergeometric = 0.0648.
    // Colluders cannot arrange to share a unit, so the measured rate must match the draw's.
    const N = 50;
    const C = 10;
    const choose = (n: number, k: number): number => (k < 0 || k > n ? 0 : k === 0 ? 1 : (n / k) * choose(n - 1, k - 1));
    const p3 = (choose(C - 1, 2) * choose(N - C - 1, 1) + choose(C - 1, 3)) / choose(N - 2, 3);
    const w = (C * (C - 1)) / (N * (N - 1)) + ((2 * C * (N - C)) / (N * (N - 1))) * p3;
    expect(off.acceptedUnits).toBe(off.units);
    expect(withinBinomial(off.wrongAcceptedRate, w, off.acceptedUnits)).toBe(true);
    // Colluders are credited only in the units they won.
    expect(off.cheaterCreditShare).toBeGreaterThan(0.5 * w);
  });

  it('with quarantine, wrong results and colluder credit all but vanish', () => {
    // A colluder paired with an honest replica and an honest tie-breaker (prob. (1 − C/N)² ≈
    // 0.64) is quarantined and every unit it decided in the job is re-run. It takes part in
    // ~256 · 2 / 50 ≈ 10 units of a job, so it ends a job uncaught with probability about
    // 0.36^10 ≈ 4e-5 — only such colluders leave a wrong decision standing, expected
    // ~0.098 · 1e-4 of units. Asserting a 20-fold drop leaves room for end-of-job effects.
    expect(on.wrongAccepted * 20).toBeLessThan(off.wrongAccepted);
    expect(off.wrongAccepted).toBeGreaterThan(400);
    expect(on.cheaterCreditShare).toBeLessThan(0.005);
    expect(off.cheaterCreditShare).toBeGreaterThan(0.03);
    // What it costs: re-runs of reopened units, but fewer tie-breakers once colluders are out.
    expect(on.reopenedUnits).toBeGreaterThan(0);
    expect(on.quarantined).toBeGreaterThan(0);
    expect(on.released).toBeGreaterThan(0);
    expect(on.failedUnits + on.stalledUnits).toBe(0);
  });
});

describe('re-verification', () => {
  it('an honest trainer outvoted by colluders is released when the unit is re-decided', () => {
    // 8 equal trainers, 3 colluders (cheatRate 1), R = 2, jobs of 40 units: a dispute's jury of 5
    // can hold all 3 colluders and outvote two honest trainers.
    const events: PodEvent[] = [];
    const s = resolveScenario({
      seed: 5, trainers: 8, slots: 40, hashrate: { dist: 'constant', value: 1 },
      behaviours: [{ kind: 'colluder', fraction: 3 / 8, groups: 1, cheatRate: 1 }],
      pod: { mode: 'replicate', replicas: 2, jobUnits: 40, unitsPerSlot: 2 },
      lottery: { epochSlots: 4, lookbackEpochs: 0 },
    });
    const run = runSimulation(s, { onPodEvent: (e) => events.push(e) });
    const kind = run.population.kind;
    let stories = 0;
    for (let k = 0; k < events.length; k++) {
      const e = events[k]!;
      if (e.kind !== 'released') continue;
      // Only an honest trainer is ever released: a colluder's minority result never agrees
      // with a re-decision (the other colluder alone cannot outvote an honest tie-breaker).
      expect(kind[e.trainer]).toBe(KIND.honest);
      // Released right after its unit's new, right decision…
      let j = k - 1;
      while (events[j]!.kind === 'released') j--; // two outvoted trainers go free one after the other
      const d = events[j]!;
      expect(d).toMatchObject({ kind: 'decided', job: e.job, unit: e.unit, wrong: false });
      expect((d as Extract<PodEvent, { kind: 'decided' }>).rerun).toBeGreaterThan(0);
      // …after it had been outvoted there by a wrong majority, and the unit was reopened
      // because a trainer of that majority was quarantined.
      const q = events.findLastIndex((x, j) => j < k && x.kind === 'quarantined' && x.trainer === e.trainer && x.job === e.job);
      const outvoted = events.findLastIndex((x, j) => j < q && x.kind === 'decided' && x.job === e.job && x.unit === e.unit);
      const od = events[outvoted] as Extract<PodEvent, { kind: 'decided' }>;
      expect(od.wrong).toBe(true);
      expect(od.faulty).toContain(e.trainer);
      const reopen = events.findLastIndex((x, j) => j < k && x.kind === 'reopened' && x.job === e.job && x.unit === e.unit);
      expect(reopen).toBeGreaterThan(outvoted);
      const because = (events[reopen] as Extract<PodEvent, { kind: 'reopened' }>).because;
      expect(kind[because]).toBe(KIND.colluder);
      expect(od.trainers).toContain(because);
      stories++;
    }
    expect(stories).toBeGreaterThan(0);
    expect(run.pod!.counters.released).toBe(stories);
    // Deterministic: the same seed gives the same trace.
    const again: PodEvent[] = [];
    runSimulation(s, { onPodEvent: (e) => again.push(e) });
    expect(again).toEqual(events);
  });

  it('nobody is credited twice for a unit; credit = FLOPs × credited (unit, trainer) pairs − forfeits', () => {
    for (const mode of ['replicate', 'spot-check'] as const) {
      const events: PodEvent[] = [];
      const s = resolveScenario({
        seed: 8, trainers: 40, slots: 300, hashrate: { dist: 'constant', value: 1 },
        behaviours: [{ kind: 'colluder', fraction: 0.15, groups: 1, cheatRate: 0.7 }, { kind: 'cheater', fraction: 0.1, cheatRate: 0.5 }],
        pod: { mode, replicas: 2, sampleP: 0.5, jobUnits: 100, unitsPerSlot: 4 },
        lottery: { epochSlots: 8, lookbackEpochs: 0 },
      });
      const run = runSimulation(s, { onPodEvent: (e) => events.push(e) });
      const pairs = new Set<string>();
      let credits = 0;
      for (const e of events) {
        if (e.kind !== 'decided' || e.status === 'failed' || e.status === 'stalled' || e.status === 'pending') continue;
        const credited = e.status === 'unverified' ? (mode === 'spot-check' ? [e.trainers[0]!] : []) : e.trainers.filter((t) => !e.faulty.includes(t));
        for (const t of credited) {
          credits++;
          pairs.add(`${e.job}/${e.unit}/${t}`);
        }
      }
      const c = run.pod!.counters;
      expect(c.reopenedUnits).toBeGreaterThan(0);
      expect(credits).toBeGreaterThan(pairs.size); // re-decisions named trainers already credited
      const total = run.pod!.trainers.credit.reduce((a, b) => a + b, 0);
      expect(total).toBe(pairs.size * s.pod.flops - c.forfeitedFlops);
      expect(c.forfeitedFlops).toBeGreaterThan(0);
    }
  });

  it('a quarantined trainer has lottery weight 0 for faultEpochs epochs after the epoch it was caught in', () => {
    // c = 1: every trainer with weight wins every slot, so wins + banned slots ≤ slots, and a
    // trainer never caught is never banned. Forfeit off, so caught cheaters keep weight.
    const F = 3;
    const E = 8;
    const s = resolveScenario({
      seed: 9, trainers: 60, slots: 400, hashrate: { dist: 'constant', value: 1 },
      behaviours: [{ kind: 'cheater', fraction: 0.2, cheatRate: 0.1 }],
      pod: { mode: 'replicate', replicas: 3, jobUnits: 32, unitsPerSlot: 2, forfeit: false },
      lottery: { c: 1, epochSlots: E, lookbackEpochs: 0, faultEpochs: F },
    });
    const run = runSimulation(s);
    const t = run.pod!.trainers;
    let banned = 0;
    let wonOutsideBan = 0;
    for (let i = 0; i < run.population.n; i++) {
      const b = run.trainers.bannedSlots[i]!;
      expect(run.trainers.wins[i]! + b).toBeLessThanOrEqual(run.lottery.slots);
      expect(b).toBeLessThanOrEqual(t.quarantined[i]! * F * E);
      if (t.quarantined[i] === 0) expect(b).toBe(0);
      if (b > 0) {
        banned++;
        if (run.trainers.wins[i]! > 0) wonOutsideBan++;
      }
    }
    expect(banned).toBeGreaterThan(3);
    expect(wonOutsideBan).toBeGreaterThan(0);
    expect(run.lottery.faultBans).toBeGreaterThan(0);
    // faultEpochs 0: no ban at all.
    const free = runSimulation(resolveScenario({ ...structuredClone(s), lottery: { ...s.lottery, faultEpochs: 0 } }));
    expect(free.trainers.bannedSlots.reduce((a, b) => a + b, 0)).toBe(0);
    expect(free.lottery.faultBans).toBe(0);
  });
});
