/**
 * The libp2p intake's wire messages (versioned JSON, every field schema-checked on decode, on
 * both sides: the coordinator decodes what partners send, `drill submit` what the coordinator
 * answers).
 *
 * request `/matrix-drill/intake/begin/1`    {files: [{role, name, bytes}]} → {upload, bytesLeft, chunkBytes}
 * request `/matrix-drill/intake/chunk/1`    u32be headLength ‖ {upload, file, offset} ‖ ≤ 4 MiB of bytes
 *                                           → {received}: written at its offset, on disk
 * request `/matrix-drill/intake/submit/1`   {upload, name?, replicas?, audit?, unitRows?, policy?, batchAxes?, broadcast?} → {job, rows, units, unitRows}
 * request `/matrix-drill/intake/job/1`      {job, seen} → status; long poll: answers when more than
 *                                           `seen` units are done, the job ends, or after POLL_MS
 * request `/matrix-drill/intake/output/1`   {job, file, offset} → u64be fileSize ‖ up to 4 MiB from offset
 * request `/matrix-drill/intake/cancel/1`   {job} → status
 * request `/matrix-drill/intake/release/1`  {job} → {ok}: outputs fetched, free the job's files
 *
 * Refusals are error frames carrying the intake's codes (errors.ts) or USER_INPUT.
 */
import { jsonCodec } from '../../net/topics.ts';
import { DrillError } from '../../util/errors.ts';
import type { JobReport, WorkerReport } from '../report.ts';
import type { Progress } from '../scheduler.ts';
import type { IntakeJobStatus } from './core.ts';
import type { UploadFileDecl } from './upload.ts';

export const INTAKE_PROTOCOL = {
  begin: '/matrix-drill/intake/begin/1',
  chunk: '/matrix-drill/intake/chunk/1',
  submit: '/matrix-drill/intake/submit/1',
  job: '/matrix-drill/intake/job/1',
  output: '/matrix-drill/intake/output/1',
  cancel: '/matrix-drill/intake/cancel/1',
  release: '/matrix-drill/intake/release/1',
} as const;

/** Largest upload chunk: big enough to stream at disk speed, small enough to bound what each request buffers. */
export const CHUNK_BYTES = 4 * 1024 * 1024;
/** Room for a chunk's JSON head. */
export const CHUNK_HEAD_BYTES = 1024;
/** Control messages (begin, submit, queries) are small. */
export const MAX_INTAKE_CONTROL_BYTES = 64 * 1024;
/** Long-poll bound: a client hears from a quiet job at least this often (and can time out). */
export const POLL_MS = 10_000;
/** Output chunk size (as upload chunks). */
export const OUTPUT_CHUNK_BYTES = 4 * 1024 * 1024;
/** A status carries a report; a report lists every worker that ran a unit of the job (~300 B each). */
export const MAX_STATUS_BYTES = 4 * 1024 * 1024;

type Obj = Record<string, unknown>;
function obj(raw: unknown, what: string): Obj {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${what}: expected an object`);
  return raw as Obj;
}
function str(o: Obj, k: string, max = 256, optional = false): string {
  const v = o[k];
  if (optional && v === undefined) return undefined as unknown as string;
  if (typeof v !== 'string' || v.length > max) throw new Error(`${k}: expected a string of at most ${max} characters`);
  return v;
}
function int(o: Obj, k: string, optional = false): number {
  const v = o[k];
  if (optional && v === undefined) return undefined as unknown as number;
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error(`${k}: expected a non-negative integer, received ${JSON.stringify(v)?.slice(0, 40)}`);
  return v as number;
}
function num(o: Obj, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${k}: expected a non-negative number`);
  return v;
}
function bool(o: Obj, k: string): boolean {
  if (typeof o[k] !== 'boolean') throw new Error(`${k}: expected a boolean`);
  return o[k] as boolean;
}
function opt<T>(o: Obj, k: string, f: () => T): { [x: string]: T } {
  return o[k] === undefined ? {} : { [k]: f() };
}

export const beginCodec = jsonCodec<{ files: UploadFileDecl[] }>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw, 'begin');
    if (!Array.isArray(o.files) || o.files.length < 2 || o.files.length > 65) throw new Error('files: expected a model and 1..64 inputs');
    return {
      files: o.files.map((f) => {
        const x = obj(f, 'files[]');
        if (x.role !== 'model' && x.role !== 'input') throw new Error('files[].role: expected model or input');
        return { role: x.role, name: str(x, 'name'), bytes: int(x, 'bytes') };
      }),
    };
  },
});

export interface BeginReply {
  upload: string;
  bytesLeft: number;
  chunkBytes: number;
}
export const beginReplyCodec = jsonCodec<BeginReply>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw, 'begin reply');
    return { upload: str(o, 'upload', 128), bytesLeft: int(o, 'bytesLeft'), chunkBytes: Math.min(CHUNK_BYTES, Math.max(1, int(o, 'chunkBytes'))) };
  },
});

export interface ChunkHead {
  upload: string;
  file: number;
  offset: number;
}
const chunkHeadCodec = jsonCodec<ChunkHead>({
  version: 1,
  maxBytes: CHUNK_HEAD_BYTES,
  check: (raw) => {
    const o = obj(raw, 'chunk');
    return { upload: str(o, 'upload', 128), file: int(o, 'file'), offset: int(o, 'offset') };
  },
});

/** u32be headLength ‖ head JSON ‖ bytes. */
export function encodeChunk(head: ChunkHead, bytes: Uint8Array): Uint8Array {
  const h = chunkHeadCodec.encode(head);
  const out = new Uint8Array(4 + h.length + bytes.length);
  new DataView(out.buffer).setUint32(0, h.length, false);
  out.set(h, 4);
  out.set(bytes, 4 + h.length);
  return out;
}

/** @throws DrillError CODEC_MALFORMED; NetError CODEC_* for a bad head. */
export function decodeChunk(req: Uint8Array): { head: ChunkHead; bytes: Uint8Array } {
  if (req.length < 4) throw new DrillError('CODEC_MALFORMED', 'chunk: shorter than its length prefix');
  const hlen = new DataView(req.buffer, req.byteOffset, 4).getUint32(0, false);
  if (hlen > CHUNK_HEAD_BYTES || 4 + hlen > req.length) throw new DrillError('CODEC_MALFORMED', `chunk: head length ${hlen} out of range`);
  const bytes = req.subarray(4 + hlen);
  if (bytes.length > CHUNK_BYTES) throw new DrillError('CODEC_MALFORMED', `chunk: expected at most ${CHUNK_BYTES} bytes, received ${bytes.length}`);
  return { head: chunkHeadCodec.decode(req.subarray(4, 4 + hlen)), bytes };
}

export const chunkReplyCodec = jsonCodec<{ received: number }>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => ({ received: int(obj(raw, 'chunk reply'), 'received') }),
});

export interface SubmitRequest {
  upload: string;
  name?: string;
  replicas?: number;
  audit?: number;
  unitRows?: number;
  policy?: string;
  /** Input/output name → batch axis (as `--batch-axis`). */
  batchAxes?: Record<string, number>;
  /** Inputs sent whole / outputs taken whole (as `--broadcast`). */
  broadcast?: string[];
}

/** Names a submit may set a batch axis or broadcast for: far above any model's inputs and outputs. */
const MAX_BATCH_NAMES = 256;
/** Largest batch axis a submit may name: ONNX tensors have far fewer dims. */
const MAX_BATCH_AXIS = 64;

function batchAxesOf(raw: unknown): Record<string, number> {
  const o = obj(raw, 'batchAxes');
  const names = Object.keys(o);
  if (names.length > MAX_BATCH_NAMES) throw new Error(`batchAxes: expected at most ${MAX_BATCH_NAMES} names`);
  const out: Record<string, number> = {};
  for (const k of names) {
    const v = o[k];
    if (k.length === 0 || k.length > 256 || !Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > MAX_BATCH_AXIS) throw new Error(`batchAxes: expected {name: axis 0..${MAX_BATCH_AXIS}}`);
    out[k] = v as number;
  }
  return out;
}

function broadcastOf(raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length > MAX_BATCH_NAMES || !raw.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 256)) throw new Error('broadcast: expected a list of names');
  return raw as string[];
}
export const submitCodec = jsonCodec<SubmitRequest>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw, 'submit');
    return {
      upload: str(o, 'upload', 128),
      ...opt(o, 'name', () => str(o, 'name')),
      ...opt(o, 'replicas', () => int(o, 'replicas')),
      ...opt(o, 'audit', () => num(o, 'audit')),
      ...opt(o, 'unitRows', () => int(o, 'unitRows')),
      ...opt(o, 'policy', () => str(o, 'policy')),
      ...opt(o, 'batchAxes', () => batchAxesOf(o.batchAxes)),
      ...opt(o, 'broadcast', () => broadcastOf(o.broadcast)),
    };
  },
});

export interface SubmitReply {
  job: string;
  rows: number;
  units: number;
  unitRows: number;
}
export const submitReplyCodec = jsonCodec<SubmitReply>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw, 'submit reply');
    return { job: str(o, 'job', 128), rows: int(o, 'rows'), units: int(o, 'units'), unitRows: int(o, 'unitRows') };
  },
});

export const jobQueryCodec = jsonCodec<{ job: string; seen: number }>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw, 'job query');
    return { job: str(o, 'job', 128), seen: int(o, 'seen') };
  },
});

export const jobRefCodec = jsonCodec<{ job: string }>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => ({ job: str(obj(raw, 'job ref'), 'job', 128) }),
});

export const okCodec = jsonCodec<{ ok: boolean }>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => ({ ok: bool(obj(raw, 'reply'), 'ok') }),
});

export const outputQueryCodec = jsonCodec<{ job: string; file: string; offset: number }>({
  version: 1,
  maxBytes: MAX_INTAKE_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw, 'output query');
    return { job: str(o, 'job', 128), file: str(o, 'file'), offset: int(o, 'offset') };
  },
});

/** u64be fileSize ‖ bytes. */
export function encodeOutputChunk(size: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + bytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(size), false);
  out.set(bytes, 8);
  return out;
}
/** @throws DrillError CODEC_MALFORMED */
export function decodeOutputChunk(b: Uint8Array): { size: number; bytes: Uint8Array } {
  if (b.length < 8) throw new DrillError('CODEC_MALFORMED', 'output chunk: shorter than its size prefix');
  const size = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, false);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new DrillError('CODEC_MALFORMED', 'output chunk: size out of range');
  return { size: Number(size), bytes: b.subarray(8) };
}

// ------------------------------------------------------------------------------ job status

const PROGRESS_KEYS = ['total', 'done', 'agreed', 'disputed', 'failed', 'unverified', 'unaudited', 'audited', 'inflight', 'reissued', 'reopened', 'rowsDone', 'rowsUnchecked', 'quarantined'] as const;
function checkProgress(raw: unknown): Progress {
  const o = obj(raw, 'progress');
  return Object.fromEntries(PROGRESS_KEYS.map((k) => [k, int(o, k)])) as unknown as Progress;
}

function checkWorker(raw: unknown): WorkerReport {
  const o = obj(raw, 'workers[]');
  return {
    peer: str(o, 'peer', 128), cheater: bool(o, 'cheater'), credit: num(o, 'credit'), unitsAgreed: int(o, 'unitsAgreed'), unitsFaulty: int(o, 'unitsFaulty'),
    unitsRun: int(o, 'unitsRun'), threads: int(o, 'threads'), device: str(o, 'device', 64), profile: str(o, 'profile', 4096),
    quarantined: bool(o, 'quarantined'),
    faultReasons: (() => {
      const r = o.faultReasons;
      if (!Array.isArray(r) || r.length > 64 || !r.every((x) => typeof x === 'string' && x.length <= 64)) throw new Error('workers[].faultReasons: expected a list of reasons');
      return r as string[];
    })(),
  };
}

/** A list of short notes (absent in reports from coordinators before notes existed: []). */
function notesOf(raw: unknown, what: string): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.length > 256 || !raw.every((x) => typeof x === 'string' && x.length <= 4096)) throw new Error(`${what}: expected a list of notes`);
  return raw as string[];
}

/** report.batching: which inputs were split on which axis, where outputs were stitched. */
function checkBatching(raw: unknown): JobReport['batching'] {
  if (raw === undefined) return { inputs: {}, outputs: {}, notes: [] };
  const b = obj(raw, 'report.batching');
  const axisOf = (x: Obj, k: string): number | null => {
    if (x[k] === null) return null;
    const v = x[k];
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error(`report.batching: ${k} expected an axis or null`);
    return v as number;
  };
  const side = <K extends 'split' | 'stitched'>(raw2: unknown, flag: K, what: string): Record<string, { [P in K]: boolean } & { axis: number | null }> => {
    const o = obj(raw2, what);
    if (Object.keys(o).length > MAX_BATCH_NAMES) throw new Error(`${what}: expected at most ${MAX_BATCH_NAMES} names`);
    return Object.fromEntries(Object.keys(o).map((k) => {
      const e = obj(o[k], `${what}.${k}`);
      return [k, { [flag]: bool(e, flag), axis: axisOf(e, 'axis') } as { [P in K]: boolean } & { axis: number | null }];
    }));
  };
  return { inputs: side(b.inputs, 'split', 'report.batching.inputs'), outputs: side(b.outputs, 'stitched', 'report.batching.outputs'), notes: notesOf(b.notes, 'report.batching.notes') };
}

/** @throws Error naming the field (a malformed report from the coordinator). */
export function checkReport(raw: unknown): JobReport {
  const o = obj(raw, 'report');
  if (o.status !== 'done' && o.status !== 'failed') throw new Error('report.status: expected done or failed');
  const m = obj(o.model, 'report.model');
  const u = obj(o.units, 'report.units');
  const outs = obj(o.outputs, 'report.outputs');
  if (!Array.isArray(o.workers) || o.workers.length > 10_000) throw new Error('report.workers: expected a list');
  if (Object.keys(outs).length > 64) throw new Error('report.outputs: expected at most 64 outputs');
  return {
    job: str(o, 'job', 128), name: str(o, 'name'), status: o.status, ...opt(o, 'error', () => str(o, 'error', 4096)),
    model: { path: str(m, 'path', 4096), sha256: str(m, 'sha256', 64), flopsPerRow: num(m, 'flopsPerRow'), costNotes: notesOf(m.costNotes, 'report.model.costNotes') },
    rows: int(o, 'rows'), unitRows: int(o, 'unitRows'), replicas: int(o, 'replicas'), policy: str(o, 'policy'),
    batching: checkBatching(o.batching),
    units: {
      total: int(u, 'total'), agreed: int(u, 'agreed'), disputed: int(u, 'disputed'), failed: int(u, 'failed'), unverified: int(u, 'unverified'), reissued: int(u, 'reissued'),
      audited: int(u, 'audited'), unaudited: int(u, 'unaudited'), reopened: int(u, 'reopened'),
    },
    audit: num(o, 'audit'), rowsUnchecked: int(o, 'rowsUnchecked'),
    workers: o.workers.map(checkWorker), totalCredit: num(o, 'totalCredit'), elapsedMs: num(o, 'elapsedMs'), rowsPerSecond: num(o, 'rowsPerSecond'),
    outputs: Object.fromEntries(Object.keys(outs).map((k) => [k, str(outs, k, 4096)])), creditRecords: int(o, 'creditRecords'),
  } as JobReport;
}

export const jobStatusCodec = jsonCodec<IntakeJobStatus>({
  version: 1,
  maxBytes: MAX_STATUS_BYTES,
  check: (raw) => {
    const o = obj(raw, 'status');
    if (o.status !== 'running' && o.status !== 'done' && o.status !== 'failed') throw new Error('status: expected running, done or failed');
    if (!Array.isArray(o.files) || o.files.length > 65 || !o.files.every((f) => typeof f === 'string' && f.length <= 256)) throw new Error('files: expected a list of file names');
    return {
      job: str(o, 'job', 128), partner: str(o, 'partner', 128), name: str(o, 'name'), ...opt(o, 'rows', () => int(o, 'rows')), status: o.status, ...opt(o, 'error', () => str(o, 'error', 4096)),
      cancelled: bool(o, 'cancelled'), ...opt(o, 'progress', () => checkProgress(o.progress)), ...opt(o, 'report', () => checkReport(o.report)),
      createdAt: int(o, 'createdAt'), ...opt(o, 'finishedAt', () => int(o, 'finishedAt')), files: o.files as string[], freed: bool(o, 'freed'),
    } as IntakeJobStatus;
  },
});
