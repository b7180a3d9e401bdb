/**
 * Builds ONNX models from standard operators (and other domains' ops, with their opset
 * imported), with initializers stored as `raw_data`, dynamic dims as `dim_param`, subgraphs as
 * graph attributes. The ModelProto is encoded by protobuf.js from the official onnx.proto
 * (proto.ts), loaded when the first model is encoded. Weights come from a seeded PRNG whose
 * stream for each tensor depends only on (model seed, tensor name) and uses only integer and
 * IEEE-exact arithmetic, and protobuf.js writes fields in field-number order, so a model is
 * byte-identical on every machine and adding a tensor does not change the others.
 *
 * ```ts
 * const g = new GraphBuilder({ name: 'mlp', seed: 1 });
 * const x = g.input('x', 'float32', ['batch', 4]);
 * const y = g.op('Relu', [g.op('MatMul', [x, g.weight('w', [4, 2])])]);
 * g.output(y, 'float32', ['batch', 2], 'y');
 * const bytes = await g.toBytes();
 * ```
 */
import { DrillError } from '../util/errors.ts';
import { BYTES_PER_ELEMENT, elementCount, tensorBytes, type Dtype, type HostTensor } from '../util/tensor.ts';
import { loadOnnxProto } from './proto.ts';
import type { onnx } from './proto/onnx.js';

/** ONNX TensorProto.DataType numbers for the dtypes we use. */
export const OnnxDataType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
} as const satisfies Record<Dtype, number>;

/** ONNX AttributeProto.AttributeType numbers. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** A dimension: a fixed size, or a symbolic name (`dim_param`) such as 'batch'. */
export type Dim = number | string;

/** A typed attribute value. Build with the `attr` helpers so int vs float is never guessed. */
export type AttrValue =
  | { type: 'int'; v: number }
  | { type: 'float'; v: number }
  | { type: 'ints'; v: readonly number[] }
  | { type: 'floats'; v: readonly number[] }
  | { type: 'string'; v: string }
  | { type: 'tensor'; v: HostTensor }
  | { type: 'graph'; v: GraphBuilder };

/** Constructors for attribute values. */
export const attr = {
  int: (v: number): AttrValue => ({ type: 'int', v }),
  float: (v: number): AttrValue => ({ type: 'float', v }),
  ints: (v: readonly number[]): AttrValue => ({ type: 'ints', v }),
  floats: (v: readonly number[]): AttrValue => ({ type: 'floats', v }),
  string: (v: string): AttrValue => ({ type: 'string', v }),
  tensor: (v: HostTensor): AttrValue => ({ type: 'tensor', v }),
  /** A subgraph (If branches, Loop/Scan bodies): a GraphBuilder whose inputs are the body's parameters. */
  graph: (v: GraphBuilder): AttrValue => ({ type: 'graph', v }),
} as const;

/** Settings for a GraphBuilder. */
export interface GraphBuilderOptions {
  /** Graph name. */
  name: string;
  /** Seed for every weight the builder generates. */
  seed: number;
  /** Default-domain opset. 17 is the first with LayerNormalization and is supported by every ORT ≥ 1.12. */
  opset?: number;
  /** ModelProto.ir_version. 8 matches opset 17 (IR 8 was introduced alongside opset 17). */
  irVersion?: number;
  /** ModelProto.producer_name. */
  producer?: string;
  /** Opsets of other domains the graph's ops use, e.g. { 'com.microsoft': 1 }. */
  opsets?: Record<string, number>;
}

export const defaultGraphBuilderOptions = { opset: 17, irVersion: 8, producer: 'matrix-drill' } as const;

interface NodeDef {
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  name: string;
}
interface ValueDef {
  name: string;
  dtype: Dtype;
  /** null: shape left unspecified (rank unknown). */
  dims: Dim[] | null;
}

// ---------------------------------------------------------------- deterministic PRNG

/** FNV-1a 32-bit over a string: mixes a tensor's name into its stream seed. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A small, seedable PRNG (mulberry32): integer-only, so identical on every JS engine.
 * `next()` returns a uniform float in [0, 1) with 32 bits of resolution.
 */
export class Prng {
  #s: number;
  constructor(seed: number, stream = '') {
    this.#s = (Math.imul(seed >>> 0, 0x9e3779b1) ^ fnv1a(stream)) >>> 0;
  }
  nextU32(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** How a generated weight is initialised. */
export interface WeightInit {
  /** 'he' (default): uniform ±sqrt(6/fanIn), keeps ReLU activations O(1). 'uniform': ±scale. 'const': every element = scale. */
  kind?: 'he' | 'uniform' | 'const';
  /** For 'uniform' the half-width, for 'const' the value. */
  scale?: number;
  /** Fan-in for 'he'; default: product of all dims but the last (MatMul [K, N]) — pass it for Conv weights. */
  fanIn?: number;
}

// ---------------------------------------------------------------- builder

/**
 * Builds one ONNX graph. Value names are returned by every method so graphs read as dataflow.
 * The builder does no shape inference; the cost model (flops.ts) does that on the decoded model.
 */
export class GraphBuilder {
  readonly name: string;
  readonly seed: number;
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: string;
  readonly opsets: Record<string, number>;
  #inputs: ValueDef[] = [];
  #outputs: ValueDef[] = [];
  #inits: { name: string; t: HostTensor }[] = [];
  #nodes: NodeDef[] = [];
  #names = new Set<string>();
  #counter = 0;

  constructor(opts: GraphBuilderOptions) {
    this.name = opts.name;
    this.seed = opts.seed;
    this.opset = opts.opset ?? defaultGraphBuilderOptions.opset;
    this.irVersion = opts.irVersion ?? defaultGraphBuilderOptions.irVersion;
    this.producer = opts.producer ?? defaultGraphBuilderOptions.producer;
    this.opsets = { ...opts.opsets };
  }

  #claim(name: string): string {
    if (this.#names.has(name)) throw new DrillError('ONNX_BUILD', `value name ${JSON.stringify(name)} is defined twice in graph ${this.name}`, { name });
    this.#names.add(name);
    return name;
  }

  /** A fresh value name with the given prefix. */
  fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.#counter++}`;
    while (this.#names.has(n));
    return n;
  }

  /** Declare a graph input (`dims: null` leaves its shape unspecified). */
  input(name: string, dtype: Dtype, dims: Dim[] | null): string {
    this.#inputs.push({ name: this.#claim(name), dtype, dims: dims ? [...dims] : null });
    return name;
  }

  /**
   * Declare `value` as a graph output. With `rename`, an Identity node gives it that name.
   * `dims: null` leaves the shape unspecified (ORT and the cost model then infer it).
   * @returns the output name
   */
  output(value: string, dtype: Dtype, dims: Dim[] | null, rename?: string): string {
    let name = value;
    if (rename !== undefined && rename !== value) name = this.op('Identity', [value], {}, rename);
    this.#outputs.push({ name, dtype, dims: dims ? [...dims] : null });
    return name;
  }

  /** Add an initializer holding `t`. */
  initializer(name: string, t: HostTensor): string {
    const want = elementCount(t.dims) * BYTES_PER_ELEMENT[t.dtype];
    if (tensorBytes(t).length !== want) throw new DrillError('ONNX_BUILD', `initializer ${name}: dims [${t.dims}] need ${want} bytes, data has ${tensorBytes(t).length}`, { name });
    this.#inits.push({ name: this.#claim(name), t });
    return name;
  }

  /** A float32 weight filled from the seeded PRNG (stream = model seed + tensor name). */
  weight(name: string, dims: number[], init: WeightInit = {}): string {
    const n = elementCount(dims);
    const data = new Float32Array(n);
    const kind = init.kind ?? 'he';
    if (kind === 'const') data.fill(init.scale ?? 0);
    else {
      const fanIn = init.fanIn ?? Math.max(1, elementCount(dims.slice(0, -1)));
      const a = kind === 'he' ? Math.sqrt(6 / fanIn) : (init.scale ?? 1);
      const rng = new Prng(this.seed, `${this.name}/${name}`);
      for (let i = 0; i < n; i++) data[i] = rng.uniform(-a, a);
    }
    return this.initializer(name, { dtype: 'float32', dims, data });
  }

  /** An int64 constant initializer (Reshape shapes, axes). */
  int64s(name: string, values: readonly number[], dims: number[] = [values.length]): string {
    return this.initializer(name, { dtype: 'int64', dims, data: BigInt64Array.from(values.map((v) => BigInt(v))) });
  }

  /** A float32 constant initializer. */
  floats(name: string, values: readonly number[], dims: number[] = [values.length]): string {
    return this.initializer(name, { dtype: 'float32', dims, data: Float32Array.from(values) });
  }

  /**
   * Add a single-output node.
   * @returns its output name (`out`, or a fresh one)
   */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, out?: string, domain = ''): string {
    return this.opN(opType, inputs, [out ?? this.fresh(opType.toLowerCase())], attrs, domain)[0]!;
  }

  /** Add a node with several outputs (`''` leaves an optional output unused). */
  opN(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, domain = ''): string[] {
    for (const o of outputs) if (o !== '') this.#claim(o);
    this.#nodes.push({ op: opType, domain, inputs: [...inputs], outputs: [...outputs], attrs, name: `${opType}_${this.#nodes.length}` });
    return outputs;
  }

  /** The GraphProto as a protobuf.js message object (also how a subgraph is embedded). */
  graphMessage(): onnx.GraphProto.$Properties {
    return {
      node: this.#nodes.map(nodeMessage),
      name: this.name,
      initializer: this.#inits.map(({ name, t }) => tensorMessage(name, t)),
      input: this.#inputs.map(valueInfoMessage),
      output: this.#outputs.map(valueInfoMessage),
    };
  }

  /** Encode the ModelProto (loads the protobuf schema on first use). */
  async toBytes(): Promise<Uint8Array> {
    const proto = await loadOnnxProto();
    const opsets = [{ domain: '', version: this.opset }, ...Object.entries(this.opsets).map(([domain, version]) => ({ domain, version }))];
    const b = proto.ModelProto.encode({ ir_version: this.irVersion, producer_name: this.producer, producer_version: '0.1.0', graph: this.graphMessage(), opset_import: opsets }).finish();
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
}

function tensorMessage(name: string, t: HostTensor): onnx.TensorProto.$Properties {
  return { dims: [...t.dims], data_type: OnnxDataType[t.dtype], name, raw_data: tensorBytes(t) };
}

function valueInfoMessage(v: ValueDef): onnx.ValueInfoProto.$Properties {
  const tensor_type: onnx.TypeProto.Tensor.$Properties = { elem_type: OnnxDataType[v.dtype] };
  if (v.dims) tensor_type.shape = { dim: v.dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) };
  return { name: v.name, type: { tensor_type } };
}

function nodeMessage(n: NodeDef): onnx.NodeProto.$Properties {
  return {
    input: n.inputs,
    output: n.outputs,
    name: n.name,
    op_type: n.op,
    attribute: Object.entries(n.attrs).map(([k, a]) => attrMessage(k, a)),
    ...(n.domain ? { domain: n.domain } : {}),
  };
}

const te = new TextEncoder();

function attrMessage(name: string, a: AttrValue): onnx.AttributeProto.$Properties {
  switch (a.type) {
    case 'float':
      return { name, f: a.v, type: AttrType.FLOAT };
    case 'int':
      return { name, i: a.v, type: AttrType.INT };
    case 'string':
      return { name, s: te.encode(a.v), type: AttrType.STRING };
    case 'tensor':
      return { name, t: tensorMessage('', a.v), type: AttrType.TENSOR };
    case 'graph':
      return { name, g: a.v.graphMessage(), type: AttrType.GRAPH };
    case 'floats':
      return { name, floats: [...a.v], type: AttrType.FLOATS };
    case 'ints':
      return { name, ints: [...a.v], type: AttrType.INTS };
  }
}
