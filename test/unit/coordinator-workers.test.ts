/** The worker registry's bounds (pure): forgetting departed workers, and a capped table. */
import { describe, it, expect } from 'vitest';
import { WorkerRegistry } from '../../src/coordinator/workers.ts';
import { errCode } from '../helpers/errors.ts';

const hello = { threads: 1, device: 'cpu', score: 0, profile: '{}' };

describe('WorkerRegistry', () => {
  it('forgets a disconnected worker forgetAfterMs after it left, never a connected one', () => {
    const r = new WorkerRegistry({ forgetAfterMs: 1000, maxWorkers: 10 });
    r.hello('a', hello);
    r.hello('b', hello);
    expect(r.gone('a', 100)).toBe(true);
    expect(r.gone('a', 150)).toBe(false); // already gone
    expect(r.prune(1099)).toBe(0);
    expect(r.prune(1100)).toBe(1);
    expect(r.all().map((w) => w.peer)).toEqual(['b']);
    expect(r.prune(1e9)).toBe(0); // b is connected
  });

  it('a full table pushes out the worker that left longest ago; full of connected workers it refuses', () => {
    const r = new WorkerRegistry({ forgetAfterMs: 1e9, maxWorkers: 3 });
    for (const p of ['a', 'b', 'c']) r.hello(p, hello);
    r.gone('b', 10);
    r.gone('a', 20);
    r.hello('d', hello);
    expect(r.all().map((w) => w.peer).sort()).toEqual(['a', 'c', 'd']);
    r.hello('a', hello); // a re-hello of a known worker always fits
    expect(r.size).toBe(3);
    expect(errCode(() => r.hello('e', hello))).toBe('REGISTRY_FULL');
    expect(r.size).toBe(3);
  });
});
