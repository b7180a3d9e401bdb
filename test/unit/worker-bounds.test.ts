/**
 * What a worker keeps on a coordinator's behalf, bounded: results waiting for reveals (pure),
 * the model cache by size (LRU, never a model in use), and the rules a same-filesystem lease's
 * input range must meet (pure, one case per rule).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PendingResults } from '../../src/worker/pending.ts';
import { ModelCache } from '../../src/worker/models.ts';
import { checkLeaseInputFile, LEASE_INPUT_REFUSED } from '../../src/worker/lease-inputs.ts';
import type { InputFileRange } from '../../src/protocol/grid.ts';
import { formatFsProbe, parseFsProbe } from '../../src/protocol/grid.ts';
import type { NpyHeader } from '../../src/util/npy.ts';
import { errCode } from '../helpers/errors.ts';

const out = (bytes: number) => ({ y: { dtype: 'uint8' as const, dims: [bytes], data: new Uint8Array(bytes) } });

describe('PendingResults', () => {
  it('gives a result only to the coordinator that leased it, once', () => {
    const p = new PendingResults();
    p.add('l1', { coordinator: 'A', salt: 's', outputs: out(10) }, 0);
    expect(p.take('l1', 'B')).toBeUndefined();
    expect(p.take('l1', 'A')!.salt).toBe('s');
    expect(p.take('l1', 'A')).toBeUndefined();
    expect(p.bytes).toBe(0);
  });

  it('drops results past their TTL', () => {
    const p = new PendingResults({ ttlMs: 100 });
    p.add('l1', { coordinator: 'A', salt: 's', outputs: out(10) }, 0);
    p.add('l2', { coordinator: 'A', salt: 's', outputs: out(10) }, 50);
    expect(p.sweep(99)).toBe(0);
    expect(p.sweep(100)).toBe(1);
    expect(p.size).toBe(1);
    expect(p.dropped).toBe(1);
  });

  it('over its byte or count bound, evicts the oldest results of the coordinator holding the most', () => {
    const p = new PendingResults({ maxBytes: 100, maxCount: 1000 });
    p.add('a1', { coordinator: 'A', salt: 's', outputs: out(30) }, 0);
    for (let i = 0; i < 10; i++) p.add(`h${i}`, { coordinator: 'H', salt: 's', outputs: out(20) }, i);
    // H never asks: its results go, A's stays.
    expect(p.bytes).toBeLessThanOrEqual(100);
    expect(p.take('a1', 'A')).toBeDefined();
    expect(p.bytesOf('H')).toBeLessThanOrEqual(70);
    const q = new PendingResults({ maxBytes: 1e9, maxCount: 3 });
    for (let i = 0; i < 5; i++) q.add(`l${i}`, { coordinator: 'A', salt: 's', outputs: out(1) }, i);
    expect(q.size).toBe(3);
    expect(q.take('l0', 'A')).toBeUndefined();
    expect(q.take('l4', 'A')).toBeDefined();
  });

  it('never keeps a single result larger than the whole byte budget', () => {
    const p = new PendingResults({ maxBytes: 10 });
    expect(p.add('big', { coordinator: 'A', salt: 's', outputs: out(11) }, 0)).toEqual(['big']);
    expect(p.size).toBe(0);
  });
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drill-bounds-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ModelCache bounded by size', () => {
  it('deletes least recently used models past maxBytes, never a pinned one, and re-indexes at start', async () => {
    const c = new ModelCache(dir, { maxBytes: 250 });
    const m = (k: number): Uint8Array => new Uint8Array(100).fill(k);
    const a = await c.put(m(1));
    const b = await c.put(m(2));
    c.pin(a); // a in use (and now the most recently used)
    const d = await c.put(m(3)); // 300 > 250: b is the LRU unpinned
    expect([c.has(a), c.has(b), c.has(d)]).toEqual([true, false, true]);
    expect(c.bytes).toBe(200);
    const e = await c.put(m(4)); // a pinned, d the LRU unpinned → d goes
    expect([c.has(a), c.has(d), c.has(e)]).toEqual([true, false, true]);
    c.unpin(a);
    await c.put(m(5)); // now a is the LRU
    expect(c.has(a)).toBe(false);
    expect(c.evictions).toBe(3);
    const again = new ModelCache(dir, { maxBytes: 250 });
    expect(again.bytes).toBe(200);
  });

  it('keeps a model in use even when it alone passes the bound', async () => {
    const c = new ModelCache(dir, { maxBytes: 50 });
    const h = await c.put(new Uint8Array(100));
    expect(existsSync(c.path(h))).toBe(true); // the model just written is kept (it is about to run)
  });
});

describe('checkLeaseInputFile', () => {
  const header: NpyHeader = { dtype: 'float32', dims: [10, 4], dataOffset: 128 };
  const ok: InputFileRange = { path: '/data/x.npy', offset: 128 + 3 * 16, dtype: 'float32', dims: [2, 4] };
  const code = (over: Partial<InputFileRange>, rows = 2): string | undefined => errCode(() => checkLeaseInputFile('x', { ...ok, ...over }, header, rows));

  it('accepts a row-aligned range inside the data section; returns where to read', () => {
    expect(checkLeaseInputFile('x', ok, header, 2)).toEqual({ offset: 128 + 3 * 16, segments: 1, stride: 160, length: 32 });
    expect(code({ offset: 128 + 8 * 16 })).toBeUndefined(); // the last two rows
  });
  it('accepts rows on a later axis as the file\'s strided runs, and the whole file for an input sent whole', () => {
    const state: NpyHeader = { dtype: 'float32', dims: [2, 10, 3], dataOffset: 128 };
    const rows = { path: '/data/state.npy', offset: 128 + 4 * 12, dtype: 'float32' as const, dims: [2, 2, 3], segments: 2, stride: 10 * 12 };
    expect(checkLeaseInputFile('state', rows, state, 2)).toEqual({ offset: 128 + 48, segments: 2, stride: 120, length: 24 });
    expect(checkLeaseInputFile('state', { path: '/d/s.npy', offset: 128, dtype: 'float32', dims: [2, 10, 3] }, state, 2)).toEqual({ offset: 128, segments: 1, stride: 0, length: 240 });
    const sr: NpyHeader = { dtype: 'int64', dims: [], dataOffset: 128 };
    expect(checkLeaseInputFile('sr', { path: '/d/sr.npy', offset: 128, dtype: 'int64', dims: [] }, sr, 5)).toEqual({ offset: 128, segments: 1, stride: 0, length: 8 });
    const bad = (over: Partial<InputFileRange>): string | undefined => errCode(() => checkLeaseInputFile('state', { ...rows, ...over }, state, 2));
    expect(bad({ segments: 1 })).toBe(LEASE_INPUT_REFUSED); // not the file's layout
    expect(bad({ stride: 24 })).toBe(LEASE_INPUT_REFUSED); // runs that would read other rows
    expect(bad({ offset: 128 + 9 * 12 })).toBe(LEASE_INPUT_REFUSED); // past the axis
    expect(bad({ dims: [1, 2, 3] })).toBe(LEASE_INPUT_REFUSED); // two axes differ
    expect(bad({ offset: 0, dims: [2, 10, 3] })).toBe(LEASE_INPUT_REFUSED); // "whole" but starting in the header
  });
  it.each([
    ['relative path', { path: 'x.npy' }],
    ['not .npy', { path: '/etc/passwd' }],
    ['other dtype', { dtype: 'int32' as const }],
    ['other rank', { dims: [2, 4, 1] }],
    ['other row shape', { dims: [2, 3] }],
    ['rows other than the unit', { dims: [3, 4] }],
    ['offset in the header', { offset: 0 }],
    ['misaligned offset', { offset: 129 }],
    ['past the data', { offset: 128 + 9 * 16 }],
  ])('refuses %s', (_what, over) => {
    expect(code(over)).toBe(LEASE_INPUT_REFUSED);
  });
});

describe('fs probe', () => {
  it('binds the token to the coordinator that wrote it', () => {
    const t = 'ab'.repeat(32);
    expect(parseFsProbe(formatFsProbe('12D3KooWabc', t))).toEqual({ coordinator: '12D3KooWabc', token: t });
    expect(parseFsProbe(t)).toBeNull(); // the old bare-token format earns nothing
    expect(parseFsProbe(`matrix-drill-fs-probe/1 12D3KooWabc ${t}\nmore`)).toBeNull();
  });
});
