/**
 * ONNX tooling without ONNX Runtime: protobuf round trips, builder → decoder, FLOPs per row
 * for hand-computable graphs (MatMul, Gemm, Conv, pools, constants-only work, fixed and
 * absent batch dims, unknown ops), and MODEL_NOT_ONNX for garbage and truncations.
 * The cross-check against ONNX Runtime's own view of the models is in test/e2e/workloads.test.ts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GraphBuilder, Prng, attr } from '../../src/onnx/builder.ts';
import { ProtoWriter, decodeFields } from '../../src/onnx/proto.ts';
import { inspectModel, decodeModel, countFlops } from '../../src/onnx/index.ts';
import { encodeNpy } from '../../src/util/npy.ts';
import { errCode } from '../helpers/errors.ts';


/** y = x·W with x [batch, K], W [K, N]. */
function matmulModel(K: number, N: number, batch: number | string = 'batch'): Uint8Array {
  const g = new GraphBuilder({ name: 'mm', seed: 1 });
  const x = g.input('x', 'float32', [batch, K]);
  g.output(g.op('MatMul', [x, g.weight('w', [K, N])]), 'float32', [batch, N], 'y');
  return g.toBytes();
}

describe('protobuf wire format', () => {
  it('round-trips varints (incl. negative int64 as 10 bytes), floats, strings and nested messages', () => {
    const inner = new ProtoWriter().string(1, 'héllo').varint(2, -1);
    const w = new ProtoWriter().varint(1, 300).float(2, 1.5).message(3, inner).packedVarints(4, [1, 2, 1000000]);
    const f = decodeFields(w.finish());
    expect(f.map((x) => [x.field, x.wt])).toEqual([[1, 0], [2, 5], [3, 2], [4, 2]]);
    expect(f[0]!.value).toBe(300n);
    const nested = decodeFields(f[2]!.value as Uint8Array);
    expect(new TextDecoder().decode(nested[0]!.value as Uint8Array)).toBe('héllo');
    expect(BigInt.asIntN(64, nested[1]!.value as bigint)).toBe(-1n);
    expect((f[2]!.value as Uint8Array).length).toBe(2 + 6 + 1 + 10); // -1 takes 10 varint bytes
  });
});

describe('builder → decoder', () => {
  it('keeps inputs, outputs, dtypes, symbolic and fixed dims, attributes and opset', () => {
    const g = new GraphBuilder({ name: 't', seed: 3, opset: 17, irVersion: 8 });
    const ids = g.input('ids', 'int64', ['batch', 7]);
    const m = g.input('mask', 'bool', ['batch', 7]);
    const e = g.op('Gather', [g.weight('emb', [10, 4]), ids], { axis: attr.int(0) });
    const s = g.op('Softmax', [e], { axis: attr.int(-1) });
    const ln = g.op('LayerNormalization', [s, g.weight('gm', [4], { kind: 'const', scale: 1 })], { axis: attr.int(-1), epsilon: attr.float(1e-5) });
    g.output(ln, 'float32', ['batch', 7, 4], 'out');
    g.output(m, 'bool', ['batch', 7], 'mask_out');
    const d = decodeModel(g.toBytes());
    expect(d.opset).toBe(17);
    expect(d.irVersion).toBe(8);
    expect(d.inputs).toEqual([
      { name: 'ids', dtype: 'int64', dims: ['batch', 7] },
      { name: 'mask', dtype: 'bool', dims: ['batch', 7] },
    ]);
    expect(d.outputs.map((o) => o.name)).toEqual(['out', 'mask_out']);
    const soft = d.nodes.find((n) => n.op === 'Softmax')!;
    expect(soft.attrs.axis!.i).toBe(-1);
    const lnNode = d.nodes.find((n) => n.op === 'LayerNormalization')!;
    expect(lnNode.attrs.epsilon!.f).toBeCloseTo(1e-5, 10);
    expect(d.initializers.get('emb')!.dims).toEqual([10, 4]);
  });

  it('is deterministic: same seed → identical bytes; a different seed or name → different weights', () => {
    expect(Buffer.from(matmulModel(8, 16)).equals(Buffer.from(matmulModel(8, 16)))).toBe(true);
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
    expect(errCode(() => g.input('x', 'float32', [1]))).toBe('ONNX_BUILD');
  });
});

describe('FLOPs per row', () => {
  it('MatMul [batch,8]·[8,16] costs 2·8·16 per row', () => {
    const i = inspectModel(matmulModel(8, 16));
    expect(i.batchDim).toBe('dynamic');
    expect(i.flopsPerRow).toBe(2 * 8 * 16);
    expect(i.notes).toEqual([]);
  });

  it('batched MatMul counts every matrix product', () => {
    const g = new GraphBuilder({ name: 'bmm', seed: 1 });
    const x = g.input('x', 'float32', ['b', 3, 5, 6]);
    g.output(g.op('MatMul', [x, g.weight('w', [6, 2])]), 'float32', ['b', 3, 5, 2], 'y');
    expect(inspectModel(g.toBytes()).flopsPerRow).toBe(2 * 3 * 5 * 6 * 2);
  });

  it('Gemm with transB and C: 2·K·N + N per row', () => {
    const g = new GraphBuilder({ name: 'gemm', seed: 1 });
    const x = g.input('x', 'float32', ['n', 8]);
    g.output(g.op('Gemm', [x, g.weight('w', [16, 8]), g.weight('c', [16])], { transB: attr.int(1) }), 'float32', ['n', 16], 'y');
    expect(inspectModel(g.toBytes()).flopsPerRow).toBe(2 * 8 * 16 + 16);
  });

  it('Conv: 2·Cout·Cin/groups·kh·kw·Hout·Wout, for padding, stride and groups', () => {
    const conv = (cin: number, hw: number, w: number[], attrs: Record<string, ReturnType<typeof attr.int>>, bias: boolean): number => {
      const g = new GraphBuilder({ name: 'conv', seed: 1 });
      const x = g.input('x', 'float32', ['n', cin, hw, hw]);
      const ins = [x, g.weight('w', w, { fanIn: 9 })];
      if (bias) ins.push(g.weight('b', [w[0]!]));
      g.output(g.op('Conv', ins, attrs), 'float32', ['n', w[0]!, 'h', 'w'], 'y');
      return inspectModel(g.toBytes()).flopsPerRow;
    };
    // 3→4 channels, 3×3, pad 1 on 8×8: output 8×8.
    expect(conv(3, 8, [4, 3, 3, 3], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }, false)).toBe(2 * 4 * 3 * 9 * 8 * 8);
    // With a bias: plus one add per output element.
    expect(conv(3, 8, [4, 3, 3, 3], { pads: attr.ints([1, 1, 1, 1]) }, true)).toBe(2 * 4 * 3 * 9 * 64 + 4 * 64);
    // Stride 2, no padding: (8 − 3)/2 + 1 = 3.
    expect(conv(3, 8, [4, 3, 3, 3], { strides: attr.ints([2, 2]) }, false)).toBe(2 * 4 * 3 * 9 * 3 * 3);
    // Depthwise: 4 groups of 1 channel, VALID on 6×6 → 4×4.
    expect(conv(4, 6, [4, 1, 3, 3], { group: attr.int(4), auto_pad: attr.string('VALID') }, false)).toBe(2 * 4 * 1 * 9 * 4 * 4);
    // SAME_UPPER with stride 2 on 7×7 → ceil(7/2) = 4.
    expect(conv(3, 7, [2, 3, 3, 3], { auto_pad: attr.string('SAME_UPPER'), strides: attr.ints([2, 2]) }, false)).toBe(2 * 2 * 3 * 9 * 4 * 4);
  });

  it('pools, softmax, layer norm and elementwise ops follow the documented table', () => {
    const g = new GraphBuilder({ name: 'mix', seed: 1 });
    const x = g.input('x', 'float32', ['n', 2, 8, 8]);
    const p = g.op('MaxPool', [x], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }); // 2×4×4 out, ×4 → 128
    const r = g.op('Relu', [p]); // 32
    const gap = g.op('GlobalAveragePool', [r]); // 32 (input elements)
    const f = g.op('Flatten', [gap]); // 0, → [n, 2]
    const s = g.op('Softmax', [f]); // 5·2 = 10
    const ln = g.op('LayerNormalization', [s, g.floats('gamma', [1, 1])]); // 7·2 = 14
    const a = g.op('Add', [ln, g.floats('bias', [0.5, 0.5])]); // 2
    g.output(g.op('ArgMax', [a], { axis: attr.int(1), keepdims: attr.int(0) }), 'int64', ['n'], 'cls'); // 2
    expect(inspectModel(g.toBytes()).flopsPerRow).toBe(128 + 32 + 32 + 0 + 10 + 14 + 2 + 2);
  });

  it('work on constants only (weight preprocessing) is not charged per row', () => {
    const g = new GraphBuilder({ name: 'pre', seed: 1 });
    const x = g.input('x', 'float32', ['n', 8]);
    const w = g.op('Mul', [g.weight('w', [8, 16]), g.floats('two', [2], [])]); // 128 FLOPs, once
    g.output(g.op('MatMul', [x, w]), 'float32', ['n', 16], 'y');
    const m = decodeModel(g.toBytes());
    expect(countFlops(m, 1, true).flops).toBe(128 + 256);
    expect(inspectModel(g.toBytes()).flopsPerRow).toBe(256);
  });

  it('follows a batch-agnostic Reshape built from Shape → Gather → Concat', () => {
    const g = new GraphBuilder({ name: 'rs', seed: 1 });
    const x = g.input('x', 'float32', ['n', 4, 6]);
    const n = g.op('Unsqueeze', [g.op('Gather', [g.op('Shape', [x]), g.int64s('zero', [0], [])], { axis: attr.int(0) }), g.int64s('ax0', [0])]);
    const shape = g.op('Concat', [n, g.int64s('minus1', [-1])], { axis: attr.int(0) });
    const flat = g.op('Reshape', [x, shape]); // [n, 24]
    g.output(g.op('MatMul', [flat, g.weight('w', [24, 2])]), 'float32', ['n', 2], 'y');
    const m = decodeModel(g.toBytes());
    expect(countFlops(m, 5, true).outputDims).toEqual([[5, 2]]);
    expect(inspectModel(g.toBytes()).flopsPerRow).toBe(2 * 24 * 2);
  });

  it("batchDim 'fixed1' charges the whole graph; 'none' charges the whole graph as one row", () => {
    const fixed = inspectModel(matmulModel(8, 16, 1));
    expect(fixed.batchDim).toBe('fixed1');
    expect(fixed.flopsPerRow).toBe(256);
    const none = inspectModel(matmulModel(8, 16, 4));
    expect(none.batchDim).toBe('none');
    expect(none.flopsPerRow).toBe(4 * 256);
  });

  it('an op outside the table costs its output elements and is named in notes', () => {
    const g = new GraphBuilder({ name: 'unk', seed: 1 });
    const x = g.input('x', 'float32', ['n', 5]);
    g.output(g.op('Hardmax', [x]), 'float32', ['n', 5], 'y');
    const i = inspectModel(g.toBytes());
    expect(i.flopsPerRow).toBe(5);
    expect(i.notes.join('\n')).toMatch(/Hardmax is not in the cost table/);
  });

  it('non-batch symbolic dims count as 1 and are noted', () => {
    const g = new GraphBuilder({ name: 'seq', seed: 1 });
    const x = g.input('x', 'float32', ['n', 'seq', 8]);
    g.output(g.op('MatMul', [x, g.weight('w', [8, 4])]), 'float32', ['n', 'seq', 4], 'y');
    const i = inspectModel(g.toBytes());
    expect(i.flopsPerRow).toBe(2 * 8 * 4);
    expect(i.notes.join('\n')).toMatch(/symbolic dim seq of x counted as 1/);
  });

  it('MODEL_FLOPS for negative dims or a cost beyond 2^53', () => {
    expect(errCode(() => inspectModel(matmulModel(8, 16, -4)))).toBe('MODEL_FLOPS');
    const g = new GraphBuilder({ name: 'huge', seed: 1 });
    const x = g.input('x', 'float32', ['n', 2 ** 30, 2 ** 30]);
    g.output(g.op('Relu', [g.op('Relu', [g.op('Relu', [x])])]), 'float32', ['n', 2 ** 30, 2 ** 30], 'y');
    expect(errCode(() => inspectModel(g.toBytes()))).toBe('MODEL_FLOPS');
  });

  it('MODEL_GRAPH for a node reading a value nothing defines', () => {
    const g = new GraphBuilder({ name: 'bad', seed: 1 });
    g.input('x', 'float32', ['n', 2]);
    g.output(g.op('Relu', ['nowhere']), 'float32', ['n', 2], 'y');
    expect(errCode(() => inspectModel(g.toBytes()))).toBe('MODEL_GRAPH');
  });
});

describe('MODEL_NOT_ONNX', () => {
  const model = matmulModel(4, 3);

  it('for empty input, text, JSON and .npy bytes, with the field named', () => {
    expect(errCode(() => inspectModel(new Uint8Array(0)))).toBe('MODEL_NOT_ONNX');
    expect(errCode(() => inspectModel(new TextEncoder().encode('{"model": "resnet"}')))).toBe('MODEL_NOT_ONNX');
    expect(errCode(() => inspectModel(new TextEncoder().encode('hello, this is not a model\n')))).toBe('MODEL_NOT_ONNX');
    expect(errCode(() => inspectModel(encodeNpy({ dtype: 'float32', dims: [2], data: new Float32Array(2) })))).toBe('MODEL_NOT_ONNX');
    expect(() => inspectModel(new Uint8Array([0xff, 0xff]), 'jobs/7/model.onnx')).toThrow(/^jobs\/7\/model\.onnx: expected an ONNX model/);
  });

  it('for every strict prefix of a valid model (a truncated upload)', () => {
    expect(inspectModel(model).flopsPerRow).toBe(24);
    for (let n = 0; n < model.length; n++) {
      expect(errCode(() => inspectModel(model.subarray(0, n))), `prefix ${n}`).toBe('MODEL_NOT_ONNX');
    }
  });

  it('for random bytes (seeded)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 512 }), (b) => {
        expect(errCode(() => inspectModel(b))).toBe('MODEL_NOT_ONNX');
      }),
      { seed: 1234, numRuns: 1000 },
    );
  });
});
