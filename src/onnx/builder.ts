/**
 * A minimal ONNX ModelProto encoder. Builds graphs from standard ONNX operators with
 * initializers stored as `raw_data`, dynamic dims as `dim_param`, one default-domain
 * `opset_import`. Weights come from a seeded PRNG whose stream for each tensor depends only on
 * (model seed, tensor name) and uses only integer and IEEE-exact arithmetic, so a model is
 * byte-identical on every machine and adding a tensor does not change the others.
 *
 * Field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
 * TensorProto, ValueInfoProto, TypeProto, TensorShapeProto).
 *
 * ```ts
 * const g = new GraphBuilder({ name: 'mlp', seed: 1 });
 * const x = g.input('x', 'float32', ['batch', 4]);
 * const y = g.op('Relu', [g.op('MatMul', [x, g.weight('w', [4, 2])])]);
 * g.output(y, 'float32', ['batch', 2], 'y');
 * const bytes = g.toBytes();
 * ```
 */
import { DrillError } from '../util/errors.ts';
import { BYTES_PER_ELEMENT, elementCount, tensorBytes, type Dtype, type HostTensor } from '../util/tensor.ts';
import { ProtoWriter } from './proto.ts';

/** ONNX TensorProto.DataType numbers for the dtypes we use. */
export const OnnxDataType = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 } as const satisfies Record<Dtype, number>;

/** ONNX AttributeProto.AttributeType numbers. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** A dimension: a fixed size, or a symbolic name (`dim_param`) such as 'batch'. */
export type Dim = number | string;

/** A typed attribute value. Build with the `attr` helpers so int vs float is never guessed. */
export type AttrValue =
  | { type: 'int'; v: number }
  | { type: 'float'; v: number }
  | { type: 'ints'; v: readonly number[] }
  | { type: 'floats'; v: readonly number[] }
  | { type: 'string'; v: string }
  | { type: 'tensor'; v: HostTensor };

/** Constructors for attribute values. */
export const attr = {
  int: (v: number): AttrValue => ({ type: 'int', v }),
  float: (v: number): AttrValue => ({ type: 'float', v }),
  ints: (v: readonly number[]): AttrValue => ({ type: 'ints', v }),
  floats: (v: readonly number[]): AttrValue => ({ type: 'floats', v }),
  string: (v: string): AttrValue => ({ type: 'string', v }),
  tensor: (v: HostTensor): AttrValue => ({ type: 'tensor', v }),
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
}

export const defaultGraphBuilderOptions = { opset: 17, irVersion: 8, producer: 'matrix-drill' } as const;

interface NodeDef {
  op: string;
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
 * The builder does no shape inference; `inspectModel` does that on the encoded bytes.
 */
export class GraphBuilder {
  readonly name: string;
  readonly seed: number;
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: string;
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

  /** Declare a graph input. */
  input(name: string, dtype: Dtype, dims: Dim[]): string {
    this.#inputs.push({ name: this.#claim(name), dtype, dims: [...dims] });
    return name;
  }

  /**
   * Declare `value` as a graph output. With `rename`, an Identity node gives it that name.
   * `dims: null` leaves the shape unspecified (ORT and inspectModel then infer it).
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
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, out?: string): string {
    return this.opN(opType, inputs, [out ?? this.fresh(opType.toLowerCase())], attrs)[0]!;
  }

  /** Add a node with several outputs (`''` leaves an optional output unused). */
  opN(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}): string[] {
    for (const o of outputs) if (o !== '') this.#claim(o);
    this.#nodes.push({ op: opType, inputs: [...inputs], outputs: [...outputs], attrs, name: `${opType}_${this.#nodes.length}` });
    return outputs;
  }

  /** Encode the ModelProto. */
  toBytes(): Uint8Array {
    const g = new ProtoWriter();
    for (const n of this.#nodes) g.message(1, encodeNode(n));
    g.string(2, this.name);
    for (const { name, t } of this.#inits) g.message(5, encodeTensor(name, t));
    for (const v of this.#inputs) g.message(11, encodeValueInfo(v));
    for (const v of this.#outputs) g.message(12, encodeValueInfo(v));

    const m = new ProtoWriter();
    m.varint(1, this.irVersion);
    m.string(2, this.producer);
    m.string(3, '0.1.0');
    m.message(7, g);
    m.message(8, new ProtoWriter().string(1, '').varint(2, this.opset));
    return m.finish();
  }
}

function encodeTensor(name: string, t: HostTensor): ProtoWriter {
  const w = new ProtoWriter();
  if (t.dims.length) w.packedVarints(1, t.dims);
  w.varint(2, OnnxDataType[t.dtype]);
  w.string(8, name);
  w.bytes(9, tensorBytes(t));
  return w;
}

function encodeValueInfo(v: ValueDef): ProtoWriter {
  const tensorType = new ProtoWriter().varint(1, OnnxDataType[v.dtype]);
  if (v.dims) {
    const shape = new ProtoWriter();
    for (const d of v.dims) {
      const dim = new ProtoWriter();
      if (typeof d === 'number') dim.varint(1, d);
      else dim.string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function encodeNode(n: NodeDef): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.op);
  for (const [k, a] of Object.entries(n.attrs)) w.message(5, encodeAttr(k, a));
  return w;
}

function encodeAttr(name: string, a: AttrValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (a.type) {
    case 'float':
      return w.float(2, a.v).varint(20, AttrType.FLOAT);
    case 'int':
      return w.varint(3, a.v).varint(20, AttrType.INT);
    case 'string':
      return w.string(4, a.v).varint(20, AttrType.STRING);
    case 'tensor':
      return w.message(5, encodeTensor('', a.v)).varint(20, AttrType.TENSOR);
    case 'floats':
      return w.packedFloats(7, a.v).varint(20, AttrType.FLOATS);
    case 'ints':
      return w.packedVarints(8, a.v).varint(20, AttrType.INTS);
  }
}
