/**
 * Binary framing for a named set of tensors (unit inputs in a lease, results in a reveal):
 *   u32be headerLength ‖ header (UTF-8 JSON: [{name, dtype, dims, offset, length}]) ‖ payload
 * Decoding validates everything before use (it reads untrusted peer bytes): dtype known, dims
 * non-negative integers, byte length = product(dims)·sizeof(dtype), ranges inside the payload,
 * no duplicate names. Data are 8-byte aligned in the payload so typed views need no copy.
 */
import { DrillError } from '../util/errors.ts';
import type { HostTensor, Dtype } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, DTYPES, elementCount, tensorBytes, typedView } from '../util/tensor.ts';
import { utf8ToBytes } from '../util/bytes.ts';

interface Entry {
  name: string;
  dtype: Dtype;
  dims: number[];
  offset: number;
  length: number;
}

/** Largest header accepted: generous for hundreds of outputs, tiny next to any payload. */
const MAX_HEADER_BYTES = 64 * 1024;

/** A tensor frame laid out but not yet written: its size, where each tensor's bytes go, and a header writer. */
export interface TensorFrameLayout {
  /** Bytes the frame takes. */
  byteLength: number;
  /** Each tensor's data range, relative to the frame's start. */
  slots: Record<string, { offset: number; length: number }>;
  /** The header with its padding: the frame's first bytes, up to the first tensor's data. */
  headerBytes(): Uint8Array;
  /**
   * Write the frame's header (and zero its padding) at `out[offset..]`; the caller fills each
   * slot. Keep `offset` 8-byte aligned (relative to where the receiver's buffer starts) so the
   * receiver's typed views need no copy.
   */
  writeHeader(out: Uint8Array, offset: number): void;
}

/**
 * Lay out a tensor frame for tensors of these dtypes and dims without their data, so a caller
 * can build the frame in one buffer and fill the data straight from its source (a file read),
 * with no intermediate copy.
 */
export function layoutTensorSpecs(specs: Record<string, { dtype: Dtype; dims: number[] }>): TensorFrameLayout {
  const entries: Entry[] = [];
  let off = 0;
  for (const name of Object.keys(specs).sort()) {
    const t = specs[name]!;
    const len = elementCount(t.dims) * BYTES_PER_ELEMENT[t.dtype];
    entries.push({ name, dtype: t.dtype, dims: t.dims, offset: off, length: len });
    off += Math.ceil(len / 8) * 8;
  }
  const header = utf8ToBytes(JSON.stringify(entries));
  const headPad = Math.ceil((4 + header.length) / 8) * 8;
  const slots: Record<string, { offset: number; length: number }> = {};
  for (const e of entries) slots[e.name] = { offset: headPad + e.offset, length: e.length };
  return {
    byteLength: headPad + off,
    slots,
    headerBytes(): Uint8Array {
      const out = new Uint8Array(headPad);
      new DataView(out.buffer).setUint32(0, header.length, false);
      out.set(header, 4);
      return out;
    },
    writeHeader(out: Uint8Array, offset: number): void {
      new DataView(out.buffer, out.byteOffset + offset, 4).setUint32(0, header.length, false);
      out.set(header, offset + 4);
      out.fill(0, offset + 4 + header.length, offset + headPad);
      // Padding between tensors: zero it too, so no stale heap bytes go on the wire.
      for (const e of entries) out.fill(0, offset + headPad + e.offset + e.length, offset + headPad + e.offset + Math.ceil(e.length / 8) * 8);
    },
  };
}

/** A tensor frame laid out with its data: `writeInto` writes header and data. */
export function layoutTensors(tensors: Record<string, HostTensor>): TensorFrameLayout & { writeInto(out: Uint8Array, offset: number): void } {
  const l = layoutTensorSpecs(tensors);
  return {
    ...l,
    writeInto(out: Uint8Array, offset: number): void {
      l.writeHeader(out, offset);
      for (const [name, slot] of Object.entries(l.slots)) out.set(tensorBytes(tensors[name]!), offset + slot.offset);
    },
  };
}

/**
 * A tensor frame as parts to write at their offsets (a file, with positional writes): the header
 * (with its padding) at 0, then each tensor's bytes where layoutTensors puts them. The gaps are
 * padding a reader never looks at. Same frame as layoutTensors' bytes.
 */
export function tensorFrameParts(tensors: Record<string, HostTensor>): { byteLength: number; parts: { offset: number; bytes: Uint8Array }[] } {
  const l = layoutTensorSpecs(tensors);
  const parts = [{ offset: 0, bytes: l.headerBytes() }];
  for (const [name, slot] of Object.entries(l.slots)) parts.push({ offset: slot.offset, bytes: tensorBytes(tensors[name]!) });
  return { byteLength: l.byteLength, parts };
}

function bad(msg: string): never {
  throw new DrillError('CODEC_TENSORS', `malformed tensor frame: ${msg}`);
}

/**
 * Decode a frame written by layoutTensors / layoutTensorSpecs. Views into `bytes` where aligned (no copy).
 * @throws DrillError CODEC_TENSORS on any malformed input.
 */
export function decodeTensors(bytes: Uint8Array): Record<string, HostTensor> {
  if (bytes.length < 4) bad('shorter than its length prefix');
  const hlen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, false);
  if (hlen > MAX_HEADER_BYTES || 4 + hlen > bytes.length) bad(`header length ${hlen} out of range`);
  let entries: unknown;
  try {
    entries = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(4, 4 + hlen)));
  } catch {
    bad('header is not JSON');
  }
  if (!Array.isArray(entries)) bad('header is not a list');
  const headPad = Math.ceil((4 + hlen) / 8) * 8;
  const payload = bytes.subarray(Math.min(headPad, bytes.length));
  const out: Record<string, HostTensor> = Object.create(null) as Record<string, HostTensor>;
  for (const raw of entries as unknown[]) {
    if (typeof raw !== 'object' || raw === null) bad('entry is not an object');
    const e = raw as Record<string, unknown>;
    if (typeof e.name !== 'string' || e.name.length === 0 || e.name.length > 256) bad('entry name');
    if (e.name in out) bad(`duplicate tensor ${JSON.stringify(e.name)}`);
    if (typeof e.dtype !== 'string' || !(DTYPES as readonly string[]).includes(e.dtype)) bad(`dtype of ${e.name}`);
    if (!Array.isArray(e.dims) || e.dims.length > 16 || !e.dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) bad(`dims of ${e.name}`);
    const dtype = e.dtype as Dtype;
    const dims = e.dims as number[];
    const length = elementCount(dims) * BYTES_PER_ELEMENT[dtype];
    if (e.length !== length) bad(`${e.name}: ${String(e.length)} bytes for dims [${dims.join(',')}] of ${dtype}`);
    if (!Number.isSafeInteger(e.offset) || (e.offset as number) < 0 || (e.offset as number) + length > payload.length) bad(`${e.name}: data outside the frame`);
    const start = e.offset as number;
    out[e.name] = { dtype, dims, data: typedView(dtype, payload.subarray(start, start + length)) };
  }
  return out;
}
