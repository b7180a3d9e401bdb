/**
 * Streams a job's accepted unit results to `DIR/<output>.npy` in input order while units finish
 * in any order: each output file is laid out once the first result shows the per-row shape, and
 * every unit's rows are written at their final offset (positional writes), so memory holds only
 * in-flight results, never the job. Files are written as `<name>.npy.partial` and renamed only
 * when every row is in — nothing half-written looks complete.
 */
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DrillError } from '../util/errors.ts';
import type { Dtype, HostTensor } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, elementCount, tensorBytes } from '../util/tensor.ts';
import { encodeNpyHeader } from '../util/npy.ts';
import { outputFileName } from './job.ts';

interface OutFile {
  name: string;
  path: string;
  fh: FileHandle;
  dtype: Dtype;
  rowDims: number[];
  rowBytes: number;
  dataOffset: number;
}

export interface OutputLayout {
  name: string;
  dtype: Dtype;
  rowDims: number[];
}

export class OutputAssembler {
  readonly #dir: string;
  readonly #rows: number;
  readonly #names: string[];
  readonly #files = new Map<string, OutFile>();
  #opening: Promise<void> | null = null;

  constructor(dir: string, rows: number, outputNames: string[]) {
    this.#dir = dir;
    this.#rows = rows;
    this.#names = outputNames;
  }

  /** Final paths of the outputs, by output name. */
  paths(): Record<string, string> {
    return Object.fromEntries(this.#names.map((n) => [n, join(this.#dir, outputFileName(n))]));
  }

  /** The layout once known (for a resumed job's store). */
  layout(): OutputLayout[] {
    return [...this.#files.values()].map((f) => ({ name: f.name, dtype: f.dtype, rowDims: f.rowDims }));
  }

  /** Reopen partial files of a resumed job (layout from its store). */
  async resume(layout: OutputLayout[]): Promise<void> {
    for (const l of layout) await this.#openFile(l.name, l.dtype, l.rowDims, false);
  }

  async #openFile(name: string, dtype: Dtype, rowDims: number[], create: boolean): Promise<void> {
    const path = join(this.#dir, outputFileName(name));
    const header = encodeNpyHeader(dtype, [this.#rows, ...rowDims]);
    const fh = await open(`${path}.partial`, create ? 'w+' : 'r+');
    if (create) await fh.write(header, 0, header.length, 0);
    const rowBytes = elementCount(rowDims) * BYTES_PER_ELEMENT[dtype];
    if (create) await fh.truncate(header.length + rowBytes * this.#rows);
    this.#files.set(name, { name, path, fh, dtype, rowDims, rowBytes, dataOffset: header.length });
  }

  /**
   * Write the rows [start, end) of every output.
   * @throws DrillError OUTPUT_SHAPE when a result does not have `end − start` rows or its row
   *   shape / dtype differs from the first result's.
   */
  async write(start: number, end: number, result: Record<string, HostTensor>): Promise<void> {
    const rows = end - start;
    // Check the whole result before any file is created or sized: a result that does not fit
    // must not lay out (and truncate to) output files.
    for (const n of this.#names) {
      const t = result[n];
      if (!t) throw new DrillError('OUTPUT_SHAPE', `result lacks output ${JSON.stringify(n)}`);
      if (t.dims[0] !== rows) {
        throw new DrillError('OUTPUT_SHAPE', `output ${n}: expected ${rows} rows along axis 0, received [${t.dims.join(', ')}] (outputs must keep the batch dimension first)`, { output: n });
      }
    }
    if (this.#files.size === 0) {
      this.#opening ??= (async () => {
        for (const n of this.#names) {
          const t = result[n]!;
          await this.#openFile(n, t.dtype, t.dims.slice(1), true);
        }
      })();
      await this.#opening;
    } else if (this.#opening) await this.#opening;
    for (const n of this.#names) {
      const f = this.#files.get(n)!;
      const t = result[n]!;
      if (t.dtype !== f.dtype || elementCount(t.dims.slice(1)) * BYTES_PER_ELEMENT[t.dtype] !== f.rowBytes) {
        throw new DrillError('OUTPUT_SHAPE', `output ${n}: expected ${rows} rows of [${f.rowDims.join(', ')}] ${f.dtype} along axis 0, received [${t.dims.join(', ')}] ${t.dtype} (outputs must keep the batch dimension first)`, { output: n });
      }
    }
    for (const n of this.#names) {
      const f = this.#files.get(n)!;
      const bytes = tensorBytes(result[n]!);
      await f.fh.write(bytes, 0, bytes.length, f.dataOffset + start * f.rowBytes);
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
