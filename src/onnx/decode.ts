/**
 * ONNX ModelProto → the parts the grid uses for shape inference and costing: every graph
 * (the main one and the subgraphs of If / Loop / Scan, to any depth), its nodes with their
 * attributes, initializer shapes (and the values of small numeric ones, which shape
 * computations and trip counts need), graph inputs and outputs as declared, the opsets and the
 * model-local functions.
 *
 * The bytes are decoded by protobuf.js from the official `onnx.proto` (see proto.ts), never
 * by hand. Decoding judges nothing: ONNX Runtime decides what is a valid model (coordinator
 * intake opens it first). What is only protobuf-level garbage becomes MODEL_NOT_ONNX, for
 * callers that decode without ORT. Weight bytes are never copied (protobuf.js hands out views).
 */
import { DrillError } from '../util/errors.ts';
import { halfToFloat } from '../util/tensor.ts';
import { loadOnnxProto } from './proto.ts';
import type { onnx } from './proto/onnx.js';

/** Error codes raised while reading a model. */
export const ModelErrorCode = {
  /** The bytes are not an ONNX ModelProto (garbage, truncated, another format). */
  NOT_ONNX: 'MODEL_NOT_ONNX',
} as const;

/** The decoded protobuf message (protobuf.js's plain message object). */
export type ModelMessage = onnx.ModelProto.$Properties;
export type GraphMessage = onnx.GraphProto.$Properties;
export type TensorMessage = onnx.TensorProto.$Properties;
type NodeMessage = onnx.NodeProto.$Properties;
type AttrMessage = onnx.AttributeProto.$Properties;
type ValueInfoMessage = onnx.ValueInfoProto.$Properties;

/** ONNX TensorProto.DataType number → name; the numeric ones we run are our Dtype names. */
const ONNX_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
};

/** Name of an ONNX data type number (`'type#N'` for unknown numbers). */
export function onnxTypeName(n: number): string {
  return ONNX_TYPES[n] ?? `type#${n}`;
}

/** ONNX data type number of a name (0 for unknown names). */
export function onnxTypeNumber(name: string): number {
  for (const [k, v] of Object.entries(ONNX_TYPES)) if (v === name) return Number(k);
  return 0;
}

/** A graph input/output as the model declares it. */
export interface ValueInfo {
  name: string;
  /** Element type name ('float32', 'int64', ...), or 'sequence' / 'map' / 'optional' / 'undefined'. */
  dtype: string;
  /** Fixed size, symbolic name (dim_param), or null for an unnamed unknown dim; null when no shape is declared. */
  dims: (number | string | null)[] | null;
}

/** An initializer or attribute tensor: its type and dims, and values when small and numeric. */
export interface TensorInfo {
  name: string;
  dtype: string;
  dims: number[];
  /** Element values (halves decoded, bool as 0/1) of numeric tensors of at most MAX_CONST_VALUES elements. */
  values?: number[];
  /** The data lives in an external file (data_location EXTERNAL). */
  external?: boolean;
}

/** A decoded attribute; only the fields of its type are set. */
export interface AttrInfo {
  f?: number;
  i?: number;
  s?: string;
  t?: TensorInfo;
  g?: GraphInfo;
  floats?: number[];
  ints?: number[];
  strings?: string[];
  graphs?: GraphInfo[];
  /** Inside a function body: the caller's attribute this one stands for (ref_attr_name). */
  ref?: string;
}

/** A decoded node. */
export interface NodeInfo {
  name: string;
  op: string;
  /** '' for the default ONNX domain ('ai.onnx' is normalised to ''). */
  domain: string;
  /** '' marks an omitted optional input/output. */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrInfo>;
}

/** A graph: the main one or a subgraph (If branches, Loop/Scan bodies). */
export interface GraphInfo {
  name: string;
  /** In file order, which need not be topological (the cost model sorts them). */
  nodes: NodeInfo[];
  initializers: Map<string, TensorInfo>;
  /** Declared inputs that are not initializers (for subgraphs: the formal parameters). */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

/** A model-local function (FunctionProto): nodes calling `domain.name` run its body. */
export interface FunctionInfo {
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  /** Attribute defaults declared by the function (attribute_proto). */
  attrDefaults: Record<string, AttrInfo>;
  nodes: NodeInfo[];
}

/** The parts of a ModelProto the project uses. */
export interface DecodedModel {
  irVersion: number;
  /** Default-domain (ai.onnx) opset version; 0 when none is imported. */
  opset: number;
  /** Every imported opset by domain ('' for ai.onnx). */
  opsets: Record<string, number>;
  producer: string;
  graph: GraphInfo;
  /** The main graph's inputs that are not initializers (what a caller feeds). */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Model-local functions by `domain:name`. */
  functions: Map<string, FunctionInfo>;
  /** Tensors whose data lives in external files. */
  externalTensors: number;
}

/** Numeric tensors up to this many elements keep their values: enough for any shape / axes / index / trip-count constant. */
export const MAX_CONST_VALUES = 64;

const td = new TextDecoder('utf-8');
const str = (b: Uint8Array | null | undefined): string => (b ? td.decode(b) : '');
const num = (v: number | null | undefined): number => v ?? 0;

/** TensorProto.DataLocation.EXTERNAL */
export const DATA_LOCATION_EXTERNAL = 1;

/**
 * Decode a ModelProto's protobuf.
 * @param field the file or API field named in errors
 * @throws DrillError MODEL_NOT_ONNX for bytes that are not protobuf, or protobuf without a graph
 */
export async function parseModelProto(bytes: Uint8Array, field = 'model'): Promise<ModelMessage> {
  const notOnnx = (why: string, cause?: unknown): DrillError =>
    new DrillError(ModelErrorCode.NOT_ONNX, `${field}: expected an ONNX model (ModelProto protobuf), received ${bytes.length} bytes that are not one: ${why}`, { field, expected: 'an ONNX ModelProto', received: `${bytes.length} bytes` }, { cause });
  if (bytes.length === 0) throw notOnnx('the file is empty');
  const proto = await loadOnnxProto();
  let m: ModelMessage;
  try {
    m = proto.ModelProto.decode(bytes);
  } catch (e) {
    throw notOnnx(e instanceof Error ? e.message : String(e), e);
  }
  if (!m.graph) throw notOnnx('there is no graph');
  if (!m.graph.output?.length) throw notOnnx('the graph has no outputs');
  return m;
}

/** Decode a model's bytes into its structure. @throws DrillError MODEL_NOT_ONNX (see parseModelProto) */
export async function decodeModel(bytes: Uint8Array, field = 'model'): Promise<DecodedModel> {
  return describeModel(await parseModelProto(bytes, field));
}

/** The structure of a decoded ModelProto message. */
export function describeModel(m: ModelMessage): DecodedModel {
  const opsets: Record<string, number> = {};
  for (const o of m.opset_import ?? []) opsets[normDomain(o.domain ?? '')] = num(o.version);
  const counter = { external: 0 };
  const graph = describeGraph(m.graph ?? {}, counter);
  const functions = new Map<string, FunctionInfo>();
  for (const f of m.functions ?? []) {
    const attrDefaults: Record<string, AttrInfo> = {};
    for (const a of f.attribute_proto ?? []) attrDefaults[a.name ?? ''] = describeAttr(a, counter);
    const fn: FunctionInfo = {
      domain: normDomain(f.domain ?? ''),
      name: f.name ?? '',
      inputs: [...(f.input ?? [])],
      outputs: [...(f.output ?? [])],
      attrDefaults,
      nodes: (f.node ?? []).map((n) => describeNode(n, counter)),
    };
    functions.set(`${fn.domain}:${fn.name}`, fn);
  }
  return {
    irVersion: num(m.ir_version),
    opset: opsets[''] ?? 0,
    opsets,
    producer: m.producer_name ?? '',
    graph,
    inputs: graph.inputs,
    outputs: graph.outputs,
    functions,
    externalTensors: counter.external,
  };
}

/** 'ai.onnx' and '' are the same domain. */
export function normDomain(d: string): string {
  return d === 'ai.onnx' ? '' : d;
}

function describeGraph(g: GraphMessage, counter: { external: number }): GraphInfo {
  const initializers = new Map<string, TensorInfo>();
  for (const t of g.initializer ?? []) {
    const info = describeTensor(t, counter);
    initializers.set(info.name, info);
  }
  for (const s of g.sparse_initializer ?? []) {
    const name = s.values?.name ?? '';
    initializers.set(name, { name, dtype: onnxTypeName(num(s.values?.data_type)), dims: [...(s.dims ?? [])].map(Number) });
  }
  return {
    name: g.name ?? '',
    nodes: (g.node ?? []).map((n) => describeNode(n, counter)),
    initializers,
    inputs: (g.input ?? []).map(describeValueInfo).filter((v) => !initializers.has(v.name)),
    outputs: (g.output ?? []).map(describeValueInfo),
  };
}

function describeNode(n: NodeMessage, counter: { external: number }): NodeInfo {
  const attrs: Record<string, AttrInfo> = {};
  for (const a of n.attribute ?? []) attrs[a.name ?? ''] = describeAttr(a, counter);
  return { name: n.name ?? '', op: n.op_type ?? '', domain: normDomain(n.domain ?? ''), inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs };
}

/** AttributeProto.AttributeType numbers (onnx.proto). */
const AT = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10 } as const;

function describeAttr(a: AttrMessage, counter: { external: number }): AttrInfo {
  const out: AttrInfo = {};
  if (a.ref_attr_name) out.ref = a.ref_attr_name;
  const own = (k: keyof AttrMessage): boolean => Object.prototype.hasOwnProperty.call(a, k) && a[k] != null;
  // `type` says which field holds the value; models from before IR 2 may omit it.
  const t = num(a.type);
  if (t === AT.FLOAT || (t === 0 && own('f'))) out.f = num(a.f);
  if (t === AT.INT || (t === 0 && own('i'))) out.i = num(a.i);
  if (t === AT.STRING || (t === 0 && own('s'))) out.s = str(a.s);
  if ((t === AT.TENSOR || t === 0) && a.t && own('t')) out.t = describeTensor(a.t, counter);
  if ((t === AT.GRAPH || t === 0) && a.g && own('g')) out.g = describeGraph(a.g, counter);
  if (t === AT.FLOATS || (t === 0 && a.floats?.length)) out.floats = [...(a.floats ?? [])];
  if (t === AT.INTS || (t === 0 && a.ints?.length)) out.ints = [...(a.ints ?? [])].map(Number);
  if (t === AT.STRINGS || (t === 0 && a.strings?.length)) out.strings = (a.strings ?? []).map(str);
  if (t === AT.GRAPHS || (t === 0 && a.graphs?.length)) out.graphs = (a.graphs ?? []).map((g) => describeGraph(g, counter));
  if (t === AT.TENSORS) for (const x of a.tensors ?? []) describeTensor(x, counter); // counted for external data only
  return out;
}

function describeValueInfo(v: ValueInfoMessage): ValueInfo {
  const type = v.type;
  let dtype = 'undefined';
  let dims: (number | string | null)[] | null = null;
  if (type?.tensor_type) {
    dtype = onnxTypeName(num(type.tensor_type.elem_type));
    const shape = type.tensor_type.shape;
    if (shape) dims = (shape.dim ?? []).map((d) => (d.dim_value != null && Object.prototype.hasOwnProperty.call(d, 'dim_value') ? Number(d.dim_value) : d.dim_param ? d.dim_param : null));
  } else if (type?.sequence_type) dtype = 'sequence';
  else if (type?.map_type) dtype = 'map';
  else if (type?.optional_type) dtype = 'optional';
  else if (type?.sparse_tensor_type) dtype = 'sparse_tensor';
  return { name: v.name ?? '', dtype, dims };
}

const WIDTH: Record<string, number> = { float32: 4, float64: 8, float16: 2, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1 };

function describeTensor(t: TensorMessage, counter: { external: number }): TensorInfo {
  const dtype = onnxTypeName(num(t.data_type));
  const dims = [...(t.dims ?? [])].map(Number);
  const info: TensorInfo = { name: t.name ?? '', dtype, dims };
  if (num(t.data_location) === DATA_LOCATION_EXTERNAL) {
    counter.external++;
    info.external = true;
    return info;
  }
  const n = dims.reduce((a, b) => a * b, 1);
  const width = WIDTH[dtype];
  if (width === undefined || n > MAX_CONST_VALUES || n < 0) return info;
  const raw = t.raw_data;
  let values: number[] | undefined;
  if (raw && raw.length > 0) {
    if (raw.length === n * width) {
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      values = [];
      for (let i = 0; i < n; i++) values.push(readLE(dv, dtype, i * width));
    }
  } else {
    const field =
      dtype === 'float32' ? t.float_data : dtype === 'float64' ? t.double_data : dtype === 'int64' ? t.int64_data : dtype === 'uint32' || dtype === 'uint64' ? t.uint64_data : t.int32_data;
    const src = [...(field ?? [])].map(Number);
    // float16 travels as its bits in int32_data.
    if (src.length === n) values = dtype === 'float16' ? src.map(halfToFloat) : src;
  }
  if (values) info.values = values;
  return info;
}

function readLE(dv: DataView, dtype: string, o: number): number {
  switch (dtype) {
    case 'float32':
      return dv.getFloat32(o, true);
    case 'float64':
      return dv.getFloat64(o, true);
    case 'float16':
      return halfToFloat(dv.getUint16(o, true));
    case 'int8':
      return dv.getInt8(o);
    case 'int16':
      return dv.getInt16(o, true);
    case 'uint16':
      return dv.getUint16(o, true);
    case 'int32':
      return dv.getInt32(o, true);
    case 'uint32':
      return dv.getUint32(o, true);
    case 'int64':
      return Number(dv.getBigInt64(o, true));
    case 'uint64':
      return Number(dv.getBigUint64(o, true));
    default: // uint8, bool
      return dv.getUint8(o);
  }
}
