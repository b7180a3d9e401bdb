/**
 * ONNX tooling without ONNX Runtime: the protobuf.js builder → decoder round trip, the decoder
 * on models the old hand-written one refused, and the cost model — the FLOPs Proof of Drilling
 * credits — from real input shapes: the table on hand-computable graphs, declared shapes that
 * must never raise credit, ops whose shape cannot be inferred, graphs out of order or broken
 * (costed, never refused), and subgraphs (If, Loop, Scan, functions).
 * Shape inference against ONNX Runtime's own results is in test/e2e/workloads-shapes.test.ts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder, Prng, attr } from '../../src/onnx/builder.ts';
import { decodeModel, countFlops, costFromOutputs, rowCost } from '../../src/onnx/index.ts';
import type { DecodedModel, JobInputShape } from '../../src/onnx/index.ts';
import { loadOnnxProto } from '../../src/onnx/proto.ts';
import { encodeNpy } from '../../src/util/npy.ts';
import { errCodeAsync } from '../helpers/errors.ts';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'models');
const fixture = (name: string): Promise<DecodedModel> => decodeModel(readFileSync(join(FIX, `${name}.onnx`)), name);

/** y = x·W with x [batch, K], W [K, N]. */
function matmulModel(K: number, N: number, batch: number | string = 'batch'): Promise<Uint8Array> {
  const g = new GraphBuilder({ name: 'mm', seed: 1 });
  const x = g.input('x', 'float32', [batch, K]);
  g.output(g.op('MatMul', [x, g.weight('w', [K, N])]), 'float32', [batch, N], 'y');
  return g.toBytes();
}

/** FLOPs per row of a graph whose inputs are split on axis 0, at these real dims. */
async function perRow(bytes: Uint8Array | Promise<Uint8Array>, inputs: Record<string, number[]>, rowByRow = false): Promise<number> {
  const m = await decodeModel(await bytes);
  const shapes: Record<string, JobInputShape> = Object.fromEntries(Object.entries(inputs).map(([k, dims]) => [k, { dtype: 'float32', dims, batchAxis: 0 }]));
  return rowCost(m, shapes, rowByRow).flopsPerRow;
}

describe('builder → decoder (protobuf.js over onnx.proto)', () => {
  it('keeps inputs, outputs, dtypes, symbolic and fixed dims, attributes and opsets', async () => {
    const g = new GraphBuilder({ name: 't', seed: 3, opset: 17, irVersion: 8, opsets: { 'com.microsoft': 1 } });
    const ids = g.input('ids', 'int64', ['batch', 7]);
    const m = g.input('mask', 'bool', ['batch', 7]);
    const h16 = g.input('h', 'float16', null);
    const e = g.op('Gather', [g.weight('emb', [10, 4]), ids], { axis: attr.int(0) });
    const s = g.op('Softmax', [e], { axis: attr.int(-1) });
    const ln = g.op('LayerNormalization', [s, g.weight('gm', [4], { kind: 'const', scale: 1 })], { axis: attr.int(-1), epsilon: attr.float(1e-5) });
    g.output(ln, 'float32', ['batch', 7, 4], 'out');
    g.output(m, 'bool', ['batch', 7], 'mask_out');
    g.output(g.op('FastGelu', [h16], {}, undefined, 'com.microsoft'), 'float16', null, 'g');
    const d = await decodeModel(await g.toBytes());
    expect(d.opset).toBe(17);
    expect(d.opsets).toEqual({ '': 17, 'com.microsoft': 1 });
    expect(d.irVersion).toBe(8);
    expect(d.inputs).toEqual([
      { name: 'ids', dtype: 'int64', dims: ['batch', 7] },
      { name: 'mask', dtype: 'bool', dims: ['batch', 7] },
      { name: 'h', dtype: 'float16', dims: null },
    ]);
    expect(d.outputs.map((o) => o.name)).toEqual(['out', 'mask_out', 'g']);
    expect(d.graph.nodes.find((n) => n.op === 'Softmax')!.attrs.axis!.i).toBe(-1);
    expect(d.graph.nodes.find((n) => n.op === 'LayerNormalization')!.attrs.epsilon!.f).toBeCloseTo(1e-5, 10);
    expect(d.graph.nodes.find((n) => n.op === 'FastGelu')!.domain).toBe('com.microsoft');
    expect(d.graph.initializers.get('emb')!.dims).toEqual([10, 4]);
  });

  it('embeds subgraphs as graph attributes', async () => {
    const body = new GraphBuilder({ name: 'then', seed: 1 });
    body.output(body.op('Relu', ['x']), 'float32', null, 'r');
    const other = new GraphBuilder({ name: 'else', seed: 1 });
    other.output(other.op('Neg', ['x']), 'float32', null, 'n');
    const g = new GraphBuilder({ name: 'if', seed: 1 });
    g.input('x', 'float32', ['b', 2]);
    g.input('c', 'bool', []);
    g.output(g.op('If', ['c'], { then_branch: attr.graph(body), else_branch: attr.graph(other) }), 'float32', ['b', 2], 'y');
    const d = await decodeModel(await g.toBytes());
    const node = d.graph.nodes[0]!;
    expect(node.attrs.then_branch!.g!.nodes.map((n) => n.op)).toEqual(['Relu', 'Identity']);
    expect(node.attrs.else_branch!.g!.outputs.map((o) => o.name)).toEqual(['n']);
  });

  it('is deterministic: same seed → identical bytes; a different seed or name → different weights', async () => {
    expect(Buffer.from(await matmulModel(8, 16)).equals(Buffer.from(await matmulModel(8, 16)))).toBe(true);
    const a = new Prng(1, 'x');
    const b = new Prng(1, 'y');
    const c = new Prng(2, 'x');
    const sa = [a.nextU32(), a.nextU32()];
    expect([b.nextU32(), b.nextU32()]).not.toEqual(sa);
    expect([c.nextU32(), c.nextU32()]).not.toEqual(sa);
    expect([new Prng(1, 'x').nextU32(), new Prng(1, 'x').nextU32()]).toEqual([sa[0], sa[0]]);
  });

  it('rejects a value name defined twice', () => {
    const g = new GraphBuilder({ name: 'dup', seed: 1 });
    g.input('x', 'float32', [1]);
    expect(() => g.input('x', 'float32', [1])).toThrow(/defined twice/);
  });
});

describe('the decoder reads what the hand-written one refused', () => {
  it('a 300,000-element initializer in the typed int64_data field', async () => {
    const m = await fixture('big_int64');
    const t = m.graph.initializers.get('table')!;
    expect(t.dims).toEqual([300_000]);
    expect(t.values).toBeUndefined(); // only small tensors keep their values
    const proto = await loadOnnxProto();
    const raw = proto.ModelProto.decode(readFileSync(join(FIX, 'big_int64.onnx')));
    const data = raw.graph!.initializer![0]!.int64_data!;
    expect(data.length).toBe(300_000);
    expect([data[0], data[1], data[299_999]]).toEqual([0, 7919 % 127, (299_999 * 7919) % 127]); // numbers, not Longs
  });

  it('nodes out of topological order (a toy BERT stored in reverse): sorted and costed', async () => {
    const m = await fixture('toy_bert');
    expect(m.graph.nodes[0]!.name).toBe('MatMul_29');
    const c = countFlops(m, { input_ids: { dtype: 'int64', dims: [3, 12] }, attention_mask: { dtype: 'int64', dims: [3, 12] } });
    expect(c.outputs).toEqual({ last_hidden_state: [3, 12, 16], logits: [3, 2] });
    expect(c.notes.join('\n')).toMatch(/not in topological order; sorted/);
    // Per row, by hand (S = 12, H = 16): LayerNorm 7·S·H, Q/K/V 3·2·S·H·H, QKᵀ 2·S·S·H, scale S·S,
    // mask Cast 0 + Sub S + Mul S, Add S·S, Softmax 5·S·S, ·V 2·S·S·H, residual S·H, embeddings
    // Add S·H, ReduceMean S·H, classifier 2·H·2.
    const S = 12;
    const H = 16;
    const row = 7 * S * H + 6 * S * H * H + 2 * S * S * H + S * S + 2 * S + S * S + 5 * S * S + 2 * S * S * H + S * H + S * H + S * H + 2 * H * 2;
    const ins = { input_ids: { dtype: 'int64', dims: [40, 12], batchAxis: 0 }, attention_mask: { dtype: 'int64', dims: [40, 12], batchAxis: 0 } };
    expect(rowCost(m, ins).flopsPerRow).toBe(row);
  });

  it('MODEL_NOT_ONNX for empty input, text, JSON, .npy bytes and random bytes, with the field named', async () => {
    expect(await errCodeAsync(() => decodeModel(new Uint8Array(0)))).toBe('MODEL_NOT_ONNX');
    expect(await errCodeAsync(() => decodeModel(new TextEncoder().encode('{"model": "resnet"}')))).toBe('MODEL_NOT_ONNX');
    expect(await errCodeAsync(() => decodeModel(new TextEncoder().encode('hello, this is not a model\n')))).toBe('MODEL_NOT_ONNX');
    expect(await errCodeAsync(() => decodeModel(encodeNpy({ dtype: 'float32', dims: [2], data: new Float32Array(2) })))).toBe('MODEL_NOT_ONNX');
    await expect(decodeModel(new Uint8Array([0xff, 0xff]), 'jobs/7/model.onnx')).rejects.toThrow(/^jobs\/7\/model\.onnx: expected an ONNX model/);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async (b) => {
        expect(await errCodeAsync(() => decodeModel(b))).toBe('MODEL_NOT_ONNX');
      }),
      { seed: 1234, numRuns: 300 },
    );
  });

  it('MODEL_NOT_ONNX for a model cut anywhere inside its graph (a truncated upload)', async () => {
    const model = await matmulModel(4, 3);
    const proto = await loadOnnxProto();
    const m = proto.ModelProto.decode(model);
    expect(m.graph!.output!.length).toBe(1);
    for (let n = 0; n < model.length - 10; n++) {
      expect(await errCodeAsync(() => decodeModel(model.subarray(0, n))), `prefix ${n}`).toBe('MODEL_NOT_ONNX');
    }
  });
});

describe('cost table, from real input shapes', () => {
  it('MatMul [batch,8]·[8,16] costs 2·8·16 per row', async () => {
    expect(await perRow(matmulModel(8, 16), { x: [10, 8] })).toBe(2 * 8 * 16);
  });

  it('batched MatMul counts every matrix product', async () => {
    const g = new GraphBuilder({ name: 'bmm', seed: 1 });
    const x = g.input('x', 'float32', ['b', 3, 5, 6]);
    g.output(g.op('MatMul', [x, g.weight('w', [6, 2])]), 'float32', ['b', 3, 5, 2], 'y');
    expect(await perRow(g.toBytes(), { x: [4, 3, 5, 6] })).toBe(2 * 3 * 5 * 6 * 2);
  });

  it('Gemm with transB and C: 2·K·N + N per row', async () => {
    const g = new GraphBuilder({ name: 'gemm', seed: 1 });
    const x = g.input('x', 'float32', ['n', 8]);
    g.output(g.op('Gemm', [x, g.weight('w', [16, 8]), g.weight('c', [16])], { transB: attr.int(1) }), 'float32', ['n', 16], 'y');
    expect(await perRow(g.toBytes(), { x: [3, 8] })).toBe(2 * 8 * 16 + 16);
  });

  it('Conv: 2·Cout·Cin/groups·kh·kw·Hout·Wout, for padding, stride and groups', async () => {
    const conv = async (cin: number, hw: number, w: number[], attrs: Record<string, ReturnType<typeof attr.int>>, bias: boolean): Promise<number> => {
      const g = new GraphBuilder({ name: 'conv', seed: 1 });
      const x = g.input('x', 'float32', ['n', cin, hw, hw]);
      const ins = [x, g.weight('w', w, { fanIn: 9 })];
      if (bias) ins.push(g.weight('b', [w[0]!]));
      g.output(g.op('Conv', ins, attrs), 'float32', ['n', w[0]!, 'h', 'w'], 'y');
      return perRow(g.toBytes(), { x: [2, cin, hw, hw] });
    };
    expect(await conv(3, 8, [4, 3, 3, 3], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }, false)).toBe(2 * 4 * 3 * 9 * 8 * 8);
    expect(await conv(3, 8, [4, 3, 3, 3], { pads: attr.ints([1, 1, 1, 1]) }, true)).toBe(2 * 4 * 3 * 9 * 64 + 4 * 64);
    expect(await conv(3, 8, [4, 3, 3, 3], { strides: attr.ints([2, 2]) }, false)).toBe(2 * 4 * 3 * 9 * 3 * 3);
    expect(await conv(4, 6, [4, 1, 3, 3], { group: attr.int(4), auto_pad: attr.string('VALID') }, false)).toBe(2 * 4 * 1 * 9 * 4 * 4);
    expect(await conv(3, 7, [2, 3, 3, 3], { auto_pad: attr.string('SAME_UPPER'), strides: attr.ints([2, 2]) }, false)).toBe(2 * 2 * 3 * 9 * 4 * 4);
  });

  it('pools, softmax, layer norm, CumSum and elementwise ops follow the documented table', async () => {
    const g = new GraphBuilder({ name: 'mix', seed: 1 });
    const x = g.input('x', 'float32', ['n', 2, 8, 8]);
    const p = g.op('MaxPool', [x], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }); // 2×4×4 out, ×4 → 128
    const r = g.op('Relu', [p]); // 32
    const gap = g.op('GlobalAveragePool', [r]); // 32 (input elements)
    const f = g.op('Flatten', [gap]); // 0, → [n, 2]
    const s = g.op('Softmax', [f]); // 5·2 = 10
    const ln = g.op('LayerNormalization', [s, g.floats('gamma', [1, 1])]); // 7·2 = 14
    const cs = g.op('CumSum', [ln, g.int64s('ax', [1], [])]); // 2
    const a = g.op('Add', [cs, g.floats('bias', [0.5, 0.5])]); // 2
    g.output(g.op('ArgMax', [a], { axis: attr.int(1), keepdims: attr.int(0) }), 'int64', ['n'], 'cls'); // 2
    expect(await perRow(g.toBytes(), { x: [5, 2, 8, 8] })).toBe(128 + 32 + 32 + 0 + 10 + 14 + 2 + 2 + 2);
  });

  it('work on constants only (weight preprocessing) is not charged per row', async () => {
    const g = new GraphBuilder({ name: 'pre', seed: 1 });
    const x = g.input('x', 'float32', ['n', 8]);
    const w = g.op('Mul', [g.weight('w', [8, 16]), g.floats('two', [2], [])]); // 128 FLOPs, once
    g.output(g.op('MatMul', [x, w]), 'float32', ['n', 16], 'y');
    const bytes = await g.toBytes();
    expect(countFlops(await decodeModel(bytes), { x: { dtype: 'float32', dims: [1, 8] } }).flops).toBe(128 + 256);
    expect(await perRow(bytes, { x: [4, 8] })).toBe(256);
  });

  it('follows a batch-agnostic Reshape built from Shape → Gather → Concat', async () => {
    const g = new GraphBuilder({ name: 'rs', seed: 1 });
    const x = g.input('x', 'float32', ['n', 4, 6]);
    const n = g.op('Unsqueeze', [g.op('Gather', [g.op('Shape', [x]), g.int64s('zero', [0], [])], { axis: attr.int(0) }), g.int64s('ax0', [0])]);
    const shape = g.op('Concat', [n, g.int64s('minus1', [-1])], { axis: attr.int(0) });
    const flat = g.op('Reshape', [x, shape]); // [n, 24]
    g.output(g.op('MatMul', [flat, g.weight('w', [24, 2])]), 'float32', ['n', 2], 'y');
    const bytes = await g.toBytes();
    expect(countFlops(await decodeModel(bytes), { x: { dtype: 'float32', dims: [5, 4, 6] } }).outputs).toEqual({ y: [5, 2] });
    expect(await perRow(bytes, { x: [5, 4, 6] })).toBe(2 * 24 * 2);
  });

  it('a model run row by row (batch fixed at 1) costs a whole run per row', async () => {
    expect(await perRow(matmulModel(8, 16, 1), { x: [7, 8] }, true)).toBe(256);
  });

  it('non-batch dims are the real ones, not the declared ones', async () => {
    const g = new GraphBuilder({ name: 'seq', seed: 1 });
    const x = g.input('x', 'float32', ['n', 'seq', 8]);
    g.output(g.op('MatMul', [x, g.weight('w', [8, 4])]), 'float32', ['n', 'seq', 4], 'y');
    expect(await perRow(g.toBytes(), { x: [2, 10, 8] })).toBe(10 * 2 * 8 * 4);
  });
});

describe('credit that is what ran', () => {
  it('the CumSum model whose intermediate is declared [batch, 1e9] costs 8 FLOPs a row, not ~2 GFLOP', async () => {
    const m = await fixture('cumsum_mint');
    const r = rowCost(m, { x: { dtype: 'float32', dims: [256, 4], batchAxis: 0 } });
    expect(r.flopsPerRow).toBe(4 + 4); // CumSum over 4 floats + Relu over 4
    expect(r.flopsPerRow * 256).toBe(2048); // the job: 2 kFLOP, where the old count credited 512 GFLOP
    expect(r.outputCost).toEqual({});
  });

  it('declared output dims never raise credit: an op outside the table is costed 0 and so is what needs its shape', async () => {
    const g = new GraphBuilder({ name: 'unk', seed: 1, opsets: { 'com.example': 1 } });
    const x = g.input('x', 'float32', ['n', 5]);
    const u = g.op('Mystery', [x], {}, undefined, 'com.example'); // shape unknowable
    const big = g.op('MatMul', [u, g.weight('w', [5, 1000])]); // needs u's shape: 0
    g.output(g.op('Relu', [big]), 'float32', ['n', 1_000_000_000], 'y'); // declared huge: ignored
    g.output(g.op('Relu', [x]), 'float32', ['n', 5], 'z');
    const m = await decodeModel(await g.toBytes());
    const r = rowCost(m, { x: { dtype: 'float32', dims: [4, 5], batchAxis: 0 } });
    expect(r.flopsPerRow).toBe(5); // only Relu(x)
    expect(r.notes.join('\n')).toMatch(/com\.example\.Mystery is not in the cost table/);
    // y's shape is unknown: it is credited from the result actually revealed, 1 FLOP per element (Relu).
    expect(r.outputCost).toEqual({ y: 1 });
    expect(r.outputBatchAxes).toEqual({ y: undefined, z: 0 });
    expect(costFromOutputs(r.outputCost, { y: 4 * 1000, z: 20 })).toBe(4000);
  });

  it('costFromOutputs ignores outputs without a rate and counts that are not sizes', () => {
    expect(costFromOutputs({ a: 2, b: 0 }, { a: 10, b: 99, c: 1000 })).toBe(20);
    expect(costFromOutputs({ a: 2 }, { a: -5 })).toBe(0);
    expect(costFromOutputs({ a: 2 }, { a: Number.NaN })).toBe(0);
  });

  it('never refuses: a reference to nothing and a cycle are costed as far as they go and noted', async () => {
    const g = new GraphBuilder({ name: 'broken', seed: 1 });
    const x = g.input('x', 'float32', ['n', 4]);
    g.output(g.op('Relu', ['nowhere']), 'float32', ['n', 4], 'a');
    g.opN('Add', ['c2', x], ['c1']);
    g.opN('Add', ['c1', x], ['c2']);
    g.output(g.op('Neg', [x]), 'float32', ['n', 4], 'b');
    g.output('c2', 'float32', ['n', 4]);
    const m = await decodeModel(await g.toBytes());
    const c = countFlops(m, { x: { dtype: 'float32', dims: [2, 4] } });
    expect(c.flops).toBe(8); // Neg over [2, 4]; the dangling Relu and the cycle's Adds have no shapes
    expect(c.outputs.b).toEqual([2, 4]);
    expect(c.outputs.a).toBeNull();
    expect(c.notes.join('\n')).toMatch(/reads "nowhere", which nothing defines/);
    expect(c.notes.join('\n')).toMatch(/form a cycle/);
    expect(c.outputCost).toEqual({ a: 1, c2: 1 });
  });
});

/** A Loop body: (iter, cond, h) → (cond', h·W). `condOut` builds the condition it hands back. */
function loopBody(width: number, condOut: (b: GraphBuilder) => string): GraphBuilder {
  const b = new GraphBuilder({ name: 'body', seed: 9 });
  b.input('iter', 'int64', []);
  b.input('cond_in', 'bool', []);
  const h = b.input('h_in', 'float32', ['n', width]);
  b.output(condOut(b), 'bool', [], 'cond_out');
  b.output(b.op('MatMul', [h, b.weight('W', [width, width])]), 'float32', ['n', width], 'h_out');
  return b;
}

describe('subgraphs', () => {
  it('the If/Loop fixture: 3 loop iterations of MatMul + Tanh, then the If branch its mode selects (the cheaper when unknown)', async () => {
    const m = await fixture('if_loop');
    const cost = (values?: number[]): ReturnType<typeof rowCost> =>
      rowCost(m, { x: { dtype: 'float32', dims: [30, 8], batchAxis: 0 }, mode: { dtype: 'bool', dims: [], batchAxis: null, ...(values ? { values } : {}) } });
    const loop = 3 * (2 * 8 * 8 + 8);
    expect(cost([1]).flopsPerRow).toBe(loop + 2 * 8 * 4); // then: y·A
    expect(cost([0]).flopsPerRow).toBe(loop + 4); // else: Relu of 4 columns
    const unknown = cost();
    expect(unknown.flopsPerRow).toBe(loop + 4);
    expect(unknown.notes.join('\n')).toMatch(/If.*condition is not known before the run; costed as the cheaper branch/);
  });

  it('If with a condition known before the run costs the branch it takes', async () => {
    const cheap = new GraphBuilder({ name: 'cheap', seed: 1 });
    cheap.output(cheap.op('Relu', ['x']), 'float32', null, 'r');
    const dear = new GraphBuilder({ name: 'dear', seed: 1 });
    dear.output(dear.op('MatMul', ['x', dear.weight('w', [8, 8])]), 'float32', null, 'd');
    const g = new GraphBuilder({ name: 'if', seed: 1 });
    g.input('x', 'float32', ['n', 8]);
    const flag = g.input('flag', 'int64', []);
    const c = g.op('Equal', [flag, g.int64s('seven', [7], [])]);
    g.output(g.op('If', [c], { then_branch: attr.graph(dear), else_branch: attr.graph(cheap) }), 'float32', ['n', 8], 'y');
    const m = await decodeModel(await g.toBytes());
    const cost = (values?: number[]): number => rowCost(m, { x: { dtype: 'float32', dims: [4, 8], batchAxis: 0 }, flag: { dtype: 'int64', dims: [], batchAxis: null, ...(values ? { values } : {}) } }).flopsPerRow;
    expect(cost([7])).toBe(2 * 8 * 8);
    expect(cost([3])).toBe(8);
    expect(cost()).toBe(8); // unknown: the cheaper branch, never the dearer
  });

  it('Loop: its trip count when it cannot stop early; one iteration when it can or the count is unknown', async () => {
    const build = async (trip: 'const' | 'input', body: GraphBuilder): Promise<DecodedModel> => {
      const g = new GraphBuilder({ name: 'loop', seed: 1 });
      const x = g.input('x', 'float32', ['n', 4]);
      const M = trip === 'const' ? g.int64s('M', [5], []) : g.input('M', 'int64', []);
      g.output(g.op('Loop', [M, g.initializer('t', { dtype: 'bool', dims: [], data: Uint8Array.from([1]) }), x], { body: attr.graph(body) }), 'float32', ['n', 4], 'y');
      return decodeModel(await g.toBytes());
    };
    const x: JobInputShape = { dtype: 'float32', dims: [3, 4], batchAxis: 0 };
    const passThrough = await build('const', loopBody(4, (b) => b.op('Identity', ['cond_in'])));
    expect(rowCost(passThrough, { x }).flopsPerRow).toBe(5 * 2 * 4 * 4);
    // The body computes its condition from data: it may stop at any iteration → one counted.
    const early = await build('const', loopBody(4, (b) => b.op('Greater', [b.op('ReduceSum', ['h_in'], { keepdims: attr.int(0) }), b.floats('z', [0], [])])));
    const e = rowCost(early, { x });
    expect(e.flopsPerRow).toBe(2 * 4 * 4 + 4);
    expect(e.notes.join('\n')).toMatch(/may stop before its trip count; costed as one iteration/);
    const byInput = await build('input', loopBody(4, (b) => b.op('Identity', ['cond_in'])));
    expect(rowCost(byInput, { x, M: { dtype: 'int64', dims: [], batchAxis: null, values: [7] } }).flopsPerRow).toBe(7 * 32);
    expect(rowCost(byInput, { x, M: { dtype: 'int64', dims: [], batchAxis: null } }).flopsPerRow).toBe(32);
  });

  it('a loop whose carried shape grows is followed step by step (the beam fixture: 6 steps of a growing sequence)', async () => {
    const m = await fixture('beam');
    const r = rowCost(m, {
      input_ids: { dtype: 'int32', dims: [20, 5], batchAxis: 0 },
      max_new_tokens: { dtype: 'int32', dims: [1], batchAxis: null, values: [6] },
      temperature: { dtype: 'float32', dims: [1], batchAxis: null, values: [0.7] },
    });
    // Step with a sequence of length L: ReduceMean 8·L, MatMul 2·8·20, Div 20, ArgMax 20; L = 5..10.
    expect(r.flopsPerRow).toBe(8 * (5 + 6 + 7 + 8 + 9 + 10) + 6 * (320 + 20 + 20));
    expect(r.outputBatchAxes).toEqual({ sequences: 0 });
  });

  it('Scan costs its body once per element of the scanned axis', async () => {
    const body = new GraphBuilder({ name: 'scan_body', seed: 2 });
    const s = body.input('s_in', 'float32', ['n', 3]);
    const xi = body.input('x_i', 'float32', ['n', 3]);
    const next = body.op('Add', [body.op('MatMul', [s, body.weight('U', [3, 3])]), xi]);
    body.output(next, 'float32', ['n', 3], 's_out');
    body.output(body.op('Relu', [next]), 'float32', ['n', 3], 'y_i');
    const g = new GraphBuilder({ name: 'scan', seed: 1 });
    const x = g.input('x', 'float32', ['n', 'T', 3]);
    const s0 = g.input('s0', 'float32', ['n', 3]);
    const [sN, ys] = g.opN('Scan', [s0, x], ['sN', 'ys'], { body: attr.graph(body), num_scan_inputs: attr.int(1), scan_input_axes: attr.ints([1]), scan_output_axes: attr.ints([1]) });
    g.output(sN!, 'float32', ['n', 3]);
    g.output(ys!, 'float32', ['n', 'T', 3]);
    const m = await decodeModel(await g.toBytes());
    const c = countFlops(m, { x: { dtype: 'float32', dims: [2, 6, 3] }, s0: { dtype: 'float32', dims: [2, 3] } });
    expect(c.flops).toBe(6 * 2 * (2 * 3 * 3 + 3 + 3));
    expect(c.outputs).toEqual({ sN: [2, 3], ys: [2, 6, 3] });
  });

  it('the VAD fixture: nested Ifs resolved from the sample rate sent whole; the state splits on axis 1', async () => {
    const m = await fixture('vad');
    const cost = (sr: number): ReturnType<typeof rowCost> =>
      rowCost(m, {
        audio: { dtype: 'float32', dims: [24, 64], batchAxis: 0 },
        state: { dtype: 'float32', dims: [2, 24, 16], batchAxis: 1 },
        sr: { dtype: 'int64', dims: [], batchAxis: null, values: [sr] },
      });
    const cell = 2 * (2 * 16 * 16 + 16 + 16) + 2 * 16 + 1; // two recurrent steps, head, sigmoid
    expect(cost(16000).flopsPerRow).toBe(2 * 2 * 64 * 16 + cell); // outer then: MatMul, nested then: MatMul again
    expect(cost(8000).flopsPerRow).toBe(2 * 32 * 16 + cell); // outer else: half the audio
    expect(cost(16000).outputBatchAxes).toEqual({ output: 0, stateN: 1 });
  });
});
