/**
 * The coordinator's input side: a job's input rows read from its .npy files per lease — into
 * the lease message for remote workers, or as file ranges for workers on our filesystem.
 *
 * Each input is split on its batch axis (JobSpec inputs[].batchAxis): rows [start, end) on axis
 * 0 are one contiguous run of the file; on a later axis (a recurrent state [2, batch, 128]) one
 * run per index of the axes before it (`axisSlab`). An input with no batch axis is sent whole to
 * every unit.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { DrillError } from '../util/errors.ts';
import { readNpyHeader } from '../util/npy.ts';
import type { Dtype } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, axisSlab, elementCount } from '../util/tensor.ts';
import type { InputFileRange } from '../protocol/grid.ts';
import { inputAxis } from './job.ts';
import type { JobSpec } from './job.ts';

interface OpenInput {
  fh: FileHandle;
  path: string;
  dataOffset: number;
  dtype: Dtype;
  dims: number[];
  /** null: sent whole. */
  axis: number | null;
}

/** Where rows [start, end) of an input lie in its data: runs of `length` bytes, `stride` apart. */
function slab(f: OpenInput, start: number, end: number): { offset: number; count: number; stride: number; length: number; dims: number[] } {
  const bpe = BYTES_PER_ELEMENT[f.dtype];
  if (f.axis === null) return { offset: 0, count: 1, stride: 0, length: elementCount(f.dims) * bpe, dims: [...f.dims] };
  const s = axisSlab(f.dims, f.axis, bpe, start, end);
  const dims = [...f.dims];
  dims[f.axis] = end - start;
  return { ...s, dims };
}

/**
 * Reads a job's input rows for leases. Each .npy is opened and its header checked once per job
 * (not once per lease: with thousands of small units the open/stat/parse dominated the read),
 * then rows are positional reads of exactly the bytes needed into a fresh buffer.
 */
export class InputReader {
  readonly #spec: JobSpec;
  #files: Promise<Map<string, OpenInput>> | null = null;

  constructor(spec: JobSpec) {
    this.#spec = spec;
  }

  /** Set by close(): a lease still being filled when its job ends must not reopen the files. */
  #closed = false;

  #open(): Promise<Map<string, OpenInput>> {
    if (this.#closed) return Promise.reject(new DrillError('INPUT_CLOSED', `the inputs of job ${this.#spec.id} are closed (the job ended)`));
    this.#files ??= (async () => {
      const m = new Map<string, OpenInput>();
      try {
        for (const [name, inp] of Object.entries(this.#spec.inputs)) {
          const h = await readNpyHeader(inp.path);
          if (h.dtype !== inp.dtype || h.dims.length !== inp.dims.length || h.dims.some((d, i) => d !== inp.dims[i])) {
            throw new DrillError('INPUT_CHANGED', `input ${name}: ${inp.path} changed since the job was prepared`);
          }
          m.set(name, { fh: await open(inp.path, 'r'), path: inp.path, dataOffset: h.dataOffset, dtype: h.dtype, dims: h.dims, axis: inputAxis(inp) });
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

  /** The dtype and dims of every input's part of rows [start, end). */
  async shapes(start: number, end: number): Promise<Record<string, { dtype: Dtype; dims: number[] }>> {
    const out: Record<string, { dtype: Dtype; dims: number[] }> = {};
    for (const [name, f] of await this.#open()) out[name] = { dtype: f.dtype, dims: slab(f, start, end).dims };
    return out;
  }

  /** Where every input's part of rows [start, end) lies on disk (for workers on the same filesystem). */
  async ranges(start: number, end: number): Promise<Record<string, InputFileRange>> {
    const out: Record<string, InputFileRange> = {};
    for (const [name, f] of await this.#open()) {
      const s = slab(f, start, end);
      out[name] = { path: f.path, offset: f.dataOffset + s.offset, dtype: f.dtype, dims: s.dims, ...(s.count > 1 ? { segments: s.count, stride: s.stride } : {}) };
    }
    return out;
  }

  /** Read input `name`'s part of rows [start, end) into `dest` (exactly its bytes). @throws DrillError INPUT_CHANGED, fs errors. */
  async readInto(name: string, start: number, end: number, dest: Uint8Array): Promise<void> {
    const f = (await this.#open()).get(name);
    if (!f) throw new DrillError('INPUT_CHANGED', `no input ${name}`);
    const s = slab(f, start, end);
    if (dest.length !== s.count * s.length) throw new RangeError(`input ${name}: ${dest.length} bytes for ${s.count} runs of ${s.length} bytes`);
    for (let i = 0; i < s.count; i++) {
      const at = f.dataOffset + s.offset + i * s.stride;
      let off = 0;
      while (off < s.length) {
        const { bytesRead } = await f.fh.read(dest, i * s.length + off, s.length - off, at + off);
        if (bytesRead === 0) throw new DrillError('INPUT_CHANGED', `input ${name}: file ended before row ${end} (it changed since the job was prepared)`);
        off += bytesRead;
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const p = this.#files;
    this.#files = null;
    if (!p) return;
    const files = await p.catch(() => new Map<string, OpenInput>());
    for (const f of files.values()) await f.fh.close().catch(() => undefined);
  }
}
