/**
 * Remote job intake: lets `drill submit` hand a job to a running coordinator over libp2p and
 * follow it to the end.
 *
 * request `/matrix-drill/grid/submit/1`  u32be jsonLength ‖ JSON {name?, replicas?, unitRows?,
 *          policy?, batchAxes?, broadcast?, files: [{role: 'model'|'input', name, bytes}]} ‖ the
 *          files' bytes in order (the model self-contained: external data is refused here, the
 *          client inlines it)
 *          → JSON {ok, job} or {ok: false, error} (the same clear messages `drill run` prints)
 * request `/matrix-drill/grid/job/1`     {job, seen} → long-poll: answers when more than `seen`
 *          units are done, when the job ends, or after POLL_MS → {status, progress, report?}
 * request `/matrix-drill/grid/output/1`  {job, file, offset} → a chunk of an output file
 *          (`<output>.npy` or `report.json`) — outputs stream back without loading them whole.
 * Uploaded jobs live in `<dataDir>/jobs/<id>/`.
 */
import { mkdir, writeFile, open, stat } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DrillNode } from '../net/node.ts';
import { jsonCodec } from '../net/topics.ts';
import { DrillError, isDrillError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import type { Coordinator, JobHandle, JobReport } from './service.ts';
import type { Progress } from './scheduler.ts';
import { prepareJob, outputFileName } from './job.ts';

export const INTAKE_PROTOCOL = {
  submit: '/matrix-drill/grid/submit/1',
  job: '/matrix-drill/grid/job/1',
  output: '/matrix-drill/grid/output/1',
} as const;

/**
 * Largest upload (model + inputs) accepted in one submit: 1 GiB. The upload is buffered in
 * memory once on each side; bigger jobs should be split or use a shared filesystem (docs).
 */
export const MAX_SUBMIT_BYTES = 1024 * 1024 * 1024;
/** Long-poll bound: a client hears from a quiet job at least this often (and can time out). */
export const POLL_MS = 10_000;
/** Output chunk size: large enough to stream at disk speed, small enough to bound buffers. */
export const OUTPUT_CHUNK_BYTES = 4 * 1024 * 1024;

type Obj = Record<string, unknown>;
const obj = (r: unknown): Obj => {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error('expected an object');
  return r as Obj;
};
const optInt = (o: Obj, k: string): number | undefined => {
  if (o[k] === undefined) return undefined;
  if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) throw new Error(`${k}: expected a non-negative integer`);
  return o[k] as number;
};
const optStr = (o: Obj, k: string): string | undefined => {
  if (o[k] === undefined) return undefined;
  if (typeof o[k] !== 'string' || (o[k] as string).length > 256) throw new Error(`${k}: expected a string`);
  return o[k] as string;
};

export interface SubmitFile {
  role: 'model' | 'input';
  name: string;
  bytes: number;
}
export interface SubmitHead {
  name?: string;
  replicas?: number;
  unitRows?: number;
  policy?: string;
  /** Input/output name → batch axis (as `--batch-axis`). */
  batchAxes?: Record<string, number>;
  /** Inputs sent whole / outputs taken whole (as `--broadcast`). */
  broadcast?: string[];
  files: SubmitFile[];
}
export const submitHeadCodec = jsonCodec<SubmitHead>({
  version: 1,
  maxBytes: 64 * 1024,
  check: (raw) => {
    const o = obj(raw);
    if (!Array.isArray(o.files) || o.files.length < 2 || o.files.length > 256) throw new Error('files: expected a model and inputs');
    const files = o.files.map((f) => {
      const x = obj(f);
      if (x.role !== 'model' && x.role !== 'input') throw new Error('files[].role: expected model|input');
      if (typeof x.name !== 'string' || x.name.length === 0 || x.name.length > 256) throw new Error('files[].name');
      if (!Number.isSafeInteger(x.bytes) || (x.bytes as number) < 0) throw new Error('files[].bytes');
      return { role: x.role, name: x.name, bytes: x.bytes as number } as SubmitFile;
    });
    if (files.filter((f) => f.role === 'model').length !== 1) throw new Error('files: expected exactly one model');
    let batchAxes: Record<string, number> | undefined;
    if (o.batchAxes !== undefined) {
      const b = obj(o.batchAxes);
      if (Object.keys(b).length > 256) throw new Error('batchAxes: expected at most 256 names');
      batchAxes = {};
      for (const [k, v] of Object.entries(b)) {
        if (k.length === 0 || k.length > 256 || !Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > 64) throw new Error('batchAxes: expected {name: axis 0..64}');
        batchAxes[k] = v as number;
      }
    }
    let broadcast: string[] | undefined;
    if (o.broadcast !== undefined) {
      if (!Array.isArray(o.broadcast) || o.broadcast.length > 256 || !o.broadcast.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 256)) throw new Error('broadcast: expected a list of names');
      broadcast = o.broadcast as string[];
    }
    return { name: optStr(o, 'name'), replicas: optInt(o, 'replicas'), unitRows: optInt(o, 'unitRows'), policy: optStr(o, 'policy'), ...(batchAxes ? { batchAxes } : {}), ...(broadcast ? { broadcast } : {}), files };
  },
});
export type SubmitReply = { ok: true; job: string; rows: number; units: number } | { ok: false; error: string };
export const submitReplyCodec = jsonCodec<SubmitReply>({
  version: 1,
  check: (raw) => {
    const o = obj(raw);
    return o.ok === true ? { ok: true, job: String(o.job), rows: Number(o.rows), units: Number(o.units) } : { ok: false, error: String(o.error) };
  },
});
export interface JobQuery {
  job: string;
  seen: number;
}
export const jobQueryCodec = jsonCodec<JobQuery>({
  version: 1,
  check: (raw) => {
    const o = obj(raw);
    return { job: String(optStr(o, 'job') ?? ''), seen: optInt(o, 'seen') ?? 0 };
  },
});
export interface JobStatusReply {
  status: 'running' | 'done' | 'failed' | 'unknown';
  progress?: Progress;
  report?: JobReport;
}
export const jobStatusCodec = jsonCodec<JobStatusReply>({ version: 1, check: (raw) => obj(raw) as unknown as JobStatusReply });
export interface OutputQuery {
  job: string;
  file: string;
  offset: number;
}
export const outputQueryCodec = jsonCodec<OutputQuery>({
  version: 1,
  check: (raw) => {
    const o = obj(raw);
    return { job: String(optStr(o, 'job') ?? ''), file: String(optStr(o, 'file') ?? ''), offset: optInt(o, 'offset') ?? 0 };
  },
});

/** Frame helpers: u32be length ‖ head ‖ rest. */
export function frameWithHead(head: Uint8Array, parts: Uint8Array[]): Uint8Array {
  const total = 4 + head.length + parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, head.length, false);
  out.set(head, 4);
  let off = 4 + head.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export class JobIntake {
  readonly #node: DrillNode;
  readonly #coord: Coordinator;
  readonly #dir: string;
  readonly #log: Logger;
  readonly #jobs = new Map<string, { handle: JobHandle; report?: JobReport; outDir: string }>();

  constructor(node: DrillNode, coordinator: Coordinator, dataDir: string, logger: Logger = silentLogger) {
    this.#node = node;
    this.#coord = coordinator;
    this.#dir = join(dataDir, 'jobs');
    this.#log = logger.child('intake');
  }

  async start(): Promise<void> {
    // Jobs the coordinator resumed after a restart can be followed again by their id.
    for (const handle of this.#coord.resumedJobs()) this.#track(handle);
    await this.#node.handle(INTAKE_PROTOCOL.submit, (req, from) => this.#onSubmit(req, from), { maxRequestBytes: MAX_SUBMIT_BYTES });
    await this.#node.handle(INTAKE_PROTOCOL.job, (req) => this.#onJob(req));
    await this.#node.handle(INTAKE_PROTOCOL.output, (req) => this.#onOutput(req));
  }

  async stop(): Promise<void> {
    for (const p of Object.values(INTAKE_PROTOCOL)) await this.#node.unhandle(p).catch(() => undefined);
  }

  async #onSubmit(req: Uint8Array, from: string): Promise<Uint8Array> {
    try {
      if (req.length < 4) throw new DrillError('CODEC_MALFORMED', 'submit: shorter than its length prefix');
      const hlen = new DataView(req.buffer, req.byteOffset, 4).getUint32(0, false);
      if (4 + hlen > req.length) throw new DrillError('CODEC_MALFORMED', 'submit: header length out of range');
      const head = submitHeadCodec.decode(req.subarray(4, 4 + hlen));
      const total = head.files.reduce((a, f) => a + f.bytes, 0);
      if (4 + hlen + total !== req.length) throw new DrillError('CODEC_MALFORMED', `submit: files announce ${total} bytes, ${req.length - 4 - hlen} arrived`);
      const id = `upload-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      const dir = join(this.#dir, id);
      await mkdir(join(dir, 'inputs'), { recursive: true });
      let off = 4 + hlen;
      let model = '';
      const inputs: Record<string, string> = {};
      for (const f of head.files) {
        const bytes = req.subarray(off, off + f.bytes);
        off += f.bytes;
        const path = f.role === 'model' ? join(dir, 'model.onnx') : join(dir, 'inputs', outputFileName(f.name));
        await writeFile(path, bytes);
        if (f.role === 'model') model = path;
        else inputs[f.name] = path;
      }
      const spec = await prepareJob({
        model, inputs, outDir: join(dir, 'out'), workDir: dir, allowExternalData: false,
        replicas: head.replicas, unitRows: head.unitRows, policy: head.policy, name: head.name, batchAxes: head.batchAxes, broadcast: head.broadcast,
      });
      const handle = await this.#coord.submit(spec);
      this.#track(handle);
      this.#log.info('job submitted remotely', { job: spec.id, from, rows: spec.rows });
      return submitReplyCodec.encode({ ok: true, job: spec.id, rows: spec.rows, units: handle.progress().total });
    } catch (e) {
      if (isDrillError(e)) return submitReplyCodec.encode({ ok: false, error: e.message });
      throw e;
    }
  }

  #track(handle: JobHandle): void {
    const entry: { handle: JobHandle; report?: JobReport; outDir: string } = { handle, outDir: handle.spec.outDir };
    this.#jobs.set(handle.id, entry);
    void handle.result.then((r) => (entry.report = r));
  }

  async #onJob(req: Uint8Array): Promise<Uint8Array> {
    const q = jobQueryCodec.decode(req);
    const j = this.#jobs.get(q.job);
    if (!j) return jobStatusCodec.encode({ status: 'unknown' });
    if (!j.report && j.handle.progress().done <= q.seen) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(finish, POLL_MS);
        function finish(): void {
          clearTimeout(t);
          j!.handle.events.off('progress', finish);
          j!.handle.events.off('done', finish);
          resolve();
        }
        j.handle.events.on('progress', finish);
        j.handle.events.on('done', finish);
      });
      await Promise.resolve();
    }
    if (j.report) return jobStatusCodec.encode({ status: j.report.status, progress: j.handle.progress(), report: j.report });
    return jobStatusCodec.encode({ status: 'running', progress: j.handle.progress() });
  }

  async #onOutput(req: Uint8Array): Promise<Uint8Array> {
    const q = outputQueryCodec.decode(req);
    const j = this.#jobs.get(q.job);
    if (!j || !j.report || j.report.status !== 'done') throw new DrillError('NO_OUTPUT', `job ${q.job} has no finished outputs`);
    const allowed = new Set(['report.json', ...Object.values(j.report.outputs).map((p) => basename(p))]);
    if (!allowed.has(q.file)) throw new DrillError('NO_OUTPUT', `job ${q.job} has no output file ${JSON.stringify(q.file)}`);
    const path = join(j.outDir, q.file);
    const size = (await stat(path)).size;
    const len = Math.max(0, Math.min(OUTPUT_CHUNK_BYTES, size - q.offset));
    const buf = new Uint8Array(8 + len);
    new DataView(buf.buffer).setBigUint64(0, BigInt(size), false);
    const fh = await open(path, 'r');
    try {
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, 8 + got, len - got, q.offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return buf;
  }
}
