/**
 * Shape inference and FLOP counting over a decoded ONNX graph, from the REAL shapes of the
 * inputs a job feeds. The count is the unit cost Proof of Drilling credits, and credit is
 * lottery weight, so the rules are written against minting:
 *
 * - Shapes come only from the inputs' real shapes (and the values of small inputs the job sends
 *   whole), the initializers and the ops' semantics. Nothing the model declares about shapes
 *   (`value_info`, output dims, subgraph input dims) is ever read here.
 * - An op whose output shape cannot be inferred (an op outside the table, a data-dependent
 *   shape, an input whose shape is unknown) is costed at 0, and so is everything downstream that
 *   needs its shape. When such a node produces a graph output, its cost is what the result
 *   actually revealed: `outputCost[name]` FLOPs per element of that output (see
 *   `costFromOutputs`).
 * - Never refuses: nodes in any order (sorted topologically here), cycles and references to
 *   values nothing defines are costed as far as they can be and noted.
 * - Subgraphs count: `If` costs the branch its condition selects when the condition is known
 *   here (constants, shapes, small inputs sent whole), else the cheaper branch (a branch that
 *   never runs must not mint credit). `Loop` costs its body once per iteration when the trip
 *   count is known here and the loop cannot stop early, else one iteration. `Scan` costs its
 *   body once per element of the scanned axis. Model-local functions are costed as their body.
 *
 * Cost table (FLOPs; "element" = element of the node's first output unless said otherwise):
 * - MatMul, MatMulInteger, QLinearMatMul, com.microsoft FusedMatMul / MatMulIntegerToFloat:
 *   2·M·K·N per matrix product (batched/broadcast dims multiply).
 * - Gemm: 2·M·K·N, plus M·N when C is given.
 * - Conv, ConvInteger, QLinearConv: 2·N·Cout·(Cin/group)·prod(kernel)·prod(output spatial),
 *   plus the output size when a bias is given. ConvTranspose: 2·N·Cin·(Cout/group)·prod(kernel)·prod(input spatial) (+ bias).
 * - Einsum: 2 per combination of every index in the equation.
 * - LSTM / GRU / RNN: per step, batch row and direction 2·G·H·(I + H) + 2·G·H (G = 4 / 3 / 1 gates).
 * - MaxPool / AveragePool / LpPool: output elements × kernel size.
 * - GlobalAveragePool / GlobalMaxPool, Reduce*, ArgMax / ArgMin, TopK, Hardmax: input elements.
 * - Softmax / LogSoftmax: 5 per element. LayerNormalization, InstanceNormalization,
 *   GroupNormalization, MeanVarianceNormalization: 7 per element. BatchNormalization: 2.
 * - com.microsoft SkipLayerNormalization: 9 per element; EmbedLayerNormalization: 9 per output
 *   element; Attention: QKV projection + 2·S·S_total·head per head for scores and context + 5 per score.
 * - QuantizeLinear / DequantizeLinear: 2 per element; DynamicQuantizeLinear: 4 per element.
 * - Elementwise arithmetic, comparisons, activations, CumSum, Resize (Add, Mul, Relu, Erf, Tanh,
 *   Sqrt, Pow, Where, Gelu, com.microsoft QLinearAdd, ...): 1 per element (BiasGelu, FastGelu
 *   with a bias: 2); variadic Sum/Mean/Max/Min: (inputs − 1) per element.
 * - Data movement and shape ops (Reshape, Transpose, Flatten, Concat, Gather*, Scatter*, Slice,
 *   Cast, Identity, Shape, Squeeze, Unsqueeze, Expand, Pad, Tile, Split, Constant, Range,
 *   OneHot, Trilu, DepthToSpace, Dropout, ...): 0.
 * - Anything else: its shape is not inferred (see above).
 */
import type { DecodedModel, FunctionInfo, GraphInfo, NodeInfo, TensorInfo, AttrInfo } from './decode.ts';
import { MAX_CONST_VALUES } from './decode.ts';

/** A value during inference: element type, concrete dims (null: unknown), values of small tensors. */
export interface Val {
  dtype: string;
  dims: number[] | null;
  values?: number[];
}

/** A graph input's real shape (and, for a small input sent whole, its values). */
export interface InputShape {
  dtype: string;
  dims: number[];
  values?: number[];
}

/** The result of one inference pass over real input shapes. */
export interface FlopCount {
  flops: number;
  /** Inferred dims of every graph output by name; null where the shape could not be inferred. */
  outputs: Record<string, number[] | null>;
  /**
   * Graph outputs whose shape could not be inferred, and the FLOPs each element of them costs
   * (the producing node's per-element rate): credited from the elements actually revealed.
   */
  outputCost: Record<string, number>;
  /** What the count could not follow (unknown ops, data-dependent shapes, cycles, loops counted once). */
  notes: string[];
}

/**
 * Shape inference follows a Loop's or Scan's body iteration by iteration while the carried
 * shapes change (growing sequences), at most this many times; after that every further
 * iteration is charged as the last one simulated. 256 covers the decode lengths of typical
 * beam-search / greedy loops at a few ms of inference per model.
 */
export const MAX_SIMULATED_ITERATIONS = 256;
/**
 * Total node evaluations one count may spend (nested loops multiply): past it, loops are
 * charged from one simulated iteration. Keeps a hostile model's costing to well under a second.
 */
export const MAX_NODE_EVALUATIONS = 2_000_000;
/** Model-local functions calling functions: deeper than this is not followed (costed 0, noted). */
const MAX_FUNCTION_DEPTH = 32;

const prod = (d: readonly number[]): number => d.reduce((a, b) => a * b, 1);

const UNARY_1 = new Set([
  'Relu', 'Sigmoid', 'Tanh', 'Erf', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Reciprocal', 'LeakyRelu', 'Elu', 'Selu', 'Celu',
  'Clip', 'Gelu', 'HardSigmoid', 'HardSwish', 'Softplus', 'Softsign', 'Sin', 'Cos', 'Tan', 'Floor', 'Ceil', 'Round',
  'Sign', 'Not', 'IsNaN', 'IsInf', 'Mish', 'ThresholdedRelu', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh',
  'BitwiseNot', 'CumSum', 'Shrink',
]);
const FREE_UNARY = new Set(['Identity', 'Dropout']);
const BINARY_1 = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'PRelu', 'BitShift', 'And', 'Or', 'Xor', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor']);
const COMPARE = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']);
const VARIADIC = new Set(['Sum', 'Mean', 'Max', 'Min']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp']);
const NORM_7 = new Set(['LayerNormalization', 'InstanceNormalization', 'GroupNormalization', 'MeanVarianceNormalization']);
/** Reduce ops whose axes moved from attribute to input in opset 13 (ReduceSum) or 18 (the rest). */
const AXES_INPUT_SINCE: Record<string, number> = { ReduceSum: 13 };
const AXES_INPUT_SINCE_DEFAULT = 18;
/** Ops that move data without arithmetic: the per-element rate of their uninferable outputs is 0. */
const FREE_OPS = new Set([
  'Identity', 'Dropout', 'Reshape', 'Transpose', 'Flatten', 'Concat', 'Gather', 'GatherElements', 'GatherND', 'ScatterND',
  'ScatterElements', 'Scatter', 'Slice', 'Cast', 'CastLike', 'Shape', 'Size', 'Squeeze', 'Unsqueeze', 'Expand', 'Pad', 'Tile',
  'Split', 'Constant', 'ConstantOfShape', 'Range', 'OneHot', 'Trilu', 'DepthToSpace', 'SpaceToDepth', 'NonZero', 'Compress',
  'Unique', 'EyeLike', 'ReverseSequence', 'SplitToSequence', 'SequenceAt', 'SequenceConstruct', 'ConcatFromSequence', 'Optional',
  'OptionalGetElement', 'OptionalHasElement',
]);

const ONNX_TYPE_NAMES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64' };

class ShapeError extends Error {}

/** Mutable state of one count. */
interface Ctx {
  opsets: Record<string, number>;
  functions: Map<string, FunctionInfo>;
  notes: string[];
  evaluations: number;
  functionDepth: number;
}

function note(ctx: Ctx, s: string): void {
  if (!ctx.notes.includes(s) && ctx.notes.length < 200) ctx.notes.push(s);
}

/** Name lookup through nested graph scopes (a subgraph sees its outer graphs' values). */
class Scope {
  readonly #vals = new Map<string, Val>();
  readonly #outer: Scope | null;
  constructor(outer: Scope | null) {
    this.#outer = outer;
  }
  get(name: string): Val | undefined {
    return this.#vals.get(name) ?? this.#outer?.get(name);
  }
  has(name: string): boolean {
    return this.#vals.has(name) || (this.#outer?.has(name) ?? false);
  }
  set(name: string, v: Val): void {
    this.#vals.set(name, v);
  }
}

const UNKNOWN = (dtype = 'undefined'): Val => ({ dtype, dims: null });

function known(v: Val | undefined): v is Val & { dims: number[] } {
  return v !== undefined && v.dims !== null;
}

/**
 * Infer shapes and count FLOPs over the real input shapes. Pure and deterministic.
 * @param inputs every graph input the job feeds, by name (a missing one is treated as unknown and noted)
 */
export function countFlops(model: DecodedModel, inputs: Readonly<Record<string, InputShape>>): FlopCount {
  const ctx: Ctx = { opsets: model.opsets, functions: model.functions, notes: [], evaluations: 0, functionDepth: 0 };
  const scope = new Scope(null);
  for (const v of model.inputs) {
    const given = inputs[v.name];
    if (!given) {
      note(ctx, `input ${v.name} was not given: its shape is unknown`);
      scope.set(v.name, UNKNOWN(v.dtype));
    } else scope.set(v.name, withValues(given.dtype, [...given.dims], given.values));
  }
  const outputNames = new Set(model.outputs.map((o) => o.name));
  const r = runGraph(model.graph, scope, ctx, outputNames);
  const outputs: Record<string, number[] | null> = {};
  for (const o of model.outputs) outputs[o.name] = r.scope.get(o.name)?.dims ?? null;
  return { flops: r.flops, outputs, outputCost: r.outputCost, notes: ctx.notes };
}

/**
 * FLOPs of a unit from what its result revealed: Σ outputCost[name] × elements of that output.
 * The part of a unit's credit the graph alone cannot tell (uninferable outputs); add it to
 * `flopsPerRow × rows`. Outputs not in `outputCost` add nothing.
 */
export function costFromOutputs(outputCost: Readonly<Record<string, number>>, elementCounts: Readonly<Record<string, number>>): number {
  let f = 0;
  for (const [name, rate] of Object.entries(outputCost)) {
    const n = elementCounts[name];
    if (n !== undefined && Number.isSafeInteger(n) && n > 0) f += rate * n;
  }
  return f;
}

// ------------------------------------------------------------------------------ graphs

interface GraphRun {
  flops: number;
  scope: Scope;
  outputCost: Record<string, number>;
}

/**
 * Run inference over one graph's nodes in topological order. `scope` holds the graph's inputs
 * (and sees the outer graphs); initializers are added here. `graphOutputs`: the main graph's
 * output names (for outputCost); empty for subgraphs.
 */
function runGraph(g: GraphInfo, outer: Scope, ctx: Ctx, graphOutputs: ReadonlySet<string> = new Set()): GraphRun {
  const scope = new Scope(outer);
  for (const [name, t] of g.initializers) scope.set(name, fromTensor(t));
  const order = topoOrder(g, ctx);
  let flops = 0;
  const outputCost: Record<string, number> = {};
  const producer = new Map<string, NodeInfo>();
  for (const n of g.nodes) for (const o of n.outputs) if (o !== '' && !producer.has(o)) producer.set(o, n);
  /** Nodes whose work a revealed graph output already pays for (never twice). */
  const charged = new Set<NodeInfo>();
  for (const node of order) {
    ctx.evaluations++;
    const ins = node.inputs.map((n) => {
      if (n === '') return undefined;
      const v = scope.get(n);
      if (!v) {
        note(ctx, `node ${node.name || node.op} reads ${JSON.stringify(n)}, which nothing defines: its shape is unknown`);
        return UNKNOWN();
      }
      return v;
    });
    let res: { outs: Val[]; cost: number } | undefined;
    try {
      res = inferAny(node, ins, scope, ctx);
    } catch (e) {
      if (!(e instanceof ShapeError)) throw e;
      note(ctx, `${label(node)}: ${e.message}; its outputs' shapes are unknown`);
      res = undefined;
    }
    if (res && res.outs.some((o) => o.dims !== null && !validDims(o.dims))) {
      note(ctx, `${label(node)}: inferred dims are not sizes; its outputs' shapes are unknown`);
      res = undefined;
    }
    if (!res) {
      if (!isKnownOp(node)) note(ctx, `op ${opName(node)} is not in the cost table: its outputs' shapes are unknown, costed 0 unless revealed as a graph output`);
      res = { outs: node.outputs.map(() => UNKNOWN()), cost: 0 };
    }
    if (!Number.isFinite(res.cost) || res.cost < 0) res.cost = 0;
    flops += res.cost;
    node.outputs.forEach((o, i) => {
      if (o === '') return;
      const v = res.outs[i] ?? UNKNOWN();
      scope.set(o, v);
      if (v.dims === null && graphOutputs.has(o)) outputCost[o] = revealedRate(node, scope, producer, charged);
    });
  }
  return { flops, scope, outputCost };
}

function validDims(d: number[]): boolean {
  return d.every((x) => Number.isSafeInteger(x) && x >= 0);
}

function opName(node: NodeInfo): string {
  return node.domain ? `${node.domain}.${node.op}` : node.op;
}
function label(node: NodeInfo): string {
  return `${opName(node)}${node.name ? ` ${node.name}` : ''}`;
}

/**
 * Nodes in a dependency order: each after the nodes producing its inputs (including the values
 * its subgraphs read from this graph), ties kept in file order. A cycle is broken where it is
 * met (noted); the nodes on it then read values that are not computed yet, i.e. unknown.
 */
function topoOrder(g: GraphInfo, ctx: Ctx): NodeInfo[] {
  const nodes = g.nodes;
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.outputs) if (o !== '' && !producer.has(o)) producer.set(o, i);
  });
  const deps = (i: number): number[] => {
    const n = nodes[i]!;
    const names = [...n.inputs, ...nodeFreeVars(n)];
    const out: number[] = [];
    for (const name of names) {
      const p = producer.get(name);
      if (p !== undefined && p !== i) out.push(p);
    }
    return out;
  };
  // Iterative DFS post-order (a deep chain in reverse file order must not overflow the stack).
  const state = new Uint8Array(nodes.length); // 0 new, 1 on stack, 2 done
  const order: NodeInfo[] = [];
  let inOrder = true;
  let cycle = false;
  for (let root = 0; root < nodes.length; root++) {
    if (state[root]) continue;
    const stack: { i: number; deps: number[]; k: number }[] = [{ i: root, deps: deps(root), k: 0 }];
    state[root] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.k < top.deps.length) {
        const d = top.deps[top.k++]!;
        if (state[d] === 0) {
          state[d] = 1;
          stack.push({ i: d, deps: deps(d), k: 0 });
        } else if (state[d] === 1) cycle = true;
        continue;
      }
      stack.pop();
      state[top.i] = 2;
      if (order.length !== top.i) inOrder = false;
      order.push(nodes[top.i]!);
    }
  }
  if (!inOrder) note(ctx, `graph ${g.name || '(unnamed)'}: nodes are not in topological order; sorted`);
  if (cycle) note(ctx, `graph ${g.name || '(unnamed)'}: its nodes form a cycle; values on it are unknown`);
  return order;
}

const freeVarCache = new WeakMap<GraphInfo, Set<string>>();

/** Names a node's subgraphs read from outside themselves. */
function nodeFreeVars(n: NodeInfo): string[] {
  const out: string[] = [];
  for (const a of Object.values(n.attrs)) {
    if (a.g) out.push(...graphFreeVars(a.g));
    for (const g of a.graphs ?? []) out.push(...graphFreeVars(g));
  }
  return out;
}

function graphFreeVars(g: GraphInfo): Set<string> {
  let s = freeVarCache.get(g);
  if (s) return s;
  const defined = new Set<string>([...g.initializers.keys(), ...g.inputs.map((v) => v.name)]);
  for (const n of g.nodes) for (const o of n.outputs) defined.add(o);
  s = new Set<string>();
  for (const n of g.nodes) {
    for (const i of [...n.inputs, ...nodeFreeVars(n)]) if (i !== '' && !defined.has(i)) s.add(i);
  }
  freeVarCache.set(g, s);
  return s;
}

// ------------------------------------------------------------------------------ values

function fromTensor(t: TensorInfo): Val {
  return t.values ? { dtype: t.dtype, dims: [...t.dims], values: [...t.values] } : { dtype: t.dtype, dims: [...t.dims] };
}

function withValues(dtype: string, dims: number[], values: number[] | undefined): Val {
  return values && values.length <= MAX_CONST_VALUES && values.length === prod(dims) ? { dtype, dims, values } : { dtype, dims };
}

function need(v: Val | undefined, what: string): Val & { dims: number[] } {
  if (!v) throw new ShapeError(`missing ${what}`);
  if (!known(v)) throw new ShapeError(`the shape of ${what} is unknown`);
  return v;
}

function constInts(v: Val | undefined, what: string): number[] {
  if (!v?.values) throw new ShapeError(`${what} is not a value known before the run`);
  return v.values.map((x) => Math.trunc(x));
}

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

/** Index into a tensor of `dims` for output position `flat` of a broadcast result of `outDims`. */
function bIndex(dims: number[], outDims: number[], flat: number): number {
  let idx = 0;
  let stride = 1;
  let rem = flat;
  const off = outDims.length - dims.length;
  const coords: number[] = [];
  for (let i = outDims.length - 1; i >= 0; i--) {
    coords[i] = rem % outDims[i]!;
    rem = Math.floor(rem / outDims[i]!);
  }
  for (let i = dims.length - 1; i >= 0; i--) {
    const c = dims[i] === 1 ? 0 : coords[i + off]!;
    idx += c * stride;
    stride *= dims[i]!;
  }
  return idx;
}

const INT_TYPES = new Set(['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool']);

function evalBinary(op: string, a: Val, b: Val, outDims: number[], intMath: boolean): number[] | undefined {
  if (!a.values || !b.values || prod(outDims) > MAX_CONST_VALUES) return undefined;
  const out: number[] = [];
  for (let i = 0; i < prod(outDims); i++) {
    const x = a.values[bIndex(a.dims!, outDims, i)]!;
    const y = b.values[bIndex(b.dims!, outDims, i)]!;
    let r: number;
    switch (op) {
      case 'Add': r = x + y; break;
      case 'Sub': r = x - y; break;
      case 'Mul': r = x * y; break;
      case 'Div':
        if (intMath && y === 0) return undefined;
        r = intMath ? Math.trunc(x / y) : x / y;
        break;
      case 'Mod': if (y === 0) return undefined; r = x % y; break;
      case 'Pow': r = x ** y; break;
      case 'Equal': r = x === y ? 1 : 0; break;
      case 'Less': r = x < y ? 1 : 0; break;
      case 'Greater': r = x > y ? 1 : 0; break;
      case 'LessOrEqual': r = x <= y ? 1 : 0; break;
      case 'GreaterOrEqual': r = x >= y ? 1 : 0; break;
      case 'And': r = x && y ? 1 : 0; break;
      case 'Or': r = x || y ? 1 : 0; break;
      case 'Xor': r = (x ? 1 : 0) ^ (y ? 1 : 0); break;
      case 'Max': r = Math.max(x, y); break;
      case 'Min': r = Math.min(x, y); break;
      default: return undefined;
    }
    out.push(r);
  }
  return out;
}

function evalUnary(op: string, v: Val): number[] | undefined {
  if (!v.values) return undefined;
  const f: Record<string, (x: number) => number> = {
    Neg: (x) => -x, Abs: Math.abs, Not: (x) => (x ? 0 : 1), Floor: Math.floor, Ceil: Math.ceil, Sqrt: Math.sqrt,
    Relu: (x) => Math.max(0, x), Sign: Math.sign, Reciprocal: (x) => 1 / x, Exp: Math.exp, Log: Math.log,
  };
  const fn = f[op];
  return fn ? v.values.map(fn) : undefined;
}

function normAxis(a: number, rank: number): number {
  const r = a < 0 ? a + rank : a;
  if (r < 0 || r >= Math.max(1, rank)) throw new ShapeError(`axis ${a} out of range for rank ${rank}`);
  return r;
}

function int(a: AttrInfo | undefined, dflt: number): number {
  return a?.i ?? dflt;
}

// ------------------------------------------------------------------------------ dispatch

function isKnownOp(node: NodeInfo): boolean {
  if (node.domain === '') return true; // default-domain ops outside the table are still "ONNX"; the note names them below
  return node.domain === 'com.microsoft' && MS_OPS.has(node.op);
}

/** Shape + cost for any node: functions, control flow, the default domain, com.microsoft. */
function inferAny(node: NodeInfo, ins: (Val | undefined)[], scope: Scope, ctx: Ctx): { outs: Val[]; cost: number } | undefined {
  const fn = ctx.functions.get(`${node.domain}:${node.op}`);
  if (fn) return inferFunction(node, fn, ins, ctx);
  if (node.domain === '') {
    switch (node.op) {
      case 'If':
        return inferIf(node, ins, scope, ctx);
      case 'Loop':
        return inferLoop(node, ins, scope, ctx);
      case 'Scan':
        return inferScan(node, ins, scope, ctx);
    }
    const r = inferNode(node, ins, ctx.opsets[''] ?? 0);
    if (r === undefined) note(ctx, `op ${opName(node)} is not in the cost table: its outputs' shapes are unknown, costed 0 unless revealed as a graph output`);
    return r;
  }
  if (node.domain === 'com.microsoft') return inferMicrosoft(node, ins);
  return undefined;
}

/** Free ops that keep the element count: a revealed output behind them shows the count of the value before. */
const COUNT_PRESERVING = new Set(['Identity', 'Dropout', 'Cast', 'CastLike', 'Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze']);

/**
 * FLOPs per element of an uninferable graph output: the rate of the op that did the work,
 * looking back through count-preserving free ops (exporters end graphs with Identity/Reshape),
 * and 0 for work another revealed output already pays for.
 */
function revealedRate(node: NodeInfo, scope: Scope, producer: ReadonlyMap<string, NodeInfo>, charged: Set<NodeInfo>): number {
  let n = node;
  for (let hops = 0; hops < 64 && COUNT_PRESERVING.has(n.op) && n.domain === ''; hops++) {
    const src = n.inputs[0] ? producer.get(n.inputs[0]) : undefined;
    if (!src || scope.get(n.inputs[0]!)?.dims !== null) break;
    n = src;
  }
  if (charged.has(n)) return 0;
  charged.add(n);
  return perElementRate(n);
}

/** FLOPs per element charged for an uninferable node's revealed graph output. */
function perElementRate(node: NodeInfo): number {
  if (FREE_OPS.has(node.op)) return 0;
  if (node.op === 'Softmax' || node.op === 'LogSoftmax') return 5;
  if (NORM_7.has(node.op)) return 7;
  return 1;
}

// ------------------------------------------------------------------------------ control flow

/** A subgraph run with its formal inputs bound. */
function runSubgraph(g: GraphInfo, formals: (Val | undefined)[], outer: Scope, ctx: Ctx): { flops: number; outs: Val[] } {
  const s = new Scope(outer);
  g.inputs.forEach((v, i) => s.set(v.name, formals[i] ?? UNKNOWN(v.dtype)));
  const r = runGraph(g, s, ctx);
  return { flops: r.flops, outs: g.outputs.map((o) => r.scope.get(o.name) ?? UNKNOWN()) };
}

function sameVal(a: Val, b: Val): boolean {
  if (a.dims === null || b.dims === null) return a.dims === b.dims;
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims![i])) return false;
  if (!a.values || !b.values) return !a.values && !b.values;
  return a.values.length === b.values.length && a.values.every((x, i) => x === b.values![i]);
}

function inferIf(node: NodeInfo, ins: (Val | undefined)[], scope: Scope, ctx: Ctx): { outs: Val[]; cost: number } {
  const thenG = node.attrs.then_branch?.g;
  const elseG = node.attrs.else_branch?.g;
  if (!thenG || !elseG) throw new ShapeError('If without both branches');
  const cond = ins[0]?.values;
  if (cond && cond.length === 1) {
    const r = runSubgraph(cond[0] ? thenG : elseG, [], scope, ctx);
    return { outs: r.outs, cost: r.flops };
  }
  const t = runSubgraph(thenG, [], scope, ctx);
  const e = runSubgraph(elseG, [], scope, ctx);
  note(ctx, `${label(node)}: its condition is not known before the run; costed as the cheaper branch`);
  const cheap = t.flops <= e.flops ? t : e;
  // Output shapes only when both branches agree on them; otherwise they depend on the run.
  const outs = t.outs.map((o, i) => (e.outs[i] && sameVal(o, e.outs[i]!) ? o : UNKNOWN(o.dtype)));
  return { outs, cost: cheap.flops };
}

/**
 * Charge `iterations` runs of a body whose carried values feed back. Shape inference follows
 * the iterations while the carried shapes change (growing sequences), at most
 * MAX_SIMULATED_ITERATIONS times; once an iteration returns the shapes it was given, every
 * later one costs the same (the body sees nothing else that changes: the iteration number is
 * given without its value). `perIter` holds the per-iteration outputs when every iteration
 * gave the same shapes (null otherwise); `stable` whether the carried shapes came back unchanged.
 */
function iterate(
  iterations: number,
  first: (Val | undefined)[],
  step: (carried: (Val | undefined)[]) => { flops: number; carried: Val[]; perIter: Val[] },
  ctx: Ctx,
): { flops: number; carried: (Val | undefined)[]; perIter: Val[] | null; stable: boolean } {
  let carried = first;
  let flops = 0;
  let perIter: Val[] | null = null;
  let varies = false;
  let last = 0;
  for (let i = 0; i < iterations; i++) {
    if (i >= MAX_SIMULATED_ITERATIONS || ctx.evaluations > MAX_NODE_EVALUATIONS) {
      note(ctx, `a loop of ${iterations} iterations changes its shapes every iteration: iterations past ${i} are charged as the last one simulated`);
      flops += last * (iterations - i);
      return { flops, carried: carried.map((c) => UNKNOWN(c?.dtype)), perIter: null, stable: false };
    }
    const r = step(carried);
    flops += r.flops;
    last = r.flops;
    if (perIter === null) perIter = r.perIter;
    else if (!r.perIter.every((v, k) => perIter![k] && sameShape(v, perIter![k]!))) varies = true;
    const stable = r.carried.length === carried.length && r.carried.every((c, k) => carried[k] !== undefined && sameVal(c, carried[k]!));
    carried = r.carried;
    if (stable) {
      flops += r.flops * (iterations - i - 1);
      return { flops, carried, perIter: varies ? null : perIter, stable: true };
    }
  }
  return { flops, carried, perIter: varies ? null : perIter, stable: false };
}

/** Stack per-iteration values along a new axis (scan outputs): known only when every iteration gave the same shape. */
function stack(per: Val | undefined, iterations: number, axis = 0): Val {
  if (!per || !known(per)) return UNKNOWN(per?.dtype);
  const dims = [...per.dims];
  dims.splice(axis, 0, iterations);
  return { dtype: per.dtype, dims };
}

function sameShape(a: Val, b: Val): boolean {
  return a.dims !== null && b.dims !== null && a.dims.length === b.dims.length && a.dims.every((d, i) => d === b.dims![i]);
}

function inferLoop(node: NodeInfo, ins: (Val | undefined)[], scope: Scope, ctx: Ctx): { outs: Val[]; cost: number } {
  const body = node.attrs.body?.g;
  if (!body) throw new ShapeError('Loop without a body');
  const carriedIn = ins.slice(2);
  const nCarried = carriedIn.length;
  const nScan = body.outputs.length - 1 - nCarried;
  if (nScan < 0) throw new ShapeError('Loop body has fewer outputs than loop-carried values');
  const trip = node.inputs[0] ? ins[0]?.values : undefined;
  const condInit = node.inputs[1] ? ins[1]?.values : [1];
  const condKnownTrue = condInit?.length === 1 && condInit[0] !== 0;
  const step = (carried: (Val | undefined)[]): { flops: number; carried: Val[]; perIter: Val[]; cond: Val } => {
    const iter: Val = { dtype: 'int64', dims: [] };
    const condV: Val = condKnownTrue ? { dtype: 'bool', dims: [], values: [1] } : { dtype: 'bool', dims: [] };
    const r = runSubgraph(body, [iter, condV, ...carried], scope, ctx);
    return { flops: r.flops, cond: r.outs[0]!, carried: r.outs.slice(1, 1 + nCarried), perIter: r.outs.slice(1 + nCarried) };
  };
  // The loop runs exactly its trip count only when it cannot stop early: the condition starts
  // true and the body hands it back true (a constant, or its own condition passed through).
  const probe = step(carriedIn);
  const alwaysTrue = condKnownTrue && probe.cond.values?.length === 1 && probe.cond.values[0] !== 0;
  const exact = trip !== undefined && trip.length === 1 && Number.isSafeInteger(trip[0]) && trip[0]! >= 0 && alwaysTrue;
  if (!exact) note(ctx, `${label(node)}: ${trip ? 'it may stop before its trip count' : 'its trip count is not known before the run'}; costed as one iteration`);
  const iterations = exact ? trip![0]! : 1;
  if (iterations === 0) return { outs: [...carriedIn.map((c) => c ?? UNKNOWN()), ...Array.from({ length: nScan }, () => UNKNOWN())], cost: 0 };
  const r = iterate(iterations, carriedIn, step, ctx);
  // With an unknown count, what comes out is known only if one iteration leaves it unchanged.
  const carriedOut = r.carried.map((c) => (exact || r.stable ? (c ?? UNKNOWN()) : UNKNOWN(c?.dtype)));
  const scanOuts = Array.from({ length: nScan }, (_, k) => (exact && r.perIter ? stack(r.perIter[k], iterations) : UNKNOWN(r.perIter?.[k]?.dtype)));
  return { outs: [...carriedOut, ...scanOuts], cost: r.flops };
}

function inferScan(node: NodeInfo, ins: (Val | undefined)[], scope: Scope, ctx: Ctx): { outs: Val[]; cost: number } {
  const body = node.attrs.body?.g;
  const nScanIn = node.attrs.num_scan_inputs?.i;
  if (!body || nScanIn === undefined) throw new ShapeError('Scan without a body or num_scan_inputs');
  if ((ctx.opsets[''] ?? 0) < 9) throw new ShapeError('Scan before opset 9 (with sequence_lens) is not costed');
  const nState = ins.length - nScanIn;
  if (nState < 0) throw new ShapeError('Scan has fewer inputs than num_scan_inputs');
  const states = ins.slice(0, nState);
  const scans = ins.slice(nState).map((v, k) => need(v, `scan input ${k}`));
  const inAxes = node.attrs.scan_input_axes?.ints ?? scans.map(() => 0);
  const axes = scans.map((s, k) => normAxis(inAxes[k] ?? 0, s.dims.length));
  const iterations = scans[0] ? scans[0].dims[axes[0]!]! : 0;
  if (scans.some((s, k) => s.dims[axes[k]!] !== iterations)) throw new ShapeError('scan inputs differ in length');
  const slices: Val[] = scans.map((s, k) => ({ dtype: s.dtype, dims: s.dims.filter((_, i) => i !== axes[k]) }));
  const nScanOut = body.outputs.length - nState;
  const step = (carried: (Val | undefined)[]): { flops: number; carried: Val[]; perIter: Val[] } => {
    const r = runSubgraph(body, [...carried, ...slices], scope, ctx);
    return { flops: r.flops, carried: r.outs.slice(0, nState), perIter: r.outs.slice(nState) };
  };
  if (iterations === 0) return { outs: [...states.map((s) => s ?? UNKNOWN()), ...Array.from({ length: nScanOut }, () => UNKNOWN())], cost: 0 };
  const r = iterate(iterations, states, step, ctx);
  const outAxes = node.attrs.scan_output_axes?.ints ?? [];
  const scanOuts = Array.from({ length: nScanOut }, (_, k) => {
    const per = r.perIter?.[k];
    if (!per || !known(per)) return UNKNOWN(per?.dtype);
    return stack(per, iterations, normAxis(outAxes[k] ?? 0, per.dims.length + 1));
  });
  return { outs: [...r.carried.map((c) => c ?? UNKNOWN()), ...scanOuts], cost: r.flops };
}

function inferFunction(node: NodeInfo, fn: FunctionInfo, ins: (Val | undefined)[], ctx: Ctx): { outs: Val[]; cost: number } {
  if (ctx.functionDepth >= MAX_FUNCTION_DEPTH) throw new ShapeError(`functions nested deeper than ${MAX_FUNCTION_DEPTH}`);
  const attrs = { ...fn.attrDefaults, ...node.attrs };
  // The body's attributes that stand for the caller's (ref_attr_name) take the call's values.
  const bind = (n: NodeInfo): NodeInfo => {
    const a: Record<string, AttrInfo> = {};
    for (const [k, v] of Object.entries(n.attrs)) {
      if (v.ref === undefined) a[k] = v;
      else if (attrs[v.ref]) a[k] = attrs[v.ref]!;
    }
    return { ...n, attrs: a };
  };
  const g: GraphInfo = {
    name: `${fn.domain}.${fn.name}`,
    nodes: fn.nodes.map(bind),
    initializers: new Map(),
    inputs: fn.inputs.map((name) => ({ name, dtype: 'undefined', dims: null })),
    outputs: fn.outputs.map((name) => ({ name, dtype: 'undefined', dims: null })),
  };
  ctx.functionDepth++;
  try {
    // A function body sees only its parameters, not the caller's graph.
    const r = runSubgraph(g, ins, new Scope(null), ctx);
    return { outs: r.outs, cost: r.flops };
  } finally {
    ctx.functionDepth--;
  }
}

// ------------------------------------------------------------------------------ the table

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
    const s = strides[i] ?? 1;
    if (s < 1) throw new ShapeError('stride below 1');
    const ek = (kernel[i]! - 1) * (dil[i] ?? 1) + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') out.push(Math.ceil(inp / s));
    else if (autoPad === 'VALID') out.push(Math.floor((inp - ek) / s) + 1);
    else {
      const span = inp + (pads[i] ?? 0) + (pads[i + sp] ?? 0) - ek;
      let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
      // ceil_mode: a last window that would start inside the end padding is dropped (ONNX spec, as ORT does).
      if (ceil && (o - 1) * s >= inp + (pads[i] ?? 0)) o--;
      out.push(o);
    }
  }
  if (out.some((d) => d < 1)) throw new ShapeError(`kernel larger than the padded input`);
  return out;
}

function matmulShape(A: number[], B: number[]): { dims: number[]; cost: number } {
  if (A.length === 0 || B.length === 0) throw new ShapeError('MatMul of a scalar');
  const a2 = A.length === 1 ? [1, A[0]!] : A;
  const b2 = B.length === 1 ? [B[0]!, 1] : B;
  const K = a2[a2.length - 1]!;
  if (b2[b2.length - 2] !== K) throw new ShapeError(`MatMul inner dims differ: [${A}] · [${B}]`);
  const batchDims = broadcast([a2.slice(0, -2), b2.slice(0, -2)]);
  const out = [...batchDims, a2[a2.length - 2]!, b2[b2.length - 1]!];
  const dims = out.filter((_, i) => !(A.length === 1 && i === out.length - 2) && !(B.length === 1 && i === out.length - 1));
  return { dims, cost: 2 * prod(out) * K };
}

function convShape(X: number[], W: number[], a: Record<string, AttrInfo>, hasBias: boolean): { dims: number[]; cost: number } {
  const group = int(a.group, 1);
  if (X.length < 3 || W.length !== X.length) throw new ShapeError(`Conv ranks differ: X [${X}], W [${W}]`);
  const kernel = a.kernel_shape?.ints ?? W.slice(2);
  const sp = poolOut(X, kernel, a, false);
  if (X[1] !== W[1]! * group) throw new ShapeError(`Conv channels: input has ${X[1]}, weight expects ${W[1]}×${group} groups`);
  const out = [X[0]!, W[0]!, ...sp];
  return { dims: out, cost: 2 * prod(out) * W[1]! * prod(kernel) + (hasBias ? prod(out) : 0) };
}

function convTransposeShape(X: number[], W: number[], a: Record<string, AttrInfo>, hasBias: boolean): { dims: number[]; cost: number } {
  const group = int(a.group, 1);
  if (X.length < 3 || W.length !== X.length || W[0] !== X[1]) throw new ShapeError(`ConvTranspose shapes: X [${X}], W [${W}]`);
  const sp = X.length - 2;
  const kernel = a.kernel_shape?.ints ?? W.slice(2);
  const strides = a.strides?.ints ?? new Array<number>(sp).fill(1);
  const dil = a.dilations?.ints ?? new Array<number>(sp).fill(1);
  const outPad = a.output_padding?.ints ?? new Array<number>(sp).fill(0);
  const cout = W[1]! * group;
  let spatial: number[];
  if (a.output_shape?.ints) spatial = a.output_shape.ints.slice(-sp);
  else {
    const pads = a.pads?.ints ?? new Array<number>(2 * sp).fill(0);
    const autoPad = a.auto_pad?.s ?? 'NOTSET';
    spatial = X.slice(2).map((inp, i) => {
      const full = strides[i]! * (inp - 1) + outPad[i]! + (kernel[i]! - 1) * dil[i]! + 1;
      if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return inp * strides[i]!;
      return full - (autoPad === 'VALID' ? 0 : pads[i]! + pads[i + sp]!);
    });
  }
  const out = [X[0]!, cout, ...spatial];
  return { dims: out, cost: 2 * prod(X) * W[1]! * prod(kernel) + (hasBias ? prod(out) : 0) };
}

function rnnShape(op: string, ins: (Val | undefined)[], a: Record<string, AttrInfo>): { outs: Val[]; cost: number } {
  const X = need(ins[0], 'X').dims;
  const W = need(ins[1], 'W').dims;
  if (X.length !== 3 || W.length !== 3) throw new ShapeError(`${op} expects 3-D X and W`);
  const gates = op === 'LSTM' ? 4 : op === 'GRU' ? 3 : 1;
  const dirs = W[0]!;
  const H = int(a.hidden_size, W[1]! / gates);
  if (!Number.isSafeInteger(H) || H * gates !== W[1]) throw new ShapeError(`${op} hidden_size does not fit W`);
  const layout = int(a.layout, 0);
  const [seq, batch, I] = layout === 0 ? [X[0]!, X[1]!, X[2]!] : [X[1]!, X[0]!, X[2]!];
  if (I !== W[2]) throw new ShapeError(`${op} input size ${I} does not fit W [${W}]`);
  const dtype = ins[0]!.dtype;
  const Y = layout === 0 ? [seq, dirs, batch, H] : [batch, seq, dirs, H];
  const state = layout === 0 ? [dirs, batch, H] : [batch, dirs, H];
  const perStep = 2 * gates * H * (I + H) + 2 * gates * H;
  return { outs: [{ dtype, dims: Y }, { dtype, dims: state }, { dtype, dims: state }], cost: perStep * seq * batch * dirs };
}

function einsum(eq: string, vs: (Val & { dims: number[] })[]): { dims: number[]; cost: number } {
  const [lhs, rhs] = eq.replace(/\s/g, '').split('->');
  if (lhs === undefined || lhs.includes('.') || rhs?.includes('.')) throw new ShapeError(`Einsum ${eq}: ellipsis is not costed`);
  const terms = lhs.split(',');
  if (terms.length !== vs.length) throw new ShapeError(`Einsum ${eq}: ${terms.length} terms for ${vs.length} inputs`);
  const size = new Map<string, number>();
  const count = new Map<string, number>();
  terms.forEach((t, k) => {
    if (t.length !== vs[k]!.dims.length) throw new ShapeError(`Einsum ${eq}: term ${t} does not fit rank ${vs[k]!.dims.length}`);
    [...t].forEach((c, i) => {
      const d = vs[k]!.dims[i]!;
      const prev = size.get(c);
      if (prev !== undefined && prev !== d && prev !== 1 && d !== 1) throw new ShapeError(`Einsum ${eq}: index ${c} is ${prev} and ${d}`);
      size.set(c, Math.max(prev ?? 1, d));
      count.set(c, (count.get(c) ?? 0) + 1);
    });
  });
  const out = rhs ?? [...size.keys()].filter((c) => count.get(c) === 1).sort().join('');
  const dims = [...out].map((c) => {
    const d = size.get(c);
    if (d === undefined) throw new ShapeError(`Einsum ${eq}: output index ${c} is not an input index`);
    return d;
  });
  return { dims, cost: 2 * prod([...size.values()]) };
}

/** Shape + cost for one default-domain node; undefined for ops outside the table. */
function inferNode(node: NodeInfo, ins: (Val | undefined)[], opset: number): { outs: Val[]; cost: number } | undefined {
  const op = node.op;
  const a = node.attrs;
  const x = ins[0];
  const elems = (v: Val & { dims: number[] }): number => prod(v.dims);

  if (UNARY_1.has(op)) {
    const v = need(x, 'input');
    return { outs: [withValues(v.dtype, [...v.dims], evalUnary(op, v))], cost: elems(v) };
  }
  if (FREE_UNARY.has(op)) {
    const v = need(x, 'input');
    return { outs: [v, { dtype: 'bool', dims: [...v.dims] }], cost: 0 };
  }
  if (BINARY_1.has(op) || COMPARE.has(op)) {
    const l = need(ins[0], 'A');
    const r = need(ins[1], 'B');
    const dims = broadcast([l.dims, r.dims]);
    const values = evalBinary(op, l, r, dims, INT_TYPES.has(l.dtype));
    return { outs: [withValues(COMPARE.has(op) ? 'bool' : l.dtype, dims, values)], cost: prod(dims) };
  }
  if (VARIADIC.has(op)) {
    const vs = ins.filter((v): v is Val => v !== undefined).map((v, i) => need(v, `input ${i}`));
    if (vs.length === 0) throw new ShapeError('no inputs');
    const dims = broadcast(vs.map((v) => v.dims));
    let values: number[] | undefined;
    if ((op === 'Max' || op === 'Min') && vs.length === 2) values = evalBinary(op, vs[0]!, vs[1]!, dims, true);
    return { outs: [withValues(vs[0]!.dtype, dims, values)], cost: prod(dims) * Math.max(1, vs.length - 1) };
  }
  if (NORM_7.has(op)) {
    const v = need(x, 'X');
    const outs: Val[] = [{ dtype: v.dtype, dims: [...v.dims] }];
    if (op === 'LayerNormalization') {
      const axis = normAxis(int(a.axis, -1), v.dims.length);
      const stat = [...v.dims.slice(0, axis), ...v.dims.slice(axis).map(() => 1)];
      outs.push({ dtype: 'float32', dims: stat }, { dtype: 'float32', dims: stat });
    }
    return { outs, cost: 7 * elems(v) };
  }
  switch (op) {
    case 'Where': {
      const c = need(ins[0], 'condition');
      const X = need(ins[1], 'X');
      const Y = need(ins[2], 'Y');
      const dims = broadcast([c.dims, X.dims, Y.dims]);
      let values: number[] | undefined;
      if (c.values && X.values && Y.values && prod(dims) <= MAX_CONST_VALUES) {
        values = Array.from({ length: prod(dims) }, (_, i) => (c.values![bIndex(c.dims, dims, i)] ? X.values![bIndex(X.dims, dims, i)]! : Y.values![bIndex(Y.dims, dims, i)]!));
      }
      return { outs: [withValues(X.dtype, dims, values)], cost: prod(dims) };
    }
    case 'MatMul':
    case 'MatMulInteger': {
      const m = matmulShape(need(ins[0], 'A').dims, need(ins[1], 'B').dims);
      return { outs: [{ dtype: op === 'MatMulInteger' ? 'int32' : ins[0]!.dtype, dims: m.dims }], cost: m.cost };
    }
    case 'QLinearMatMul': {
      const m = matmulShape(need(ins[0], 'a').dims, need(ins[3], 'b').dims);
      return { outs: [{ dtype: ins[7]?.dtype ?? ins[0]!.dtype, dims: m.dims }], cost: m.cost };
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
    case 'Conv':
    case 'ConvInteger': {
      const c = convShape(need(ins[0], 'X').dims, need(ins[1], 'W').dims, a, op === 'Conv' && ins[2] !== undefined);
      return { outs: [{ dtype: op === 'ConvInteger' ? 'int32' : ins[0]!.dtype, dims: c.dims }], cost: c.cost };
    }
    case 'QLinearConv': {
      const c = convShape(need(ins[0], 'x').dims, need(ins[3], 'w').dims, a, ins[8] !== undefined);
      return { outs: [{ dtype: ins[0]!.dtype, dims: c.dims }], cost: c.cost };
    }
    case 'ConvTranspose': {
      const c = convTransposeShape(need(ins[0], 'X').dims, need(ins[1], 'W').dims, a, ins[2] !== undefined);
      return { outs: [{ dtype: ins[0]!.dtype, dims: c.dims }], cost: c.cost };
    }
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      return rnnShape(op, ins, a);
    case 'Einsum': {
      const vs = ins.map((v, i) => need(v, `input ${i}`));
      const e = einsum(a.equation?.s ?? '', vs);
      return { outs: [{ dtype: vs[0]!.dtype, dims: e.dims }], cost: e.cost };
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
      if (X.length < 2) throw new ShapeError('global pool of rank < 2');
      return { outs: [{ dtype: x!.dtype, dims: [...X.slice(0, 2), ...X.slice(2).map(() => 1)] }], cost: prod(X) };
    }
    case 'Softmax':
    case 'LogSoftmax': {
      const v = need(x, 'input');
      return { outs: [{ dtype: v.dtype, dims: [...v.dims] }], cost: 5 * elems(v) };
    }
    case 'Hardmax': {
      const v = need(x, 'input');
      return { outs: [{ dtype: v.dtype, dims: [...v.dims] }], cost: elems(v) };
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
    case 'TopK': {
      const v = need(x, 'X');
      const k = constInts(ins[1], 'TopK K')[0];
      if (k === undefined) throw new ShapeError('TopK without K');
      const axis = normAxis(int(a.axis, -1), v.dims.length);
      if (k > v.dims[axis]!) throw new ShapeError(`TopK K ${k} beyond the axis (${v.dims[axis]})`);
      const dims = v.dims.map((d, i) => (i === axis ? k : d));
      return { outs: [{ dtype: v.dtype, dims }, { dtype: 'int64', dims: [...dims] }], cost: elems(v) };
    }
    case 'QuantizeLinear':
    case 'DequantizeLinear': {
      const v = need(x, 'x');
      const to = op === 'DequantizeLinear' ? (ins[1]?.dtype ?? 'float32') : (ins[2]?.dtype ?? 'uint8');
      return { outs: [{ dtype: to, dims: [...v.dims] }], cost: 2 * elems(v) };
    }
    case 'DynamicQuantizeLinear': {
      const v = need(x, 'x');
      return { outs: [{ dtype: 'uint8', dims: [...v.dims] }, { dtype: 'float32', dims: [] }, { dtype: 'uint8', dims: [] }], cost: 4 * elems(v) };
    }
    case 'Resize':
    case 'Upsample': {
      const v = need(x, 'X');
      let dims: number[];
      const sizes = op === 'Resize' ? ins[3] : undefined;
      const scalesIn = op === 'Resize' ? (opset >= 11 ? ins[2] : ins[1]) : ins[1];
      if (sizes?.values && sizes.values.length > 0) {
        const s = sizes.values;
        const axesA = a.axes?.ints;
        dims = [...v.dims];
        if (axesA) axesA.forEach((ax, i) => (dims[normAxis(ax, v.dims.length)] = s[i]!));
        else if (s.length === v.dims.length) dims = [...s];
        else throw new ShapeError('Resize sizes do not fit the rank');
        if (a.keep_aspect_ratio_policy?.s && a.keep_aspect_ratio_policy.s !== 'stretch') throw new ShapeError('Resize keep_aspect_ratio_policy is not costed');
      } else {
        const scales = a.scales?.floats ?? scalesIn?.values;
        if (!scales || scales.length === 0) throw new ShapeError('Resize scales are not known before the run');
        const axesA = a.axes?.ints;
        dims = [...v.dims];
        if (axesA) axesA.forEach((ax, i) => (dims[normAxis(ax, v.dims.length)] = Math.floor(v.dims[normAxis(ax, v.dims.length)]! * scales[i]!)));
        else if (scales.length === v.dims.length) dims = v.dims.map((d, i) => Math.floor(d * scales[i]!));
        else throw new ShapeError('Resize scales do not fit the rank');
      }
      return { outs: [{ dtype: v.dtype, dims }], cost: prod(dims) };
    }
    case 'Cast': {
      const v = need(x, 'input');
      const to = ONNX_TYPE_NAMES[int(a.to, 1)] ?? `type#${int(a.to, 1)}`;
      const values = v.values?.map((n) => (to === 'bool' ? (n ? 1 : 0) : INT_TYPES.has(to) ? Math.trunc(n) : n));
      return { outs: [withValues(to, [...v.dims], values)], cost: 0 };
    }
    case 'CastLike': {
      const v = need(x, 'input');
      return { outs: [withValues(ins[1]?.dtype ?? v.dtype, [...v.dims], v.values)], cost: 0 };
    }
    case 'Constant': {
      if (a.value?.t) return { outs: [fromTensor(a.value.t)], cost: 0 };
      if (a.value_int) return { outs: [{ dtype: 'int64', dims: [], values: [a.value_int.i ?? 0] }], cost: 0 };
      if (a.value_ints) return { outs: [withValues('int64', [a.value_ints.ints?.length ?? 0], a.value_ints.ints)], cost: 0 };
      if (a.value_float) return { outs: [{ dtype: 'float32', dims: [], values: [a.value_float.f ?? 0] }], cost: 0 };
      if (a.value_floats) return { outs: [withValues('float32', [a.value_floats.floats?.length ?? 0], a.value_floats.floats)], cost: 0 };
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
      if (ax < 0 || ax > v.dims.length) throw new ShapeError(`Flatten axis ${axis} out of range`);
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
      return { outs: [{ dtype: v.dtype, dims: perm.map((p) => v.dims[normAxis(p, v.dims.length)]!) }], cost: 0 };
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
      const vs = ins.filter((v): v is Val => v !== undefined).map((v, i) => need(v, `input ${i}`));
      if (vs.length === 0) throw new ShapeError('Concat of nothing');
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
        if (values.some((v) => v === undefined)) values = undefined;
      }
      return { outs: [withValues(data.dtype, dims, values)], cost: 0 };
    }
    case 'GatherElements': {
      const data = need(ins[0], 'data');
      return { outs: [{ dtype: data.dtype, dims: [...need(ins[1], 'indices').dims] }], cost: 0 };
    }
    case 'GatherND': {
      const data = need(ins[0], 'data').dims;
      const idx = need(ins[1], 'indices').dims;
      const b = int(a.batch_dims, 0);
      const last = idx[idx.length - 1];
      if (last === undefined || b + last > data.length) throw new ShapeError('GatherND indices do not fit the data');
      return { outs: [{ dtype: ins[0]!.dtype, dims: [...idx.slice(0, -1), ...data.slice(b + last)] }], cost: 0 };
    }
    case 'ScatterND':
    case 'ScatterElements':
    case 'Scatter':
    case 'Trilu':
    case 'ReverseSequence': {
      const v = need(x, 'data');
      return { outs: [{ dtype: v.dtype, dims: [...v.dims] }], cost: 0 };
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
        const step = steps[i] ?? 1;
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
      const dims = broadcast([v.dims, shape]);
      const values = v.values && prod(dims) <= MAX_CONST_VALUES ? Array.from({ length: prod(dims) }, (_, i) => v.values![bIndex(v.dims, dims, i)]!) : undefined;
      return { outs: [withValues(v.dtype, dims, values)], cost: 0 };
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
      const dims = [...v.dims];
      if (ins[3]) {
        const axes = constInts(ins[3], 'Pad axes').map((ax) => normAxis(ax, r));
        if (pads.length !== 2 * axes.length) throw new ShapeError(`pads [${pads}] do not fit axes [${axes}]`);
        axes.forEach((ax, i) => (dims[ax] = dims[ax]! + pads[i]! + pads[i + axes.length]!));
      } else {
        if (pads.length !== 2 * r) throw new ShapeError(`pads [${pads}] do not fit rank ${r}`);
        for (let i = 0; i < r; i++) dims[i] = dims[i]! + pads[i]! + pads[i + r]!;
      }
      return { outs: [{ dtype: v.dtype, dims }], cost: 0 };
    }
    case 'ConstantOfShape': {
      const shape = constInts(ins[0], 'ConstantOfShape shape');
      const dtype = a.value?.t?.dtype ?? 'float32';
      const fill = a.value?.t?.values?.[0] ?? 0;
      return { outs: [withValues(dtype, shape, prod(shape) <= MAX_CONST_VALUES ? new Array<number>(prod(shape)).fill(fill) : undefined)], cost: 0 };
    }
    case 'Range': {
      const [s, l, d] = [0, 1, 2].map((i) => ins[i]?.values?.[0]);
      if (s === undefined || l === undefined || d === undefined || d === 0) throw new ShapeError('Range bounds are not known before the run');
      const n = Math.max(Math.ceil((l - s) / d), 0);
      const values = n <= MAX_CONST_VALUES ? Array.from({ length: n }, (_, i) => s + i * d) : undefined;
      return { outs: [withValues(ins[0]!.dtype, [n], values)], cost: 0 };
    }
    case 'OneHot': {
      const idx = need(ins[0], 'indices');
      const depth = constInts(ins[1], 'OneHot depth')[0];
      if (depth === undefined || depth < 0) throw new ShapeError('OneHot depth');
      const axis = int(a.axis, -1);
      const r = idx.dims.length + 1;
      const ax = normAxis(axis, r);
      const dims = [...idx.dims];
      dims.splice(ax, 0, depth);
      return { outs: [{ dtype: ins[2]?.dtype ?? 'float32', dims }], cost: 0 };
    }
    case 'DepthToSpace':
    case 'SpaceToDepth': {
      const v = need(x, 'input').dims;
      const b = int(a.blocksize, 0);
      if (v.length !== 4 || b < 1) throw new ShapeError(`${op} needs 4-D input and a blocksize`);
      const dims = op === 'DepthToSpace' ? [v[0]!, v[1]! / (b * b), v[2]! * b, v[3]! * b] : [v[0]!, v[1]! * b * b, v[2]! / b, v[3]! / b];
      return { outs: [{ dtype: x!.dtype, dims }], cost: 0 };
    }
    case 'Split': {
      const v = need(x, 'input');
      const axis = normAxis(int(a.axis, 0), v.dims.length);
      const n = node.outputs.length;
      const split = a.split?.ints ?? (ins[1] ? constInts(ins[1], 'Split sizes') : undefined);
      const total = v.dims[axis]!;
      const chunk = Math.ceil(total / n);
      const sizes = split ?? Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, total - chunk * i)));
      if (sizes.length !== n || sizes.reduce((s, d) => s + d, 0) !== total) throw new ShapeError(`Split sizes [${sizes}] do not add up to ${total}`);
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

/** com.microsoft contrib ops that onnxruntime's CPU build runs and the table covers. */
const MS_OPS = new Set([
  'FusedMatMul', 'MatMulIntegerToFloat', 'Gelu', 'FastGelu', 'BiasGelu', 'QuickGelu', 'QLinearAdd', 'QLinearMul', 'QLinearSigmoid',
  'QLinearLeakyRelu', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization', 'SimplifiedLayerNormalization', 'LayerNormalization',
  'EmbedLayerNormalization', 'Attention', 'DynamicQuantizeMatMul', 'BiasAdd',
]);

/** Shape + cost for com.microsoft contrib ops (see MS_OPS); undefined for the others. */
function inferMicrosoft(node: NodeInfo, ins: (Val | undefined)[]): { outs: Val[]; cost: number } | undefined {
  const op = node.op;
  const a = node.attrs;
  switch (op) {
    case 'FusedMatMul': {
      let A = [...need(ins[0], 'A').dims];
      let B = [...need(ins[1], 'B').dims];
      if (int(a.transBatchA, 0) || int(a.transBatchB, 0)) throw new ShapeError('FusedMatMul transBatch is not costed');
      const t = (d: number[]): number[] => (d.length >= 2 ? [...d.slice(0, -2), d[d.length - 1]!, d[d.length - 2]!] : d);
      if (int(a.transA, 0)) A = t(A);
      if (int(a.transB, 0)) B = t(B);
      const m = matmulShape(A, B);
      return { outs: [{ dtype: ins[0]!.dtype, dims: m.dims }], cost: m.cost };
    }
    case 'MatMulIntegerToFloat':
    case 'DynamicQuantizeMatMul': {
      const m = matmulShape(need(ins[0], 'A').dims, need(ins[1], 'B').dims);
      return { outs: [{ dtype: 'float32', dims: m.dims }], cost: m.cost };
    }
    case 'Gelu':
    case 'QuickGelu':
    case 'QLinearSigmoid':
    case 'QLinearLeakyRelu': {
      const v = need(ins[0], 'X');
      return { outs: [{ dtype: v.dtype, dims: [...v.dims] }], cost: prod(v.dims) };
    }
    case 'FastGelu':
    case 'BiasGelu':
    case 'BiasAdd': {
      const v = need(ins[0], 'X');
      const withBias = op === 'BiasGelu' || ins[1] !== undefined;
      const dims = ins[1] ? broadcast([v.dims, need(ins[1], 'bias').dims]) : [...v.dims];
      return { outs: [{ dtype: v.dtype, dims }], cost: (withBias && op !== 'BiasAdd' ? 2 : 1) * prod(dims) };
    }
    case 'QLinearAdd':
    case 'QLinearMul': {
      const dims = broadcast([need(ins[0], 'A').dims, need(ins[3], 'B').dims]);
      return { outs: [{ dtype: ins[0]!.dtype, dims }], cost: prod(dims) };
    }
    case 'LayerNormalization':
    case 'SimplifiedLayerNormalization': {
      const v = need(ins[0], 'X');
      const axis = normAxis(int(a.axis, -1), v.dims.length);
      const stat = [...v.dims.slice(0, axis), ...v.dims.slice(axis).map(() => 1)];
      return { outs: [{ dtype: v.dtype, dims: [...v.dims] }, { dtype: 'float32', dims: stat }, { dtype: 'float32', dims: stat }], cost: 7 * prod(v.dims) };
    }
    case 'SkipLayerNormalization':
    case 'SkipSimplifiedLayerNormalization': {
      const v = need(ins[0], 'input');
      const stat = [...v.dims.slice(0, -1), 1];
      const outs: Val[] = [{ dtype: v.dtype, dims: [...v.dims] }, { dtype: 'float32', dims: stat }, { dtype: 'float32', dims: stat }, { dtype: v.dtype, dims: [...v.dims] }];
      if (op === 'SkipSimplifiedLayerNormalization') outs.splice(1, 1); // no mean output
      return { outs, cost: 9 * prod(v.dims) };
    }
    case 'EmbedLayerNormalization': {
      const ids = need(ins[0], 'input_ids').dims;
      const word = need(ins[2], 'word_embedding').dims;
      if (ids.length !== 2 || word.length !== 2) throw new ShapeError('EmbedLayerNormalization expects [batch, seq] ids and a 2-D embedding');
      const out = [ids[0]!, ids[1]!, word[1]!];
      return { outs: [{ dtype: ins[2]!.dtype, dims: out }, { dtype: 'int32', dims: [ids[0]!] }, { dtype: ins[2]!.dtype, dims: out }], cost: 9 * prod(out) };
    }
    case 'Attention': {
      const X = need(ins[0], 'input').dims;
      const W = need(ins[1], 'weights').dims;
      const heads = int(a.num_heads, 0);
      if (X.length !== 3 || W.length !== 2 || W[0] !== X[2] || heads < 1) throw new ShapeError('Attention expects input [B, S, H], weights [H, 3H] and num_heads');
      const [B, S] = [X[0]!, X[1]!];
      const sizes = a.qkv_hidden_sizes?.ints ?? [W[1]! / 3, W[1]! / 3, W[1]! / 3];
      const [hq, hk, hv] = sizes as [number, number, number];
      if (hq + hk + hv !== W[1] || hq % heads || hv % heads) throw new ShapeError('Attention hidden sizes do not fit the weights');
      const past = ins[4];
      const pastSeq = past && node.inputs[4] ? need(past, 'past').dims[3]! : 0;
      const total = pastSeq + S;
      const cost = 2 * B * S * X[2]! * W[1]! + 2 * B * S * total * hq + 5 * B * heads * S * total + 2 * B * S * total * hv;
      const outs: Val[] = [{ dtype: ins[0]!.dtype, dims: [B, S, hv] }];
      if (node.outputs[1]) outs.push({ dtype: ins[0]!.dtype, dims: [2, B, heads, total, hq / heads] });
      return { outs, cost };
    }
  }
  return undefined;
}
