/**
 * The coordinator's result spool, for workers on its filesystem (co-located: an embedded grid,
 * a cluster with a shared filesystem). Instead of sending a unit's result through libp2p —
 * encrypted, framed and copied on both ends' main threads — such a worker writes the tensor frame
 * into a file the coordinator named in the lease (in its thread pool, off the main thread), and
 * reveals only its salt; the coordinator reads the file. The coordinator chooses every name, so
 * it only ever reads files in its own spool folder, and each file is read once and deleted.
 *
 * Name: `<16 hex of sha256(job)>-<32 hex of sha256(lease)>.res` (RESULT_SPOOL_NAME), so a
 * job's leftovers (results never revealed) are found and removed when the job ends.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { DrillError } from '../util/errors.ts';
import { decodeTensors } from '../protocol/tensors.ts';
import { MAX_UNIT_BYTES } from '../protocol/grid.ts';
import type { HostTensor } from '../util/tensor.ts';

const hex = (s: string, n: number): string => createHash('sha256').update(s).digest('hex').slice(0, n);

export class ResultSpool {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Create the folder, emptied of an earlier run's files. */
  async start(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** The file a lease's result is written to. */
  pathFor(job: string, lease: string): string {
    return join(this.dir, `${hex(job, 16)}-${hex(lease, 32)}.res`);
  }

  /**
   * Read a spooled result (and delete its file).
   * @throws DrillError SPOOL_MISSING when there is no such regular file; CODEC_TENSORS for a
   *   malformed frame; SPOOL_TOO_LARGE past the unit result limit.
   */
  async take(job: string, lease: string): Promise<Record<string, HostTensor>> {
    const path = this.pathFor(job, lease);
    let fh;
    try {
      fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    } catch (e) {
      throw new DrillError('SPOOL_MISSING', `no spooled result for lease ${lease} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new DrillError('SPOOL_MISSING', `spooled result for lease ${lease} is not a regular file`);
      if (st.size > MAX_UNIT_BYTES) throw new DrillError('SPOOL_TOO_LARGE', `spooled result of ${st.size} bytes is over the ${MAX_UNIT_BYTES}-byte unit limit`);
      const buf = new Uint8Array(st.size);
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return decodeTensors(buf.subarray(0, off));
    } finally {
      await fh.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
    }
  }

  /** Remove a job's leftover files (results never revealed). */
  async dropJob(job: string): Promise<void> {
    const prefix = `${hex(job, 16)}-`;
    const names = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(names.filter((n) => n.startsWith(prefix)).map((n) => rm(join(this.dir, n), { force: true }).catch(() => undefined)));
  }

  async stop(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
