/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), little-endian, C order, for every
 * dtype a HostTensor carries (float16/32/64, int8/16/32/64, uint8/16/32/64, bool). Partners
 * hand inputs over as `.npy` and get outputs back as `.npy`, so every malformed file must end
 * in a DrillError with an `NPY_*` code that names the file (or field), what was expected and
 * what was received — never a RangeError or a crash.
 *
 * Besides whole-file parse/encode this module streams: `readNpyHeader` + `readNpyRows` read a
 * row range of a big input without loading it, and `NpyWriter` writes the header with the
 * final shape first and then appends rows in order.
 *
 * Format reference: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { DrillError, describe } from './errors.ts';
import { BYTES_PER_ELEMENT, elementCount, tensorBytes, typedView, type Dtype, type HostTensor } from './tensor.ts';

/** Error codes raised by this module, one line each. */
export const NpyErrorCode = {
  /** The file does not start with the `\x93NUMPY` magic string. */
  MAGIC: 'NPY_MAGIC',
  /** A format version other than 1.0, 2.0, 3.0. */
  VERSION: 'NPY_VERSION',
  /** The header dictionary could not be parsed or misses a key. */
  HEADER: 'NPY_HEADER',
  /** The file ends before the header or the data it announces. */
  TRUNCATED: 'NPY_TRUNCATED',
  /** More bytes after the data than the shape announces. */
  TRAILING: 'NPY_TRAILING',
  /** A dtype a HostTensor cannot carry (strings, objects, complex, structured, ...). */
  DTYPE: 'NPY_DTYPE',
  /** A big-endian dtype. */
  BIG_ENDIAN: 'NPY_BIG_ENDIAN',
  /** `fortran_order: True`. */
  FORTRAN: 'NPY_FORTRAN',
  /** A shape entry that is not a non-negative safe integer. */
  SHAPE: 'NPY_SHAPE',
  /** A row range outside the file's first dimension, or a scalar file read by rows. */
  RANGE: 'NPY_RANGE',
  /** Rows written to an NpyWriter that do not fit its dtype/shape, or too few/many rows. */
  WRITE: 'NPY_WRITE',
} as const;
export type NpyErrorCode = (typeof NpyErrorCode)[keyof typeof NpyErrorCode];

/** Metadata carried by every `.npy` error. */
export interface NpyErrorMeta {
  field: string;
  expected: string;
  received: string;
}

function npyError(code: NpyErrorCode, field: string, expected: string, received: unknown): DrillError<NpyErrorMeta> {
  const got = typeof received === 'string' ? received : describe(received);
  return new DrillError<NpyErrorMeta>(code, `${field}: expected ${expected}, received ${got}`, { field, expected, received: got });
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** NumPy pads the header so the data starts on a 64-byte boundary (since numpy 1.? it is 64; older readers accept any multiple of 16). 64 keeps every dtype's typed view aligned. */
const HEADER_ALIGN = 64;
/** Magic (6) + version (2) + the smallest header-length field (2): the least a file must hold before we can read the header length. */
const PREAMBLE_V1 = 10;
/** v2/v3 use a 4-byte header length. */
const PREAMBLE_V2 = 12;
/** The longest header we are willing to parse; real ones are ~100 bytes, this bounds the memory a hostile file can make us read. */
const MAX_HEADER_LEN = 1 << 20;

const DTYPE_TO_DESCR: Record<Dtype, string> = {
  float16: '<f2',
  float32: '<f4',
  float64: '<f8',
  int8: '|i1',
  uint8: '|u1',
  int16: '<i2',
  uint16: '<u2',
  int32: '<i4',
  uint32: '<u4',
  int64: '<i8',
  uint64: '<u8',
  bool: '|b1',
};
/** What NumPy writes for each dtype, plus the one-byte types with an explicit byte order ('<u1', '>b1'), which mean the same. */
const DESCR_TO_DTYPE: Record<string, Dtype> = Object.fromEntries([
  ...Object.entries(DTYPE_TO_DESCR).map(([d, s]) => [s, d as Dtype]),
  ...(['int8', 'uint8', 'bool'] as const).flatMap((d) => ['<', '>'].map((o) => [o + DTYPE_TO_DESCR[d].slice(1), d])),
]) as Record<string, Dtype>;
const SUPPORTED = `one of ${Object.values(DTYPE_TO_DESCR).map((s) => `'${s}'`).join(', ')}`;

/** A parsed `.npy` header. */
export interface NpyHeader {
  dtype: Dtype;
  dims: number[];
  /** Byte offset of the first data byte in the file. */
  dataOffset: number;
}

// ---------------------------------------------------------------- header dictionary parsing

type PyValue = string | boolean | number | PyValue[] | { [k: string]: PyValue };

/** Parse the tiny Python-literal subset numpy writes: dict, str, True/False, int, tuple/list. */
function parsePyLiteral(src: string, field: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw npyError(NpyErrorCode.HEADER, field, `a header dictionary like {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} (${what} at offset ${i})`, src.trim());
  };
  const ws = (): void => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const value = (): PyValue => {
    ws();
    const c = src[i];
    if (c === '{') {
      i++;
      const obj: { [k: string]: PyValue } = {};
      for (;;) {
        ws();
        if (src[i] === '}') {
          i++;
          return obj;
        }
        const k = value();
        if (typeof k !== 'string') fail('a string key');
        ws();
        if (src[i] !== ':') fail("':'");
        i++;
        obj[k as string] = value();
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== '}') fail("',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const arr: PyValue[] = [];
      for (;;) {
        ws();
        if (src[i] === close) {
          i++;
          return arr;
        }
        arr.push(value());
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== close) fail(`',' or '${close}'`);
      }
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail('a closing quote');
      const s = src.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(True|False|-?\d+L?)/.exec(src.slice(i, i + 32));
    if (!m) return fail('a value');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    return Number(m[0].replace('L', ''));
  };
  const v = value();
  ws();
  if (i !== src.length) fail('the end of the header');
  return v;
}

function headerFromDict(text: string, field: string): { dtype: Dtype; dims: number[] } {
  const dict = parsePyLiteral(text, field);
  if (typeof dict !== 'object' || dict === null || Array.isArray(dict)) {
    throw npyError(NpyErrorCode.HEADER, field, 'a header dictionary', text.trim());
  }
  const { descr, fortran_order: fortran, shape } = dict as Record<string, PyValue | undefined>;
  if (typeof descr !== 'string') {
    throw npyError(NpyErrorCode.DTYPE, `${field} dtype`, `a simple dtype ${SUPPORTED}`, descr === undefined ? 'no descr' : `a structured dtype ${JSON.stringify(descr)}`);
  }
  const dtype = DESCR_TO_DTYPE[descr];
  if (dtype === undefined) {
    const le = descr.replace(/^>/, '<');
    if (descr.startsWith('>') && DESCR_TO_DTYPE[le] !== undefined) {
      throw npyError(NpyErrorCode.BIG_ENDIAN, `${field} dtype`, `little-endian ${SUPPORTED}`, `big-endian '${descr}' (convert with arr.astype('${le}'))`);
    }
    throw npyError(NpyErrorCode.DTYPE, `${field} dtype`, SUPPORTED, `'${descr}'`);
  }
  if (fortran !== false) {
    if (fortran === true) {
      throw npyError(NpyErrorCode.FORTRAN, `${field} fortran_order`, 'C order (fortran_order False)', 'fortran_order True (save np.ascontiguousarray(arr))');
    }
    throw npyError(NpyErrorCode.HEADER, `${field} fortran_order`, 'True or False', fortran === undefined ? 'nothing' : JSON.stringify(fortran));
  }
  if (!Array.isArray(shape)) {
    throw npyError(NpyErrorCode.HEADER, `${field} shape`, 'a tuple of integers', shape === undefined ? 'nothing' : JSON.stringify(shape));
  }
  const dims: number[] = [];
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw npyError(NpyErrorCode.SHAPE, `${field} shape`, 'non-negative integers', JSON.stringify(shape));
    }
    dims.push(d);
  }
  if (!Number.isSafeInteger(elementCount(dims) * BYTES_PER_ELEMENT[dtype])) {
    throw npyError(NpyErrorCode.SHAPE, `${field} shape`, 'a size below 2^53 bytes', JSON.stringify(shape));
  }
  return { dtype, dims };
}

/**
 * Parse the header from the first bytes of a file. Returns null when `bytes` is too short to
 * hold the whole header, along with how many bytes would be needed.
 */
function parseHeaderBytes(bytes: Uint8Array, field: string): NpyHeader | { need: number } {
  const have = Math.min(bytes.length, MAGIC.length);
  for (let i = 0; i < have; i++) {
    if (bytes[i] !== MAGIC[i]) {
      throw npyError(NpyErrorCode.MAGIC, field, 'a .npy file starting with \\x93NUMPY', `bytes ${hexPrefix(bytes)}`);
    }
  }
  if (bytes.length < PREAMBLE_V1) return { need: PREAMBLE_V2 };
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (!(major >= 1 && major <= 3 && minor === 0)) {
    throw npyError(NpyErrorCode.VERSION, `${field} format version`, '1.0, 2.0 or 3.0', `${major}.${minor}`);
  }
  const pre = major === 1 ? PREAMBLE_V1 : PREAMBLE_V2;
  if (bytes.length < pre) return { need: pre };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (hlen > MAX_HEADER_LEN) {
    throw npyError(NpyErrorCode.HEADER, `${field} header length`, `at most ${MAX_HEADER_LEN} bytes`, `${hlen} bytes`);
  }
  const dataOffset = pre + hlen;
  if (bytes.length < dataOffset) return { need: dataOffset };
  const raw = bytes.subarray(pre, dataOffset);
  const text = major === 3 ? new TextDecoder('utf-8', { fatal: false }).decode(raw) : latin1(raw);
  return { ...headerFromDict(text, field), dataOffset };
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function hexPrefix(b: Uint8Array): string {
  return Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ') + (b.length > 8 ? ' ...' : '');
}

function truncated(field: string, need: number, have: number, what: string): DrillError<NpyErrorMeta> {
  return npyError(NpyErrorCode.TRUNCATED, field, `at least ${need} bytes (${what})`, `${have} bytes (file truncated?)`);
}

// ---------------------------------------------------------------- whole-file API

/**
 * Parse a whole `.npy` file held in memory. The returned tensor's data is a view over `bytes`
 * when the data is aligned for its dtype (it always is for files we write), else a copy.
 * @param field name used in error messages (a file path or an API field)
 * @throws DrillError NPY_MAGIC | NPY_VERSION | NPY_HEADER | NPY_TRUNCATED | NPY_TRAILING |
 *   NPY_DTYPE | NPY_BIG_ENDIAN | NPY_FORTRAN | NPY_SHAPE
 */
export function parseNpy(bytes: Uint8Array, field = 'npy'): HostTensor {
  const h = parseHeaderBytes(bytes, field);
  if ('need' in h) throw truncated(field, h.need, bytes.length, 'the .npy header');
  const n = elementCount(h.dims) * BYTES_PER_ELEMENT[h.dtype];
  const end = h.dataOffset + n;
  if (bytes.length < end) throw truncated(field, end, bytes.length, `header + ${h.dims.join('×') || 'scalar'} ${h.dtype} data`);
  if (bytes.length > end) {
    throw npyError(NpyErrorCode.TRAILING, field, `${end} bytes for shape [${h.dims.join(', ')}] ${h.dtype}`, `${bytes.length} bytes`);
  }
  return { dtype: h.dtype, dims: h.dims, data: typedView(h.dtype, bytes.subarray(h.dataOffset, end)) };
}

/** Build the header bytes (magic, version, length, padded dict) for a dtype and shape. */
export function encodeNpyHeader(dtype: Dtype, dims: readonly number[]): Uint8Array {
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw npyError(NpyErrorCode.SHAPE, 'dims', 'non-negative integers', JSON.stringify(dims));
  }
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  const dict = `{'descr': '${DTYPE_TO_DESCR[dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Version 1.0 holds headers up to 65535 bytes; fall back to 2.0 beyond (a shape with thousands of dims).
  let major = 1;
  let pre = PREAMBLE_V1;
  let total = Math.ceil((pre + dict.length + 1) / HEADER_ALIGN) * HEADER_ALIGN;
  if (total - pre > 0xffff) {
    major = 2;
    pre = PREAMBLE_V2;
    total = Math.ceil((pre + dict.length + 1) / HEADER_ALIGN) * HEADER_ALIGN;
  }
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, total - pre, true);
  else dv.setUint32(8, total - pre, true);
  const text = dict.padEnd(total - pre - 1, ' ') + '\n';
  for (let i = 0; i < text.length; i++) out[pre + i] = text.charCodeAt(i);
  return out;
}

/**
 * Encode a tensor as a version 1.0 `.npy` file (2.0 only when the header would not fit).
 * @throws DrillError NPY_SHAPE when dims and data length disagree
 */
export function encodeNpy(t: HostTensor): Uint8Array {
  const body = tensorBytes(t);
  const want = elementCount(t.dims) * BYTES_PER_ELEMENT[t.dtype];
  if (body.length !== want) {
    throw npyError(NpyErrorCode.SHAPE, 'tensor', `${want} data bytes for shape [${t.dims.join(', ')}] ${t.dtype}`, `${body.length} bytes`);
  }
  const head = encodeNpyHeader(t.dtype, t.dims);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/**
 * Read and parse a `.npy` file. Errors name the file.
 * @throws DrillError NPY_* (see parseNpy), or NPY_FILE when the file cannot be read
 */
export async function readNpy(path: string): Promise<HostTensor> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw fileError(path, e);
  }
  return parseNpy(bytes, path);
}

function fileError(path: string, e: unknown): DrillError {
  const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
  return new DrillError('NPY_FILE', `${path}: expected a readable .npy file, received ${code} (${(e as Error).message})`, { field: path, expected: 'a readable .npy file', received: code }, { cause: e });
}

// ---------------------------------------------------------------- streaming API

async function readHeaderFrom(fh: FileHandle, path: string): Promise<{ header: NpyHeader; size: number }> {
  const { size } = await fh.stat();
  let want = 128; // one read covers any header numpy writes for ordinary shapes
  for (;;) {
    const len = Math.min(want, size);
    const buf = new Uint8Array(len);
    const { bytesRead } = await fh.read(buf, 0, len, 0);
    const h = parseHeaderBytes(buf.subarray(0, bytesRead), path);
    if (!('need' in h)) return { header: h, size };
    if (h.need > size) throw truncated(path, h.need, size, 'the .npy header');
    want = h.need;
  }
}

function checkSize(path: string, h: NpyHeader, size: number): void {
  const end = h.dataOffset + elementCount(h.dims) * BYTES_PER_ELEMENT[h.dtype];
  if (size < end) throw truncated(path, end, size, `header + [${h.dims.join(', ')}] ${h.dtype} data`);
  if (size > end) throw npyError(NpyErrorCode.TRAILING, path, `${end} bytes for shape [${h.dims.join(', ')}] ${h.dtype}`, `${size} bytes`);
}

/**
 * Read and size-check the header of a `.npy` file already open (e.g. opened once and kept).
 * @throws DrillError NPY_* as parseNpy (NPY_TRUNCATED / NPY_TRAILING when the file's size is
 *   not what the header announces)
 */
export async function readNpyHeaderFrom(fh: FileHandle, path: string): Promise<NpyHeader> {
  const { header, size } = await readHeaderFrom(fh, path);
  checkSize(path, header, size);
  return header;
}

/**
 * Read only the header of a `.npy` file (and check the file is as long as it announces).
 * @throws DrillError NPY_* as parseNpy, NPY_FILE
 */
export async function readNpyHeader(path: string): Promise<NpyHeader> {
  return withCheckedNpy(path, async (_fh, header) => header);
}

/** Open `path`, read and size-check its header, run `fn`, close. Open failures are NPY_FILE. */
async function withCheckedNpy<T>(path: string, fn: (fh: FileHandle, header: NpyHeader) => Promise<T>): Promise<T> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fileError(path, e);
  }
  try {
    const { header, size } = await readHeaderFrom(fh, path);
    checkSize(path, header, size);
    return await fn(fh, header);
  } finally {
    await fh.close();
  }
}

/**
 * Read rows [start, end) along the first dimension of a `.npy` file on disk, reading only
 * those bytes. The result has dims [end - start, ...dims.slice(1)].
 * @throws DrillError NPY_RANGE for a scalar file or a range outside [0, dims[0]]; NPY_* as parseNpy
 */
export async function readNpyRows(path: string, start: number, end: number): Promise<HostTensor> {
  return withCheckedNpy(path, async (fh, h) => {
    if (h.dims.length === 0) throw npyError(NpyErrorCode.RANGE, `${path} rows`, 'an array with at least one dimension', 'a scalar (shape ())');
    const rows = h.dims[0]!;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > rows) {
      throw npyError(NpyErrorCode.RANGE, `${path} rows`, `0 <= start <= end <= ${rows}`, `[${start}, ${end})`);
    }
    const rowBytes = elementCount(h.dims.slice(1)) * BYTES_PER_ELEMENT[h.dtype];
    const len = (end - start) * rowBytes;
    const buf = new Uint8Array(len);
    let off = 0;
    while (off < len) {
      const { bytesRead } = await fh.read(buf, off, len - off, h.dataOffset + start * rowBytes + off);
      if (bytesRead === 0) throw truncated(path, h.dataOffset + end * rowBytes, h.dataOffset + start * rowBytes + off, 'the requested rows');
      off += bytesRead;
    }
    return { dtype: h.dtype, dims: [end - start, ...h.dims.slice(1)], data: typedView(h.dtype, buf) };
  });
}

/**
 * Streaming `.npy` writer. The header is written up front with the final shape (the number of
 * rows is known before the first row arrives); rows are then appended in order, so a whole
 * job's output never has to sit in memory. `close()` checks every announced row was written.
 */
export class NpyWriter {
  readonly path: string;
  readonly dtype: Dtype;
  readonly dims: readonly number[];
  #fh: FileHandle | null;
  #pos: number;
  readonly #end: number;
  readonly #rowBytes: number;

  private constructor(path: string, dtype: Dtype, dims: number[], fh: FileHandle, headerLen: number) {
    this.path = path;
    this.dtype = dtype;
    this.dims = dims;
    this.#fh = fh;
    this.#pos = headerLen;
    this.#rowBytes = elementCount(dims.slice(1)) * BYTES_PER_ELEMENT[dtype];
    this.#end = headerLen + elementCount(dims) * BYTES_PER_ELEMENT[dtype];
  }

  /**
   * Create (truncate) `path` and write the header for `dims`.
   * @throws DrillError NPY_SHAPE for a scalar or invalid shape, NPY_FILE when the file cannot be created
   */
  static async open(path: string, dtype: Dtype, dims: number[]): Promise<NpyWriter> {
    if (dims.length === 0) throw npyError(NpyErrorCode.SHAPE, `${path} dims`, 'at least one dimension (rows)', '()');
    const head = encodeNpyHeader(dtype, dims);
    let fh: FileHandle;
    try {
      fh = await open(path, 'w');
    } catch (e) {
      throw fileError(path, e);
    }
    await fh.write(head, 0, head.length, 0);
    return new NpyWriter(path, dtype, [...dims], fh, head.length);
  }

  /** Rows written so far. */
  get rowsWritten(): number {
    const headerLen = this.#end - this.dims[0]! * this.#rowBytes;
    return this.#rowBytes === 0 ? 0 : (this.#pos - headerLen) / this.#rowBytes;
  }

  /**
   * Append whole rows: a tensor of this writer's dtype with dims [k, ...dims.slice(1)], or raw
   * little-endian bytes holding a whole number of rows. Rows land in call order even when calls
   * are not awaited one by one; `close()` after the last write's promise settles.
   * @throws DrillError NPY_WRITE on dtype/shape mismatch, partial rows, too many rows or after close
   */
  async write(rows: HostTensor | Uint8Array): Promise<void> {
    const fh = this.#fh;
    if (!fh) throw npyError(NpyErrorCode.WRITE, `${this.path}`, 'an open writer', 'write after close');
    let bytes: Uint8Array;
    if (rows instanceof Uint8Array) {
      bytes = rows;
    } else {
      if (rows.dtype !== this.dtype) throw npyError(NpyErrorCode.WRITE, `${this.path} dtype`, this.dtype, rows.dtype);
      const tail = rows.dims.slice(1);
      const want = this.dims.slice(1);
      if (rows.dims.length !== this.dims.length || tail.some((d, i) => d !== want[i])) {
        throw npyError(NpyErrorCode.WRITE, `${this.path} rows`, `dims [k, ${want.join(', ')}]`, `[${rows.dims.join(', ')}]`);
      }
      bytes = tensorBytes(rows);
    }
    if (this.#rowBytes > 0 && bytes.length % this.#rowBytes !== 0) {
      throw npyError(NpyErrorCode.WRITE, `${this.path} rows`, `a multiple of ${this.#rowBytes} bytes (whole rows)`, `${bytes.length} bytes`);
    }
    if (this.#pos + bytes.length > this.#end) {
      throw npyError(NpyErrorCode.WRITE, `${this.path} rows`, `at most ${this.dims[0]} rows in total`, `${this.rowsWritten + bytes.length / Math.max(1, this.#rowBytes)} rows`);
    }
    // Reserve the file range before awaiting, so writes issued back to back (not awaited one by
    // one) still land in call order.
    const at = this.#pos;
    this.#pos += bytes.length;
    let off = 0;
    while (off < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, at + off);
      off += bytesWritten;
    }
  }

  /**
   * Close the file. Throws if fewer rows than announced were written (the file is then
   * shorter than its header says and readers will reject it as truncated).
   * @throws DrillError NPY_WRITE
   */
  async close(): Promise<void> {
    const fh = this.#fh;
    if (!fh) return;
    this.#fh = null;
    await fh.close();
    if (this.#pos !== this.#end) {
      throw npyError(NpyErrorCode.WRITE, `${this.path} rows`, `${this.dims[0]} rows before close`, `${this.rowsWritten} rows`);
    }
  }
}
