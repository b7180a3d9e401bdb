/**
 * The grid protocol between coordinators and workers.
 *
 * gossip  `matrix-drill/units/1`        coordinator → all: "unit U of job J needs N replicas"
 *                                        (a wake-up hint; the lease itself is a direct request)
 * request `/matrix-drill/grid/hello/1`  worker → coordinator: register (threads, device, score)
 * request `/matrix-drill/grid/claim/1`  worker → coordinator: lease a unit (inputs come back)
 * request `/matrix-drill/grid/commit/1` worker → coordinator: H(worker, lease, salt, result)
 * request `/matrix-drill/grid/reveal/1` coordinator → worker: once every replica of the round
 *                                        committed, pull the result and salt behind a commitment
 * request `/matrix-drill/grid/error/1`  worker → coordinator: the unit could not be run
 * blob    model bytes by sha256 (src/net/blobs.ts)
 *
 * Every message is versioned (`v`) and schema-checked before use; binary payloads are framed
 * as u32be jsonLength ‖ JSON ‖ tensor frame (src/protocol/tensors.ts).
 */
import { jsonCodec } from '../net/topics.ts';
import { DEFAULT_MAX_BLOB_BYTES } from '../net/constants.ts';
import type { TopicSpec } from '../net/topics.ts';
import { DrillError } from '../util/errors.ts';
import type { Dtype, HostTensor } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, DTYPES, elementCount } from '../util/tensor.ts';
import { layoutTensors, layoutTensorSpecs, decodeTensors } from './tensors.ts';
import type { TensorFrameLayout } from './tensors.ts';

export const GRID_VERSION = 1;

export const PROTOCOL = {
  hello: '/matrix-drill/grid/hello/1',
  claim: '/matrix-drill/grid/claim/1',
  commit: '/matrix-drill/grid/commit/1',
  reveal: '/matrix-drill/grid/reveal/1',
  error: '/matrix-drill/grid/error/1',
} as const;

/**
 * Size limits. Units carry input rows: 64 MiB allows e.g. 1,000 rows of 3×224×224 float32
 * (600 KB a row) — far above the default unit size — while bounding what a peer can make us buffer.
 */
export const MAX_UNIT_BYTES = 64 * 1024 * 1024;
export const MAX_CONTROL_BYTES = 64 * 1024;
export const MAX_ANNOUNCE_BYTES = 2 * 1024;
/** Largest model a lease may name: the blob transfer cap (a lease cannot lift a worker's limit). */
export const MAX_MODEL_BYTES = DEFAULT_MAX_BLOB_BYTES;

// ------------------------------------------------------------------------ filesystem probe

/**
 * The same-filesystem probe file a coordinator writes: `matrix-drill-fs-probe/1 <peer id> <token>`.
 * The token proves a worker can read the coordinator's files; the peer id binds that proof to the
 * coordinator that wrote it, so a peer relaying the path (not the file) earns no trust.
 */
export const FS_PROBE_PREFIX = 'matrix-drill-fs-probe/1';
/** A probe file is one short line; a worker reads at most this much of it. */
export const FS_PROBE_MAX_BYTES = 512;

export function formatFsProbe(coordinator: string, token: string): string {
  return `${FS_PROBE_PREFIX} ${coordinator} ${token}\n`;
}

/** The coordinator and token of a probe file's text, or null when malformed. */
export function parseFsProbe(text: string): { coordinator: string; token: string } | null {
  const m = /^matrix-drill-fs-probe\/1 ([1-9A-HJ-NP-Za-km-z]{1,128}) ([0-9a-f]{64})\n?$/.exec(text);
  return m ? { coordinator: m[1]!, token: m[2]! } : null;
}

// ------------------------------------------------------------------------------- schema checks

type Obj = Record<string, unknown>;
function obj(raw: unknown): Obj {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('expected an object');
  return raw as Obj;
}
function s(o: Obj, k: string, max = 256): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new Error(`${k}: expected a string of 1..${max} chars`);
  return v;
}
function n(o: Obj, k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new Error(`${k}: expected a number in [${min}, ${max}]`);
  return v;
}
function int(o: Obj, k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = n(o, k, min, max);
  if (!Number.isInteger(v)) throw new Error(`${k}: expected an integer`);
  return v;
}
function hex(o: Obj, k: string, bytes: number): string {
  const v = s(o, k, bytes * 2);
  if (v.length !== bytes * 2 || !/^[0-9a-f]+$/.test(v)) throw new Error(`${k}: expected ${bytes} bytes of lowercase hex`);
  return v;
}
function bool(o: Obj, k: string): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') throw new Error(`${k}: expected a boolean`);
  return v;
}
function strList(o: Obj, k: string, maxLen = 64): string[] {
  const v = o[k];
  if (!Array.isArray(v) || v.length > maxLen || !v.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 256)) throw new Error(`${k}: expected a list of strings`);
  return v as string[];
}

// ------------------------------------------------------------------------------------ messages

export interface UnitAnnouncement {
  coordinator: string;
  job: string;
  unit: number;
  modelHash: string;
  rows: number;
  flops: number;
  need: number;
  /** Sender's clock (ms): makes each re-announcement distinct bytes, so gossip does not dedupe it. */
  at: number;
}

export const UNITS_TOPIC: TopicSpec<UnitAnnouncement> = {
  name: 'matrix-drill/units/1',
  maxBytes: MAX_ANNOUNCE_BYTES,
  ...jsonCodec<UnitAnnouncement>({
    version: GRID_VERSION,
    maxBytes: MAX_ANNOUNCE_BYTES,
    check: (raw) => {
      const o = obj(raw);
      return { coordinator: s(o, 'coordinator', 128), job: s(o, 'job', 128), unit: int(o, 'unit'), modelHash: hex(o, 'modelHash', 32), rows: int(o, 'rows', 1), flops: int(o, 'flops'), need: int(o, 'need', 1, 64), at: int(o, 'at') };
    },
  }),
  // Only the coordinator itself may announce its units: the signed sender must match.
  validate: (msg, from) => (msg.coordinator === from ? 'accept' : 'reject'),
};

export interface Hello {
  threads: number;
  device: string;
  /** Device Share benchmark score (GFLOP/s): a scheduling hint, never credit. */
  score: number;
  profile: string;
}
export const helloCodec = jsonCodec<Hello>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw);
    return { threads: int(o, 'threads', 1, 1024), device: s(o, 'device', 32), score: n(o, 'score'), profile: s(o, 'profile', 1024) };
  },
});

export interface HelloAck {
  coordinator: string;
  /** Most un-committed leases the coordinator lets this worker hold (backpressure). */
  maxInflight: number;
  /**
   * Absolute path of a file holding a random token the coordinator wrote at start. A worker
   * that can read it shares the coordinator's filesystem: it sends the token back (`fsToken`)
   * and its leases then name the input rows by file and offset instead of carrying the bytes.
   */
  fsProbe?: string;
  /**
   * Absolute path of the coordinator's result spool (with `fsProbe`): a worker on its filesystem
   * writes a unit's result into this folder, at the file its lease names, and its reveal then
   * carries no tensor bytes — the coordinator reads the file (co-located workers; see
   * RESULT_SPOOL_NAME).
   */
  spoolDir?: string;
}
export const helloAckCodec = jsonCodec<HelloAck>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw);
    return {
      coordinator: s(o, 'coordinator', 128), maxInflight: int(o, 'maxInflight', 1, 4096),
      ...(o.fsProbe === undefined ? {} : { fsProbe: s(o, 'fsProbe', 4096) }),
      ...(o.spoolDir === undefined ? {} : { spoolDir: s(o, 'spoolDir', 4096) }),
    };
  },
});

/** A result spool file's name: 16 hex digits of the job's tag, a dash, 32 of the lease's, `.res`. */
export const RESULT_SPOOL_NAME = /^[0-9a-f]{16}-[0-9a-f]{32}\.res$/;

export interface ClaimRequest {
  job?: string;
  unit?: number;
  /** The coordinator's fsProbe token, when this worker could read it (same filesystem). */
  fsToken?: string;
}
export const claimCodec = jsonCodec<ClaimRequest>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw);
    return { job: o.job === undefined ? undefined : s(o, 'job', 128), unit: o.unit === undefined ? undefined : int(o, 'unit'), ...(o.fsToken === undefined ? {} : { fsToken: hex(o, 'fsToken', 32) }) };
  },
});

export interface LeaseInfo {
  lease: string;
  job: string;
  unit: number;
  modelHash: string;
  modelBytes: number;
  outputNames: string[];
  rows: number;
  deadlineMs: number;
  /**
   * Same-filesystem leases: where each input's rows lie (file, byte offset, dtype, dims) — the
   * reply then carries no tensor bytes and the worker reads exactly those bytes itself.
   */
  inputFiles?: Record<string, InputFileRange>;
  /**
   * Same-filesystem leases: the file (in the coordinator's spool folder, named as
   * RESULT_SPOOL_NAME) to write the result into; the reveal then says `spooled`.
   */
  resultSpool?: string;
  /**
   * Where the unit's rows lie in each input (null: sent whole) and each output, when the
   * coordinator knows every output's axis: the worker may then run the unit in chunks of rows
   * (bounded memory) and concatenate the outputs on these axes.
   */
  rowAxes?: RowAxes;
}
/** Each input's batch axis (null: the input is sent whole) and each output's. */
export interface RowAxes {
  inputs: Record<string, number | null>;
  outputs: Record<string, number>;
}
/**
 * Where a unit's tensor lies in a file: `segments` runs (default 1) of equal length, `stride`
 * bytes apart, the first at `offset`, which together hold exactly the tensor's bytes in order.
 * Rows split on axis 0 are one run; on a later axis (a state [2, batch, 128]) one run per index
 * of the axes before it; an input sent whole is one run.
 */
export interface InputFileRange {
  path: string;
  offset: number;
  dtype: Dtype;
  dims: number[];
  segments?: number;
  stride?: number;
}
export type ClaimReply = { ok: true; lease: LeaseInfo; inputs: Record<string, HostTensor> } | { ok: false; reason: 'no-work' | 'not-registered' | 'busy' };

const leaseCodec = jsonCodec<{ ok: true; lease: LeaseInfo } | { ok: false; reason: 'no-work' | 'not-registered' | 'busy' }>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw);
    if (o.ok === false) {
      const r = o.reason;
      if (r !== 'no-work' && r !== 'not-registered' && r !== 'busy') throw new Error('reason: expected no-work|not-registered|busy');
      return { ok: false, reason: r };
    }
    const l = obj(o.lease);
    return {
      ok: true,
      lease: { lease: s(l, 'lease', 256), job: s(l, 'job', 128), unit: int(l, 'unit'), modelHash: hex(l, 'modelHash', 32), modelBytes: int(l, 'modelBytes', 1, MAX_MODEL_BYTES), outputNames: strList(l, 'outputNames'), rows: int(l, 'rows', 1), deadlineMs: int(l, 'deadlineMs', 1), ...(l.inputFiles === undefined ? {} : { inputFiles: inputFiles(l.inputFiles) }), ...(l.resultSpool === undefined ? {} : { resultSpool: s(l, 'resultSpool', 4096) }), ...(l.rowAxes === undefined ? {} : { rowAxes: rowAxes(l.rowAxes) }) },
    };
  },
});

/**
 * Most runs one input's rows may be split into in a same-filesystem lease: the product of the
 * dims before the batch axis (2 for a [2, batch, 128] state, 2·layers for a KV cache). 65536
 * bounds the reads a lease can ask of a worker far above any real layout.
 */
export const MAX_INPUT_SEGMENTS = 65536;

/** A lease's row axes: at most 64 inputs and 64 outputs, each axis 0..15 (null only for inputs). */
function rowAxes(raw: unknown): RowAxes {
  const o = obj(raw);
  const axisMap = (v: unknown, field: string, nullable: boolean): Record<string, number | null> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`rowAxes.${field}: expected an object of axes by name`);
    const m = v as Obj;
    const names = Object.keys(m);
    if (names.length > 64) throw new Error(`rowAxes.${field}: expected at most 64 names`);
    const out: Record<string, number | null> = {};
    for (const n of names) {
      const a = m[n];
      if (a === null && nullable) out[n] = null;
      else if (Number.isSafeInteger(a) && (a as number) >= 0 && (a as number) < 16) out[n] = a as number;
      else throw new Error(`rowAxes.${field}.${n.slice(0, 64)}: expected an axis from 0 to 15${nullable ? ' or null' : ''}`);
    }
    return out;
  };
  return { inputs: axisMap(o.inputs, 'inputs', true), outputs: axisMap(o.outputs, 'outputs', false) as Record<string, number> };
}

function inputFiles(raw: unknown): Record<string, InputFileRange> {
  const o = obj(raw);
  const out: Record<string, InputFileRange> = {};
  const names = Object.keys(o);
  if (names.length === 0 || names.length > 64) throw new Error('inputFiles: expected 1..64 inputs');
  for (const name of names) {
    const f = obj(o[name]);
    const dtype = f.dtype;
    if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype)) throw new Error(`inputFiles.${name}.dtype: expected a tensor dtype`);
    if (!Array.isArray(f.dims) || f.dims.length > 16 || !f.dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw new Error(`inputFiles.${name}.dims: expected a list of sizes`);
    const dims = f.dims as number[];
    const bytes = elementCount(dims) * BYTES_PER_ELEMENT[dtype as Dtype];
    // What a worker allocates for the read: bounded like a lease that carries the bytes.
    if (!(bytes <= MAX_UNIT_BYTES)) throw new Error(`inputFiles.${name}.dims: expected at most ${MAX_UNIT_BYTES} bytes`);
    const range: InputFileRange = { path: s(f, 'path', 4096), offset: int(f, 'offset'), dtype: dtype as Dtype, dims };
    if (f.segments !== undefined || f.stride !== undefined) {
      // Runs must split the tensor's bytes evenly, not overlap, and stay few enough to read one by one.
      const segments = int(f, 'segments', 1, MAX_INPUT_SEGMENTS);
      const stride = int(f, 'stride');
      if (bytes % segments !== 0 || (segments > 1 && stride < bytes / segments)) throw new Error(`inputFiles.${name}: ${segments} segments ${stride} bytes apart do not hold [${dims.join(', ')}] ${dtype}`);
      range.segments = segments;
      range.stride = stride;
    }
    out[name] = range;
  }
  return out;
}


/**
 * Frame: u32be jsonLength ‖ json ‖ binary, built in one allocation (the tensor data are copied
 * once, straight from the caller's arrays). The JSON is padded with spaces (valid JSON
 * whitespace) so the binary part starts 8-byte aligned: a receiver whose buffer starts aligned
 * (a fresh allocation, as framing.ts makes) views the tensors without copying them.
 */
function frame(json: Uint8Array, tensors?: Record<string, HostTensor>, prefix?: Uint8Array): Uint8Array {
  const bin = tensors ? layoutTensors(tensors) : null;
  const { out, binOffset } = frameFor(json, bin, prefix);
  bin?.writeInto(out, binOffset);
  return out;
}

/**
 * Allocate `prefix ‖ u32be jsonLength ‖ json ‖ (room for bin)`. `prefix` must be a whole number
 * of 8-byte words (commitAckPrefix is), so the binary part stays 8-byte aligned.
 */
function frameFor(json: Uint8Array, bin: TensorFrameLayout | null, prefix?: Uint8Array): { out: Uint8Array; binOffset: number } {
  const p = prefix?.length ?? 0;
  const jsonLen = bin ? Math.ceil((4 + json.length) / 8) * 8 - 4 : json.length;
  const out = new Uint8Array(p + 4 + jsonLen + (bin?.byteLength ?? 0));
  if (prefix) out.set(prefix, 0);
  new DataView(out.buffer).setUint32(p, jsonLen, false);
  out.set(json, p + 4);
  out.fill(0x20, p + 4 + json.length, p + 4 + jsonLen);
  return { out, binOffset: p + 4 + jsonLen };
}
function unframe(bytes: Uint8Array): { json: Uint8Array; bin: Uint8Array } {
  if (bytes.length < 4) throw new DrillError('CODEC_MALFORMED', 'frame shorter than its length prefix');
  const len = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, false);
  if (len > MAX_CONTROL_BYTES || 4 + len > bytes.length) throw new DrillError('CODEC_MALFORMED', `frame JSON length ${len} out of range`);
  return { json: bytes.subarray(4, 4 + len), bin: bytes.subarray(4 + len) };
}

/** A lease reply. With `prefix` (a commitAckPrefix), the commit reply that carries it. */
export function encodeClaimReply(r: ClaimReply, prefix?: Uint8Array): Uint8Array {
  if (!r.ok) return frame(leaseCodec.encode(r), undefined, prefix);
  return frame(leaseCodec.encode({ ok: true, lease: r.lease }), r.inputs, prefix);
}
/**
 * A lease reply whose input tensors are read straight into the message (no intermediate copy):
 * `fill(name, dest)` must fill `dest` (exactly the tensor's bytes) with input `name`'s data.
 * The bytes are the same as encodeClaimReply with those tensors (and `prefix`).
 */
export async function encodeClaimReplyFilled(
  lease: LeaseInfo,
  inputs: Record<string, { dtype: Dtype; dims: number[] }>,
  fill: (name: string, dest: Uint8Array) => Promise<void>,
  prefix?: Uint8Array,
): Promise<Uint8Array> {
  const bin = layoutTensorSpecs(inputs);
  const { out, binOffset } = frameFor(leaseCodec.encode({ ok: true, lease }), bin, prefix);
  bin.writeHeader(out, binOffset);
  for (const [name, slot] of Object.entries(bin.slots)) await fill(name, out.subarray(binOffset + slot.offset, binOffset + slot.offset + slot.length));
  return out;
}

export function decodeClaimReply(bytes: Uint8Array): ClaimReply {
  const { json, bin } = unframe(bytes);
  const head = leaseCodec.decode(json);
  if (!head.ok) return head;
  return { ok: true, lease: head.lease, inputs: decodeTensors(bin) };
}

export interface Commit {
  lease: string;
  commitment: string;
  runMs: number;
  profile: string;
  /**
   * Commit-and-claim: the worker wants its next lease in the reply (the slot this unit held is
   * free once it is committed). Saves one claim request per unit; the reply is then a
   * CommitReply frame (decodeCommitReply), else a plain Ack.
   */
  claim?: boolean;
  /** As ClaimRequest.fsToken, for the lease that rides on the reply. */
  fsToken?: string;
}
export const commitCodec = jsonCodec<Commit>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw);
    return { lease: s(o, 'lease'), commitment: hex(o, 'commitment', 32), runMs: n(o, 'runMs'), profile: s(o, 'profile', 1024), ...(o.claim === undefined ? {} : { claim: bool(o, 'claim') }), ...(o.fsToken === undefined ? {} : { fsToken: hex(o, 'fsToken', 32) }) };
  },
});

export interface Ack {
  ok: boolean;
  reason?: string;
}
export const ackCodec = jsonCodec<Ack>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw);
    return { ok: bool(o, 'ok'), reason: o.reason === undefined ? undefined : s(o, 'reason', 1024) };
  },
});

/**
 * The reply to a commit that asked for the next lease:
 *   u32be ackLength ‖ ack JSON (space-padded to a multiple of 8 bytes with the prefix) ‖ [claim reply]
 * The claim reply (encodeClaimReply's bytes) is absent when the commit was refused.
 */
export interface CommitReply extends Ack {
  next?: ClaimReply;
}

/** The ack part of a CommitReply: a whole number of 8-byte words, so the claim reply after it stays aligned. */
export function commitAckPrefix(a: Ack): Uint8Array {
  const json = ackCodec.encode(a);
  const len = Math.ceil((4 + json.length) / 8) * 8;
  const out = new Uint8Array(len).fill(0x20);
  new DataView(out.buffer).setUint32(0, len - 4, false);
  out.set(json, 4);
  return out;
}

/** @throws DrillError CODEC_MALFORMED / CODEC_TENSORS, NetError CODEC_* for a malformed reply. */
export function decodeCommitReply(bytes: Uint8Array): CommitReply {
  const { json, bin } = unframe(bytes);
  const ack = ackCodec.decode(json);
  if (bin.length === 0) return ack;
  return { ...ack, next: decodeClaimReply(bin) };
}

export interface RevealRequest {
  lease: string;
}
export const revealRequestCodec = jsonCodec<RevealRequest>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => ({ lease: s(obj(raw), 'lease') }),
});

/**
 * A reveal: the result's tensors, or — for a result written to the coordinator's spool file
 * (same filesystem, LeaseInfo.resultSpool) — `spooled` and no tensor bytes.
 */
export type RevealReply =
  | { ok: true; salt: string; outputs: Record<string, HostTensor> }
  | { ok: true; salt: string; spooled: true }
  | { ok: false; reason: string };
const revealHeadCodec = jsonCodec<{ ok: true; salt: string; spooled?: true } | { ok: false; reason: string }>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw);
    if (o.ok === false) return { ok: false, reason: s(o, 'reason', 1024) };
    if (o.spooled !== undefined && o.spooled !== true) throw new Error('spooled: expected true when present');
    return { ok: true, salt: hex(o, 'salt', 32), ...(o.spooled === true ? { spooled: true as const } : {}) };
  },
});
export function encodeRevealReply(r: RevealReply): Uint8Array {
  if (!r.ok) return frame(revealHeadCodec.encode(r));
  if ('spooled' in r) return frame(revealHeadCodec.encode({ ok: true, salt: r.salt, spooled: true }));
  return frame(revealHeadCodec.encode({ ok: true, salt: r.salt }), r.outputs);
}
export function decodeRevealReply(bytes: Uint8Array): RevealReply {
  const { json, bin } = unframe(bytes);
  const head = revealHeadCodec.decode(json);
  if (!head.ok) return head;
  if (head.spooled) {
    if (bin.length !== 0) throw new DrillError('CODEC_MALFORMED', 'a spooled reveal carries no tensor bytes');
    return { ok: true, salt: head.salt, spooled: true };
  }
  return { ok: true, salt: head.salt, outputs: decodeTensors(bin) };
}

export interface UnitError {
  lease: string;
  message: string;
}
export const unitErrorCodec = jsonCodec<UnitError>({
  version: GRID_VERSION,
  maxBytes: MAX_CONTROL_BYTES,
  check: (raw) => {
    const o = obj(raw);
    return { lease: s(o, 'lease'), message: s(o, 'message', 4096) };
  },
});
