/**
 * Running a unit in chunks of rows (session.ts runChecked with row axes): the same outputs as
 * one ORT call, on real models — the workloads' mlp (rows on axis 0) and the vad fixture (a
 * recurrent state with its rows on axis 1 and a scalar sent whole) — and the pure helpers
 * (sliceAxis / concatAxis round trips on every axis, chunkPlan's refusals).
 */
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { openSession, runChecked, CHUNK_INPUT_BYTES } from '../../src/worker/session.ts';
import { chunkPlan, concatAxis, sliceAxis } from '../../src/worker/plan.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { readNpy } from '../../src/util/npy.ts';
import { makeInputs } from '../../workloads/models.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const cfg = { executionProviders: ['cpu'], intraOpThreads: 1 };

const tensor = (dims: number[]): HostTensor => ({ dtype: 'float32', dims, data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => i) });

describe('sliceAxis / concatAxis', () => {
  it('split into uneven chunks on any axis and joined back gives the tensor', () => {
    const t = tensor([3, 7, 4]);
    for (const axis of [0, 1, 2]) {
      const n = t.dims[axis]!;
      const parts: HostTensor[] = [];
      for (let r = 0; r < n; r += 3) parts.push(sliceAxis(t, axis, r, Math.min(n, r + 3)));
      const back = concatAxis('y', parts, axis);
      expect(back.dims).toEqual(t.dims);
      expect([...back.data]).toEqual([...t.data]);
    }
  });

  it('a slice along axis 1 holds exactly those rows', () => {
    const s = sliceAxis(tensor([2, 5, 2]), 1, 1, 3);
    expect(s.dims).toEqual([2, 2, 2]);
    expect([...s.data]).toEqual([2, 3, 4, 5, 12, 13, 14, 15]);
  });

  it('refuses parts whose other dims differ, naming the output', () => {
    expect(() => concatAxis('logits', [tensor([2, 3]), tensor([2, 4])], 0)).toThrow(/outputs\.logits: expected every chunk of rows to give float32/);
  });

  it('chunkPlan: only when every input and output is placed and the batch is over the budget', () => {
    const x = tensor([1000, 32]); // 128 B a row
    const axes = { inputs: { x: 0 }, outputs: { y: 0 } };
    expect(chunkPlan({ x }, ['y'], axes, 128 * 100)).toEqual({ rows: 1000, chunkRows: 100 });
    expect(chunkPlan({ x }, ['y'], axes, 128 * 1000)).toBeNull(); // fits in one chunk
    expect(chunkPlan({ x }, ['y', 'z'], axes, 128 * 100)).toBeNull(); // an output without an axis
    expect(chunkPlan({ x, w: tensor([3]) }, ['y'], axes, 128 * 100)).toBeNull(); // an input not placed
    expect(chunkPlan({ x, w: tensor([3]) }, ['y'], { ...axes, inputs: { x: 0, w: null } }, 128 * 100)).toEqual({ rows: 1000, chunkRows: 100 });
    expect(chunkPlan({ x, v: tensor([999, 2]) }, ['y'], { ...axes, inputs: { x: 0, v: 0 } }, 128 * 100)).toBeNull(); // rows disagree
  });
});

describe('runChecked in chunks of rows', () => {
  it('mlp: 40,000 rows (5 MB) in 1 MiB chunks equal one call', async () => {
    const s = await openSession(join(ROOT, 'workloads', 'mlp', 'model.onnx'), cfg);
    try {
      const inputs = makeInputs('mlp', 40_000, 11);
      const whole = await runChecked(s, inputs);
      const axes = { inputs: Object.fromEntries(Object.keys(inputs).map((k) => [k, 0])), outputs: Object.fromEntries(whole.plan.outputNames.map((k) => [k, 0])) };
      const chunked = await runChecked(s, inputs, undefined, axes);
      expect(chunked.chunks).toBe(Math.ceil((40_000 * 128) / CHUNK_INPUT_BYTES));
      for (const o of whole.plan.outputNames) {
        expect(chunked.outputs[o]!.dims).toEqual(whole.outputs[o]!.dims);
        expect(Buffer.from(chunked.outputs[o]!.data.buffer, chunked.outputs[o]!.data.byteOffset, chunked.outputs[o]!.data.byteLength).equals(Buffer.from(whole.outputs[o]!.data.buffer, whole.outputs[o]!.data.byteOffset, whole.outputs[o]!.data.byteLength)), o).toBe(true);
      }
    } finally {
      await s.release();
    }
  });

  it('vad fixture: the state split on axis 1, the sample rate sent whole, outputs on their axes', async () => {
    const dir = join(ROOT, 'test', 'fixtures', 'models', 'vad');
    const inputs: Record<string, HostTensor> = {};
    for (const f of (await readdir(dir)).filter((f) => f.endsWith('.npy'))) inputs[f.slice(0, -4)] = await readNpy(join(dir, f));
    const s = await openSession(join(ROOT, 'test', 'fixtures', 'models', 'vad.onnx'), cfg);
    try {
      const whole = await runChecked(s, inputs);
      // Where the rows lie, from the shapes: the axis holding the batch in each input (the
      // fixture's README: input [batch, n], state [2, batch, 128], sr a scalar).
      const inAxes: Record<string, number | null> = {};
      for (const [k, t] of Object.entries(inputs)) inAxes[k] = t.dims.length === 0 ? null : t.dims.length === 3 ? 1 : 0;
      const outAxes: Record<string, number> = {};
      for (const [k, t] of Object.entries(whole.outputs)) outAxes[k] = t.dims.length === 3 ? 1 : 0;
      const rowBytes = Object.entries(inputs).reduce((a, [k, t]) => a + (inAxes[k] === null ? 0 : t.data.byteLength / t.dims[inAxes[k]!]!), 0);
      const rows = Object.entries(inputs).find(([k]) => inAxes[k] === 0)![1].dims[0]!;
      expect(rows).toBeGreaterThan(1);
      // A budget of two rows a chunk: several chunks on this small fixture.
      const chunked = await runChecked(s, inputs, undefined, { inputs: inAxes, outputs: outAxes }, rowBytes * 2);
      expect(chunked.chunks).toBe(Math.ceil(rows / 2));
      for (const o of whole.plan.outputNames) {
        expect(chunked.outputs[o]!.dims).toEqual(whole.outputs[o]!.dims);
        const a = chunked.outputs[o]!.data as Float32Array;
        const b = whole.outputs[o]!.data as Float32Array;
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(b[i]!));
      }
    } finally {
      await s.release();
    }
  });
});
