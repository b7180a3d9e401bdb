/**
 * Protobuf wire format, just enough for ONNX: a writer (varints, fixed32/64, length-delimited
 * fields, packed repeated scalars) and a bounds-checked reader that never reads past its
 * slice. Hand-written because no protobuf/onnx package is available here and ONNX needs only
 * a tiny fraction of protobuf.
 *
 * Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (3/4, groups, are rejected).
 */
import { DrillError } from '../util/errors.ts';

export const WireType = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

const te = new TextEncoder();

/** Append-only protobuf encoder. Fields are written in call order, so output is deterministic. */
export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #len = 0;

  #push(b: Uint8Array): void {
    this.#chunks.push(b);
    this.#len += b.length;
  }

  #rawVarint(v: bigint): void {
    // int64 negatives are encoded as their 64-bit two's complement (10 bytes), as protobuf does.
    let x = BigInt.asUintN(64, v);
    const out: number[] = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.#push(Uint8Array.from(out));
  }

  #tag(field: number, wt: WireType): void {
    this.#rawVarint(BigInt((field << 3) | wt));
  }

  /** An int32/int64/enum/bool field as a varint. */
  varint(field: number, v: number | bigint): this {
    this.#tag(field, WireType.VARINT);
    this.#rawVarint(BigInt(v));
    return this;
  }

  /** A float field (fixed32). */
  float(field: number, v: number): this {
    this.#tag(field, WireType.I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.#push(b);
    return this;
  }

  /** A bytes field. */
  bytes(field: number, b: Uint8Array): this {
    this.#tag(field, WireType.LEN);
    this.#rawVarint(BigInt(b.length));
    this.#push(b);
    return this;
  }

  /** A string field (UTF-8). */
  string(field: number, s: string): this {
    return this.bytes(field, te.encode(s));
  }

  /** An embedded message field. */
  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  /** A packed repeated int64 field. */
  packedVarints(field: number, vs: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of vs) inner.#rawVarint(BigInt(v));
    return this.bytes(field, inner.finish());
  }

  /** A packed repeated float field. */
  packedFloats(field: number, vs: readonly number[]): this {
    const b = new Uint8Array(vs.length * 4);
    const dv = new DataView(b.buffer);
    vs.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#len);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** One decoded field: its number, wire type and value (bigint for varints/fixed, bytes for LEN). */
export type ProtoField =
  | { field: number; wt: typeof WireType.VARINT; value: bigint }
  | { field: number; wt: typeof WireType.I64; value: Uint8Array }
  | { field: number; wt: typeof WireType.LEN; value: Uint8Array }
  | { field: number; wt: typeof WireType.I32; value: Uint8Array };

/** Thrown by the reader for bytes that are not well-formed protobuf. */
export class ProtoDecodeError extends DrillError<{ offset: number }> {
  constructor(message: string, offset: number) {
    super('PROTO_DECODE', message, { offset });
    this.name = 'ProtoDecodeError';
  }
}

/**
 * Decode every field of one message. Strict: unknown wire types, groups, overlong varints and
 * lengths past the end all throw ProtoDecodeError.
 * @throws ProtoDecodeError
 */
export function decodeFields(buf: Uint8Array): ProtoField[] {
  const out: ProtoField[] = [];
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (let n = 0; n < 10; n++) {
      if (i >= buf.length) throw new ProtoDecodeError(`varint runs past the end at offset ${i}`, i);
      const b = buf[i++]!;
      r |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, r);
      shift += 7n;
    }
    throw new ProtoDecodeError(`varint longer than 10 bytes at offset ${i}`, i);
  };
  const take = (n: number): Uint8Array => {
    if (n > buf.length - i) throw new ProtoDecodeError(`field of ${n} bytes runs past the end at offset ${i} (${buf.length - i} left)`, i);
    const s = buf.subarray(i, i + n);
    i += n;
    return s;
  };
  while (i < buf.length) {
    const start = i;
    const key = varint();
    const wt = Number(key & 7n);
    const fieldBig = key >> 3n;
    if (fieldBig === 0n || fieldBig > 536870911n) throw new ProtoDecodeError(`invalid field number ${fieldBig} at offset ${start}`, start);
    const field = Number(fieldBig);
    switch (wt) {
      case WireType.VARINT:
        out.push({ field, wt, value: varint() });
        break;
      case WireType.I64:
        out.push({ field, wt, value: take(8) });
        break;
      case WireType.LEN: {
        const n = varint();
        if (n > BigInt(buf.length)) throw new ProtoDecodeError(`length ${n} past the end at offset ${start}`, start);
        out.push({ field, wt, value: take(Number(n)) });
        break;
      }
      case WireType.I32:
        out.push({ field, wt, value: take(4) });
        break;
      default:
        throw new ProtoDecodeError(`unsupported wire type ${wt} at offset ${start}`, start);
    }
  }
  return out;
}

/** Decode a packed (or single) repeated varint payload. */
export function decodePackedVarints(b: Uint8Array): bigint[] {
  const out: bigint[] = [];
  let i = 0;
  while (i < b.length) {
    let r = 0n;
    let shift = 0n;
    let n = 0;
    for (;;) {
      if (i >= b.length || n++ >= 10) throw new ProtoDecodeError(`bad packed varint at offset ${i}`, i);
      const x = b[i++]!;
      r |= BigInt(x & 0x7f) << shift;
      if ((x & 0x80) === 0) break;
      shift += 7n;
    }
    out.push(BigInt.asUintN(64, r));
  }
  return out;
}

/** Interpret a raw uint64 varint as a signed int64 number (for dims, axes, attribute ints). */
export function toInt64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

const td = new TextDecoder('utf-8');
export function utf8(b: Uint8Array): string {
  return td.decode(b);
}
