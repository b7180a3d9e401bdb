import { describe, it, expect } from 'vitest';
import { decideUnit, defaultMaxReplicas, policyAgree, parsePolicy } from '../../src/pod/index.ts';
import type { HostTensor } from '../../src/util/tensor.ts';

// Results are plain numbers here: the quorum logic is generic over the agreement function.
const eq = (a: number, b: number): boolean => a === b;
const res = (pairs: [string, number][]) => pairs.map(([worker, result]) => ({ worker, result }));

describe('decideUnit', () => {
  it('waits for the first round', () => {
    const o = decideUnit(res([['a', 1]]), eq, { replicas: 2 });
    expect(o).toMatchObject({ status: 'pending', needMore: 1, credited: [] });
  });

  it('credits every replica when all R agree', () => {
    const o = decideUnit(res([['a', 1], ['b', 1], ['c', 1]]), eq, { replicas: 3 });
    expect(o.status).toBe('agreed');
    expect(o.credited).toEqual(['a', 'b', 'c']);
    expect(o.faulty).toEqual([]);
  });

  it('credits nobody on a split round and asks for a tie-breaker', () => {
    const o = decideUnit(res([['a', 1], ['b', 2]]), eq, { replicas: 2 });
    expect(o.status).toBe('pending');
    expect(o.credited).toEqual([]);
    expect(o.needMore).toBe(1);
  });

  it('resolves to the strict majority after re-runs, recording the minority as faulty', () => {
    const o = decideUnit(res([['a', 1], ['cheat', 2], ['c', 1]]), eq, { replicas: 2 });
    expect(o.status).toBe('resolved');
    expect(o.credited).toEqual(['a', 'c']);
    expect(o.faulty).toEqual(['cheat']);
    expect(o.accepted).toBe(0);
  });

  it('asks for enough extra replicas to possibly reach a strict majority', () => {
    // 2 vs 2: the top class needs 1 more (3 of 5).
    const o = decideUnit(res([['a', 1], ['b', 2], ['c', 1], ['d', 2]]), eq, { replicas: 2 });
    expect(o).toMatchObject({ status: 'pending', needMore: 1 });
    // three different answers: top class of 1 among 3 needs 2 more (3 of 5).
    const o2 = decideUnit(res([['a', 1], ['b', 2], ['c', 3]]), eq, { replicas: 3 });
    expect(o2).toMatchObject({ status: 'pending', needMore: 2 });
  });

  it('fails when no strict majority is possible within the bound', () => {
    const max = defaultMaxReplicas(2); // 7
    expect(max).toBe(7);
    const all = res([['a', 1], ['b', 2], ['c', 3], ['d', 4], ['e', 5], ['f', 6], ['g', 7]]);
    const o = decideUnit(all, eq, { replicas: 2 });
    expect(o.status).toBe('failed');
    expect(o.credited).toEqual([]);
    // just below the bound it is still pending
    expect(decideUnit(all.slice(0, 3), eq, { replicas: 2 }).status).toBe('pending');
  });

  it('accepts R=1 results unverified and credits nobody', () => {
    const o = decideUnit(res([['a', 1]]), eq, { replicas: 1 });
    expect(o).toMatchObject({ status: 'unverified', credited: [], accepted: 0 });
  });

  it('rejects caller misuse', () => {
    expect(() => decideUnit(res([['a', 1], ['a', 1]]), eq, { replicas: 2 })).toThrow(/two results/);
    expect(() => decideUnit([], eq, { replicas: 0 })).toThrow(RangeError);
  });

  it('uses the tensor policy: honest float noise agrees, a fake result is outvoted', () => {
    const t = (v: number[]): Record<string, HostTensor> => ({ y: { dtype: 'float32', dims: [1, v.length], data: Float32Array.from(v) } });
    const agree = policyAgree(parsePolicy('allclose:1e-3,1e-4'));
    const o = decideUnit(
      [
        { worker: 'a', result: t([0.5, 1.25, -3]) },
        { worker: 'fake', result: t([0.1, 0.2, 0.3]) },
        { worker: 'b', result: t([0.5000001, 1.2500002, -3.0000005]) },
      ],
      agree,
      { replicas: 2 },
    );
    expect(o.status).toBe('resolved');
    expect(o.credited).toEqual(['a', 'b']);
    expect(o.faulty).toEqual(['fake']);
  });
});
