/**
 * Same-filesystem leases: a coordinator the worker shares a filesystem with names where a unit's
 * input rows lie (file, byte offset, dtype, dims) instead of sending them. The lease is the
 * coordinator's word, so the worker confines what it reads to what a job input can be:
 *
 *   - an absolute path to a regular `.npy` file (opened non-blocking, so a FIFO or device cannot
 *     hang the worker) whose header is well formed and matches the file's size;
 *   - the header's dtype equals the lease's, and its dims equal the lease's — except along one
 *     split axis (the job's batch axis: axis 0, or a later one for a state [2, batch, 128]),
 *     where the lease takes exactly the unit's rows; an input sent whole takes the whole file;
 *   - the bytes are the rows [start, start + rows) of that axis: one run for axis 0, one run per
 *     index of the axes before it otherwise (`segments` runs `stride` apart, exactly the file's
 *     layout), starting on a row boundary inside the data section and ending inside it.
 *
 * Nothing else is ever read: not another file's bytes, not the header, not past the data. All
 * rules live in `checkLeaseInputFile` (pure).
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { isAbsolute } from 'node:path';
import { DrillError, isDrillError } from '../util/errors.ts';
import { readNpyHeaderFrom } from '../util/npy.ts';
import type { NpyHeader } from '../util/npy.ts';
import type { HostTensor } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, elementCount, typedView } from '../util/tensor.ts';
import type { InputFileRange } from '../protocol/grid.ts';

/** Error code of a refused lease input (the worker reports the unit as failed with the message). */
export const LEASE_INPUT_REFUSED = 'LEASE_INPUT_REFUSED';

function refuse(name: string, expected: string, received: string): DrillError {
  return new DrillError(LEASE_INPUT_REFUSED, `lease input ${name}: expected ${expected}, received ${received}`, { input: name });
}

/** Where a lease's path may point at all (checked before the file is opened). */
export function checkLeaseInputPath(name: string, path: string): void {
  if (!isAbsolute(path) || !path.endsWith('.npy') || path.includes('\0')) throw refuse(name, 'an absolute path to a .npy file', JSON.stringify(path.slice(0, 200)));
}

/** Where a lease input's bytes are: `segments` runs of `length` bytes, `stride` apart, from `offset`. */
export interface LeaseInputRead {
  offset: number;
  segments: number;
  stride: number;
  length: number;
}

/**
 * The rules a same-filesystem lease input must meet against the file's header (see the module
 * comment). Returns where to read.
 * @throws DrillError LEASE_INPUT_REFUSED naming the input and the broken rule.
 */
export function checkLeaseInputFile(name: string, range: InputFileRange, header: NpyHeader, rows: number): LeaseInputRead {
  checkLeaseInputPath(name, range.path);
  if (range.dtype !== header.dtype) throw refuse(name, `dtype ${header.dtype} (the file's)`, range.dtype);
  const hd = header.dims;
  const rd = range.dims;
  const bpe = BYTES_PER_ELEMENT[header.dtype];
  const dataEnd = header.dataOffset + elementCount(hd) * bpe;
  const differ = rd.length === hd.length ? rd.flatMap((d, i) => (d !== hd[i] ? [i] : [])) : null;
  if (differ === null || differ.length > 1) {
    throw refuse(name, `the file's dims [${hd.join(', ')}], or them with the unit's ${rows} rows along one axis`, `[${rd.join(', ')}]`);
  }
  const segments = range.segments ?? 1;
  if (differ.length === 0) {
    // The whole file (an input sent whole, or a unit holding every row): one contiguous read.
    const length = elementCount(hd) * bpe;
    const contiguous = segments === 1 || (range.stride !== undefined && range.stride * segments === length);
    if (range.offset !== header.dataOffset || !contiguous) throw refuse(name, `the whole data section [${header.dataOffset}, ${dataEnd})`, `${segments} runs from ${range.offset}`);
    return { offset: header.dataOffset, segments: 1, stride: 0, length };
  }
  const axis = differ[0]!;
  if (rd[axis] !== rows) throw refuse(name, `${rows} rows (the unit's) along axis ${axis}`, `${rd[axis]} rows`);
  const inner = elementCount(hd.slice(axis + 1)) * bpe;
  const count = elementCount(hd.slice(0, axis));
  const stride = hd[axis]! * inner;
  if (segments !== count || (count > 1 && range.stride !== stride)) {
    throw refuse(name, `${count} run(s) ${stride} bytes apart (rows on axis ${axis} of [${hd.join(', ')}])`, `${segments} run(s) ${range.stride ?? 0} bytes apart`);
  }
  const rel = range.offset - header.dataOffset;
  const start = inner > 0 ? rel / inner : 0;
  if (!Number.isSafeInteger(range.offset) || rel < 0 || (inner > 0 && rel % inner !== 0) || (inner === 0 && rel !== 0) || start + rows > hd[axis]!) {
    throw refuse(name, `a row-aligned byte range inside the data section [${header.dataOffset}, ${dataEnd})`, `[${range.offset}, ${range.offset + rows * inner}) on axis ${axis}`);
  }
  return { offset: range.offset, segments: count, stride, length: rows * inner };
}

interface OpenInput {
  fh: FileHandle;
  header: NpyHeader;
}

/**
 * Open input files of same-filesystem leases (a few jobs at a time), their headers read once.
 * Oldest closed first past `maxOpen`.
 */
export class LeaseInputFiles {
  readonly #maxOpen: number;
  readonly #open = new Map<string, Promise<OpenInput>>();

  constructor(maxOpen: number) {
    this.#maxOpen = maxOpen;
  }

  /**
   * Read input `name`'s rows for a unit of `rows` rows, after checking the lease's range.
   * @throws DrillError LEASE_INPUT_REFUSED (not a .npy / header mismatch / range outside the data), NPY_*.
   */
  async read(name: string, range: InputFileRange, rows: number): Promise<HostTensor> {
    checkLeaseInputPath(name, range.path);
    const f = await this.#file(name, range.path);
    const r = checkLeaseInputFile(name, range, f.header, rows);
    const buf = new Uint8Array(r.segments * r.length);
    for (let k = 0; k < r.segments; k++) {
      const from = r.offset + k * r.stride;
      let off = 0;
      while (off < r.length) {
        const { bytesRead } = await f.fh.read(buf, k * r.length + off, r.length - off, from + off);
        if (bytesRead === 0) throw refuse(name, `${r.length} bytes at ${from}`, `a file that ended after ${off}`);
        off += bytesRead;
      }
    }
    return { dtype: range.dtype, dims: range.dims, data: typedView(range.dtype, buf) };
  }

  async close(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    for (const p of all) await p.then((f) => f.fh.close()).catch(() => undefined);
  }

  #file(name: string, path: string): Promise<OpenInput> {
    let p = this.#open.get(path);
    if (p) return p;
    if (this.#open.size >= this.#maxOpen) {
      const [oldest, h] = this.#open.entries().next().value as [string, Promise<OpenInput>];
      this.#open.delete(oldest);
      void h.then((x) => x.fh.close()).catch(() => undefined);
    }
    p = (async () => {
      // Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever.
      const fh = await open(path, fsc.O_RDONLY | fsc.O_NONBLOCK).catch((e: unknown) => {
        throw refuse(name, 'a readable .npy file', `${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      });
      try {
        if (!(await fh.stat()).isFile()) throw refuse(name, 'a regular .npy file', `${path} (not a regular file)`);
        return { fh, header: await readNpyHeaderFrom(fh, path) };
      } catch (e) {
        await fh.close().catch(() => undefined);
        throw isDrillError(e, LEASE_INPUT_REFUSED) ? e : refuse(name, 'a well-formed .npy file', `${path}: ${(e as Error).message}`);
      }
    })();
    this.#open.set(path, p);
    p.catch(() => this.#open.delete(path));
    return p;
  }
}
