/**
 * Framing for request/response streams on libp2p 3 message streams.
 *
 * request  = len:u32be ‖ payload                (then the requester half-closes)
 * response = status:u8 ‖ len:u32be ‖ payload    (status 0 = ok, 1 = error; error payload is
 *                                                UTF-8 JSON {code, message})
 *
 * Lengths are read before any payload is buffered, so a size cap rejects an oversized frame
 * after 4-5 bytes, not after it has been received. Sending is chunked and honours backpressure
 * (`send()` returning false → wait for drain), so multi-MB payloads never sit in one buffer of
 * the muxer.
 */
import type { Stream } from '@libp2p/interface';
import { NetError, NetErrorCode } from './errors.ts';
import { STREAM_CHUNK_BYTES } from './constants.ts';

export const REQUEST_HEADER_BYTES = 4;
export const RESPONSE_HEADER_BYTES = 5;
export const STATUS_OK = 0;
export const STATUS_ERROR = 1;
/** Error responses carry a code and a short message; 4 KiB bounds what a peer can make us parse. */
export const MAX_ERROR_PAYLOAD_BYTES = 4096;

/** Write `header ‖ payload` in chunks, waiting for drain when the stream asks for it. Stops
 * early (without error) when `stop()` turns true, e.g. because the peer already answered. */
export async function sendFramed(stream: Stream, header: Uint8Array, payload: Uint8Array, opts: { signal?: AbortSignal; stop?: () => boolean } = {}): Promise<void> {
  if (!stream.send(header)) await stream.onDrain({ signal: opts.signal });
  for (let off = 0; off < payload.length; off += STREAM_CHUNK_BYTES) {
    if (opts.stop?.()) return;
    const chunk = payload.subarray(off, Math.min(off + STREAM_CHUNK_BYTES, payload.length));
    if (!stream.send(chunk)) await stream.onDrain({ signal: opts.signal });
  }
}

export function requestHeader(len: number): Uint8Array {
  const h = new Uint8Array(REQUEST_HEADER_BYTES);
  new DataView(h.buffer).setUint32(0, len, false);
  return h;
}

export function responseHeader(status: number, len: number): Uint8Array {
  const h = new Uint8Array(RESPONSE_HEADER_BYTES);
  h[0] = status;
  new DataView(h.buffer).setUint32(1, len, false);
  return h;
}

export interface ReadFrameOptions {
  /** Size of the fixed header; the payload length is the u32be at `lenOffset`. */
  headerBytes: number;
  lenOffset: number;
  /** Largest payload accepted; `tooLarge(len, header)` builds the error thrown past it. */
  maxBytes(header: Uint8Array): number;
  tooLarge(len: number, header: Uint8Array): Error;
  onProgress?: (received: number, total: number) => void;
}

/**
 * Read exactly one frame from `stream`. Resolves with its header and payload as soon as the
 * payload is complete (it does not wait for the remote to close).
 * @throws NetError NET_BAD_FRAME if the stream ends early or carries more than one frame;
 *   whatever `tooLarge` builds if the length exceeds the cap; the stream's abort error.
 */
export async function readFrame(stream: Stream, opts: ReadFrameOptions): Promise<{ header: Uint8Array; payload: Uint8Array }> {
  const header = new Uint8Array(opts.headerBytes);
  let headerFill = 0;
  /** Declared payload length, once the header is in. */
  let len = -1;
  // The buffer grows with the bytes that actually arrive (doubling, capped at `len`), never to
  // what the header merely declares: a peer that announces 1 GiB and sends 10 bytes costs us
  // about FIRST_PAYLOAD_BYTES, not a gigabyte.
  let payload: Uint8Array = EMPTY;
  let fill = 0;
  for await (const item of stream) {
    let chunk = item instanceof Uint8Array ? item : item.subarray();
    if (len < 0) {
      const take = Math.min(opts.headerBytes - headerFill, chunk.length);
      header.set(chunk.subarray(0, take), headerFill);
      headerFill += take;
      chunk = chunk.subarray(take);
      if (headerFill < opts.headerBytes) continue;
      len = new DataView(header.buffer).getUint32(opts.lenOffset, false);
      if (len > opts.maxBytes(header)) throw opts.tooLarge(len, header);
      opts.onProgress?.(0, len);
      if (len === 0) return { header, payload: new Uint8Array(0) };
    }
    if (fill + chunk.length > len) {
      throw new NetError(NetErrorCode.NET_BAD_FRAME, `frame carries ${fill + chunk.length - len} bytes past its declared length ${len}`);
    }
    if (fill + chunk.length > payload.length) payload = grow(payload, fill, Math.min(len, Math.max(fill + chunk.length, 2 * payload.length, FIRST_PAYLOAD_BYTES)));
    payload.set(chunk, fill);
    fill += chunk.length;
    if (chunk.length > 0) opts.onProgress?.(fill, len);
    // The buffer is exactly `len` long once full (the last growth is capped at `len`): a fresh
    // allocation, so the payload starts 8-byte aligned (protocol/grid.ts relies on it).
    if (fill === len) return { header, payload };
  }
  if (len < 0) {
    throw new NetError(NetErrorCode.NET_BAD_FRAME, `stream ended after ${headerFill} of ${opts.headerBytes} header bytes`);
  }
  throw new NetError(NetErrorCode.NET_BAD_FRAME, `stream ended after ${fill} of ${len} payload bytes`, { received: fill, expected: len });
}

const EMPTY: Uint8Array = new Uint8Array(0);
/** First payload buffer: one stream chunk (64 KiB); it doubles from there as bytes arrive. */
const FIRST_PAYLOAD_BYTES = STREAM_CHUNK_BYTES;

/** A fresh buffer of `size` bytes holding the first `used` bytes of `buf`. */
function grow(buf: Uint8Array, used: number, size: number): Uint8Array {
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, used));
  return next;
}
