/**
 * The libp2p transport of the intake: serves the protocols of `wire.ts` on a coordinator's node
 * on top of the IntakeCore, and the client side `drill submit` uses. The partner is the peer's
 * libp2p identity (authenticated by Noise); every protocol refuses an unknown partner before
 * reading any of its request (`authorize`), so a stranger cannot make the coordinator buffer
 * anything.
 */
import { open } from 'node:fs/promises';
import type { DrillNode } from '../../net/node.ts';
import type { Logger } from '../../util/log.ts';
import { silentLogger } from '../../util/log.ts';
import type { IntakeCore } from './core.ts';
import {
  INTAKE_PROTOCOL, CHUNK_BYTES, CHUNK_HEAD_BYTES, MAX_INTAKE_CONTROL_BYTES, POLL_MS, OUTPUT_CHUNK_BYTES,
  beginCodec, beginReplyCodec, decodeChunk, chunkReplyCodec, submitCodec, submitReplyCodec, jobQueryCodec, jobRefCodec,
  okCodec, outputQueryCodec, encodeOutputChunk, jobStatusCodec,
} from './wire.ts';

/**
 * Concurrent chunk streams per connection: a client sends one chunk at a time; 4 allows a
 * little pipelining while one connection can hold at most 4 × 4 MiB of chunks in memory.
 */
const MAX_CHUNK_STREAMS = 4;

export class IntakeServer {
  readonly #node: DrillNode;
  readonly #core: IntakeCore;
  readonly #log: Logger;

  constructor(node: DrillNode, core: IntakeCore, logger: Logger = silentLogger) {
    this.#node = node;
    this.#core = core;
    this.#log = logger.child('intake');
  }

  async start(): Promise<void> {
    const core = this.#core;
    const authorize = (from: string): void => core.authorize(from);
    const control = { authorize, maxRequestBytes: MAX_INTAKE_CONTROL_BYTES };
    await this.#node.handle(INTAKE_PROTOCOL.begin, async (req, from) => {
      const b = beginCodec.decode(req);
      const info = await core.beginUpload(from, { files: b.files });
      return beginReplyCodec.encode({ upload: info.upload, bytesLeft: info.bytesLeft, chunkBytes: CHUNK_BYTES });
    }, control);
    await this.#node.handle(INTAKE_PROTOCOL.chunk, async (req, from) => {
      const { head, bytes } = decodeChunk(req);
      return chunkReplyCodec.encode(await core.writeChunk(from, head.upload, head.file, head.offset, bytes));
    }, { authorize, maxRequestBytes: 4 + CHUNK_HEAD_BYTES + CHUNK_BYTES, maxInboundStreams: MAX_CHUNK_STREAMS });
    await this.#node.handle(INTAKE_PROTOCOL.submit, async (req, from) => {
      const s = submitCodec.decode(req);
      const r = await core.submit(from, s.upload, { name: s.name, replicas: s.replicas, audit: s.audit, unitRows: s.unitRows, policy: s.policy, batchAxes: s.batchAxes, broadcast: s.broadcast });
      return submitReplyCodec.encode(r);
    }, control);
    await this.#node.handle(INTAKE_PROTOCOL.job, async (req, from) => {
      const q = jobQueryCodec.decode(req);
      return jobStatusCodec.encode(await core.waitForUpdate(from, q.job, q.seen, POLL_MS));
    }, control);
    await this.#node.handle(INTAKE_PROTOCOL.cancel, async (req, from) => jobStatusCodec.encode(await core.cancel(from, jobRefCodec.decode(req).job)), control);
    await this.#node.handle(INTAKE_PROTOCOL.release, async (req, from) => {
      await core.release(from, jobRefCodec.decode(req).job);
      return okCodec.encode({ ok: true });
    }, control);
    await this.#node.handle(INTAKE_PROTOCOL.output, async (req, from) => {
      const q = outputQueryCodec.decode(req);
      const f = await core.outputFile(from, q.job, q.file);
      const len = Math.max(0, Math.min(OUTPUT_CHUNK_BYTES, f.size - q.offset));
      const buf = new Uint8Array(len);
      const fh = await open(f.path, 'r');
      try {
        let got = 0;
        while (got < len) {
          const { bytesRead } = await fh.read(buf, got, len - got, q.offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return encodeOutputChunk(f.size, buf.subarray(0, got));
      } finally {
        await fh.close();
      }
    }, control);
    this.#log.debug('intake serving', { protocols: Object.values(INTAKE_PROTOCOL).length });
  }

  async stop(): Promise<void> {
    for (const p of Object.values(INTAKE_PROTOCOL)) await this.#node.unhandle(p).catch(() => undefined);
  }
}
