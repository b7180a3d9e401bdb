/**
 * Shape inference and FLOP counting over a decoded ONNX graph. The count is the "unit cost"
 * Proof of Drilling credits, so it is a pure function of the model bytes: integer arithmetic,
 * a fixed cost table, no measurement.
 *
 * Cost table (FLOPs; "element" = element of the node's first output):
 * - MatMul: 2·M·K·N per matrix product (2·K per output element), batched/broadcast dims multiply.
 * - Gemm: 2·M·K·N, plus M·N when C is given.
 * - Conv: 2·N·Cout·(Cin/group)·kh·kw·Hout·Wout (any spatial rank), plus the output size when a bias is given.
 * - MaxPool / AveragePool / LpPool: output elements × kernel size.
 * - GlobalAveragePool / GlobalMaxPool, Reduce*, ArgMax / ArgMin: input elements.
 * - Softmax / LogSoftmax: 5 per element (max, subtract, exp, sum, divide).
 * - LayerNormalization: 7 per element (mean, subtract, square, variance, normalise, scale, shift).
 * - BatchNormalization (inference): 2 per element (scale and shift after folding).
 * - Elementwise arithmetic, comparisons and activations (Add, Mul, Relu, Erf, Tanh, Sqrt, Pow, Where, ...):
 *   1 per element; variadic Sum/Mean/Max/Min: (inputs − 1) per element.
 * - Data movement and shape ops (Reshape, Transpose, Flatten, Concat, Gather, Slice, Cast, Identity,
 *   Shape, Squeeze, Unsqueeze, Expand, Pad, Tile, Split, Constant, Dropout): 0.
 * - Any other op: 1 per output element, its output shape taken from the model's value_info if
 *   present, else assumed equal to its first input's shape (noted in `notes`).
 *
 * Dims: a symbolic first dim of a graph input is the batch dimension (row count); any other
 * symbolic or unknown dim counts as 1 (noted).
 */
import { DrillError } from '../util/errors.ts';
import type { DecodedModel, NodeInfo, TensorInfo, ValueInfo, AttrInfo } from './decode.ts';
import { MAX_CONST_VALUES } from './decode.ts';

/** A value during inference: element type, concrete dims, and values for small integer tensors. */
interface Val {
  dtype: string;
  dims: number[];
  values?: number[];
}

/** Result of one inference pass at a given batch size. */
export interface FlopCount {
  flops: number;
  /** Inferred dims of every graph output, in graph order. */
  outputDims: number[][];
  /** Approximations made (unknown ops, symbolic non-batch dims, shape mismatches). */
  notes: string[];
}

const prod = (d: readonly number[]): number => d.reduce((a, b) => a * b, 1);

const UNARY_1 = new Set([
  'Relu', 'Sigmoid', 'Tanh', 'Erf', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Reciprocal', 'LeakyRelu', 'Elu', 'Selu', 'Celu',
  'Clip', 'Gelu', 'HardSigmoid', 'HardSwish', 'Softplus', 'Softsign', 'Sin', 'Cos', 'Tan', 'Floor', 'Ceil', 'Round',
  'Sign', 'Not', 'IsNaN', 'IsInf', 'Mish', 'ThresholdedRelu', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh',
]);
const FREE_UNARY = new Set(['Identity', 'Dropout', 'CastLike']);
const BINARY_1 = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'PRelu', 'BitShift', 'And', 'Or', 'Xor', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor']);
const COMPARE = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']);
const VARIADIC = new Set(['Sum', 'Mean', 'Max', 'Min']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp']);
/** Reduce ops whose axes moved from attribute to input in opset 13 (ReduceSum) or 18 (the rest). */
const AXES_INPUT_SINCE: Record<string, number> = { ReduceSum: 13 };
const AXES_INPUT_SINCE_DEFAULT = 18;

class ShapeError extends Error {}

function broadcast(shapes: number[][]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const x = s[s.length - rank + i] ?? 1;
      if (x === 1) continue;
      if (d !== 1 && d !== x) throw new ShapeError(`cannot broadcast [${shapes.map((s) => s.join('×')).join('] with [')}]`);
      d = x;
    }
    out.push(d);
  }
  return out;
}

function normAxis(a: number, rank: number): number {
  const r = a < 0 ? a + rank : a;
  if (r < 0 || r >= Math.max(1, rank)) throw new ShapeError(`axis ${a} out of range for rank ${rank}`);
  return r;
}

function int(a: AttrInfo | undefined, dflt: number): number {
  return a?.i ?? dflt;
}

function elementwiseValues(op: string, a: number[], b: number[]): number[] | undefined {
  if (a.length !== b.length && a.length !== 1 && b.length !== 1) return undefined;
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length === 1 ? 0 : i]!;
    const y = b[b.length === 1 ? 0 : i]!;
    if (op === 'Add') out.push(x + y);
    else if (op === 'Sub') out.push(x - y);
    else if (op === 'Mul') out.push(x * y);
    else if (op === 'Div' && y !== 0) out.push(Math.trunc(x / y));
    else return undefined;
  }
  return out;
}

/**
 * Infer shapes and count FLOPs with every graph input's symbolic first dim set to `batch`
 * (when `batchDynamic`), every other symbolic dim set to 1.
 * @throws DrillError MODEL_GRAPH for graphs that reference undefined values
 */
export function countFlops(model: DecodedModel, batch: number, batchDynamic: boolean): FlopCount {
  const notes: string[] = [];
  const note = (s: string): void => {
    if (!notes.includes(s)) notes.push(s);
  };
  const env = new Map<string, Val>();
  for (const [name, t] of model.initializers) env.set(name, fromTensor(t));
  const concreteDims = (v: ValueInfo, isInput: boolean): number[] =>
    v.dims.map((d, i) => {
      if (typeof d === 'number') return d;
      if (i === 0 && isInput && batchDynamic) return batch;
      if (i === 0 && !isInput && batchDynamic) return batch;
      note(`symbolic dim ${d ?? '?'} of ${v.name} counted as 1`);
      return 1;
    });
  for (const v of model.inputs) env.set(v.name, { dtype: v.dtype, dims: concreteDims(v, true) });

  let flops = 0;
  for (const node of model.nodes) {
    const ins: (Val | undefined)[] = node.inputs.map((n) => {
      if (n === '') return undefined;
      const v = env.get(n);
      if (!v) throw new DrillError('MODEL_GRAPH', `node ${node.name || node.op} reads ${JSON.stringify(n)}, which no earlier node, input or initializer defines (nodes must be in topological order)`, { node: node.name, value: n });
      return v;
    });
    let res: { outs: Val[]; cost: number };
    try {
      res = node.domain === '' || node.domain === 'ai.onnx' ? (inferNode(node, ins, model.opset) ?? unknown()) : unknown();
    } catch (e) {
      if (!(e instanceof ShapeError)) throw e;
      note(`${node.op} ${node.name}: ${e.message}; treated as an unknown op`);
      res = unknown();
    }
    if (res.outs === UNKNOWN_OUTS) {
      note(`op ${node.domain ? node.domain + '.' : ''}${node.op} is not in the cost table: counted 1 FLOP per output element`);
      const vi = node.outputs.map((o) => model.valueInfo.get(o));
      const first = ins.find((x) => x !== undefined) ?? { dtype: 'float32', dims: [] };
      const outs = node.outputs.map((_, i) => (vi[i] ? { dtype: vi[i]!.dtype, dims: concreteDims(vi[i]!, false) } : { dtype: first.dtype, dims: [...first.dims] }));
      res = { outs, cost: prod(outs[0]?.dims ?? []) };
    }
    flops += res.cost;
    node.outputs.forEach((o, i) => {
      if (o !== '' && res.outs[i]) env.set(o, res.outs[i]!);
    });
  }
  const outputDims = model.outputs.map((o) => {
    const v = env.get(o.name);
    if (!v) throw new DrillError('MODEL_GRAPH', `graph output ${JSON.stringify(o.name)} is not produced by any node, input or initializer`, { value: o.name });
    return v.dims;
  });
  return { flops, outputDims, notes };
}

/** Sentinel: the op is outside the cost table (or its shape could not be inferred). */
const UNKNOWN_OUTS: Val[] = [];
function unknown(): { outs: Val[]; cost: number } {
  return { outs: UNKNOWN_OUTS, cost: 0 };
}

function fromTensor(t: TensorInfo): Val {
  return t.values ? { dtype: t.dtype, dims: [...t.dims], values: [...t.values] } : { dtype: t.dtype, dims: [...t.dims] };
}

function need(v: Val | undefined, what: string): Val {
  if (!v) throw new ShapeError(`missing ${what}`);
  return v;
}

function constInts(v: Val | undefined, what: string): number[] {
  if (!v?.values) throw new ShapeError(`${what} is not a constant this inference can evaluate`);
  return v.values;
}

function withValues(dtype: string, dims: number[], values: number[] | undefined): Val {
  return values && values.length <= MAX_CONST_VALUES ? { dtype, dims, values } : { dtype, dims };
}

function poolOut(x: number[], kernel: number[], a: Record<string, AttrInfo>, ceil: boolean): number[] {
  const sp = x.length - 2;
  if (sp < 1 || kernel.length !== sp) throw new ShapeError(`kernel rank ${kernel.length} does not fit input rank ${x.length}`);
  const strides = a.strides?.ints ?? new Array<number>(sp).fill(1);
  const dil = a.dilations?.ints ?? new Array<number>(sp).fill(1);
  const pads = a.pads?.ints ?? new Array<number>(2 * sp).fill(0);
  const autoPad = a.auto_pad?.s ?? 'NOTSET';
  const out: number[] = [];
  for (let i = 0; i < sp; i++) {
    const inp = x[i + 2]!;
    const s = strides[i]!;
    const ek = (kernel[i]! - 1) * dil[i]! + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') out.push(Math.ceil(inp / s));
    else if (autoPad === 'VALID') out.push(Math.floor((inp - ek) / s) + 1);
    else {
      const span = inp + pads[i]! + pads[i + sp]! - ek;
      let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
      // ceil_mode: a last window that would start inside the end padding is dropped (ONNX spec, as ORT does).
      if (ceil && (o - 1) * s >= inp + pads[i]!) o--;
      out.push(o);
    }
  }
  if (out.some((d) => d < 1)) throw new ShapeError(`kernel larger than the padded input`);
  return out;
}

/** Shape + cost for one default-domain node; undefined for ops outside the table. */
function inferNode(node: NodeInfo, ins: (Val | undefined)[], opset: number): { outs: Val[]; cost: number } | undefined {
  const op = node.op;
  const a = node.attrs;
  const x = ins[0];
  const elems = (v: Val): number => prod(v.dims);

  if (UNARY_1.has(op)) {
    const v = need(x, 'input');
    return { outs: [{ dtype: v.dtype, dims: [...v.dims] }], cost: elems(v) };
  }
  if (FREE_UNARY.has(op)) {
    const v = need(x, 'input');
    return { outs: [v, { dtype: 'bool', dims: [...v.dims] }], cost: 0 };
  }
  if (BINARY_1.has(op) || COMPARE.has(op)) {
    const l = need(ins[0], 'A');
    const r = need(ins[1], 'B');
    const dims = broadcast([l.dims, r.dims]);
    const values = l.values && r.values ? elementwiseValues(op, l.values, r.values) : undefined;
    return { outs: [withValues(COMPARE.has(op) ? 'bool' : l.dtype, dims, values)], cost: prod(dims) };
  }
  if (VARIADIC.has(op)) {
    const vs = ins.filter((v): v is Val => v !== undefined);
    const dims = broadcast(vs.map((v) => v.dims));
    return { outs: [{ dtype: vs[0]!.dtype, dims }], cost: prod(dims) * Math.max(1, vs.length - 1) };
  }
  switch (op) {
    case 'Where': {
      const dims = broadcast([need(ins[0], 'condition').dims, need(ins[1], 'X').dims, need(ins[2], 'Y').dims]);
      return { outs: [{ dtype: ins[1]!.dtype, dims }], cost: prod(dims) };
    }
    case 'MatMul': {
      const A = need(ins[0], 'A').dims;
      const B = need(ins[1], 'B').dims;
      if (A.length === 0 || B.length === 0) throw new ShapeError('MatMul of a scalar');
      const a2 = A.length === 1 ? [1, A[0]!] : A;
      const b2 = B.length === 1 ? [B[0]!, 1] : B;
      const K = a2[a2.length - 1]!;
      if (b2[b2.length - 2] !== K) throw new ShapeError(`MatMul inner dims differ: [${A}] · [${B}]`);
      const batchDims = broadcast([a2.slice(0, -2), b2.slice(0, -2)]);
      const out = [...batchDims, a2[a2.length - 2]!, b2[b2.length - 1]!];
      const dims = out.filter((_, i) => !(A.length === 1 && i === out.length - 2) && !(B.length === 1 && i === out.length - 1));
      return { outs: [{ dtype: ins[0]!.dtype, dims }], cost: 2 * prod(out) * K };
    }
    case 'Gemm': {
      const A = need(ins[0], 'A').dims;
      const B = need(ins[1], 'B').dims;
      if (A.length !== 2 || B.length !== 2) throw new ShapeError(`Gemm needs 2-D A and B, got [${A}] and [${B}]`);
      const [M, K] = int(a.transA, 0) ? [A[1]!, A[0]!] : [A[0]!, A[1]!];
      const [K2, N] = int(a.transB, 0) ? [B[1]!, B[0]!] : [B[0]!, B[1]!];
      if (K !== K2) throw new ShapeError(`Gemm inner dims differ: ${K} vs ${K2}`);
      return { outs: [{ dtype: ins[0]!.dtype, dims: [M, N] }], cost: 2 * M * K * N + (ins[2] ? M * N : 0) };
    }
    case 'Conv': {
      const X = need(ins[0], 'X').dims;
      const W = need(ins[1], 'W').dims;
      const group = int(a.group, 1);
      const kernel = a.kernel_shape?.ints ?? W.slice(2);
      const sp = poolOut(X, kernel, a, false);
      if (X[1] !== W[1]! * group) throw new ShapeError(`Conv channels: input has ${X[1]}, weight expects ${W[1]}×${group} groups`);
      const out = [X[0]!, W[0]!, ...sp];
      return { outs: [{ dtype: ins[0]!.dtype, dims: out }], cost: 2 * prod(out) * W[1]! * prod(kernel) + (ins[2] ? prod(out) : 0) };
    }
    case 'MaxPool':
    case 'AveragePool':
    case 'LpPool': {
      const X = need(x, 'X').dims;
      const kernel = a.kernel_shape?.ints;
      if (!kernel) throw new ShapeError('pool without kernel_shape');
      const out = [X[0]!, X[1]!, ...poolOut(X, kernel, a, int(a.ceil_mode, 0) === 1)];
      return { outs: [{ dtype: x!.dtype, dims: out }, { dtype: 'int64', dims: out }], cost: prod(out) * prod(kernel) };
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
    case 'GlobalLpPool': {
      const X = need(x, 'X').dims;
      return { outs: [{ dtype: x!.dtype, dims: [...X.slice(0, 2), ...X.slice(2).map(() => 1)] }], cost: prod(X) };
    }
    case 'Softmax':
    case 'LogSoftmax': {
      const v = need(x, 'input');
      return { outs: [{ dtype: v.dtype, dims: [...v.dims] }], cost: 5 * elems(v) };
    }
    case 'LayerNormalization': {
      const v = need(x, 'X');
      const axis = normAxis(int(a.axis, -1), v.dims.length);
      const stat = [...v.dims.slice(0, axis), ...v.dims.slice(axis).map(() => 1)];
      return { outs: [{ dtype: v.dtype, dims: [...v.dims] }, { dtype: 'float32', dims: stat }, { dtype: 'float32', dims: stat }], cost: 7 * elems(v) };
    }
    case 'BatchNormalization': {
      const v = need(x, 'X');
      return { outs: [{ dtype: v.dtype, dims: [...v.dims] }], cost: 2 * elems(v) };
    }
    case 'ArgMax':
    case 'ArgMin': {
      const v = need(x, 'data');
      const axis = normAxis(int(a.axis, 0), v.dims.length);
      const keep = int(a.keepdims, 1) === 1;
      const dims = keep ? v.dims.map((d, i) => (i === axis ? 1 : d)) : v.dims.filter((_, i) => i !== axis);
      return { outs: [{ dtype: 'int64', dims }], cost: elems(v) };
    }
    case 'Cast': {
      const v = need(x, 'input');
      const to = int(a.to, 1);
      const names: Record<number, string> = { 1: 'float32', 2: 'uint8', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };
      return { outs: [withValues(names[to] ?? `type#${to}`, [...v.dims], v.values)], cost: 0 };
    }
    case 'Constant': {
      if (a.value?.t) return { outs: [fromTensor(a.value.t)], cost: 0 };
      if (a.value_int) return { outs: [{ dtype: 'int64', dims: [], values: [a.value_int.i ?? 0] }], cost: 0 };
      if (a.value_ints) return { outs: [withValues('int64', [a.value_ints.ints?.length ?? 0], a.value_ints.ints)], cost: 0 };
      if (a.value_float) return { outs: [{ dtype: 'float32', dims: [] }], cost: 0 };
      if (a.value_floats) return { outs: [{ dtype: 'float32', dims: [a.value_floats.floats?.length ?? 0] }], cost: 0 };
      return undefined;
    }
    case 'Shape': {
      const v = need(x, 'data');
      const r = v.dims.length;
      const clamp = (i: number): number => Math.min(r, Math.max(0, i < 0 ? i + r : i));
      const values = v.dims.slice(clamp(int(a.start, 0)), clamp(a.end?.i ?? r));
      return { outs: [{ dtype: 'int64', dims: [values.length], values }], cost: 0 };
    }
    case 'Size': {
      const v = need(x, 'data');
      return { outs: [{ dtype: 'int64', dims: [], values: [elems(v)] }], cost: 0 };
    }
    case 'Flatten': {
      const v = need(x, 'input');
      const axis = int(a.axis, 1);
      const ax = axis < 0 ? axis + v.dims.length : axis;
      return { outs: [withValues(v.dtype, [prod(v.dims.slice(0, ax)), prod(v.dims.slice(ax))], v.values)], cost: 0 };
    }
    case 'Reshape': {
      const v = need(x, 'data');
      const shape = constInts(ins[1], 'Reshape shape');
      const allowZero = int(a.allowzero, 0) === 1;
      const dims = shape.map((d, i) => (d === 0 && !allowZero ? (v.dims[i] ?? 0) : d));
      const minus = dims.indexOf(-1);
      if (minus >= 0) {
        const rest = prod(dims.filter((_, i) => i !== minus));
        if (rest === 0 || elems(v) % rest !== 0) throw new ShapeError(`cannot reshape [${v.dims}] to [${shape}]`);
        dims[minus] = elems(v) / rest;
      }
      if (prod(dims) !== elems(v)) throw new ShapeError(`cannot reshape [${v.dims}] to [${shape}]`);
      return { outs: [withValues(v.dtype, dims, v.values)], cost: 0 };
    }
    case 'Transpose': {
      const v = need(x, 'data');
      const perm = a.perm?.ints ?? v.dims.map((_, i) => v.dims.length - 1 - i);
      if (perm.length !== v.dims.length) throw new ShapeError(`perm [${perm}] does not fit rank ${v.dims.length}`);
      return { outs: [{ dtype: v.dtype, dims: perm.map((p) => v.dims[p]!) }], cost: 0 };
    }
    case 'Squeeze':
    case 'Unsqueeze': {
      const v = need(x, 'data');
      const axes = a.axes?.ints ?? (ins[1] ? constInts(ins[1], `${op} axes`) : undefined);
      if (op === 'Squeeze') {
        const r = v.dims.length;
        const drop = axes ? new Set(axes.map((ax) => normAxis(ax, r))) : new Set(v.dims.flatMap((d, i) => (d === 1 ? [i] : [])));
        return { outs: [withValues(v.dtype, v.dims.filter((_, i) => !drop.has(i)), v.values)], cost: 0 };
      }
      if (!axes) throw new ShapeError('Unsqueeze without axes');
      const r = v.dims.length + axes.length;
      const add = new Set(axes.map((ax) => normAxis(ax, r)));
      const dims: number[] = [];
      let j = 0;
      for (let i = 0; i < r; i++) dims.push(add.has(i) ? 1 : v.dims[j++]!);
      return { outs: [withValues(v.dtype, dims, v.values)], cost: 0 };
    }
    case 'Concat': {
      const vs = ins.filter((v): v is Val => v !== undefined);
      const r = vs[0]!.dims.length;
      const axis = normAxis(int(a.axis, 0), r);
      const dims = [...vs[0]!.dims];
      dims[axis] = vs.reduce((s, v) => s + (v.dims[axis] ?? 0), 0);
      const values = vs.every((v) => v.values) && r === 1 ? vs.flatMap((v) => v.values!) : undefined;
      return { outs: [withValues(vs[0]!.dtype, dims, values)], cost: 0 };
    }
    case 'Gather': {
      const data = need(ins[0], 'data');
      const idx = need(ins[1], 'indices');
      const axis = normAxis(int(a.axis, 0), data.dims.length);
      const dims = [...data.dims.slice(0, axis), ...idx.dims, ...data.dims.slice(axis + 1)];
      let values: number[] | undefined;
      if (data.values && idx.values && data.dims.length === 1) {
        values = idx.values.map((i) => data.values![i < 0 ? i + data.dims[0]! : i]!);
      }
      return { outs: [withValues(data.dtype, dims, values)], cost: 0 };
    }
    case 'Slice': {
      const v = need(x, 'data');
      const starts = a.starts?.ints ?? constInts(ins[1], 'Slice starts');
      const ends = a.ends?.ints ?? constInts(ins[2], 'Slice ends');
      const axes = a.axes?.ints ?? (ins[3] ? constInts(ins[3], 'Slice axes') : starts.map((_, i) => i));
      const steps = ins[4] ? constInts(ins[4], 'Slice steps') : starts.map(() => 1);
      const dims = [...v.dims];
      let values = v.values && v.dims.length === 1 ? [...v.values] : undefined;
      axes.forEach((ax0, i) => {
        const ax = normAxis(ax0, v.dims.length);
        const n = v.dims[ax]!;
        const step = steps[i]!;
        if (step === 0) throw new ShapeError('Slice step 0');
        const clampI = (s: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, s < 0 ? s + n : s));
        const s = step > 0 ? clampI(starts[i]!, 0, n) : clampI(starts[i]!, -1, n - 1);
        const e = step > 0 ? clampI(ends[i]!, 0, n) : clampI(ends[i]!, -1, n - 1);
        dims[ax] = Math.max(0, Math.ceil((e - s) / step));
        if (values) {
          const picked: number[] = [];
          for (let k = s; step > 0 ? k < e : k > e; k += step) picked.push(values[k]!);
          values = picked;
        }
      });
      return { outs: [withValues(v.dtype, dims, values)], cost: 0 };
    }
    case 'Expand': {
      const v = need(x, 'input');
      const shape = constInts(ins[1], 'Expand shape');
      return { outs: [{ dtype: v.dtype, dims: broadcast([v.dims, shape]) }], cost: 0 };
    }
    case 'Tile': {
      const v = need(x, 'input');
      const reps = constInts(ins[1], 'Tile repeats');
      return { outs: [{ dtype: v.dtype, dims: v.dims.map((d, i) => d * (reps[i] ?? 1)) }], cost: 0 };
    }
    case 'Pad': {
      const v = need(x, 'data');
      const pads = a.pads?.ints ?? constInts(ins[1], 'Pad pads');
      const r = v.dims.length;
      if (pads.length !== 2 * r) throw new ShapeError(`pads [${pads}] do not fit rank ${r} (axes input is not supported)`);
      return { outs: [{ dtype: v.dtype, dims: v.dims.map((d, i) => d + pads[i]! + pads[i + r]!) }], cost: 0 };
    }
    case 'ConstantOfShape': {
      const shape = constInts(ins[0], 'ConstantOfShape shape');
      const dtype = a.value?.t?.dtype ?? 'float32';
      const fill = a.value?.t?.values?.[0];
      return { outs: [withValues(dtype, shape, fill !== undefined && prod(shape) <= MAX_CONST_VALUES ? new Array<number>(prod(shape)).fill(fill) : undefined)], cost: 0 };
    }
    case 'Split': {
      const v = need(x, 'input');
      const axis = normAxis(int(a.axis, 0), v.dims.length);
      const n = node.outputs.length;
      const split = a.split?.ints ?? (ins[1] ? constInts(ins[1], 'Split sizes') : undefined);
      const total = v.dims[axis]!;
      const sizes = split ?? Array.from({ length: n }, (_, i) => Math.ceil(total / n) * (i + 1) <= total ? Math.ceil(total / n) : Math.max(0, total - Math.ceil(total / n) * i));
      return { outs: sizes.map((s) => ({ dtype: v.dtype, dims: v.dims.map((d, i) => (i === axis ? s : d)) })), cost: 0 };
    }
  }
  if (REDUCE.has(op)) {
    const v = need(x, 'data');
    const since = AXES_INPUT_SINCE[op] ?? AXES_INPUT_SINCE_DEFAULT;
    const axesList = opset >= since ? (ins[1] ? constInts(ins[1], `${op} axes`) : undefined) : a.axes?.ints;
    const keep = int(a.keepdims, 1) === 1;
    const noop = int(a.noop_with_empty_axes, 0) === 1;
    const r = v.dims.length;
    if ((!axesList || axesList.length === 0) && noop) return { outs: [{ dtype: v.dtype, dims: [...v.dims] }], cost: 0 };
    const axes = new Set((axesList && axesList.length ? axesList : v.dims.map((_, i) => i)).map((ax) => normAxis(ax, r)));
    const dims = keep ? v.dims.map((d, i) => (axes.has(i) ? 1 : d)) : v.dims.filter((_, i) => !axes.has(i));
    return { outs: [{ dtype: v.dtype, dims }], cost: elems(v) };
  }
  return undefined;
}
