/**
 * The tensor shape shared by every layer: a dtype name (ONNX Runtime's names), dims and a
 * typed array. Workers, the coordinator, .npy files and PoD policies all speak this.
 */
export type Dtype = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'bool';

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface HostTensor {
  dtype: Dtype;
  dims: number[];
  data: TensorData;
}

export const DTYPES: readonly Dtype[] = ['float32', 'float64', 'int32', 'int64', 'uint8', 'bool'];

export const BYTES_PER_ELEMENT: Record<Dtype, number> = {
  float32: 4,
  float64: 8,
  int32: 4,
  int64: 8,
  uint8: 1,
  bool: 1,
};

export function isFloat(d: Dtype): boolean {
  return d === 'float32' || d === 'float64';
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
    case 'float32':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'float64':
      return new Float64Array(buffer, byteOffset, byteLength / 8);
    case 'int32':
      return new Int32Array(buffer, byteOffset, byteLength / 4);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, byteLength / 8);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buffer, byteOffset, byteLength);
  }
}

/** The raw bytes behind a tensor's data, without copying. */
export function tensorBytes(t: { data: TensorData }): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
