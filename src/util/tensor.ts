/**
 * The tensor shape shared by every layer: a dtype name (ONNX Runtime's names), dims and a
 * typed array. Workers, the coordinator, .npy files and PoD policies all speak this.
 *
 * Every element type onnxruntime-node takes as a tensor is here. float16 travels as its raw
 * IEEE half bits in a Uint16Array — what ONNX Runtime itself uses in Node (which has no
 * Float16Array) — and is decoded to numbers only where values are compared (`halfToFloat`).
 */
export type Dtype = 'float16' | 'float32' | 'float64' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool';

export type TensorData = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface HostTensor {
  dtype: Dtype;
  dims: number[];
  data: TensorData;
}

export const DTYPES: readonly Dtype[] = ['float16', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool'];

export const BYTES_PER_ELEMENT: Record<Dtype, number> = {
  float16: 2,
  float32: 4,
  float64: 8,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1,
};

/** The typed array that carries each dtype (as `Symbol.toStringTag` names it). */
export const ARRAY_OF: Record<Dtype, string> = {
  float16: 'Uint16Array',
  float32: 'Float32Array',
  float64: 'Float64Array',
  int8: 'Int8Array',
  uint8: 'Uint8Array',
  int16: 'Int16Array',
  uint16: 'Uint16Array',
  int32: 'Int32Array',
  uint32: 'Uint32Array',
  int64: 'BigInt64Array',
  uint64: 'BigUint64Array',
  bool: 'Uint8Array',
};

/** Is `s` one of our dtype names? */
export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

/** float16, float32, float64. */
export function isFloat(d: Dtype): boolean {
  return d === 'float16' || d === 'float32' || d === 'float64';
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** A typed-array view over raw little-endian bytes (copies only when misaligned). */
export function typedView(dtype: Dtype, bytes: Uint8Array): TensorData {
  const bpe = BYTES_PER_ELEMENT[dtype];
  if (bytes.byteLength % bpe !== 0) throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype}`);
  const aligned = bytes.byteOffset % bpe === 0 ? bytes : bytes.slice();
  const { buffer, byteOffset, byteLength } = aligned;
  switch (dtype) {
    case 'float16':
    case 'uint16':
      return new Uint16Array(buffer, byteOffset, byteLength / 2);
    case 'float32':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'float64':
      return new Float64Array(buffer, byteOffset, byteLength / 8);
    case 'int8':
      return new Int8Array(buffer, byteOffset, byteLength);
    case 'int16':
      return new Int16Array(buffer, byteOffset, byteLength / 2);
    case 'int32':
      return new Int32Array(buffer, byteOffset, byteLength / 4);
    case 'uint32':
      return new Uint32Array(buffer, byteOffset, byteLength / 4);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, byteLength / 8);
    case 'uint64':
      return new BigUint64Array(buffer, byteOffset, byteLength / 8);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buffer, byteOffset, byteLength);
  }
}

/** A zero-filled typed array of `n` elements for `dtype`. */
export function allocData(dtype: Dtype, n: number): TensorData {
  return typedView(dtype, new Uint8Array(n * BYTES_PER_ELEMENT[dtype]));
}

/** The raw bytes behind a tensor's data, without copying. */
export function tensorBytes(t: { data: TensorData }): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** IEEE 754 half (binary16) bits → the number they hold (exact: every half is a double). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** A number → the nearest IEEE half's bits (round to nearest even; overflow → ±Inf). */
export function floatToHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (a < 2 ** -24 / 2) return sign; // rounds to zero (ties to even: exactly half of the smallest subnormal → 0)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 rounding
  if (e < -14) {
    // subnormal: units of 2^-24
    const m = roundEven(a / 2 ** -24);
    return sign | m; // m may reach 1024, which is the smallest normal's bit pattern: still right
  }
  let m = roundEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

function roundEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Element `i` of a tensor as a number, for comparisons: halves decoded, 64-bit integers
 * converted (exact up to 2^53, ordered correctly beyond), bool as 0/1.
 */
export function elementAsNumber(t: HostTensor, i: number): number {
  const v = t.data[i]!;
  if (t.dtype === 'float16') return halfToFloat(v as number);
  return typeof v === 'bigint' ? Number(v) : v;
}

/**
 * Where rows [start, end) along `axis` of a C-order tensor of `dims` lie in its bytes:
 * `count` runs of `length` bytes, `stride` bytes apart, the first `offset` bytes into the data.
 * Axis 0 is one run; a batch axis further in (a state [2, batch, 128]) is one run per index
 * of the axes before it.
 */
export function axisSlab(dims: readonly number[], axis: number, bytesPerElement: number, start: number, end: number): { offset: number; count: number; stride: number; length: number } {
  const inner = elementCount(dims.slice(axis + 1)) * bytesPerElement;
  return { offset: start * inner, count: elementCount(dims.slice(0, axis)), stride: dims[axis]! * inner, length: (end - start) * inner };
}
