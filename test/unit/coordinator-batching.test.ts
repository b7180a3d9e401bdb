/**
 * Which inputs are split into rows (on which axis), which are sent whole, and where outputs are
 * stitched — the pure rule in src/coordinator/batching.ts, on the input layouts of real model
 * families: classifiers, encoders, a voice-activity model with a recurrent state and a scalar
 * sample rate, a decoder with a KV cache, beam-search settings, models fixed at batch 1.
 */
import { describe, expect, it } from 'vitest';
import { batchSymbol, checkFlags, planInputs, planOutputs, unitBytes } from '../../src/coordinator/batching.ts';
import type { InputData } from '../../src/coordinator/batching.ts';
import type { IoInfo } from '../../src/onnx/inspect.ts';
import { defaultUnitRows, MAX_UNIT_INPUT_BYTES, unitFlops } from '../../src/coordinator/job.ts';
import type { Dtype } from '../../src/util/tensor.ts';
import { errCode } from '../helpers/errors.ts';

const io = (name: string, dims: (number | string)[], dtype = 'float32', rankKnown = true): IoInfo => ({ name, dtype, dims, rankKnown });
const data = (entries: Record<string, [Dtype, number[]]>): Record<string, InputData> =>
  Object.fromEntries(Object.entries(entries).map(([k, [dtype, dims]]) => [k, { dtype, dims, file: `${k}.npy` }]));

describe('the batch dimension', () => {
  it('is the symbolic name the inputs share; ties go to a name with "batch", then the front', () => {
    expect(batchSymbol([io('ids', ['batch', 'seq']), io('mask', ['batch', 'seq'])])).toBe('batch');
    expect(batchSymbol([io('ids', ['B', 'seq']), io('mask', ['B', 'seq'])])).toBe('B'); // nearer the front
    expect(batchSymbol([io('x', ['seq', 'batch_size', 8])])).toBe('batch_size');
    expect(batchSymbol([io('input', ['batch', 'samples']), io('state', [2, 'batch', 128]), io('sr', [])])).toBe('batch'); // in two inputs
    expect(batchSymbol([io('x', [1, 3, 224, 224])])).toBeNull();
    expect(batchSymbol([io('x', ['', 3])])).toBeNull(); // an unnamed dynamic dim is no name
  });
});

describe('planInputs', () => {
  it('an encoder: every input split on axis 0', () => {
    const ins = [io('input_ids', ['batch', 'seq'], 'int64'), io('attention_mask', ['batch', 'seq'], 'int64')];
    const p = planInputs(ins, data({ input_ids: ['int64', [40, 12]], attention_mask: ['int64', [40, 12]] }), {});
    expect(p).toEqual({ axes: { input_ids: 0, attention_mask: 0 }, rows: 40, symbol: 'batch', rowByRow: false, whole: false });
  });

  it('a voice-activity model: audio on axis 0, the state [2, batch, 128] on axis 1, the sample rate sent whole', () => {
    const ins = [io('input', ['batch', 512]), io('state', [2, 'batch', 128]), io('sr', [], 'int64')];
    const p = planInputs(ins, data({ input: ['float32', [64, 512]], state: ['float32', [2, 64, 128]], sr: ['int64', []] }), {});
    expect(p.axes).toEqual({ input: 0, state: 1, sr: null });
    expect(p.rows).toBe(64);
  });

  it('a decoder with a KV cache [2, batch, heads, past, dim] and [1]-shaped beam settings', () => {
    const ins = [
      io('input_ids', ['batch', 'seq'], 'int64'),
      io('past', [2, 'batch', 4, 'past_seq', 16]),
      io('num_beams', [1], 'int32'),
      io('length_penalty', [1]),
    ];
    const p = planInputs(ins, data({ input_ids: ['int64', [8, 1]], past: ['float32', [2, 8, 4, 5, 16]], num_beams: ['int32', [1]], length_penalty: ['float32', [1]] }), {});
    expect(p.axes).toEqual({ input_ids: 0, past: 1, num_beams: null, length_penalty: null });
  });

  it('a model fixed at batch 1 runs row by row; a one-row input beside it is shared by every row', () => {
    const ins = [io('image', [1, 3, 8, 8]), io('scale', [1, 1])];
    const p = planInputs(ins, data({ image: ['float32', [100, 3, 8, 8]], scale: ['float32', [1, 1]] }), {});
    expect(p).toEqual({ axes: { image: 0, scale: null }, rows: 100, symbol: null, rowByRow: true, whole: false });
  });

  it('an unnamed dynamic first dim is the batch when no name is shared; an unnamed dim of the same size elsewhere is too', () => {
    const p = planInputs([io('x', ['', 3])], data({ x: ['float32', [9, 3]] }), {});
    expect(p.axes).toEqual({ x: 0 });
    expect(p.rowByRow).toBe(false);
    // A voice-activity export without dim names: input [?, ?], state [2, ?, 128], sr [].
    const vad = planInputs([io('input', ['', '']), io('state', [2, '', 128]), io('sr', [], 'int64')], data({ input: ['float32', [6, 512]], state: ['float32', [2, 6, 128]], sr: ['int64', []] }), {});
    expect(vad.axes).toEqual({ input: 0, state: 1, sr: null });
  });

  it('a name only an inner axis of one input carries is not a batch: a single-image detector runs as one unit of one row', () => {
    expect(batchSymbol([io('image', [3, 'height', 'width'])])).toBeNull();
    const p = planInputs([io('image', [3, 'height', 'width'])], data({ image: ['float32', [3, 480, 640]] }), {});
    expect(p).toEqual({ axes: { image: null }, rows: 1, symbol: null, rowByRow: false, whole: true });
    expect(planOutputs([io('boxes', ['', 4]), io('labels', [''], 'int64')], p, {}, {})).toEqual({ axes: { boxes: null, labels: null }, guessed: [] });
  });

  it('--batch-axis and --broadcast decide where the graph does not say', () => {
    // No declared shape at all (ORT reports []): sent whole unless told.
    const ins = [io('x', [], 'float32', false), io('y', ['n', 4])];
    const d = data({ x: ['float32', [5, 7, 2]], y: ['float32', [7, 4]] });
    expect(planInputs(ins, d, {}).axes).toEqual({ x: null, y: 0 });
    expect(planInputs(ins, d, { batchAxes: { x: 1 } }).axes).toEqual({ x: 1, y: 0 });
    // Time-major RNN input [seq, batch, feat]: the symbol nearest the front would be wrong.
    const rnn = [io('x', ['seq', 'b', 8])];
    expect(planInputs(rnn, data({ x: ['float32', [10, 3, 8]] }), {}).axes).toEqual({ x: 0 });
    expect(planInputs(rnn, data({ x: ['float32', [10, 3, 8]] }), { batchAxes: { x: 1 } })).toMatchObject({ axes: { x: 1 }, rows: 3, symbol: 'b' });
  });

  it('refuses data that does not fit, rows that disagree, and a job with nothing to split — naming the input', () => {
    const ins = [io('input', ['batch', 512]), io('state', [2, 'batch', 128]), io('sr', [], 'int64')];
    const ok = { input: ['float32', [64, 512]], state: ['float32', [2, 64, 128]], sr: ['int64', []] } as Record<string, [Dtype, number[]]>;
    expect(() => planInputs(ins, data({ ...ok, state: ['float32', [2, 63, 128]] }), {})).toThrow(/--input state: expected 64 rows \(as input input\) along its batch axis 1, received "63 rows"/);
    expect(() => planInputs(ins, data({ ...ok, state: ['float32', [3, 64, 128]] }), {})).toThrow(/--input state: expected shape \[2, rows, 128\] \(model input \[2, batch, 128\]\), received "shape \[3, 64, 128\] in state\.npy"/);
    expect(() => planInputs(ins, data({ ...ok, sr: ['int64', [1]] }), {})).toThrow(/--input sr: expected shape \[\] \(sent whole to every unit: it has no batch dimension\)/);
    expect(() => planInputs([io('p', [4])], data({ p: ['float32', [5]] }), {})).toThrow(/--input p: expected shape \[4\] \(sent whole to every unit/);
    expect(errCode(() => planInputs([io('x', ['n', 3])], data({ x: ['float32', [0, 3]] }), {}))).toBe('USER_INPUT');
    expect(() => planInputs([io('x', ['n', 3])], data({ x: ['float32', [5, 3]] }), { batchAxes: { x: 2 } })).toThrow(/--batch-axis x: expected an axis of its data \(rank 2/);
  });
});

describe('checkFlags', () => {
  const ins = [io('x', ['n', 3])];
  const outs = [io('y', ['n', 2])];
  it('names must be inputs or outputs; an input cannot be both split and sent whole', () => {
    expect(() => checkFlags({ batchAxes: { z: 0 } }, ins, outs)).toThrow(/--batch-axis z: expected an input or output the model has \(x, y\)/);
    expect(() => checkFlags({ broadcast: ['z'] }, ins, outs)).toThrow(/--broadcast z: expected an input or output the model has/);
    expect(() => checkFlags({ batchAxes: { x: 0 }, broadcast: ['x'] }, ins, outs)).toThrow(/not both/);
    expect(() => checkFlags({ batchAxes: { x: -1 } }, ins, outs)).toThrow(/non-negative integer/);
    expect(() => checkFlags({ batchAxes: { y: 1 }, broadcast: [] }, ins, outs)).not.toThrow();
  });
});

describe('planOutputs', () => {
  const vad = planInputs([io('input', ['batch', 512]), io('state', [2, 'batch', 128]), io('sr', [], 'int64')], data({ input: ['float32', [4, 512]], state: ['float32', [2, 4, 128]], sr: ['int64', []] }), {});
  it('stitches where the batch name stands, else where shape inference sees the rows grow, else nowhere', () => {
    const outs = [io('output', ['batch', 1]), io('stateN', [2, 'batch', 128]), io('hidden', ['', 16]), io('count', []), io('table', [3, 3]), io('mystery', [], 'float32', false)];
    const plan = planOutputs(outs, vad, {}, { hidden: 0, count: null, table: null, mystery: undefined });
    expect(plan.axes).toEqual({ output: 0, stateN: 1, hidden: 0, count: null, table: null, mystery: 0 });
    expect(plan.guessed).toEqual(['mystery']); // its size may depend on the data: the job defaults to one unit
    expect(planOutputs(outs, vad, { broadcast: ['mystery'], batchAxes: { hidden: 1 } }, {}).axes).toMatchObject({ mystery: null, hidden: 1 });
  });
  it('a model run row by row stitches every output on axis 0; a detection output of unknown size is a guess', () => {
    const p = planInputs([io('image', [1, 3, 8, 8])], data({ image: ['float32', [10, 3, 8, 8]] }), {});
    expect(planOutputs([io('probs', [1, 10]), io('k', [])], p, {}, { probs: 0, k: 0 })).toEqual({ axes: { probs: 0, k: 0 }, guessed: [] });
    expect(planOutputs([io('boxes', ['', 4])], p, {}, { boxes: undefined })).toEqual({ axes: { boxes: 0 }, guessed: ['boxes'] });
  });
});

describe('unit size', () => {
  it('counts only split inputs per row; inputs sent whole take their room in every unit', () => {
    const d = data({ audio: ['float32', [1000, 512]], state: ['float32', [2, 1000, 128]], table: ['float32', [1024, 1024]] });
    const { rowBytes, broadcastBytes } = unitBytes(d, { audio: 0, state: 1, table: null });
    expect(rowBytes).toBe(512 * 4 + 2 * 128 * 4);
    expect(broadcastBytes).toBe(1024 * 1024 * 4);
    expect(defaultUnitRows(1e9, rowBytes, 1, broadcastBytes)).toBe(Math.floor((MAX_UNIT_INPUT_BYTES - broadcastBytes) / rowBytes));
  });
});

describe('unitFlops', () => {
  it('rows × flopsPerRow, plus the revealed elements of outputs the graph could not size, at their rate', () => {
    const result = {
      y: { dtype: 'float32' as const, dims: [4, 1000], data: new Float32Array(4000) },
      z: { dtype: 'float32' as const, dims: [4, 5], data: new Float32Array(20) },
    };
    expect(unitFlops({ flopsPerRow: 5, outputCost: {} }, 4, result)).toBe(20);
    expect(unitFlops({ flopsPerRow: 5, outputCost: { y: 1 } }, 4, result)).toBe(20 + 4000);
    expect(unitFlops({ flopsPerRow: 5, outputCost: { missing: 3 } }, 4, result)).toBe(20);
  });
});
