/**
 * Streams a job's accepted unit results to `DIR/<output>.npy` in input order while units finish
 * in any order: each output file is laid out once the first result shows its shape, and every
 * unit's rows are written at their final offset (positional writes), so memory holds only
 * in-flight results, never the job. Files are written as `<name>.npy.partial` and renamed only
 * when every row is in — nothing half-written looks complete.
 *
 * Each output is stitched on its batch axis (JobSpec.outputs): axis 0 is one contiguous run per
 * unit; an axis further in (a recurrent state [2, batch, 128]) is one run per index of the axes
 * before it. A unit's result may hold a fixed number of entries per row on that axis (a
 * flattened [batch·seq, hidden]), the same for every unit. An output with no batch axis is
 * written from the first unit and every later unit must agree with it under the job's policy.
 */
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DrillError } from '../util/errors.ts';
import type { Dtype, HostTensor } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, axisSlab, elementCount, tensorBytes, typedView } from '../util/tensor.ts';
import { encodeNpyHeader } from '../util/npy.ts';
import type { Policy } from '../pod/policy.ts';
import { formatPolicy, tensorsAgree } from '../pod/policy.ts';
import { outputFileName, outputAxis } from './job.ts';
import type { JobSpec } from './job.ts';

interface OutFile {
  name: string;
  path: string;
  fh: FileHandle;
  dtype: Dtype;
  /** The whole file's dims. */
  dims: number[];
  /** Stitch axis; null: one tensor for the whole job. */
  axis: number | null;
  /** Entries per row along the axis (1 for an ordinary batch axis). */
  perRow: number;
  dataOffset: number;
  /** Unbatched outputs: the first unit's tensor, which every later one must agree with. */
  whole?: HostTensor;
}

/** An output file's layout, kept in the job store so a resumed job reopens its partial files. */
export interface OutputLayout {
  name: string;
  dtype: Dtype;
  /** The file's dims (absent in layouts stored before batch axes: [rows, ...rowDims]). */
  dims?: number[];
  axis?: number | null;
  perRow?: number;
  /** Layouts stored before batch axes existed: the dims of one row (axis 0). */
  rowDims?: number[];
}

/** Error codes of the assembler. */
export const OutputErrorCode = {
  /** A result that does not fit the output's layout (rows, dims, dtype). */
  SHAPE: 'OUTPUT_SHAPE',
  /** An output without a batch axis that differs between units. */
  UNBATCHED: 'OUTPUT_UNBATCHED',
} as const;

export class OutputAssembler {
  readonly #dir: string;
  readonly #rows: number;
  readonly #names: string[];
  readonly #axes: Record<string, number | null>;
  readonly #policy: Policy;
  readonly #files = new Map<string, OutFile>();
  #opening: Promise<void> | null = null;

  /** For a job: its output dir, rows, outputs with their stitch axes and its policy. */
  constructor(spec: Pick<JobSpec, 'outDir' | 'rows' | 'outputNames' | 'outputs' | 'policy'>) {
    this.#dir = spec.outDir;
    this.#rows = spec.rows;
    this.#names = spec.outputNames;
    this.#axes = Object.fromEntries(spec.outputNames.map((n) => [n, outputAxis(spec, n)]));
    this.#policy = spec.policy;
  }

  /** Final paths of the outputs, by output name. */
  paths(): Record<string, string> {
    return Object.fromEntries(this.#names.map((n) => [n, join(this.#dir, outputFileName(n))]));
  }

  /** The layout once known (for a resumed job's store). */
  layout(): OutputLayout[] {
    return [...this.#files.values()].map((f) => ({ name: f.name, dtype: f.dtype, dims: f.dims, axis: f.axis, perRow: f.perRow }));
  }

  /** Reopen partial files of a resumed job (layout from its store). */
  async resume(layout: OutputLayout[]): Promise<void> {
    for (const l of layout) {
      const dims = l.dims ?? [this.#rows, ...(l.rowDims ?? [])];
      const f = await this.#openFile(l.name, l.dtype, dims, l.axis === undefined ? 0 : l.axis, l.perRow ?? 1, false);
      if (f.axis === null) {
        // The first unit's value is in the file: read it back to check later units against.
        const len = elementCount(dims) * BYTES_PER_ELEMENT[l.dtype];
        const buf = new Uint8Array(len);
        await f.fh.read(buf, 0, len, f.dataOffset);
        f.whole = { dtype: l.dtype, dims, data: typedView(l.dtype, buf) };
      }
    }
  }

  async #openFile(name: string, dtype: Dtype, dims: number[], axis: number | null, perRow: number, create: boolean): Promise<OutFile> {
    const path = join(this.#dir, outputFileName(name));
    const header = encodeNpyHeader(dtype, dims);
    const fh = await open(`${path}.partial`, create ? 'w+' : 'r+');
    if (create) {
      await fh.write(header, 0, header.length, 0);
      await fh.truncate(header.length + elementCount(dims) * BYTES_PER_ELEMENT[dtype]);
    }
    const f: OutFile = { name, path, fh, dtype, dims, axis, perRow, dataOffset: header.length };
    this.#files.set(name, f);
    return f;
  }

  /** Lay the files out from the first result (already checked by write()). */
  async #layOut(start: number, end: number, result: Record<string, HostTensor>): Promise<void> {
    const rows = end - start;
    // A unit holding every row (a one-unit job) is the whole output as it is: nothing to stitch.
    const all = start === 0 && end === this.#rows;
    for (const n of this.#names) {
      const t = result[n]!;
      const axis = all ? null : (this.#axes[n] ?? null);
      if (axis === null) {
        await this.#openFile(n, t.dtype, [...t.dims], null, 1, true);
        continue;
      }
      const perRow = t.dims[axis]! / rows;
      const dims = [...t.dims];
      dims[axis] = perRow * this.#rows;
      await this.#openFile(n, t.dtype, dims, axis, perRow, true);
    }
  }

  /**
   * Write the rows [start, end) of every output. The whole result is checked before any file
   * is laid out or written: a result that does not fit writes nothing.
   * @throws DrillError OUTPUT_SHAPE when a result lacks an output or does not fit the layout the
   *   first result set (entries along the batch axis, other dims, dtype); OUTPUT_UNBATCHED when
   *   an output without a batch axis differs from the first unit's under the job's policy.
   */
  async write(start: number, end: number, result: Record<string, HostTensor>): Promise<void> {
    const rows = end - start;
    const all = start === 0 && end === this.#rows;
    for (const n of this.#names) {
      const t = result[n];
      if (!t) throw new DrillError(OutputErrorCode.SHAPE, `result lacks output ${JSON.stringify(n)}`);
      const axis = this.#axes[n] ?? null;
      if (!all && axis !== null && (axis >= t.dims.length || t.dims[axis]! % rows !== 0)) {
        throw new DrillError(OutputErrorCode.SHAPE, `output ${n}: expected its batch axis ${axis} to hold a whole number of entries per row, received [${t.dims.join(', ')}] for ${rows} rows (give its axis with --batch-axis ${n}=AXIS, --broadcast ${n} if it has none, or run the job as one unit with --unit-rows ${this.#rows} if its size depends on the data)`, { output: n });
      }
    }
    if (this.#files.size === 0) {
      this.#opening ??= this.#layOut(start, end, result);
      await this.#opening;
    } else if (this.#opening) await this.#opening;
    // Check every output against the layout, then write (nothing is written for a bad result).
    for (const n of this.#names) {
      const f = this.#files.get(n)!;
      const t = result[n]!;
      if (f.axis === null) {
        this.#checkWhole(f, t, start, end);
        continue;
      }
      const want = [...f.dims];
      want[f.axis] = f.perRow * rows;
      if (t.dtype !== f.dtype || t.dims.length !== want.length || t.dims.some((d, i) => d !== want[i])) {
        throw new DrillError(OutputErrorCode.SHAPE, `output ${n}: expected [${want.join(', ')}] ${f.dtype} for ${rows} rows along axis ${f.axis}, received [${t.dims.join(', ')}] ${t.dtype} (an output whose size depends on the data cannot be stitched from several units: run the job as one unit with --unit-rows ${this.#rows})`, { output: n });
      }
    }
    for (const n of this.#names) {
      const f = this.#files.get(n)!;
      const t = result[n]!;
      if (f.axis === null) {
        if (f.whole) continue; // every later unit only had to agree with the first
        const bytes = tensorBytes(t);
        f.whole = { dtype: t.dtype, dims: [...t.dims], data: typedView(t.dtype, bytes.slice()) };
        await f.fh.write(bytes, 0, bytes.length, f.dataOffset);
        continue;
      }
      const file = axisSlab(f.dims, f.axis, BYTES_PER_ELEMENT[f.dtype], start * f.perRow, end * f.perRow);
      const src = tensorBytes(t);
      for (let i = 0; i < file.count; i++) await f.fh.write(src, i * file.length, file.length, f.dataOffset + file.offset + i * file.stride);
    }
  }

  /** An output without a batch axis: the first unit's must fit its file, later ones must agree with it. */
  #checkWhole(f: OutFile, t: HostTensor, start: number, end: number): void {
    if (!f.whole) {
      if (t.dtype !== f.dtype || elementCount(t.dims) !== elementCount(f.dims)) {
        throw new DrillError(OutputErrorCode.SHAPE, `output ${f.name}: expected [${f.dims.join(', ')}] ${f.dtype}, received [${t.dims.join(', ')}] ${t.dtype}`, { output: f.name });
      }
      return;
    }
    if (!tensorsAgree(this.#policy, f.whole, t)) {
      throw new DrillError(
        OutputErrorCode.UNBATCHED,
        `output ${f.name} has no batch axis, so every unit must give the same value, but rows [${start}, ${end}) gave a different one under ${formatPolicy(this.#policy)} (if it does grow with the rows, give its axis with --batch-axis ${f.name}=AXIS)`,
        { output: f.name },
      );
    }
  }

  /** All rows written: close and move the files into place. Returns the final paths. */
  async finish(): Promise<Record<string, string>> {
    for (const f of this.#files.values()) {
      await f.fh.sync();
      await f.fh.close();
      await rename(`${f.path}.partial`, f.path);
    }
    this.#files.clear();
    return this.paths();
  }

  /** The job failed: close and delete the partial files (nothing half-written stays behind). */
  async abort(): Promise<void> {
    for (const f of this.#files.values()) {
      await f.fh.close().catch(() => undefined);
      await rm(`${f.path}.partial`, { force: true });
    }
    this.#files.clear();
  }
}
