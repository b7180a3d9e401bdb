import { describe, it, expect } from 'vitest';
import { JobScheduler, planUnits, splitRows } from '../../src/coordinator/scheduler.ts';
import type { Candidate, Lease, Result, SchedulerEvent, SchedulerOptions } from '../../src/coordinator/scheduler.ts';
import { policyAgree, parsePolicy } from '../../src/pod/index.ts';
import { seededRandom } from '../../src/util/random.ts';

const agree = policyAgree(parsePolicy('allclose:1e-3,1e-4'));
const res = (v: number): Result => ({ y: { dtype: 'float32', dims: [1], data: Float32Array.from([v]) } });
const C = 'aa'.repeat(32);

/** A pool of workers with one thread each (groups null: loopback, exempt from the IP rule). */
const pool = (...peers: string[]): Candidate[] => peers.map((peer) => ({ peer, weight: 1, group: null }));

function sched(rows: number, unitRows: number, replicas: number, workers: Candidate[], extra: Partial<SchedulerOptions> = {}) {
  return new JobScheduler('j', rows, unitRows, agree, { replicas, maxReplicas: 2 * replicas + 3, leaseMs: 1000, random: seededRandom('test'), pool: () => workers, ...extra });
}

/**
 * A tiny driver: each worker returns `answer(worker, unit)`; workers claim in round-robin order
 * until nothing is left, committing and revealing as they go. Returns the events.
 */
function runAll(s: JobScheduler, order: string[], answer: (worker: string, unit: number) => Result | string, maxSteps = 10_000): SchedulerEvent[] {
  const events: SchedulerEvent[] = [];
  const toReveal: Lease[] = [];
  const results = new Map<string, Result>();
  for (let step = 0, idle = 0; step < maxSteps && idle < order.length; step++) {
    const w = order[step % order.length]!;
    const l = s.claim(w, step);
    if (!l) {
      idle++;
      continue;
    }
    idle = 0;
    const a = answer(w, l.unit);
    if (typeof a === 'string') toReveal.push(...(s.error(l.id, w, a, step) ?? []));
    else {
      results.set(l.id, a);
      toReveal.push(...(s.commit(l.id, w, C, step) ?? []));
    }
    for (;;) {
      while (toReveal.length) {
        const x = toReveal.shift()!;
        toReveal.push(...s.reveal(x.id, results.get(x.id)!, step));
      }
      const ev = s.drainEvents();
      if (ev.length === 0) break;
      events.push(...ev);
      for (const e of ev) if (e.kind === 'reveal') toReveal.push(e.lease);
    }
  }
  return events;
}

const doneEvents = (ev: SchedulerEvent[]) => ev.filter((e): e is Extract<SchedulerEvent, { kind: 'done' }> => e.kind === 'done').map((e) => e.done);

describe('splitRows', () => {
  it('covers every row once, in order, with a short last unit', () => {
    expect(splitRows(10, 4)).toEqual([[0, 4], [4, 8], [8, 10]]);
    expect(splitRows(8, 4)).toEqual([[0, 4], [4, 8]]);
    expect(splitRows(1, 100)).toEqual([[0, 1]]);
    expect(splitRows(0, 3)).toEqual([]);
    expect(() => splitRows(5, 0)).toThrow(RangeError);
  });
});

describe('JobScheduler: assignment', () => {
  it('the claimer gets a fresh unit; its other replicas are drawn from the pool, never the claimer', () => {
    const s = sched(4, 4, 2, pool('A', 'B', 'C'));
    const a = s.claim('A', 0)!;
    expect(a.unit).toBe(0);
    expect(s.claim('A', 0)).toBeNull(); // only one unit, A already has it
    // One of B and C was drawn for the second replica; only that one can lease it.
    const drawn = ['B', 'C'].filter((w) => s.claim(w, 0, { reservedOnly: true }) !== null);
    expect(drawn).toHaveLength(1);
    expect(s.claim(drawn[0] === 'B' ? 'C' : 'B', 0)).toBeNull();
  });

  it('two identities that claim together share units no more often than any other pair', () => {
    // 6 workers; A and B always claim one right after the other (colluders trying to land on one
    // unit); the pair frequencies of who ran each unit together must not favour {A, B}.
    const workers = ['A', 'B', 'H1', 'H2', 'H3', 'H4'];
    const counts = new Map<string, number>();
    let units = 0;
    for (let trial = 0; trial < 40; trial++) {
      const s = sched(200, 1, 2, pool(...workers), { random: seededRandom(`pairs-${trial}`) });
      const ev = runAll(s, ['A', 'B', 'H1', 'H2', 'H3', 'H4'], () => res(1));
      for (const d of doneEvents(ev)) {
        const key = [...d.workers].sort().join('+');
        counts.set(key, (counts.get(key) ?? 0) + 1);
        units++;
      }
    }
    const pairs = 15; // C(6, 2)
    const ab = counts.get('A+B') ?? 0;
    const expected = units / pairs;
    // Binomial sd for p = 1/15 over 8,000 units is ~22; allow 4 sd either way.
    const sd = Math.sqrt(units * (1 / pairs) * (1 - 1 / pairs));
    expect(Math.abs(ab - expected)).toBeLessThan(4 * sd);
    // The old first-come-first-served claim put A and B together on nearly every unit.
    expect(ab / units).toBeLessThan(0.12);
  });

  it('never gives two replicas of a unit to workers behind one IP address (loopback exempt)', () => {
    const workers: Candidate[] = [
      { peer: 'A', weight: 1, group: '10.0.0.1' },
      { peer: 'A2', weight: 1, group: '10.0.0.1' },
      { peer: 'B', weight: 1, group: '10.0.0.2' },
      { peer: 'L1', weight: 1, group: null },
    ];
    for (let t = 0; t < 30; t++) {
      const s = sched(40, 1, 2, workers, { random: seededRandom(`ip-${t}`) });
      const ev = runAll(s, ['A', 'A2', 'B', 'L1'], () => res(1));
      for (const d of doneEvents(ev)) expect(d.workers.sort()).not.toEqual(['A', 'A2']);
    }
  });

  it('draws weighted by threads', () => {
    const workers: Candidate[] = [
      { peer: 'big', weight: 8, group: null },
      { peer: 'small', weight: 1, group: null },
      { peer: 'X', weight: 1, group: null },
    ];
    const s = sched(300, 1, 2, workers);
    const drawn = { big: 0, small: 0 };
    for (let i = 0; i < 300; i++) {
      s.claim('X', i); // X takes the first replica; the second is drawn between big and small
      for (const w of ['big', 'small'] as const) if (s.claim(w, i, { reservedOnly: true })) drawn[w]++;
    }
    expect(drawn.big + drawn.small).toBe(300);
    expect(drawn.big / 300).toBeGreaterThan(0.8); // 8/9 expected
  });

  it('a drawn replica its worker does not claim within reserveMs is drawn again elsewhere', () => {
    const s2 = sched(1, 1, 2, pool('A', 'B', 'C'), { reserveMs: 100 });
    s2.claim('A', 0);
    expect(s2.expire(50)).toEqual([]);
    s2.expire(100); // the reservation lapses; the other worker is drawn
    const takers = ['B', 'C'].filter((w) => s2.claim(w, 100, { reservedOnly: true }) !== null);
    expect(takers).toHaveLength(1);
    expect(s2.progress().reissued).toBe(1);
  });

  it('a worker that leaves or misses its deadline is replaced by a draw', () => {
    const s = sched(2, 1, 1, pool('A', 'B', 'C'));
    const a = s.claim('A', 0)!;
    const b = s.claim('B', 0)!;
    expect(s.workerGone('A', 0).map((l) => l.id)).toEqual([a.id]);
    expect(s.expire(999)).toEqual([]);
    expect(s.expire(1000).map((l) => l.id)).toEqual([b.id]);
    expect(s.progress().reissued).toBe(2);
    // Nobody gave a result for either unit, so both are simply fresh again, for anyone.
    expect([...s.openUnits()].map((u) => u.unit)).toEqual([0, 1]);
    const c = s.claim('C', 1000)!;
    expect(c.unit).toBe(0);
    s.commit(c.id, 'C', C, 1000);
    expect(s.expire(5000)).toEqual([]); // a committed lease does not expire
  });
});

describe('JobScheduler: PoD', () => {
  it('reveals only once every replica of the round has committed, then credits on agreement', () => {
    const s = sched(4, 4, 2, pool('A', 'B'));
    const a = s.claim('A', 0)!;
    const b = s.claim('B', 0)!;
    expect(s.commit(a.id, 'A', C)).toEqual([]);
    expect(s.commit(b.id, 'B', C)!.map((l) => l.worker).sort()).toEqual(['A', 'B']);
    s.reveal(a.id, res(1));
    s.reveal(b.id, res(1.0000001));
    const [d] = doneEvents(s.drainEvents());
    expect(d!.outcome.status).toBe('agreed');
    expect(d!.newlyCredited.sort()).toEqual(['A', 'B']);
    expect(s.isFinished()).toBe(true);
    expect(s.settled()).toEqual({ failed: null });
    expect(s.progress()).toMatchObject({ agreed: 1, disputed: 0, done: 1, rowsDone: 4 });
  });

  it("a commit for someone else's lease is refused", () => {
    const s = sched(4, 4, 2, pool('A', 'B'));
    const a = s.claim('A', 0)!;
    expect(s.commit(a.id, 'B', C)).toBeNull();
    expect(s.commit('nope', 'A', C)).toBeNull();
  });

  it('a disagreement draws another worker; the majority wins and the minority is quarantined', () => {
    // random() = 0 draws the first eligible worker in pool order: X is A's co-replica, then B.
    const s = sched(4, 4, 2, pool('A', 'X', 'B'), { random: () => 0 });
    const ev = runAll(s, ['A', 'X', 'B'], (w) => res(w === 'X' ? 7 : 1));
    const [d] = doneEvents(ev);
    expect(d!.outcome.status).toBe('resolved');
    expect(d!.newlyCredited.sort()).toEqual(['A', 'B']);
    expect(d!.outcome.faulty).toEqual(['X']);
    expect(s.isQuarantined('X')).toBe(true);
    expect(s.quarantined().get('X')).toEqual(['minority:0']);
    expect(s.progress().disputed).toBe(1);
  });

  it('settles a unit as failed when no majority forms within the bound; the job then fails', () => {
    const s = new JobScheduler('j', 1, 1, agree, { replicas: 2, maxReplicas: 3, leaseMs: 1000, random: seededRandom('f'), pool: () => pool('A', 'B', 'C') });
    const values: Record<string, number> = { A: 1, B: 2, C: 3 };
    const ev = runAll(s, ['A', 'B', 'C'], (w) => res(values[w]!));
    expect(ev.some((e) => e.kind === 'settled-failure')).toBe(true);
    expect(s.settled()?.failed).toMatch(/^results do not agree: the model may be nondeterministic under this policy/);
    expect(s.progress().failed).toBe(1);
  });

  it('reports units no connected worker may run', () => {
    const workers = pool('A', 'X');
    const s = sched(4, 4, 2, workers);
    runAll(s, ['A', 'X'], (w) => res(w === 'X' ? 2 : 1));
    expect(s.stalledUnits()).toEqual([0]);
    workers.push({ peer: 'B', weight: 1, group: null });
    expect(s.stalledUnits()).toEqual([]);
  });
});

describe('JobScheduler: quarantine and re-verification', () => {
  it("a faulty worker's other units are reopened and decided again without it; it gets no more units", () => {
    // R = 2, colluders C1 and C2 return the same wrong answer; H1..H3 are honest.
    const workers = ['C1', 'C2', 'H1', 'H2', 'H3'];
    for (let t = 0; t < 20; t++) {
      const s = sched(60, 1, 2, pool(...workers), { random: seededRandom(`q-${t}`) });
      const ev = runAll(s, workers, (w, unit) => res(w.startsWith('C') ? -unit - 1 : unit + 1));
      expect(s.settled()).toEqual({ failed: null });
      // Every unit's standing decision is the honest one: the last done event per unit.
      const last = new Map<number, number>();
      for (const d of doneEvents(ev)) last.set(d.unit, (d.result.y!.data as Float32Array)[0]!);
      expect(last.size).toBe(60);
      for (const [u, v] of last) expect(v).toBe(u + 1);
      // Both colluders were caught; no honest worker ends quarantined.
      expect([...s.quarantined().keys()].sort()).toEqual(['C1', 'C2']);
      for (const c of ['C1', 'C2']) expect(s.claim(c, 1e9)).toBeNull();
    }
  });

  it('an honest worker outvoted by a faulty majority is released when the decision flips', () => {
    // Unit 0's jury (5 results for R = 2) is drawn as C1, H1, C2, C3, H2: the colluders win 3 to 2
    // and H1, H2 are quarantined. Then the colluders are caught elsewhere: unit 0 is decided
    // again by H3 and H4, who agree with H1 and H2 — who go free.
    const workers = pool('C1', 'H1', 'C2', 'C3', 'H2', 'H3', 'H4');
    // random() = 0 draws the first eligible worker in pool order.
    const s = new JobScheduler('j', 1, 1, agree, { replicas: 2, maxReplicas: 7, leaseMs: 1000, pool: () => workers, random: () => 0 });
    const ans = (w: string): Result => res(w.startsWith('C') ? 100 : 1);
    let ev = runAll(s, ['C1', 'H1', 'C2', 'C3', 'H2'], ans);
    const first = doneEvents(ev)[0]!;
    expect(first.workers.sort()).toEqual(['C1', 'C2', 'C3', 'H1', 'H2']);
    expect(first.outcome.faulty.sort()).toEqual(['H1', 'H2']);
    expect(s.isQuarantined('H1') && s.isQuarantined('H2')).toBe(true);
    for (const c of ['C1', 'C2', 'C3']) s.quarantine(c, 'reveal-mismatch');
    ev = s.drainEvents();
    expect(ev.filter((e) => e.kind === 'reopened').map((e) => (e as { unit: number }).unit)).toEqual([0]);
    ev = runAll(s, ['H3', 'H4'], ans);
    const again = doneEvents(ev)[0]!;
    expect((again.result.y!.data as Float32Array)[0]).toBe(1);
    expect(ev.filter((e) => e.kind === 'released').map((e) => (e as { worker: string }).worker).sort()).toEqual(['H1', 'H2']);
    expect([...s.quarantined().keys()].sort()).toEqual(['C1', 'C2', 'C3']);
    expect(s.settled()).toEqual({ failed: null });
  });

  it('a hard fault (a reveal that does not open its commitment) quarantines for good', () => {
    const s = sched(3, 1, 2, pool('A', 'B', 'X'));
    runAll(s, ['X', 'A', 'B'], () => res(1));
    const before = s.progress().done;
    s.quarantine('X', 'reveal-mismatch');
    const ev = s.drainEvents();
    const reopened = ev.filter((e) => e.kind === 'reopened').length;
    expect(reopened).toBeGreaterThan(0);
    expect(s.progress().done).toBe(before - reopened);
    runAll(s, ['A', 'B', 'X'], () => res(1));
    expect(s.settled()).toEqual({ failed: null });
    expect(s.quarantined().get('X')).toEqual(['reveal-mismatch']);
  });
});

describe('JobScheduler: errors are results', () => {
  it('an error against a tensor result makes the erroring worker faulty', () => {
    const s = sched(4, 4, 2, pool('E', 'A', 'B'));
    runAll(s, ['E', 'A', 'B'], (w) => (w === 'E' ? 'out of memory' : res(1)));
    expect(s.settled()).toEqual({ failed: null });
    expect(s.isQuarantined('E')).toBe(true);
  });

  it('the job fails with an error only when a strict majority of distinct workers report it', () => {
    const s = sched(4, 4, 2, pool('A', 'B', 'C'));
    runAll(s, ['A', 'B', 'C'], () => 'Gather: index 7 out of bounds');
    expect(s.settled()?.failed).toMatch(/unit 0 failed on 2 workers: Gather: index 7 out of bounds/);
  });

  it('two hostile workers erring together cannot fail the job once either is caught elsewhere', () => {
    const workers = ['E1', 'E2', 'H1', 'H2', 'H3'];
    for (let t = 0; t < 15; t++) {
      const s = sched(40, 1, 2, pool(...workers), { random: seededRandom(`e-${t}`) });
      runAll(s, workers, (w, u) => (w.startsWith('E') ? 'inference failed' : res(u)));
      expect(s.settled()).toEqual({ failed: null });
    }
  });
});

describe('JobScheduler: spot-check audits', () => {
  it('audit 0 < P < 1: a fraction of units audited, the rest credited unaudited to their one worker', () => {
    const s = sched(400, 1, 1, pool('A', 'B', 'C'), { audit: 0.25, random: seededRandom('audit') });
    const ev = runAll(s, ['A', 'B', 'C'], () => res(1));
    const done = doneEvents(ev);
    const audited = done.filter((d) => d.audited).length;
    expect(audited / 400).toBeGreaterThan(0.18);
    expect(audited / 400).toBeLessThan(0.32);
    for (const d of done) {
      if (d.audited) expect(d.newlyCredited).toHaveLength(2);
      else {
        expect(d.outcome.status).toBe('unaudited');
        expect(d.newlyCredited).toHaveLength(1);
      }
    }
    expect(s.progress()).toMatchObject({ audited, unaudited: 400 - audited, rowsUnchecked: 400 - audited });
  });

  it('a caught cheater loses the audit, is quarantined, and every unit it ran is run again', () => {
    const s = sched(100, 1, 1, pool('X', 'A', 'B', 'C'), { audit: 0.3, random: seededRandom('catch') });
    const ev = runAll(s, ['X', 'A', 'B', 'C'], (w, u) => res(w === 'X' ? -1 : u));
    expect(s.isQuarantined('X')).toBe(true);
    expect(s.settled()).toEqual({ failed: null });
    const last = new Map<number, UnitResultValue>();
    for (const d of doneEvents(ev)) last.set(d.unit, { v: (d.result.y!.data as Float32Array)[0]!, by: d.decidedBy });
    for (const [u, r] of last) {
      expect(r.v).toBe(u);
      expect(r.by).not.toContain('X');
    }
  });

  it('the audit coin is tossed after the commit, and the first result waits for the auditor', () => {
    const s = sched(1, 1, 1, pool('A', 'B'), { audit: 1 });
    const a = s.claim('A', 0)!;
    expect(s.commit(a.id, 'A', C)).toEqual([]); // audited: nothing revealed until B commits
    const b = s.claim('B', 0, { reservedOnly: true })!;
    expect(s.commit(b.id, 'B', C)!.map((l) => l.worker).sort()).toEqual(['A', 'B']);
  });
});

interface UnitResultValue {
  v: number;
  by: string[];
}

describe('JobScheduler: resume', () => {
  it('resumes with finished units skipped and quarantines restored', () => {
    const s = new JobScheduler('j', 12, 4, agree, { replicas: 1, maxReplicas: 5, leaseMs: 1, pool: () => pool('A', 'B') }, {
      units: new Map([[0, { status: 'agreed', workers: ['A'], credited: ['A'] }], [2, { status: 'resolved', workers: ['A', 'B'], credited: ['A', 'B'] }]]),
      quarantined: new Map([['X', ['minority:1']]]),
    });
    expect(s.progress()).toMatchObject({ done: 2, total: 3, rowsDone: 8, agreed: 1, disputed: 1, quarantined: 1 });
    expect(s.claim('X', 0)).toBeNull();
    expect(s.claim('A', 0)!.unit).toBe(1);
  });
});

describe('planUnits', () => {
  it('without taper, or for short jobs, is splitRows', () => {
    expect(planUnits(1000, 100, false)).toEqual(splitRows(1000, 100));
    expect(planUnits(700, 100, true)).toEqual(splitRows(700, 100)); // fewer than 8 units
    expect(planUnits(30, 3, true)).toEqual(splitRows(30, 3)); // units of fewer than 4 rows
  });

  it('tapers the last 2 units into halves and quarters, covering every row once', () => {
    const u = planUnits(1000, 100, true);
    expect(u.slice(-6)).toEqual([[800, 850], [850, 900], [900, 925], [925, 950], [950, 975], [975, 1000]]);
    expect(u.length).toBe(splitRows(1000, 100).length + 4);
    // Any size: contiguous, non-empty, nothing bigger than unitRows, the last unit at most a quarter (rounded).
    for (const [rows, unitRows] of [[9120, 174], [738, 18], [801, 9], [8_000_000, 131_072], [33, 4], [1001, 7]] as const) {
      const p = planUnits(rows, unitRows, true);
      expect(p[0]![0]).toBe(0);
      expect(p.at(-1)![1]).toBe(rows);
      for (let i = 0; i < p.length; i++) {
        const [s, e] = p[i]!;
        expect(e).toBeGreaterThan(s);
        expect(e - s).toBeLessThanOrEqual(unitRows);
        if (i > 0) expect(s).toBe(p[i - 1]![1]);
      }
      expect(p.at(-1)![1] - p.at(-1)![0]).toBeLessThanOrEqual(Math.ceil(unitRows / 4));
      expect(p.length).toBeLessThanOrEqual(splitRows(rows, unitRows).length + 4);
    }
  });
});
