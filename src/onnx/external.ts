/**
 * External data: ONNX lets a tensor's bytes live in a file beside the model (`data_location:
 * EXTERNAL`, `external_data: {location, offset, length}`) — how exporters write models over
 * protobuf's 2 GiB limit or split weights out. The grid ships a model to workers as one blob
 * addressed by its sha256, so at intake the data is inlined back into the tensors (`raw_data`,
 * data location DEFAULT) and the model re-encoded as one self-contained file.
 *
 * Pure apart from the `read` callback the caller passes: where the files are, how they are read
 * and which locations are acceptable is the caller's business (coordinator/model.ts).
 */
import { DrillError } from '../util/errors.ts';
import { DATA_LOCATION_EXTERNAL, type GraphMessage, type ModelMessage, type TensorMessage } from './decode.ts';
import { loadOnnxProto } from './proto.ts';
import type { onnx } from './proto/onnx.js';

/** Error codes of this module. */
export const ExternalDataErrorCode = {
  /** A tensor's external_data entries are malformed (no location, a bad offset or length). */
  BAD_REF: 'MODEL_EXTERNAL_DATA',
} as const;

/** One tensor whose bytes live in an external file. */
export interface ExternalDataRef {
  /** The tensor's message, updated in place by inlineExternalData. */
  tensor: TensorMessage;
  /** Tensor name (for messages). */
  name: string;
  /** Path relative to the model's folder, as written in the model. */
  location: string;
  offset: number;
  /** Bytes to read; null: to the end of the file. */
  length: number | null;
}

type AttrMessage = onnx.AttributeProto.$Properties;

/**
 * Every tensor with external data, in the main graph, its subgraphs and the model's functions.
 * @throws DrillError MODEL_EXTERNAL_DATA for an entry without a location or with a bad offset/length
 */
export function externalDataRefs(m: ModelMessage): ExternalDataRef[] {
  const refs: ExternalDataRef[] = [];
  const tensor = (t: TensorMessage | null | undefined): void => {
    if (!t || (t.data_location ?? 0) !== DATA_LOCATION_EXTERNAL) return;
    const kv = new Map((t.external_data ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const name = t.name ?? '';
    const location = kv.get('location') ?? '';
    const bad = (what: string): DrillError =>
      new DrillError(ExternalDataErrorCode.BAD_REF, `tensor ${JSON.stringify(name)}: expected external_data with ${what}`, { tensor: name });
    if (!location) throw bad('a location');
    const int = (k: string): number | null => {
      const v = kv.get(k);
      if (v === undefined || v === '') return null;
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw bad(`a non-negative integer ${k} (received ${JSON.stringify(v)})`);
      return Number(v);
    };
    refs.push({ tensor: t, name, location, offset: int('offset') ?? 0, length: int('length') });
  };
  const attr = (a: AttrMessage): void => {
    tensor(a.t);
    for (const t of a.tensors ?? []) tensor(t);
    if (a.sparse_tensor) {
      tensor(a.sparse_tensor.values);
      tensor(a.sparse_tensor.indices);
    }
    if (a.g) graph(a.g);
    for (const g of a.graphs ?? []) graph(g);
  };
  const graph = (g: GraphMessage): void => {
    for (const t of g.initializer ?? []) tensor(t);
    for (const s of g.sparse_initializer ?? []) {
      tensor(s.values);
      tensor(s.indices);
    }
    for (const n of g.node ?? []) for (const a of n.attribute ?? []) attr(a);
  };
  if (m.graph) graph(m.graph);
  for (const f of m.functions ?? []) for (const n of f.node ?? []) for (const a of n.attribute ?? []) attr(a);
  return refs;
}

/**
 * Move every external tensor's bytes into the model: `read(ref)` returns them; the tensor gets
 * them as raw_data and loses its external_data and data location. Mutates `m`.
 */
export async function inlineExternalData(refs: readonly ExternalDataRef[], read: (ref: ExternalDataRef) => Promise<Uint8Array>): Promise<void> {
  for (const r of refs) {
    const bytes = await read(r);
    r.tensor.raw_data = bytes;
    delete r.tensor.external_data;
    delete r.tensor.data_location;
  }
}

/** Encode a (possibly modified) ModelProto message. */
export async function encodeModelProto(m: ModelMessage): Promise<Uint8Array> {
  const proto = await loadOnnxProto();
  const b = proto.ModelProto.encode(m).finish();
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
