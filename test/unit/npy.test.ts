/**
 * .npy read/write: round trips for every dtype and shape, headers written by other numpy
 * versions (16-byte alignment, v2.0, v3.0), zero-copy views, and one test per error code for
 * malformed files. Streaming (NpyWriter, readNpyRows, readNpyHeader) against a temp dir.
 */
import { describe, expect, it, afterAll } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNpy, encodeNpy, encodeNpyHeader, readNpy, readNpyHeader, readNpyRows, NpyWriter } from '../../src/util/npy.ts';
import { isDrillError } from '../../src/util/errors.ts';
import { BYTES_PER_ELEMENT, DTYPES, elementCount, tensorBytes, typedView, type Dtype, type HostTensor } from '../../src/util/tensor.ts';
import { errCode } from '../helpers/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'npy-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function asyncCode(f: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await f();
  } catch (e) {
    return isDrillError(e) ? e.code : `NOT_A_DRILL_ERROR ${String(e)}`;
  }
  return undefined;
}

/** A tensor of `dtype` whose bytes come from `seed` by a small LCG (any bit pattern; bool 0/1). */
function makeTensor(dtype: Dtype, dims: number[], seed: number): HostTensor {
  const n = elementCount(dims);
  let s = seed >>> 0;
  const next = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const bytes = Uint8Array.from({ length: n * BYTES_PER_ELEMENT[dtype] }, () => (dtype === 'bool' ? next() & 1 : next() >>> 24));
  return { dtype, dims, data: typedView(dtype, bytes) };
}

/** Hand-build a file with an arbitrary header text and version (as another numpy might). */
function rawNpy(header: string, body: Uint8Array, major = 1, align = 64): Uint8Array {
  const pre = major === 1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / align) * align;
  const text = header.padEnd(total - pre - 1, ' ') + '\n';
  const out = new Uint8Array(total + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, total - pre, true);
  else dv.setUint32(8, total - pre, true);
  out.set(new TextEncoder().encode(text), pre);
  out.set(body, total);
  return out;
}

describe('round trip', () => {
  it('every dtype and shape, including scalars and empty arrays, comes back bit-identical', () => {
    fc.assert(
      fc.property(fc.constantFrom(...DTYPES), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }), fc.integer(), (dtype, dims, seed) => {
        const t = makeTensor(dtype, dims, seed);
        const back = parseNpy(encodeNpy(t));
        expect(back.dtype).toBe(dtype);
        expect(back.dims).toEqual(dims);
        expect(Buffer.from(tensorBytes(back)).equals(Buffer.from(tensorBytes(t)))).toBe(true);
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('writes the numpy descr for each dtype and aligns data to 64 bytes', () => {
    // What np.save writes for each (np.dtype(x).str): one-byte types carry '|', the others '<'.
    const want: Record<Dtype, string> = {
      float16: "'<f2'", float32: "'<f4'", float64: "'<f8'", int8: "'|i1'", uint8: "'|u1'", int16: "'<i2'", uint16: "'<u2'",
      int32: "'<i4'", uint32: "'<u4'", int64: "'<i8'", uint64: "'<u8'", bool: "'|b1'",
    };
    for (const dtype of DTYPES) {
      const bytes = encodeNpy(makeTensor(dtype, [3, 1], 1));
      const header = new TextDecoder().decode(bytes.subarray(10, 128));
      expect(header).toContain(`'descr': ${want[dtype]}`);
      expect(header).toContain("'shape': (3, 1)");
      const dataOffset = bytes.length - 3 * BYTES_PER_ELEMENT[dtype];
      expect(dataOffset % 64).toBe(0);
      expect(bytes[dataOffset - 1]).toBe(0x0a); // header ends with '\n'
    }
  });

  it('writes 1-D shapes as a one-element tuple "(n,)" and scalars as "()"', () => {
    expect(new TextDecoder().decode(encodeNpy(makeTensor('int32', [5], 1)).subarray(10, 80))).toContain("'shape': (5,)");
    expect(new TextDecoder().decode(encodeNpy(makeTensor('int32', [], 1)).subarray(10, 80))).toContain("'shape': ()");
  });

  it('parses an aligned file as a zero-copy view over the input buffer', () => {
    const bytes = encodeNpy(makeTensor('float64', [4, 4], 3));
    const t = parseNpy(bytes);
    expect(t.data.buffer).toBe(bytes.buffer);
    // Misaligned input (byteOffset 1) still parses, by copying.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const t2 = parseNpy(shifted.subarray(1));
    expect(Array.from(t2.data as Float64Array)).toEqual(Array.from(t.data as Float64Array));
  });

  it('reads headers from older numpy (16-byte alignment), format 2.0 and 3.0, and Python 2 "L" ints', () => {
    const body = new Uint8Array(new Float32Array([1.5, -2, 3.25, 4, 5, 6]).buffer);
    for (const [header, major, align] of [
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, 16],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 64],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 3, 64],
      ["{'descr':'<f4','fortran_order':False,'shape':(2L,3L)}", 1, 16],
      ["{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 1, 64],
    ] as const) {
      const t = parseNpy(rawNpy(header, body, major, align));
      expect(t.dims).toEqual([2, 3]);
      expect(Array.from(t.data as Float32Array)).toEqual([1.5, -2, 3.25, 4, 5, 6]);
    }
  });

  it('accepts "<u1" / "|b1" spellings of the 1-byte types', () => {
    expect(parseNpy(rawNpy("{'descr': '<u1', 'fortran_order': False, 'shape': (2,), }", new Uint8Array([7, 9]))).dtype).toBe('uint8');
    expect(parseNpy(rawNpy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", new Uint8Array([0, 1]))).dtype).toBe('bool');
  });

  it('falls back to format 2.0 when the header exceeds 65535 bytes', () => {
    const dims = new Array<number>(30000).fill(1);
    const h = encodeNpyHeader('uint8', dims);
    expect(h[6]).toBe(2);
    const t = parseNpy(encodeNpy({ dtype: 'uint8', dims, data: new Uint8Array([42]) }));
    expect(t.dims.length).toBe(30000);
    expect(t.data[0]).toBe(42);
  });
});

describe('malformed files give NPY_* errors naming the field', () => {
  const good = encodeNpy(makeTensor('float32', [4, 2], 9));
  const body8 = new Uint8Array(8);

  it('NPY_MAGIC for a file that is not .npy', () => {
    expect(errCode(() => parseNpy(new TextEncoder().encode('hello world, not numpy'), 'in.npy'))).toBe('NPY_MAGIC');
    try {
      parseNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 'inputs/x.npy');
    } catch (e) {
      expect((e as Error).message).toMatch(/^inputs\/x\.npy: expected a \.npy file/);
    }
  });

  it('NPY_TRUNCATED for every truncation of a valid file, never a crash', () => {
    for (let n = 0; n < good.length; n++) {
      const c = errCode(() => parseNpy(good.subarray(0, n)));
      expect(c, `prefix of ${n} bytes`).toBe('NPY_TRUNCATED');
    }
  });

  it('NPY_TRAILING for extra bytes after the data', () => {
    const extra = new Uint8Array(good.length + 4);
    extra.set(good);
    expect(errCode(() => parseNpy(extra))).toBe('NPY_TRAILING');
  });

  it('NPY_BIG_ENDIAN with the conversion hint', () => {
    const f = rawNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", body8);
    expect(errCode(() => parseNpy(f, 'a.npy'))).toBe('NPY_BIG_ENDIAN');
    expect(() => parseNpy(f, 'a.npy')).toThrow(/a\.npy dtype: expected little-endian .* received big-endian '>f4'/);
  });

  it('NPY_FORTRAN for fortran_order True', () => {
    const f = rawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", body8);
    expect(errCode(() => parseNpy(f))).toBe('NPY_FORTRAN');
  });

  it('NPY_DTYPE for complex, long double, strings, objects, datetimes, void and structured dtypes', () => {
    for (const descr of ["'<c8'", "'<f16'", "'<U3'", "'|O'", "'<M8[s]'", "'|V4'", "[('a', '<f4')]"]) {
      const f = rawNpy(`{'descr': ${descr}, 'fortran_order': False, 'shape': (2,), }`, body8);
      expect(errCode(() => parseNpy(f)), descr).toBe('NPY_DTYPE');
    }
  });

  it('NPY_VERSION for an unknown format version', () => {
    const f = good.slice();
    f[6] = 9;
    expect(errCode(() => parseNpy(f))).toBe('NPY_VERSION');
  });

  it('NPY_HEADER for an unparsable header or missing keys', () => {
    for (const h of ["{'descr': '<f4', 'fortran_order': False, 'shape': (2,", 'garbage', "{'descr': '<f4', 'shape': (2,), }", "{'descr': '<f4', 'fortran_order': False}"]) {
      expect(errCode(() => parseNpy(rawNpy(h, body8))), h).toBe('NPY_HEADER');
    }
  });

  it('NPY_SHAPE for negative dims', () => {
    expect(errCode(() => parseNpy(rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }", body8)))).toBe('NPY_SHAPE');
  });

  it('random bytes after a valid magic never escape as anything but a DrillError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => {
        const f = new Uint8Array(6 + tail.length);
        f.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
        f.set(tail, 6);
        const c = errCode(() => parseNpy(f));
        expect(c === undefined || c.startsWith('NPY_')).toBe(true);
      }),
      { seed: 7, numRuns: 500 },
    );
  });
});

describe('streaming', () => {
  it('NpyWriter writes rows in chunks that readNpy, readNpyHeader and readNpyRows read back', async () => {
    const full = makeTensor('int64', [10, 3], 5);
    const p = join(dir, 'stream.npy');
    const w = await NpyWriter.open(p, 'int64', [10, 3]);
    const rows = (a: number, b: number): HostTensor => ({ dtype: 'int64', dims: [b - a, 3], data: (full.data as BigInt64Array).subarray(a * 3, b * 3) });
    await w.write(rows(0, 4));
    await w.write(tensorBytes(rows(4, 5))); // raw bytes form
    await w.write(rows(5, 10));
    expect(w.rowsWritten).toBe(10);
    await w.close();
    expect(Buffer.from(readFileSync(p)).equals(Buffer.from(encodeNpy(full)))).toBe(true);
    expect(await readNpyHeader(p)).toEqual({ dtype: 'int64', dims: [10, 3], dataOffset: 128 });
    const mid = await readNpyRows(p, 3, 7);
    expect(mid.dims).toEqual([4, 3]);
    expect(Array.from(mid.data as BigInt64Array)).toEqual(Array.from((full.data as BigInt64Array).subarray(9, 21)));
    expect((await readNpyRows(p, 10, 10)).dims).toEqual([0, 3]);
    expect((await readNpy(p)).dims).toEqual([10, 3]);
  });

  it('NpyWriter keeps call order when writes are issued without awaiting each one', async () => {
    const full = makeTensor('float32', [64, 5], 8);
    const p = join(dir, 'burst.npy');
    const w = await NpyWriter.open(p, 'float32', [64, 5]);
    const pending: Promise<void>[] = [];
    for (let r = 0; r < 64; r += 4) pending.push(w.write({ dtype: 'float32', dims: [4, 5], data: (full.data as Float32Array).subarray(r * 5, (r + 4) * 5) }));
    await Promise.all(pending);
    await w.close();
    expect(Buffer.from(readFileSync(p)).equals(Buffer.from(encodeNpy(full)))).toBe(true);
  });

  it('NpyWriter rejects wrong dtype, wrong row shape, partial rows, too many rows, and closing early', async () => {
    const p = join(dir, 'bad.npy');
    const w = await NpyWriter.open(p, 'float32', [2, 3]);
    expect(await asyncCode(() => w.write(makeTensor('float64', [1, 3], 1)))).toBe('NPY_WRITE');
    expect(await asyncCode(() => w.write(makeTensor('float32', [1, 4], 1)))).toBe('NPY_WRITE');
    expect(await asyncCode(() => w.write(new Uint8Array(5)))).toBe('NPY_WRITE');
    expect(await asyncCode(() => w.write(makeTensor('float32', [3, 3], 1)))).toBe('NPY_WRITE');
    await w.write(makeTensor('float32', [1, 3], 1));
    expect(await asyncCode(() => w.close())).toBe('NPY_WRITE');
    // The short file is then rejected by readers as truncated.
    expect(await asyncCode(() => readNpy(p))).toBe('NPY_TRUNCATED');
  });

  it('readNpyRows rejects ranges outside the file and scalar files; errors name the file', async () => {
    const p = join(dir, 'r.npy');
    writeFileSync(p, encodeNpy(makeTensor('uint8', [4, 2], 1)));
    expect(await asyncCode(() => readNpyRows(p, 2, 5))).toBe('NPY_RANGE');
    expect(await asyncCode(() => readNpyRows(p, 3, 2))).toBe('NPY_RANGE');
    const s = join(dir, 's.npy');
    writeFileSync(s, encodeNpy(makeTensor('uint8', [], 1)));
    expect(await asyncCode(() => readNpyRows(s, 0, 1))).toBe('NPY_RANGE');
    await expect(readNpy(join(dir, 'missing.npy'))).rejects.toThrow(/missing\.npy: expected a readable \.npy file, received ENOENT/);
    const t = join(dir, 't.npy');
    writeFileSync(t, encodeNpy(makeTensor('float32', [4, 2], 1)).subarray(0, 140));
    expect(await asyncCode(() => readNpyHeader(t))).toBe('NPY_TRUNCATED');
    await expect(readNpyRows(t, 0, 1)).rejects.toThrow(/t\.npy: expected at least 160 bytes/);
  });
});
