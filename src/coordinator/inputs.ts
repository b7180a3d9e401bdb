/**
 * The coordinator's input side: a job's input rows read from its .npy files per lease — into
 * the lease message for remote workers, or as file ranges for workers on our filesystem.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { DrillError } from '../util/errors.ts';
import { readNpyHeader } from '../util/npy.ts';
import type { Dtype } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, elementCount } from '../util/tensor.ts';
import type { InputFileRange } from '../protocol/grid.ts';
import type { JobSpec } from './job.ts';

/**
 * Reads a job's input rows for leases. Each .npy is opened and its header checked once per job
 * (not once per lease: with thousands of small units the open/stat/parse dominated the read),
 * then rows are positional reads of exactly the bytes needed into a fresh buffer.
 */
export class InputReader {
  readonly #spec: JobSpec;
  #files: Promise<Map<string, { fh: FileHandle; dataOffset: number; rowBytes: number; dtype: Dtype; tail: number[] }>> | null = null;

  constructor(spec: JobSpec) {
    this.#spec = spec;
  }

  #open(): Promise<Map<string, { fh: FileHandle; dataOffset: number; rowBytes: number; dtype: Dtype; tail: number[] }>> {
    this.#files ??= (async () => {
      const m = new Map<string, { fh: FileHandle; dataOffset: number; rowBytes: number; dtype: Dtype; tail: number[] }>();
      try {
        for (const [name, inp] of Object.entries(this.#spec.inputs)) {
          const h = await readNpyHeader(inp.path);
          if (h.dtype !== inp.dtype || h.dims.length !== inp.dims.length || h.dims.some((d, i) => d !== inp.dims[i])) {
            throw new DrillError('INPUT_CHANGED', `input ${name}: ${inp.path} changed since the job was prepared`);
          }
          const tail = h.dims.slice(1);
          m.set(name, { fh: await open(inp.path, 'r'), dataOffset: h.dataOffset, rowBytes: elementCount(tail) * BYTES_PER_ELEMENT[h.dtype], dtype: h.dtype, tail });
        }
      } catch (e) {
        for (const f of m.values()) await f.fh.close().catch(() => undefined);
        this.#files = null;
        throw e;
      }
      return m;
    })();
    return this.#files;
  }

  /** The dtype and dims of every input's rows [start, end). */
  async shapes(start: number, end: number): Promise<Record<string, { dtype: Dtype; dims: number[] }>> {
    const out: Record<string, { dtype: Dtype; dims: number[] }> = {};
    for (const [name, f] of await this.#open()) out[name] = { dtype: f.dtype, dims: [end - start, ...f.tail] };
    return out;
  }

  /** Where every input's rows [start, end) lie on disk (for workers on the same filesystem). */
  async ranges(start: number, end: number): Promise<Record<string, InputFileRange>> {
    const out: Record<string, InputFileRange> = {};
    for (const [name, f] of await this.#open()) {
      out[name] = { path: this.#spec.inputs[name]!.path, offset: f.dataOffset + start * f.rowBytes, dtype: f.dtype, dims: [end - start, ...f.tail] };
    }
    return out;
  }

  /** Read input `name`'s rows [start, end) into `dest` (exactly their bytes). @throws DrillError INPUT_CHANGED, fs errors. */
  async readInto(name: string, start: number, end: number, dest: Uint8Array): Promise<void> {
    const f = (await this.#open()).get(name);
    if (!f) throw new DrillError('INPUT_CHANGED', `no input ${name}`);
    const len = (end - start) * f.rowBytes;
    if (dest.length !== len) throw new RangeError(`input ${name}: ${dest.length} bytes for ${end - start} rows of ${f.rowBytes} bytes`);
    let off = 0;
    while (off < len) {
      const { bytesRead } = await f.fh.read(dest, off, len - off, f.dataOffset + start * f.rowBytes + off);
      if (bytesRead === 0) throw new DrillError('INPUT_CHANGED', `input ${name}: file ended before row ${end} (it changed since the job was prepared)`);
      off += bytesRead;
    }
  }

  async close(): Promise<void> {
    const p = this.#files;
    this.#files = null;
    if (!p) return;
    const files = await p.catch(() => new Map<string, { fh: FileHandle }>());
    for (const f of files.values()) await f.fh.close().catch(() => undefined);
  }
}
