/**
 * Same-filesystem leases: a coordinator the worker shares a filesystem with names where a unit's
 * input rows lie (file, byte offset, dtype, dims) instead of sending them. The lease is the
 * coordinator's word, so the worker confines what it reads to what a job input can be:
 *
 *   - an absolute path to a regular `.npy` file (opened non-blocking, so a FIFO or device cannot
 *     hang the worker) whose header is well formed and matches the file's size;
 *   - the header's dtype equals the lease's, and its dims equal the lease's except along the
 *     split axis (axis 0), where the lease takes exactly the unit's rows;
 *   - the byte range starts on a row boundary inside the data section and ends inside it.
 *
 * Nothing else is ever read: not another file's bytes, not the header, not past the data. All
 * rules live in `checkLeaseInputFile` (pure), the one place to extend (e.g. for inputs split on
 * another axis, read as strided segments).
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

/**
 * The rules a same-filesystem lease input must meet against the file's header (see the module
 * comment). Returns the number of bytes to read.
 * @throws DrillError LEASE_INPUT_REFUSED naming the input and the broken rule.
 */
export function checkLeaseInputFile(name: string, range: InputFileRange, header: NpyHeader, rows: number): number {
  checkLeaseInputPath(name, range.path);
  if (range.dtype !== header.dtype) throw refuse(name, `dtype ${header.dtype} (the file's)`, range.dtype);
  const hd = header.dims;
  const rd = range.dims;
  if (hd.length === 0 || rd.length !== hd.length || rd.slice(1).some((d, i) => d !== hd[i + 1])) {
    throw refuse(name, `dims [rows, ${hd.slice(1).join(', ')}] (the file is [${hd.join(', ')}])`, `[${rd.join(', ')}]`);
  }
  if (rd[0] !== rows) throw refuse(name, `${rows} rows (the unit's)`, `${rd[0]} rows`);
  const rowBytes = elementCount(hd.slice(1)) * BYTES_PER_ELEMENT[header.dtype];
  const len = rows * rowBytes;
  const dataEnd = header.dataOffset + hd[0]! * rowBytes;
  const rel = range.offset - header.dataOffset;
  if (!Number.isSafeInteger(range.offset) || rel < 0 || (rowBytes > 0 && rel % rowBytes !== 0) || (rowBytes === 0 && rel !== 0) || range.offset + len > dataEnd) {
    throw refuse(name, `a row-aligned byte range inside the data section [${header.dataOffset}, ${dataEnd})`, `[${range.offset}, ${range.offset + len})`);
  }
  return len;
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
    const len = checkLeaseInputFile(name, range, f.header, rows);
    const buf = new Uint8Array(len);
    let off = 0;
    while (off < len) {
      const { bytesRead } = await f.fh.read(buf, off, len - off, range.offset + off);
      if (bytesRead === 0) throw refuse(name, `${len} bytes at ${range.offset}`, `a file that ended after ${off}`);
      off += bytesRead;
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
