/**
 * Interop with NumPy itself: `.npy` files written by numpy 2.4.6 (`np.save`, or
 * `np.lib.format.write_array(..., version=...)`; the Python expression that made each is in
 * the comment above it), base64-encoded here. We must read the supported ones to the values
 * numpy was given, write byte-identical files for the same arrays, and reject the rest with
 * the right NPY_* code.
 */
import { describe, expect, it } from 'vitest';
import { parseNpy, encodeNpy } from '../../src/util/npy.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { floatToHalf, halfToFloat } from '../../src/util/tensor.ts';
import { errCode } from '../helpers/errors.ts';

const NUMPY: Record<string, string> = {
  // np.array([[1.5, -2, 3.25], [4, 5e-8, -6e30]], dtype='<f4')
  f4_2x3: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAAwAAAUEAAAIBAlb9WMxd2l/I=',
  // np.array([0.1, -1e300, 2.5], dtype='<f8')
  f8_3: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqamZmZmZm5P5x1AIg85Df+AAAAAAAABEA=',
  // np.array([[1, -2], [2147483647, -2147483648]], dtype='<i4')
  i4_2x2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAA/v///////38AAACA',
  // np.array([9007199254740993, -9223372036854775808], dtype='<i8')
  i8_2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAAAgAAAAAAAAAACA',
  // np.arange(8, dtype='u1').reshape(2, 2, 2)
  u1_2x2x2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAQIDBAUGBw==',
  // np.array([True, False, True])
  b1_3: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=',
  // np.float32(7.0).reshape(())
  f4_scalar: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAOBA',
  // np.zeros((0, 4), dtype='<f4')
  f4_0x4: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDAsIDQpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo=',
  // write_array(np.array([1, 2], dtype='<f4'), version=(2, 0))
  f4_v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQA==',
  // write_array(np.array([1, 2], dtype='<f4'), version=(3, 0))
  f4_v3: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQA==',
  // np.array([1, 2], dtype='>f4')
  f4_be: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo/gAAAQAAAAA==',
  // np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3))
  f4_fortran: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAABAQAAAgD8AAIBAAAAAQAAAoEA=',
  // np.array([1, 2], dtype='<f2')
  f2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPABA',
  // np.array([1, 2], dtype='<u4')
  u4: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPHU0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAgAAAA==',
  // np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')])
  structured: 'k05VTVBZAQB2AHsnZGVzY3InOiBbKCdhJywgJzxmNCcpLCAoJ2InLCAnPGk0JyldLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAAAAAAAAAAAA',
  // np.array([1.0, -2.5, 65504, 6e-08, -0.0, np.inf, -np.inf, 0.1], dtype='<f2')
  f2_special: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDgsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPADB/3sBAACAAHwA/GYu',
  // np.array([[-128, 127], [0, -1]], dtype='i1')
  i1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfGkxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqAfwD/',
  // np.array([-32768, 32767, 5], dtype='<i2')
  i2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGkyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAgP9/BQA=',
  // np.array([0, 65535, 300], dtype='<u2')
  u2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPHUyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAP//LAE=',
  // np.array([0, 4294967295, 7], dtype='<u4')
  u4_3: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPHU0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAA/////wcAAAA=',
  // np.array([0, 18446744073709551615, 9007199254740993], dtype='<u8')
  u8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPHU4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAP//////////AQAAAAAAIAA=',
  // np.array([1, 2], dtype='>i8')
  i8_be: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAQAAAAAAAAAC',
  // np.array([1+2j], dtype='<c8')
  c8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGM4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQA==',
  // np.array([{'a': 1}, None], dtype=object)  # allow_pickle=True
  object: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfE8nLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqABJWUAAAAAAAAAIwWbnVtcHkuX2NvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBSwKFlGgDjAVkdHlwZZSTlIwCTziUiYiHlFKUKEsDjAF8lE5OTkr/////Sv////9LP3SUYoldlCh9lIwBYZRLAXNOZXSUYi4=',
  // np.array(['ab', 'cde'])
  U3: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPFUzJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAphAAAAYgAAAAAAAABjAAAAZAAAAGUAAAA=',
};

const bytesOf = (k: string): Uint8Array => new Uint8Array(Buffer.from(NUMPY[k]!, 'base64'));


/** The arrays numpy was given, as HostTensors. */
const EXPECTED: Record<string, HostTensor> = {
  f4_2x3: { dtype: 'float32', dims: [2, 3], data: Float32Array.from([1.5, -2, 3.25, 4, 5e-8, -6e30]) },
  f8_3: { dtype: 'float64', dims: [3], data: Float64Array.from([0.1, -1e300, 2.5]) },
  i4_2x2: { dtype: 'int32', dims: [2, 2], data: Int32Array.from([1, -2, 2147483647, -2147483648]) },
  i8_2: { dtype: 'int64', dims: [2], data: BigInt64Array.from([9007199254740993n, -9223372036854775808n]) },
  u1_2x2x2: { dtype: 'uint8', dims: [2, 2, 2], data: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]) },
  b1_3: { dtype: 'bool', dims: [3], data: Uint8Array.from([1, 0, 1]) },
  f4_scalar: { dtype: 'float32', dims: [], data: Float32Array.from([7]) },
  f4_0x4: { dtype: 'float32', dims: [0, 4], data: new Float32Array(0) },
  f4_v2: { dtype: 'float32', dims: [2], data: Float32Array.from([1, 2]) },
  f4_v3: { dtype: 'float32', dims: [2], data: Float32Array.from([1, 2]) },
  // float16 as its IEEE half bits: np.array([1, 2], '<f2').view('<u2') → [15360, 16384]
  f2: { dtype: 'float16', dims: [2], data: Uint16Array.from([15360, 16384]) },
  // np.array([1.0, -2.5, 65504, 6e-08, -0.0, inf, -inf, 0.1], '<f2').view('<u2').tolist()
  f2_special: { dtype: 'float16', dims: [8], data: Uint16Array.from([15360, 49408, 31743, 1, 32768, 31744, 64512, 11878]) },
  i1: { dtype: 'int8', dims: [2, 2], data: Int8Array.from([-128, 127, 0, -1]) },
  i2: { dtype: 'int16', dims: [3], data: Int16Array.from([-32768, 32767, 5]) },
  u2: { dtype: 'uint16', dims: [3], data: Uint16Array.from([0, 65535, 300]) },
  u4: { dtype: 'uint32', dims: [2], data: Uint32Array.from([1, 2]) },
  u4_3: { dtype: 'uint32', dims: [3], data: Uint32Array.from([0, 4294967295, 7]) },
  u8: { dtype: 'uint64', dims: [3], data: BigUint64Array.from([0n, 18446744073709551615n, 9007199254740993n]) },
};

describe('files written by numpy', () => {
  it.each(Object.keys(EXPECTED))('%s reads to the array numpy saved', (k) => {
    const t = parseNpy(bytesOf(k), k);
    const want = EXPECTED[k]!;
    expect(t.dtype).toBe(want.dtype);
    expect(t.dims).toEqual(want.dims);
    expect(Array.from(t.data as ArrayLike<number | bigint>)).toEqual(Array.from(want.data as ArrayLike<number | bigint>));
  });

  it.each(Object.keys(EXPECTED).filter((k) => !k.endsWith('_v2') && !k.endsWith('_v3')))('%s: encodeNpy writes the same bytes as np.save', (k) => {
    expect(Buffer.from(encodeNpy(EXPECTED[k]!)).equals(Buffer.from(bytesOf(k)))).toBe(true);
  });

  it.each([
    ['f4_be', 'NPY_BIG_ENDIAN'],
    ['f4_fortran', 'NPY_FORTRAN'],
    ['i8_be', 'NPY_BIG_ENDIAN'],
    ['c8', 'NPY_DTYPE'],
    ['structured', 'NPY_DTYPE'],
    ['object', 'NPY_DTYPE'],
    ['U3', 'NPY_DTYPE'],
  ])('%s is rejected with %s', (k, code) => {
    expect(errCode(() => parseNpy(bytesOf(k), `${k}.npy`))).toBe(code);
  });
});

describe('float16 values as NumPy sees them', () => {
  it('halves decode to the numbers numpy saved (np.array(..., "<f2").astype("<f8"))', () => {
    const t = parseNpy(bytesOf('f2_special'), 'f2_special');
    const got = Array.from(t.data as Uint16Array, halfToFloat);
    // 6e-08 and 0.1 are not halves: numpy stored the nearest ones, 2^-24 and 0.0999755859375.
    expect(got).toEqual([1, -2.5, 65504, 2 ** -24, -0, Infinity, -Infinity, 0.0999755859375]);
  });

  it('floatToHalf rounds like numpy (np.array(x, "<f4").astype("<f2").view("<u2"))', () => {
    // Round to nearest even, overflow to inf at 65520, underflow to 0 below 2^-25.
    const xs = [0.1, 1 / 3, 65519, 65520, 1e-8, 3e-8, 2.98e-8, -1e5];
    expect(xs.map((x) => floatToHalf(Math.fround(x)))).toEqual([11878, 13653, 31743, 31744, 0, 1, 0, 64512]);
    // Every half (but NaNs) survives the trip through a number.
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToFloat(h);
      if (!Number.isNaN(v) && floatToHalf(v) !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });
});
