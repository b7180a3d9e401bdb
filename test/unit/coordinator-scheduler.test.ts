import { describe, it, expect } from 'vitest';
import { JobScheduler, splitRows } from '../../src/coordinator/scheduler.ts';
import type { Result } from '../../src/coordinator/scheduler.ts';
import { policyAgree, parsePolicy } from '../../src/pod/index.ts';

const agree = policyAgree(parsePolicy('allclose:1e-3,1e-4'));
const res = (v: number): Result => ({ y: { dtype: 'float32', dims: [1], data: Float32Array.from([v]) } });
const C = 'aa'.repeat(32);

function sched(rows = 10, unitRows = 4, replicas = 2, leaseMs = 1000) {
  return new JobScheduler('j', rows, unitRows, agree, { replicas, maxReplicas: 2 * replicas + 3, leaseMs });
}

describe('splitRows', () => {
  it('covers every row once, in order, with a short last unit', () => {
    expect(splitRows(10, 4)).toEqual([[0, 4], [4, 8], [8, 10]]);
    expect(splitRows(8, 4)).toEqual([[0, 4], [4, 8]]);
    expect(splitRows(1, 100)).toEqual([[0, 1]]);
    expect(splitRows(0, 3)).toEqual([]);
    expect(() => splitRows(5, 0)).toThrow(RangeError);
  });
});

describe('JobScheduler', () => {
  it('never gives two replicas of a unit to one worker', () => {
    const s = sched(4, 4, 2);
    const a = s.claim('A', 0)!;
    expect(a.unit).toBe(0);
    expect(s.claim('A', 0)).toBeNull(); // only one unit, A already has it
    const b = s.claim('B', 0)!;
    expect(b.unit).toBe(0);
    expect(s.claim('C', 0)).toBeNull(); // round full
  });

  it('reveals only once every replica of the round has committed, then credits on agreement', () => {
    const s = sched(4, 4, 2);
    const a = s.claim('A', 0)!;
    const b = s.claim('B', 0)!;
    expect(s.commit(a.id, 'A', C)).toEqual([]);
    expect(s.commit(b.id, 'B', C)!.map((l) => l.worker).sort()).toEqual(['A', 'B']);
    expect(s.reveal(a.id, res(1))).toEqual({});
    const r = s.reveal(b.id, res(1.0000001));
    expect(r.done?.outcome.status).toBe('agreed');
    expect(r.done?.outcome.credited.sort()).toEqual(['A', 'B']);
    expect(s.isFinished()).toBe(true);
    expect(s.progress()).toMatchObject({ agreed: 1, disputed: 0, done: 1, rowsDone: 4 });
  });

  it('a commit for someone else\'s lease is refused', () => {
    const s = sched(4, 4, 2);
    const a = s.claim('A', 0)!;
    expect(s.commit(a.id, 'B', C)).toBeNull();
    expect(s.commit('nope', 'A', C)).toBeNull();
  });

  it('a disagreement re-issues the unit to a new worker and the majority wins', () => {
    const s = sched(4, 4, 2);
    const a = s.claim('A', 0)!;
    const x = s.claim('X', 0)!;
    s.commit(a.id, 'A', C);
    s.commit(x.id, 'X', C);
    s.reveal(a.id, res(1));
    expect(s.reveal(x.id, res(7)).reopened).toBe(true);
    expect([...s.openUnits()]).toEqual([{ unit: 0, start: 0, end: 4, need: 1 }]);
    expect(s.claim('A', 0)).toBeNull(); // A already ran it
    const b = s.claim('B', 0)!;
    expect(s.commit(b.id, 'B', C)!.map((l) => l.worker)).toEqual(['B']);
    const r = s.reveal(b.id, res(1));
    expect(r.done?.outcome.status).toBe('resolved');
    expect(r.done?.outcome.credited).toEqual(['A', 'B']);
    expect(r.done?.outcome.faulty).toEqual(['X']);
    expect(s.progress().disputed).toBe(1);
  });

  it('fails the unit with a clear message when no majority forms within the bound', () => {
    const s = new JobScheduler('j', 1, 1, agree, { replicas: 2, maxReplicas: 3, leaseMs: 1000 });
    const la = s.claim('A', 0)!;
    const lb = s.claim('B', 0)!;
    s.commit(la.id, 'A', C);
    s.commit(lb.id, 'B', C);
    s.reveal(la.id, res(1));
    expect(s.reveal(lb.id, res(2)).reopened).toBe(true);
    const lc = s.claim('C', 0)!;
    s.commit(lc.id, 'C', C);
    const r = s.reveal(lc.id, res(3));
    expect(r.failed?.reason).toBe('disagree');
    expect(r.failed?.message).toMatch(/^results do not agree: the model may be nondeterministic under this policy/);
    expect(s.progress().failed).toBe(1);
  });

  it('re-issues units of a worker that leaves or misses its deadline', () => {
    const s = sched(8, 4, 1, 1000);
    const a = s.claim('A', 0)!;
    const b = s.claim('B', 0)!;
    expect([a.unit, b.unit]).toEqual([0, 1]);
    expect(s.workerGone('A').map((l) => l.id)).toEqual([a.id]);
    expect([...s.openUnits()].map((u) => u.unit)).toEqual([0]);
    expect(s.expire(999)).toEqual([]);
    expect(s.expire(1000).map((l) => l.id)).toEqual([b.id]);
    expect(s.progress().reissued).toBe(2);
    // A left: C picks up unit 0, a committed lease does not expire
    const c = s.claim('C', 1000)!;
    expect(c.unit).toBe(0);
    s.commit(c.id, 'C', C);
    expect(s.expire(5000)).toEqual([]);
  });

  it('reports units no connected worker may run', () => {
    const s = sched(4, 4, 2);
    const a = s.claim('A', 0)!;
    const x = s.claim('X', 0)!;
    s.commit(a.id, 'A', C);
    s.commit(x.id, 'X', C);
    s.reveal(a.id, res(1));
    s.reveal(x.id, res(2));
    expect(s.stalledUnits(['A', 'X'])).toEqual([0]);
    expect(s.stalledUnits(['A', 'X', 'B'])).toEqual([]);
  });

  it('fails a unit after errors from two workers', () => {
    const s = sched(4, 4, 2);
    const a = s.claim('A', 0)!;
    expect(s.error(a.id, 'A', 'boom')).toBeNull();
    const b = s.claim('B', 0)!;
    expect(s.error(b.id, 'B', 'boom')).toMatchObject({ unit: 0, reason: 'error' });
    expect(s.progress().failed).toBe(1);
  });

  it('resumes with finished units skipped', () => {
    const s = new JobScheduler('j', 12, 4, agree, { replicas: 1, maxReplicas: 5, leaseMs: 1 }, new Map([[0, 'agreed'], [2, 'resolved']]));
    expect(s.progress()).toMatchObject({ done: 2, total: 3, rowsDone: 8, agreed: 1, disputed: 1 });
    expect(s.claim('A', 0)!.unit).toBe(1);
  });
});
