/**
 * Shape inference — the basis of every credited FLOP count — checked against ONNX Runtime on
 * small graphs covering the ops of the cost table: for each graph, the output dims inspect
 * predicts at batch 3 must equal the dims ORT actually returns, with no op left unknown.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, Prng, attr, type Dim } from '../../src/onnx/builder.ts';
import { decodeModel, countFlops } from '../../src/onnx/index.ts';
import type { Dtype } from '../../src/util/tensor.ts';

const B = 3;

interface Case {
  name: string;
  input: { dtype: Dtype; dims: Dim[] };
  /** Output values; a [value, dtype] pair for non-float32 outputs. */
  build(g: GraphBuilder, x: string): (string | [string, Dtype])[];
}

const cases: Case[] = [
  {
    name: 'Conv with strides, dilation and asymmetric pads; AveragePool ceil_mode; GlobalMaxPool',
    input: { dtype: 'float32', dims: ['n', 3, 11, 9] },
    build: (g, x) => {
      const c = g.op('Conv', [x, g.weight('w', [5, 3, 3, 2], { fanIn: 18 })], { strides: attr.ints([2, 1]), dilations: attr.ints([1, 2]), pads: attr.ints([1, 0, 0, 2]) });
      const p = g.op('AveragePool', [c], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]), ceil_mode: attr.int(1) }); // 5×9 → 3×5 (floor would give 2×4)
      // End padding where ceil_mode's last window would start in the padding: H 5 → 2 windows, not 3.
      const q = g.op('MaxPool', [c], { kernel_shape: attr.ints([2, 1]), strides: attr.ints([3, 1]), pads: attr.ints([0, 0, 1, 0]), ceil_mode: attr.int(1) });
      return [p, q, g.op('GlobalMaxPool', [c])];
    },
  },
  {
    name: 'grouped Conv with SAME_LOWER, BatchNormalization, MaxPool',
    input: { dtype: 'float32', dims: ['n', 4, 7, 7] },
    build: (g, x) => {
      const c = g.op('Conv', [x, g.weight('w', [6, 2, 3, 3], { fanIn: 18 }), g.weight('b', [6])], { group: attr.int(2), auto_pad: attr.string('SAME_LOWER'), strides: attr.ints([2, 2]) });
      const bn = g.op('BatchNormalization', [c, g.weight('s', [6], { kind: 'const', scale: 1 }), g.weight('bb', [6], { kind: 'const', scale: 0 }), g.weight('m', [6], { kind: 'const', scale: 0 }), g.weight('v', [6], { kind: 'const', scale: 1 })]);
      return [g.op('MaxPool', [bn], { kernel_shape: attr.ints([2, 2]) })];
    },
  },
  {
    name: 'MatMul broadcasting (rank 3 · rank 2, rank 3 · rank 3), 1-D operands, Gemm with transA',
    input: { dtype: 'float32', dims: ['n', 4, 6] },
    build: (g, x) => {
      const a = g.op('MatMul', [x, g.weight('w', [6, 5])]);
      const bmm = g.op('MatMul', [g.op('Transpose', [a], { perm: attr.ints([0, 2, 1]) }), a]); // [n,5,5]
      const vec = g.op('MatMul', [a, g.weight('v', [5])]); // [n,4]
      const flat = g.op('Flatten', [x]); // [n,24]
      const gm = g.op('Gemm', [g.op('Transpose', [flat]), g.weight('gw', [24, 2])], { transA: attr.int(1) }); // ([24,n])ᵀ·[24,2] → [n,2]
      return [bmm, vec, gm];
    },
  },
  {
    name: 'Reduce*/ArgMax with and without keepdims, LayerNormalization on axis 1, Softmax',
    input: { dtype: 'float32', dims: ['n', 4, 6] },
    build: (g, x) => [
      g.op('ReduceMean', [x], { axes: attr.ints([-1]), keepdims: attr.int(0) }),
      g.op('ReduceSum', [x, g.int64s('ax', [1, 2])]),
      g.op('ReduceMax', [x], { keepdims: attr.int(0) }),
      [g.op('ArgMax', [x], { axis: attr.int(1) }), 'int64'],
      g.op('LayerNormalization', [x, g.weight('gm', [4, 6], { kind: 'const', scale: 1 })], { axis: attr.int(1) }),
      g.op('LogSoftmax', [x], { axis: attr.int(1) }),
    ],
  },
  {
    name: 'Slice (negative, stepped), Split, Concat, Squeeze, Unsqueeze, Expand, Tile, Pad',
    input: { dtype: 'float32', dims: ['n', 6, 8] },
    build: (g, x) => {
      const sl = g.op('Slice', [x, g.int64s('st', [-5, 7]), g.int64s('en', [100, 0]), g.int64s('axs', [1, 2]), g.int64s('stp', [2, -3])]);
      const [s1, s2] = g.opN('Split', [x, g.int64s('sp', [2, 4])], ['s1', 's2'], { axis: attr.int(1) });
      const cat = g.op('Concat', [s2!, s1!], { axis: attr.int(1) });
      const un = g.op('Unsqueeze', [x, g.int64s('ua', [1, -1])]); // [n,1,6,8,1]
      const sq = g.op('Squeeze', [un, g.int64s('sa', [1])]); // [n,6,8,1]
      const ex = g.op('Expand', [sq, g.int64s('es', [1, 1, 3])]); // [n,6,8,3]
      const ti = g.op('Tile', [x, g.int64s('tr', [1, 2, 1])]);
      const pd = g.op('Pad', [x, g.int64s('pads', [0, 1, 2, 0, 3, 0])]);
      return [sl, cat, ex, ti, pd];
    },
  },
  {
    name: 'Shape/Gather/Concat-driven Reshape, Where, comparisons, Cast, Constant, ConstantOfShape',
    input: { dtype: 'float32', dims: ['n', 4, 3] },
    build: (g, x) => {
      const shp = g.op('Shape', [x]);
      const n = g.op('Gather', [shp, g.int64s('i0', [0])], { axis: attr.int(0) });
      const rs = g.op('Reshape', [x, g.op('Concat', [n, g.op('Constant', [], { value: attr.tensor({ dtype: 'int64', dims: [1], data: BigInt64Array.from([-1n]) }) })], { axis: attr.int(0) })]);
      const cond = g.op('Greater', [rs, g.floats('z', [0], [])]);
      const w = g.op('Where', [cond, rs, g.op('Neg', [rs])]);
      const c = g.op('Cast', [cond], { to: attr.int(1) });
      const k = g.op('ConstantOfShape', [g.op('Shape', [w], { start: attr.int(1) })], { value: attr.tensor({ dtype: 'float32', dims: [1], data: Float32Array.from([1]) }) });
      return [w, c, g.op('Add', [w, k])];
    },
  },
  {
    name: 'CumSum, TopK, Hardmax, Einsum, InstanceNormalization, GatherElements, Range',
    input: { dtype: 'float32', dims: ['n', 4, 6] },
    build: (g, x) => {
      const cs = g.op('CumSum', [x, g.int64s('csax', [2], [])]);
      const [tv, ti] = g.opN('TopK', [x, g.int64s('k', [3])], ['tv', 'ti'], { axis: attr.int(-1) });
      const hm = g.op('Hardmax', [x]);
      const es = g.op('Einsum', [x, g.weight('ew', [6, 5])], { equation: attr.string('bij,jk->bik') });
      const inorm = g.op('InstanceNormalization', [x, g.weight('isc', [4], { kind: 'const', scale: 1 }), g.weight('ib', [4], { kind: 'const', scale: 0 })]);
      const ge = g.op('GatherElements', [x, g.int64s('gi', [0, 1, 2, 3, 4, 5, 0, 1], [1, 4, 2])], { axis: attr.int(2) });
      const n = g.op('Squeeze', [g.op('Slice', [g.op('Shape', [x]), g.int64s('r0', [0]), g.int64s('r1', [1])]), g.int64s('r2', [0])]);
      const rg = g.op('Range', [g.int64s('rs', [0], []), n, g.int64s('rd', [1], [])]); // [n]
      return [cs, tv!, [ti!, 'int64'], hm, es, inorm, ge, [rg, 'int64']];
    },
  },
  {
    name: 'ConvTranspose, Resize, DepthToSpace, QuantizeLinear/DequantizeLinear',
    input: { dtype: 'float32', dims: ['n', 4, 6, 6] },
    build: (g, x) => {
      const ct = g.op('ConvTranspose', [x, g.weight('ctw', [4, 3, 3, 3], { fanIn: 36 })], { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), output_padding: attr.ints([1, 1]) });
      const rz = g.op('Resize', [x, '', g.floats('scales', [1, 1, 2, 1.5])], { mode: attr.string('nearest') });
      const d2s = g.op('DepthToSpace', [x], { blocksize: attr.int(2) });
      const q = g.op('QuantizeLinear', [x, g.floats('qs', [0.05], []), g.initializer('qz', { dtype: 'uint8', dims: [], data: Uint8Array.from([128]) })]);
      const dq = g.op('DequantizeLinear', [q, g.floats('dqs', [0.05], []), g.initializer('dqz', { dtype: 'uint8', dims: [], data: Uint8Array.from([128]) })]);
      return [ct, rz, d2s, [q, 'uint8'], dq];
    },
  },
  {
    name: 'LSTM, GRU (bidirectional), RNN (ORT runs layout 0 only)',
    input: { dtype: 'float32', dims: ['n', 5, 8] },
    build: (g, x) => {
      const H = 3;
      const xt = g.op('Transpose', [x], { perm: attr.ints([1, 0, 2]) }); // [5, n, 8]
      const [y, yh, yc] = g.opN('LSTM', [xt, g.weight('lw', [1, 4 * H, 8]), g.weight('lr', [1, 4 * H, H])], ['ly', 'lyh', 'lyc'], { hidden_size: attr.int(H) });
      const [gy, gyh] = g.opN('GRU', [xt, g.weight('gw', [2, 3 * H, 8]), g.weight('gr', [2, 3 * H, H])], ['gy', 'gyh'], { hidden_size: attr.int(H), direction: attr.string('bidirectional') });
      const [ry] = g.opN('RNN', [xt, g.weight('rw', [1, H, 8]), g.weight('rr', [1, H, H])], ['ry', ''], { hidden_size: attr.int(H) });
      return [y!, yh!, yc!, gy!, gyh!, ry!];
    },
  },
];

function feed(dtype: Dtype, dims: number[], seed: number): ort.Tensor {
  const rng = new Prng(seed, 'feed');
  const n = dims.reduce((a, b) => a * b, 1);
  if (dtype !== 'float32') throw new Error('float32 only');
  return new ort.Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(-1, 1)), dims);
}

describe('shape inference agrees with ONNX Runtime', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const g = new GraphBuilder({ name: 'shapes', seed: 5 });
    const x = g.input('x', c.input.dtype, c.input.dims);
    const outs = c.build(g, x);
    // Declared output dims are left symbolic: ORT must not be helped by them, and inspect must infer.
    outs.forEach((o, i) => (typeof o === 'string' ? g.output(o, 'float32', null, `out${i}`) : g.output(o[0], o[1], null, `out${i}`)));
    const bytes = await g.toBytes();
    const s = await ort.InferenceSession.create(bytes);
    try {
      const concrete = c.input.dims.map((d) => (typeof d === 'number' ? d : B));
      const r = await s.run({ x: feed(c.input.dtype, concrete, 1) });
      const actual = s.outputNames.map((o) => [...r[o]!.dims]);
      const inferred = countFlops(await decodeModel(bytes), { x: { dtype: c.input.dtype, dims: concrete } });
      expect(s.outputNames.map((o) => inferred.outputs[o])).toEqual(actual);
      expect(inferred.notes).toEqual([]);
    } finally {
      await s.release();
    }
  });
});
