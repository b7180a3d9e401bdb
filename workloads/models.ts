/**
 * The sample workloads' model graphs and their sample inputs, all from fixed seeds. Used by
 * `workloads/generate.ts` (which writes workloads/<name>/) and by benchmarks through
 * `makeInputs(name, rows, seed)`. Nothing here touches the disk.
 */
import { GraphBuilder, Prng, attr } from '../src/onnx/builder.ts';
import type { HostTensor } from '../src/util/tensor.ts';
import { UserError } from '../src/util/errors.ts';

/** A workload's static description: how to build it and what its manifest says. */
export interface WorkloadSpec {
  name: string;
  /** One line for docs and the CLI. */
  summary: string;
  /** Seed for weights (inputs use `inputSeed`). */
  seed: number;
  /** Seed for the committed sample inputs. */
  inputSeed: number;
  /** Rows in the committed sample input. */
  rows: number;
  /** Rows per work unit in job.json. */
  unitRows: number;
  /** Comparison policy in job.json. */
  policy: string;
  /** Replicas per unit in job.json. */
  replicas: number;
  build(): Promise<Uint8Array>;
  makeInputs(rows: number, seed: number): Record<string, HostTensor>;
}

function floats(rng: Prng, n: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}

// ---------------------------------------------------------------- mlp

/** Tabular features in; 32 matches a typical small tabular model and keeps the input file tiny. */
const MLP_FEATURES = 32;
const MLP_HIDDEN = [128, 64] as const;
const MLP_CLASSES = 3;

async function buildMlp(): Promise<Uint8Array> {
  const g = new GraphBuilder({ name: 'mlp', seed: 101 });
  let h = g.input('features', 'float32', ['batch', MLP_FEATURES]);
  let width: number = MLP_FEATURES;
  const layers = [...MLP_HIDDEN, MLP_CLASSES];
  layers.forEach((out, i) => {
    const w = g.weight(`fc${i}.weight`, [width, out]);
    const b = g.weight(`fc${i}.bias`, [out], { kind: 'uniform', scale: 0.05 });
    h = g.op('Gemm', [h, w, b]);
    if (i < layers.length - 1) h = g.op('Relu', [h]);
    width = out;
  });
  g.output(h, 'float32', ['batch', MLP_CLASSES], 'logits');
  const p = g.op('Softmax', [h], { axis: attr.int(-1) });
  g.output(p, 'float32', ['batch', MLP_CLASSES], 'probs');
  return g.toBytes();
}

function mlpInputs(rows: number, seed: number): Record<string, HostTensor> {
  const rng = new Prng(seed, 'mlp/features');
  return { features: { dtype: 'float32', dims: [rows, MLP_FEATURES], data: floats(rng, rows * MLP_FEATURES, -2, 2) } };
}

// ---------------------------------------------------------------- cnn

/** CIFAR-like images: 3×32×32, stored as uint8 pixels so the sample input stays small (3 KiB/row). */
const CNN_C = 3;
const CNN_HW = 32;
/**
 * Conv stages (3×3 convs per stage, 2×2 max-pool between stages), VGG-style. Sized so one row
 * costs ~0.2 GFLOPs — compute-heavy next to the mlp's ~25 kFLOPs — while the weights stay
 * under ~2.5 MB (a 256→256 conv would double the file).
 */
const CNN_STAGES: readonly (readonly number[])[] = [[64, 64], [128, 128], [256]];
const CNN_CLASSES = 10;
/** Half-width of the dense layer's uniform weights (~6× He): max class probabilities on the sample images span ~0.4–0.99 instead of sitting near 1/10. */
const CNN_FC_SCALE = 1;

async function buildCnn(): Promise<Uint8Array> {
  const g = new GraphBuilder({ name: 'cnn', seed: 202 });
  const img = g.input('image', 'uint8', ['batch', CNN_C, CNN_HW, CNN_HW]);
  // Normalise pixels in-graph: x = pixel/127.5 - 1.
  let x = g.op('Cast', [img], { to: attr.int(1) });
  x = g.op('Sub', [g.op('Mul', [x, g.floats('scale', [1 / 127.5], [])]), g.floats('one', [1], [])]);
  let cin: number = CNN_C;
  CNN_STAGES.forEach((widths, s) => {
    widths.forEach((cout, j) => {
      const w = g.weight(`conv${s}.${j}.weight`, [cout, cin, 3, 3], { fanIn: cin * 9 });
      const b = g.weight(`conv${s}.${j}.bias`, [cout], { kind: 'uniform', scale: 0.05 });
      x = g.op('Conv', [x, w, b], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
      x = g.op('Relu', [x]);
      cin = cout;
    });
    if (s < CNN_STAGES.length - 1) x = g.op('MaxPool', [x], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
  });
  x = g.op('GlobalAveragePool', [x]);
  x = g.op('Flatten', [x], { axis: attr.int(1) });
  // Centre the pooled features (all ≥ 0 after ReLU) per image so the classifier sees what
  // differs between images, not their shared mean; scaled so softmax outputs are decisive.
  x = g.op('Sub', [x, g.op('ReduceMean', [x], { axes: attr.ints([1]), keepdims: attr.int(1) })]);
  const fcW = g.weight('fc.weight', [cin, CNN_CLASSES], { kind: 'uniform', scale: CNN_FC_SCALE });
  const logits = g.op('Gemm', [x, fcW, g.weight('fc.bias', [CNN_CLASSES], { kind: 'uniform', scale: 0.05 })]);
  const p = g.op('Softmax', [logits], { axis: attr.int(-1) });
  g.output(p, 'float32', ['batch', CNN_CLASSES], 'probs');
  return g.toBytes();
}

function cnnInputs(rows: number, seed: number): Record<string, HostTensor> {
  const rng = new Prng(seed, 'cnn/image');
  const n = rows * CNN_C * CNN_HW * CNN_HW;
  const data = new Uint8Array(n);
  // Smooth-ish synthetic images: a per-image gradient plus noise, so activations are not pure noise.
  for (let r = 0; r < rows; r++) {
    const fx = rng.uniform(-4, 4);
    const fy = rng.uniform(-4, 4);
    const base = rng.uniform(64, 192);
    const tint = [rng.uniform(-60, 60), rng.uniform(-60, 60), rng.uniform(-60, 60)];
    const freq = rng.uniform(0.1, 0.8);
    for (let c = 0; c < CNN_C; c++) {
      for (let y = 0; y < CNN_HW; y++) {
        for (let xx = 0; xx < CNN_HW; xx++) {
          const stripe = ((xx + y) * freq) % 2 < 1 ? 24 : -24; // a texture whose period varies per image
          const v = base + tint[c]! + fx * (xx - 16) + fy * (y - 16) + stripe + rng.uniform(-24, 24);
          data[((r * CNN_C + c) * CNN_HW + y) * CNN_HW + xx] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
    }
  }
  return { image: { dtype: 'uint8', dims: [rows, CNN_C, CNN_HW, CNN_HW], data } };
}

// ---------------------------------------------------------------- encoder

/** Sequence length (fixed): short enough that attention stays cheap on CPU, long enough to be a real sequence. */
const ENC_SEQ = 16;
/** Vocabulary of token ids. */
const ENC_VOCAB = 512;
/** Model width and heads: 64 = 4 heads × 16, the smallest shape where multi-head reshapes are meaningful. */
const ENC_D = 64;
const ENC_HEADS = 4;
/** FFN width: the usual 4× expansion would be 256; 128 keeps the model small. */
const ENC_FF = 128;

async function buildEncoder(): Promise<Uint8Array> {
  const g = new GraphBuilder({ name: 'encoder', seed: 303 });
  const dh = ENC_D / ENC_HEADS;
  const ids = g.input('input_ids', 'int64', ['batch', ENC_SEQ]);
  const mask = g.input('attention_mask', 'float32', ['batch', ENC_SEQ]);
  const tok = g.weight('embed.tokens', [ENC_VOCAB, ENC_D], { kind: 'uniform', scale: 0.5 });
  const pos = g.weight('embed.positions', [ENC_SEQ, ENC_D], { kind: 'uniform', scale: 0.1 });
  let x = g.op('Add', [g.op('Gather', [tok, ids], { axis: attr.int(0) }), pos]); // [B,S,D]

  const lin = (inp: string, name: string, din: number, dout: number): string =>
    g.op('Add', [g.op('MatMul', [inp, g.weight(`${name}.weight`, [din, dout])]), g.weight(`${name}.bias`, [dout], { kind: 'uniform', scale: 0.02 })]);
  const heads = g.int64s('shape.heads', [0, 0, ENC_HEADS, dh]);
  const split = (t: string, perm: number[]): string => g.op('Transpose', [g.op('Reshape', [t, heads])], { perm: attr.ints(perm) });

  const q = split(lin(x, 'attn.q', ENC_D, ENC_D), [0, 2, 1, 3]); // [B,H,S,dh]
  const k = split(lin(x, 'attn.k', ENC_D, ENC_D), [0, 2, 3, 1]); // [B,H,dh,S]
  const v = split(lin(x, 'attn.v', ENC_D, ENC_D), [0, 2, 1, 3]); // [B,H,S,dh]
  let scores = g.op('Mul', [g.op('MatMul', [q, k]), g.floats('attn.scale', [1 / Math.sqrt(dh)], [])]); // [B,H,S,S]
  // Additive mask: (mask - 1) * 1e4 → 0 for real tokens, -1e4 for padding; broadcast as [B,1,1,S].
  const bias = g.op('Mul', [g.op('Sub', [mask, g.floats('one', [1], [])]), g.floats('attn.mask_scale', [1e4], [])]);
  scores = g.op('Add', [scores, g.op('Unsqueeze', [bias, g.int64s('axes.heads_query', [1, 2])])]);
  const probs = g.op('Softmax', [scores], { axis: attr.int(-1) });
  let ctx = g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: attr.ints([0, 2, 1, 3]) }); // [B,S,H,dh]
  ctx = g.op('Reshape', [ctx, g.int64s('shape.model', [0, 0, ENC_D])]);
  const ln = (t: string, name: string): string =>
    g.op('LayerNormalization', [t, g.weight(`${name}.gamma`, [ENC_D], { kind: 'const', scale: 1 }), g.weight(`${name}.beta`, [ENC_D], { kind: 'const', scale: 0 })], {
      axis: attr.int(-1),
      epsilon: attr.float(1e-5),
    });
  x = ln(g.op('Add', [x, lin(ctx, 'attn.out', ENC_D, ENC_D)]), 'ln1');

  // FFN with exact GELU written as ops: 0.5·h·(1 + erf(h/√2)).
  const h = lin(x, 'ffn.in', ENC_D, ENC_FF);
  const erf = g.op('Erf', [g.op('Mul', [h, g.floats('gelu.inv_sqrt2', [Math.SQRT1_2], [])])]);
  const gelu = g.op('Mul', [g.op('Mul', [h, g.floats('gelu.half', [0.5], [])]), g.op('Add', [erf, 'one'])]);
  x = ln(g.op('Add', [x, lin(gelu, 'ffn.out', ENC_FF, ENC_D)]), 'ln2');
  g.output(x, 'float32', ['batch', ENC_SEQ, ENC_D], 'embedding');

  // Masked mean pool over the sequence: Σ x·m / max(Σ m, 1).
  const m3 = g.op('Unsqueeze', [mask, g.int64s('axes.last', [2])]); // [B,S,1]
  const axis1 = g.int64s('axes.seq', [1]);
  const sum = g.op('ReduceSum', [g.op('Mul', [x, m3]), axis1], { keepdims: attr.int(0) }); // [B,D]
  const count = g.op('Max', [g.op('ReduceSum', [m3, axis1], { keepdims: attr.int(0) }), 'one']); // [B,1]
  g.output(g.op('Div', [sum, count]), 'float32', ['batch', ENC_D], 'pooled');
  return g.toBytes();
}

function encoderInputs(rows: number, seed: number): Record<string, HostTensor> {
  const rng = new Prng(seed, 'encoder/tokens');
  const ids = new BigInt64Array(rows * ENC_SEQ);
  const mask = new Float32Array(rows * ENC_SEQ);
  for (let r = 0; r < rows; r++) {
    const len = 4 + rng.int(ENC_SEQ - 3); // 4..16 real tokens, the rest padding
    for (let s = 0; s < ENC_SEQ; s++) {
      const real = s < len;
      ids[r * ENC_SEQ + s] = real ? BigInt(1 + rng.int(ENC_VOCAB - 1)) : 0n;
      mask[r * ENC_SEQ + s] = real ? 1 : 0;
    }
  }
  return {
    input_ids: { dtype: 'int64', dims: [rows, ENC_SEQ], data: ids },
    attention_mask: { dtype: 'float32', dims: [rows, ENC_SEQ], data: mask },
  };
}

// ---------------------------------------------------------------- rowwise

/** Integer features per row; integer arithmetic makes this the workload for the `exact` policy. */
const ROW_IN = 16;
const ROW_OUT = 8;

async function buildRowwise(): Promise<Uint8Array> {
  const g = new GraphBuilder({ name: 'rowwise', seed: 404 });
  // The first dimension is fixed at 1: a runner must feed this model one row at a time.
  const x = g.input('x', 'int32', [1, ROW_IN]);
  const rng = new Prng(404, 'rowwise/w');
  const w = Int32Array.from({ length: ROW_IN * ROW_OUT }, () => rng.int(17) - 8);
  const b = Int32Array.from({ length: ROW_OUT }, () => rng.int(201) - 100);
  g.initializer('w', { dtype: 'int32', dims: [ROW_IN, ROW_OUT], data: w });
  g.initializer('b', { dtype: 'int32', dims: [1, ROW_OUT], data: b });
  const y = g.op('Relu', [g.op('Add', [g.op('MatMul', [x, 'w']), 'b'])]);
  g.output(y, 'int32', [1, ROW_OUT], 'y');
  return g.toBytes();
}

function rowwiseInputs(rows: number, seed: number): Record<string, HostTensor> {
  const rng = new Prng(seed, 'rowwise/x');
  return { x: { dtype: 'int32', dims: [rows, ROW_IN], data: Int32Array.from({ length: rows * ROW_IN }, () => rng.int(201) - 100) } };
}

// ---------------------------------------------------------------- upscale

/**
 * An image-to-image net in the shape of a super-resolution model (ESPCN-style: convs at low
 * resolution, then a pixel shuffle): uint8 3×80×80 in, float32 3×320×320 out — 1.2 MB of output a
 * row against 19 KB of input, ~2.3 GFLOP a row. The output-heavy workload: at raw ORT speed on
 * two cores (~45 rows/s) results stream out at ~55 MB/s, so moving results costs as much as
 * computing them (the public super-resolution net this stands for: 6 GFLOP and 1.8 MB a row).
 */
const UP_C = 3;
const UP_HW = 80;
const UP_SCALE = 4;
const UP_WIDTH = 64;
/** 3×3 convs at the working width between the first and the last conv. */
const UP_MIDDLE = 4;

async function buildUpscale(): Promise<Uint8Array> {
  const g = new GraphBuilder({ name: 'upscale', seed: 505 });
  const img = g.input('image', 'uint8', ['batch', UP_C, UP_HW, UP_HW]);
  let x = g.op('Cast', [img], { to: attr.int(1) });
  x = g.op('Mul', [x, g.floats('scale', [1 / 255], [])]);
  const conv = (inp: string, name: string, cin: number, cout: number): string => {
    const w = g.weight(`${name}.weight`, [cout, cin, 3, 3], { fanIn: cin * 9 });
    const b = g.weight(`${name}.bias`, [cout], { kind: 'uniform', scale: 0.05 });
    return g.op('Conv', [inp, w, b], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
  };
  x = g.op('Relu', [conv(x, 'head', UP_C, UP_WIDTH)]);
  for (let i = 0; i < UP_MIDDLE; i++) x = g.op('Relu', [conv(x, `body${i}`, UP_WIDTH, UP_WIDTH)]);
  x = conv(x, 'tail', UP_WIDTH, UP_C * UP_SCALE * UP_SCALE);
  x = g.op('DepthToSpace', [x], { blocksize: attr.int(UP_SCALE), mode: attr.string('CRD') });
  const y = g.op('Sigmoid', [x]);
  g.output(y, 'float32', ['batch', UP_C, UP_HW * UP_SCALE, UP_HW * UP_SCALE], 'upscaled');
  return g.toBytes();
}

function upscaleInputs(rows: number, seed: number): Record<string, HostTensor> {
  const rng = new Prng(seed, 'upscale/image');
  const n = rows * UP_C * UP_HW * UP_HW;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.floor(rng.uniform(0, 256));
  return { image: { dtype: 'uint8', dims: [rows, UP_C, UP_HW, UP_HW], data } };
}

// ---------------------------------------------------------------- registry

export const WORKLOADS: readonly WorkloadSpec[] = [
  {
    name: 'cnn',
    summary: 'image classifier CNN, uint8 3×32×32 → 10 class probabilities (compute-heavy)',
    seed: 202,
    inputSeed: 2021,
    rows: 1024,
    unitRows: 64,
    policy: 'allclose:1e-4,1e-5',
    replicas: 2,
    build: buildCnn,
    makeInputs: cnnInputs,
  },
  {
    name: 'mlp',
    summary: 'tabular MLP, 32 features → 128 → 64 → 3 classes (tiny)',
    seed: 101,
    inputSeed: 1011,
    rows: 2048,
    unitRows: 256,
    policy: 'argmax',
    replicas: 2,
    build: buildMlp,
    makeInputs: mlpInputs,
  },
  {
    name: 'encoder',
    summary: 'transformer encoder block, token ids + mask → per-token embedding and pooled embedding',
    seed: 303,
    inputSeed: 3031,
    rows: 256,
    unitRows: 32,
    policy: 'allclose:1e-3,1e-4',
    replicas: 2,
    build: buildEncoder,
    makeInputs: encoderInputs,
  },
  {
    name: 'upscale',
    summary: 'image-to-image net (super-resolution shape), uint8 3×80×80 → float32 3×320×320: 1.2 MB of output a row (output-heavy)',
    seed: 505,
    inputSeed: 5051,
    rows: 2,
    unitRows: 1,
    policy: 'allclose:1e-3,1e-4',
    replicas: 2,
    build: buildUpscale,
    makeInputs: upscaleInputs,
  },
  {
    name: 'rowwise',
    summary: 'integer model with a fixed batch dimension of 1 (run row by row), exact policy',
    seed: 404,
    inputSeed: 4041,
    rows: 64,
    unitRows: 16,
    policy: 'exact',
    replicas: 2,
    build: buildRowwise,
    makeInputs: rowwiseInputs,
  },
];

/** Look up a workload by name. @throws UserError naming the known workloads */
export function workloadSpec(name: string): WorkloadSpec {
  const s = WORKLOADS.find((w) => w.name === name);
  if (!s) throw new UserError('workload', `one of ${WORKLOADS.map((w) => w.name).join(', ')}`, name);
  return s;
}

/**
 * Deterministic inputs for a workload: `rows` rows from `seed` (same seed and rows → same bytes).
 * Benchmarks call this for inputs bigger than the committed samples.
 * @throws UserError for an unknown workload or a bad row count
 */
export function makeInputs(name: string, rows: number, seed: number): Record<string, HostTensor> {
  if (!Number.isSafeInteger(rows) || rows < 1) throw new UserError('rows', 'a positive integer', rows);
  return workloadSpec(name).makeInputs(rows, seed);
}
