/**
 * Content-addressed blob transfer: model bytes (and other large immutable data) by sha256 hex
 * over the `/matrix-drill/blob/1.0.0` request/response protocol.
 *
 * request  = the 64-char lowercase sha256 hex (ASCII)
 * response = the blob bytes (streamed in chunks with backpressure by the framing layer), or an
 *            error frame with code BLOB_NOT_FOUND
 *
 * The fetcher learns the size from the frame header before any payload arrives, refuses blobs
 * over its cap, and verifies the sha256 of what arrived: a lying server is detected every time.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { DrillNode } from './node.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { isDrillError } from '../util/errors.ts';
import { NetError, NetErrorCode } from './errors.ts';
import { BLOB_PROTOCOL, DEFAULT_MAX_BLOB_BYTES, DEFAULT_BLOB_TIMEOUT_MS } from './constants.ts';

const HASH_RE = /^[0-9a-f]{64}$/;

export function sha256HexOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface BlobServerOptions {
  /** Protocol id; default BLOB_PROTOCOL. Tests may serve a second protocol. */
  protocol?: string;
  /** Largest blob `add` accepts; default DEFAULT_MAX_BLOB_BYTES (the frame limit is 4 GiB). */
  maxBlobBytes?: number;
  logger?: Logger;
}

export const defaultBlobServerOptions = {
  protocol: BLOB_PROTOCOL,
  maxBlobBytes: DEFAULT_MAX_BLOB_BYTES,
} as const;

/**
 * Serves blobs held in memory by their sha256 hex. `start()` registers the protocol handler on
 * the node; `stop()` unregisters it (the node itself is the caller's to stop).
 */
export class BlobServer {
  readonly #node: DrillNode;
  readonly #blobs = new Map<string, Uint8Array>();
  readonly #protocol: string;
  readonly #maxBlobBytes: number;
  readonly #log: Logger;
  #started = false;
  served = 0;
  notFound = 0;

  constructor(node: DrillNode, opts: BlobServerOptions = {}) {
    this.#node = node;
    this.#protocol = opts.protocol ?? defaultBlobServerOptions.protocol;
    this.#maxBlobBytes = opts.maxBlobBytes ?? defaultBlobServerOptions.maxBlobBytes;
    this.#log = (opts.logger ?? silentLogger).child('blobs');
  }

  /** Hold `bytes` for serving; returns their sha256 hex. The bytes are not copied — do not
   * mutate them afterwards.
   * @throws NetError NET_BAD_ARGUMENT if larger than maxBlobBytes. */
  add(bytes: Uint8Array): string {
    if (!(bytes instanceof Uint8Array)) throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, 'blob: expected a Uint8Array');
    if (bytes.length > this.#maxBlobBytes) {
      throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `blob: expected at most ${this.#maxBlobBytes} bytes, received ${bytes.length}`);
    }
    const hash = sha256HexOf(bytes);
    this.#blobs.set(hash, bytes);
    return hash;
  }

  /** Read a file and hold it; returns its sha256 hex. @throws the fs error, NET_BAD_ARGUMENT. */
  async addFile(path: string): Promise<string> {
    return this.add(new Uint8Array(await readFile(path)));
  }

  has(hash: string): boolean {
    return this.#blobs.has(hash);
  }

  remove(hash: string): boolean {
    return this.#blobs.delete(hash);
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#node.handle(this.#protocol, async (req, from) => {
      const hash = new TextDecoder().decode(req);
      const blob = HASH_RE.test(hash) ? this.#blobs.get(hash) : undefined;
      if (!blob) {
        this.notFound++;
        this.#log.debug('blob not found', { from, hash: hash.slice(0, 64) });
        throw new NetError(NetErrorCode.BLOB_NOT_FOUND, `no blob ${hash.slice(0, 64)} here`);
      }
      this.served++;
      return blob;
    }, { maxRequestBytes: 64 });
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#node.unhandle(this.#protocol);
  }
}

export interface FetchBlobOptions {
  /** Refuse blobs larger than this; default DEFAULT_MAX_BLOB_BYTES. */
  maxBytes?: number;
  onProgress?: (received: number, total: number) => void;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Protocol id; default BLOB_PROTOCOL. */
  protocol?: string;
}

/**
 * Fetch a blob by sha256 hex from `peer` (peer id or multiaddr) and verify it.
 * @throws NetError NET_BAD_ARGUMENT (hash not 64 lowercase hex), BLOB_NOT_FOUND,
 *   BLOB_TOO_LARGE, BLOB_HASH_MISMATCH, and the request errors of `DrillNode.request`.
 */
export async function fetchBlob(node: DrillNode, peer: string, hash: string, opts: FetchBlobOptions = {}): Promise<Uint8Array> {
  if (typeof hash !== 'string' || !HASH_RE.test(hash)) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `hash: expected 64 lowercase hex chars (sha256), received ${JSON.stringify(String(hash).slice(0, 70))}`);
  }
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BLOB_BYTES;
  let bytes: Uint8Array;
  try {
    bytes = await node.request(peer, opts.protocol ?? BLOB_PROTOCOL, new TextEncoder().encode(hash), {
      maxResponseBytes: maxBytes,
      timeoutMs: opts.timeoutMs ?? DEFAULT_BLOB_TIMEOUT_MS,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
  } catch (e) {
    if (isDrillError(e, NetErrorCode.NET_REMOTE_ERROR) && e.meta.remoteCode === NetErrorCode.BLOB_NOT_FOUND) {
      throw new NetError(NetErrorCode.BLOB_NOT_FOUND, `peer ${peer} does not hold blob ${hash}`, { hash, peer }, { cause: e });
    }
    if (isDrillError(e, NetErrorCode.NET_RESPONSE_TOO_LARGE)) {
      throw new NetError(NetErrorCode.BLOB_TOO_LARGE, `blob ${hash} from ${peer} is ${String(e.meta.size)} bytes, limit ${maxBytes}`, { hash, peer, size: e.meta.size, limit: maxBytes }, { cause: e });
    }
    throw e;
  }
  const got = sha256HexOf(bytes);
  if (got !== hash) {
    throw new NetError(NetErrorCode.BLOB_HASH_MISMATCH, `blob from ${peer} hashes to ${got}, requested ${hash}`, { hash, got, peer, size: bytes.length });
  }
  return bytes;
}
