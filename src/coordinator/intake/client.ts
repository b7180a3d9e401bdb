/**
 * The partner's side of the libp2p intake (what `drill submit` uses): upload files in chunks
 * read from disk (never whole), submit, follow, download outputs in chunks, cancel, release.
 * The partner identity is the node's libp2p key.
 */
import { open, rename } from 'node:fs/promises';
import type { DrillNode } from '../../net/node.ts';
import { DrillError, isDrillError } from '../../util/errors.ts';
import type { IntakeJobStatus, IntakeSubmitOptions } from './core.ts';
import { IntakeErrorCode } from './errors.ts';
import {
  INTAKE_PROTOCOL, POLL_MS, beginCodec, beginReplyCodec, encodeChunk, chunkReplyCodec, submitCodec, submitReplyCodec,
  jobQueryCodec, jobRefCodec, okCodec, outputQueryCodec, decodeOutputChunk, jobStatusCodec, MAX_STATUS_BYTES, OUTPUT_CHUNK_BYTES,
} from './wire.ts';
import type { SubmitReply } from './wire.ts';

export interface ClientFile {
  role: 'model' | 'input';
  name: string;
  path: string;
  bytes: number;
}

/** Codes by which a coordinator refuses what a person can fix (turned into USER_INPUT: exit 2). */
const REFUSALS = new Set<string>([
  IntakeErrorCode.TOO_MANY_JOBS, IntakeErrorCode.INTAKE_FULL, IntakeErrorCode.UPLOAD_TOO_LARGE, IntakeErrorCode.UPLOAD_BAD,
  IntakeErrorCode.UNITS_REFUSED, 'USER_INPUT',
]);

/** Each upload chunk gets this long: 4 MiB at a slow 1 MB/s plus slack. */
const CHUNK_TIMEOUT_MS = 60_000;

export class IntakeClient {
  readonly #node: DrillNode;
  readonly #to: string;

  /** `to`: the coordinator's multiaddr (…/p2p/<peer id>) or peer id. */
  constructor(node: DrillNode, to: string) {
    this.#node = node;
    this.#to = to;
  }

  /**
   * Upload `files` (model first) in chunks; resolves with the upload id.
   * @throws DrillError USER_INPUT when the coordinator refuses the partner or a limit; NetError otherwise.
   */
  async upload(files: ClientFile[], onProgress?: (sent: number, total: number) => void): Promise<string> {
    const begin = beginReplyCodec.decode(await this.#req(INTAKE_PROTOCOL.begin, beginCodec.encode({ files: files.map((f) => ({ role: f.role, name: f.name, bytes: f.bytes })) })));
    const total = files.reduce((a, f) => a + f.bytes, 0);
    const buf = new Uint8Array(begin.chunkBytes);
    let sent = 0;
    for (const [i, f] of files.entries()) {
      const fh = await open(f.path, 'r');
      try {
        for (let off = 0; off < f.bytes;) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, f.bytes - off), off);
          if (bytesRead === 0) throw new DrillError('USER_INPUT', `${f.path}: the file shrank while it was being uploaded`);
          chunkReplyCodec.decode(await this.#req(INTAKE_PROTOCOL.chunk, encodeChunk({ upload: begin.upload, file: i, offset: off }, buf.subarray(0, bytesRead)), { timeoutMs: CHUNK_TIMEOUT_MS }));
          off += bytesRead;
          sent += bytesRead;
          onProgress?.(sent, total);
        }
      } finally {
        await fh.close();
      }
    }
    return begin.upload;
  }

  /** @throws DrillError USER_INPUT for a refused job; NetError otherwise. */
  async submit(upload: string, opts: IntakeSubmitOptions): Promise<SubmitReply> {
    return submitReplyCodec.decode(await this.#req(INTAKE_PROTOCOL.submit, submitCodec.encode({ upload, ...stripUndefined(opts) }), { timeoutMs: 120_000 }));
  }

  /** Long poll: the job's status once more than `seen` units are done, it ended, or POLL_MS passed. */
  async status(job: string, seen: number): Promise<IntakeJobStatus> {
    return jobStatusCodec.decode(await this.#req(INTAKE_PROTOCOL.job, jobQueryCodec.encode({ job, seen }), { timeoutMs: POLL_MS + 30_000, maxResponseBytes: MAX_STATUS_BYTES }));
  }

  async cancel(job: string): Promise<IntakeJobStatus> {
    return jobStatusCodec.decode(await this.#req(INTAKE_PROTOCOL.cancel, jobRefCodec.encode({ job }), { maxResponseBytes: MAX_STATUS_BYTES }));
  }

  /** Tell the coordinator the outputs are fetched (it frees the job's files). */
  async release(job: string): Promise<void> {
    okCodec.decode(await this.#req(INTAKE_PROTOCOL.release, jobRefCodec.encode({ job })));
  }

  /** Download an output file to `dest` (written as `dest.partial`, renamed when complete). */
  async download(job: string, file: string, dest: string): Promise<void> {
    const fh = await open(`${dest}.partial`, 'w');
    try {
      let offset = 0;
      for (;;) {
        const { size, bytes } = decodeOutputChunk(await this.#req(INTAKE_PROTOCOL.output, outputQueryCodec.encode({ job, file, offset }), { maxResponseBytes: 8 + OUTPUT_CHUNK_BYTES }));
        await fh.write(bytes, 0, bytes.length, offset);
        offset += bytes.length;
        if (offset >= size || bytes.length === 0) break;
      }
    } finally {
      await fh.close();
    }
    await rename(`${dest}.partial`, dest);
  }

  async #req(protocol: string, body: Uint8Array, opts: { timeoutMs?: number; maxResponseBytes?: number } = {}): Promise<Uint8Array> {
    try {
      return await this.#node.request(this.#to, protocol, body, opts);
    } catch (e) {
      throw refusal(e, this.#node.peerId) ?? e;
    }
  }
}

/** A coordinator's refusal as a USER_INPUT error (one clear line, exit 2), or null. */
export function refusal(e: unknown, partner: string): DrillError | null {
  if (!isDrillError(e, 'NET_REMOTE_ERROR')) return null;
  const code = String(e.meta.remoteCode ?? '');
  const message = String(e.meta.remoteMessage ?? e.message);
  if (code === IntakeErrorCode.PARTNER_REFUSED) {
    return new DrillError('USER_INPUT', `the coordinator does not accept jobs from this partner (${partner}): its operator can add it with 'drill coordinator --allow-partner ${partner}' (see 'drill submit --show-id')`, { remoteCode: code });
  }
  if (REFUSALS.has(code)) return new DrillError('USER_INPUT', `the coordinator refused the job: ${message}`, { remoteCode: code });
  return null;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
