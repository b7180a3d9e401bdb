/**
 * A minimal ONNX ModelProto decoder: graph inputs/outputs/value_info with their types and
 * shapes, nodes with attributes, initializer shapes (and the values of small integer
 * initializers, which shape computations need). Weight bytes are never copied.
 *
 * Anything that is not well-formed protobuf, or is protobuf without an ONNX graph, becomes a
 * DrillError MODEL_NOT_ONNX naming the field (file) and what was wrong.
 */
import { DrillError } from '../util/errors.ts';
import type { Dtype } from '../util/tensor.ts';
import { WireType, decodeFields, decodePackedVarints, toInt64, utf8, ProtoDecodeError, type ProtoField } from './proto.ts';

/** Error codes raised while reading a model. */
export const ModelErrorCode = {
  /** The bytes are not an ONNX ModelProto (garbage, truncated, another format). */
  NOT_ONNX: 'MODEL_NOT_ONNX',
} as const;

/** ONNX TensorProto.DataType number → name; the six we run map to our Dtype names. */
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

/** A graph input/output: name, element type (a Dtype, or the ONNX name of an unsupported one), dims. */
export interface ValueInfo {
  name: string;
  dtype: Dtype | string;
  /** Fixed size, symbolic name (dim_param), or null for an unknown dim. Empty for a scalar. */
  dims: (number | string | null)[];
}

/** A decoded attribute; only the fields that were present are set. */
export interface AttrInfo {
  f?: number;
  i?: number;
  s?: string;
  t?: TensorInfo;
  floats?: number[];
  ints?: number[];
}

/** An initializer or attribute tensor: its type and dims, and values when small and integer-typed. */
export interface TensorInfo {
  name: string;
  dtype: string;
  dims: number[];
  /** Element values for integer/bool tensors of at most MAX_CONST_VALUES elements. */
  values?: number[];
}

/** A decoded node. */
export interface NodeInfo {
  name: string;
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrInfo>;
}

/** The parts of a ModelProto the project uses. */
export interface DecodedModel {
  irVersion: number;
  /** Default-domain (ai.onnx) opset version; 0 when none is imported. */
  opset: number;
  producer: string;
  graphName: string;
  nodes: NodeInfo[];
  initializers: Map<string, TensorInfo>;
  /** Graph inputs that are not initializers (what a caller must feed). */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Intermediate value_info shapes, when the model carries them. */
  valueInfo: Map<string, ValueInfo>;
}

/** Integer tensors up to this many elements keep their values: enough for any shape/axes/index constant. */
export const MAX_CONST_VALUES = 64;

/** ir_version values in the wild go 1..11; anything far beyond means we are not reading ONNX. */
const MAX_IR_VERSION = 100;

class Bad extends Error {}

function one(f: ProtoField, wt: typeof WireType.VARINT, what: string): bigint;
function one(f: ProtoField, wt: typeof WireType.LEN | typeof WireType.I32 | typeof WireType.I64, what: string): Uint8Array;
function one(f: ProtoField, wt: WireType, what: string): bigint | Uint8Array {
  if (f.wt !== wt) throw new Bad(`${what} (field ${f.field}) has wire type ${f.wt}, expected ${wt}`);
  return f.value;
}

function varints(f: ProtoField, what: string): number[] {
  if (f.wt === WireType.VARINT) return [toInt64(f.value)];
  return decodePackedVarints(one(f, WireType.LEN, what)).map(toInt64);
}

function f32(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
}

function decodeTensor(buf: Uint8Array): TensorInfo {
  const dims: number[] = [];
  let dataType = 0;
  let name = '';
  let raw: Uint8Array | undefined;
  const ints: number[] = [];
  for (const f of decodeFields(buf)) {
    switch (f.field) {
      case 1:
        dims.push(...varints(f, 'TensorProto.dims'));
        break;
      case 2:
        dataType = toInt64(one(f, WireType.VARINT, 'TensorProto.data_type'));
        break;
      case 5: // int32_data (also carries uint8/int8/bool/...)
      case 7: // int64_data
        if (ints.length <= MAX_CONST_VALUES) ints.push(...varints(f, 'TensorProto.int_data'));
        break;
      case 8:
        name = utf8(one(f, WireType.LEN, 'TensorProto.name'));
        break;
      case 9:
        raw = one(f, WireType.LEN, 'TensorProto.raw_data');
        break;
    }
  }
  const dtype = onnxTypeName(dataType);
  const t: TensorInfo = { name, dtype, dims };
  const n = dims.reduce((a, b) => a * b, 1);
  if (n <= MAX_CONST_VALUES && ['int64', 'int32', 'uint8', 'int8', 'bool', 'int16', 'uint16'].includes(dtype)) {
    if (raw) {
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const width = dtype === 'int64' ? 8 : dtype === 'int32' ? 4 : dtype.endsWith('16') ? 2 : 1;
      if (raw.length === n * width) {
        const vals: number[] = [];
        for (let i = 0; i < n; i++) {
          const o = i * width;
          vals.push(
            width === 8 ? Number(dv.getBigInt64(o, true)) : width === 4 ? dv.getInt32(o, true) : width === 2 ? (dtype === 'int16' ? dv.getInt16(o, true) : dv.getUint16(o, true)) : dtype === 'int8' ? dv.getInt8(o) : dv.getUint8(o),
          );
        }
        t.values = vals;
      }
    } else if (ints.length === n) t.values = ints;
  }
  return t;
}

function decodeValueInfo(buf: Uint8Array): ValueInfo {
  let name = '';
  let dtype: string = 'undefined';
  const dims: (number | string | null)[] = [];
  for (const f of decodeFields(buf)) {
    if (f.field === 1) name = utf8(one(f, WireType.LEN, 'ValueInfoProto.name'));
    else if (f.field === 2) {
      for (const tf of decodeFields(one(f, WireType.LEN, 'ValueInfoProto.type'))) {
        if (tf.field === 4) dtype = 'sequence';
        else if (tf.field === 5) dtype = 'map';
        else if (tf.field === 8) dtype = 'sparse_tensor';
        else if (tf.field === 9) dtype = 'optional';
        else if (tf.field === 1) {
          for (const xf of decodeFields(one(tf, WireType.LEN, 'TypeProto.tensor_type'))) {
            if (xf.field === 1) dtype = onnxTypeName(toInt64(one(xf, WireType.VARINT, 'TypeProto.Tensor.elem_type')));
            else if (xf.field === 2) {
              for (const sf of decodeFields(one(xf, WireType.LEN, 'TensorShapeProto'))) {
                if (sf.field !== 1) continue;
                let d: number | string | null = null;
                for (const df of decodeFields(one(sf, WireType.LEN, 'TensorShapeProto.dim'))) {
                  if (df.field === 1) d = toInt64(one(df, WireType.VARINT, 'Dimension.dim_value'));
                  else if (df.field === 2) d = utf8(one(df, WireType.LEN, 'Dimension.dim_param')) || null;
                }
                dims.push(d);
              }
            }
          }
        }
      }
    }
  }
  return { name, dtype, dims };
}

function decodeAttr(buf: Uint8Array): [string, AttrInfo] {
  let name = '';
  const a: AttrInfo = {};
  for (const f of decodeFields(buf)) {
    switch (f.field) {
      case 1:
        name = utf8(one(f, WireType.LEN, 'AttributeProto.name'));
        break;
      case 2:
        a.f = f32(one(f, WireType.I32, 'AttributeProto.f'));
        break;
      case 3:
        a.i = toInt64(one(f, WireType.VARINT, 'AttributeProto.i'));
        break;
      case 4:
        a.s = utf8(one(f, WireType.LEN, 'AttributeProto.s'));
        break;
      case 5:
        a.t = decodeTensor(one(f, WireType.LEN, 'AttributeProto.t'));
        break;
      case 7: {
        a.floats ??= [];
        if (f.wt === WireType.I32) a.floats.push(f32(f.value));
        else {
          const b = one(f, WireType.LEN, 'AttributeProto.floats');
          for (let o = 0; o + 4 <= b.length; o += 4) a.floats.push(f32(b.subarray(o)));
        }
        break;
      }
      case 8:
        (a.ints ??= []).push(...varints(f, 'AttributeProto.ints'));
        break;
    }
  }
  return [name, a];
}

function decodeNode(buf: Uint8Array): NodeInfo {
  const n: NodeInfo = { name: '', op: '', domain: '', inputs: [], outputs: [], attrs: {} };
  for (const f of decodeFields(buf)) {
    switch (f.field) {
      case 1:
        n.inputs.push(utf8(one(f, WireType.LEN, 'NodeProto.input')));
        break;
      case 2:
        n.outputs.push(utf8(one(f, WireType.LEN, 'NodeProto.output')));
        break;
      case 3:
        n.name = utf8(one(f, WireType.LEN, 'NodeProto.name'));
        break;
      case 4:
        n.op = utf8(one(f, WireType.LEN, 'NodeProto.op_type'));
        break;
      case 5: {
        const [k, v] = decodeAttr(one(f, WireType.LEN, 'NodeProto.attribute'));
        n.attrs[k] = v;
        break;
      }
      case 7:
        n.domain = utf8(one(f, WireType.LEN, 'NodeProto.domain'));
        break;
    }
  }
  if (!n.op) throw new Bad(`a node (${n.name || 'unnamed'}) has no op_type`);
  return n;
}

/**
 * Decode an ONNX model's structure.
 * @param field the file or API field named in errors
 * @throws DrillError MODEL_NOT_ONNX for bytes that are not an ONNX ModelProto
 */
export function decodeModel(bytes: Uint8Array, field = 'model'): DecodedModel {
  const notOnnx = (why: string, cause?: unknown): DrillError =>
    new DrillError(ModelErrorCode.NOT_ONNX, `${field}: expected an ONNX model (ModelProto protobuf), received ${bytes.length} bytes that are not one: ${why}`, { field, expected: 'an ONNX ModelProto', received: `${bytes.length} bytes` }, { cause });
  if (bytes.length === 0) throw notOnnx('the file is empty');
  try {
    const m: DecodedModel = { irVersion: 0, opset: 0, producer: '', graphName: '', nodes: [], initializers: new Map(), inputs: [], outputs: [], valueInfo: new Map() };
    let graph: Uint8Array | undefined;
    let sawDefaultOpset = false;
    for (const f of decodeFields(bytes)) {
      switch (f.field) {
        case 1:
          m.irVersion = toInt64(one(f, WireType.VARINT, 'ModelProto.ir_version'));
          break;
        case 2:
          m.producer = utf8(one(f, WireType.LEN, 'ModelProto.producer_name'));
          break;
        case 7:
          graph = one(f, WireType.LEN, 'ModelProto.graph');
          break;
        case 8: {
          let domain = '';
          let version = 0;
          for (const of of decodeFields(one(f, WireType.LEN, 'ModelProto.opset_import'))) {
            if (of.field === 1) domain = utf8(one(of, WireType.LEN, 'OperatorSetIdProto.domain'));
            else if (of.field === 2) version = toInt64(one(of, WireType.VARINT, 'OperatorSetIdProto.version'));
          }
          if (domain === '' || domain === 'ai.onnx') {
            m.opset = version;
            sawDefaultOpset = true;
          }
          break;
        }
      }
    }
    if (m.irVersion < 1 || m.irVersion > MAX_IR_VERSION) throw new Bad(`ir_version is ${m.irVersion}, expected 1..${MAX_IR_VERSION}`);
    if (!graph) throw new Bad('there is no graph');
    if (!sawDefaultOpset && m.irVersion >= 3) throw new Bad('there is no opset_import for the default domain');
    const rawInputs: ValueInfo[] = [];
    for (const f of decodeFields(graph)) {
      switch (f.field) {
        case 1:
          m.nodes.push(decodeNode(one(f, WireType.LEN, 'GraphProto.node')));
          break;
        case 2:
          m.graphName = utf8(one(f, WireType.LEN, 'GraphProto.name'));
          break;
        case 5: {
          const t = decodeTensor(one(f, WireType.LEN, 'GraphProto.initializer'));
          m.initializers.set(t.name, t);
          break;
        }
        case 11:
          rawInputs.push(decodeValueInfo(one(f, WireType.LEN, 'GraphProto.input')));
          break;
        case 12:
          m.outputs.push(decodeValueInfo(one(f, WireType.LEN, 'GraphProto.output')));
          break;
        case 13: {
          const v = decodeValueInfo(one(f, WireType.LEN, 'GraphProto.value_info'));
          m.valueInfo.set(v.name, v);
          break;
        }
      }
    }
    m.inputs = rawInputs.filter((v) => !m.initializers.has(v.name));
    if (m.outputs.length === 0) throw new Bad('the graph has no outputs');
    if (m.outputs.some((o) => !o.name)) throw new Bad('a graph output has no name');
    return m;
  } catch (e) {
    if (e instanceof Bad || e instanceof ProtoDecodeError) throw notOnnx(e.message, e);
    if (e instanceof RangeError || e instanceof TypeError) throw notOnnx(e.message, e);
    throw e;
  }
}
