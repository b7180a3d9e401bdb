/**
 * Error codes of the network layer. Every error thrown by `src/net` is a DrillError with one of
 * these codes; callers match on `code`, never on the message. The `CODEC_*` codes are raised by
 * topic codecs on malformed untrusted bytes and map to the gossip verdict REJECT.
 */
import { DrillError } from '../util/errors.ts';

export const NetErrorCode = {
  /** Gossip payload larger than the topic's `maxBytes` (checked before decoding). */
  CODEC_TOO_LARGE: 'CODEC_TOO_LARGE',
  /** Bytes are not valid UTF-8 / JSON / the expected envelope. */
  CODEC_MALFORMED: 'CODEC_MALFORMED',
  /** Envelope version is not the one this codec speaks. */
  CODEC_VERSION: 'CODEC_VERSION',
  /** Envelope decoded but the body failed the topic's schema check. */
  CODEC_SCHEMA: 'CODEC_SCHEMA',
  /** A value cannot be encoded (caller misuse: a `v` field, a non-object, a cycle). */
  CODEC_ENCODE: 'CODEC_ENCODE',
  /** A request exceeded the responder's `maxRequestBytes`. */
  NET_REQUEST_TOO_LARGE: 'NET_REQUEST_TOO_LARGE',
  /** A response exceeded the requester's `maxResponseBytes`. */
  NET_RESPONSE_TOO_LARGE: 'NET_RESPONSE_TOO_LARGE',
  /** A request did not complete within its timeout. */
  NET_TIMEOUT: 'NET_TIMEOUT',
  /** The caller aborted a request through its AbortSignal. */
  NET_ABORTED: 'NET_ABORTED',
  /** The remote handler failed; `meta.remoteCode` carries the remote error code. */
  NET_REMOTE_ERROR: 'NET_REMOTE_ERROR',
  /** The remote broke the framing protocol (truncated frame, trailing bytes, bad status). */
  NET_BAD_FRAME: 'NET_BAD_FRAME',
  /** Dialling or opening a protocol stream failed. */
  NET_DIAL_FAILED: 'NET_DIAL_FAILED',
  /** waitForTopicPeers gave up before enough peers subscribed. */
  NET_TOPIC_PEERS_TIMEOUT: 'NET_TOPIC_PEERS_TIMEOUT',
  /** The node is stopped. */
  NET_STOPPED: 'NET_STOPPED',
  /** Caller misuse of the API (bad argument, double subscribe, unknown topic). */
  NET_BAD_ARGUMENT: 'NET_BAD_ARGUMENT',
  /** A fetched blob's sha256 differs from the requested hash. */
  BLOB_HASH_MISMATCH: 'BLOB_HASH_MISMATCH',
  /** The serving peer does not hold the requested blob. */
  BLOB_NOT_FOUND: 'BLOB_NOT_FOUND',
  /** The blob is larger than the requester's `maxBytes`. */
  BLOB_TOO_LARGE: 'BLOB_TOO_LARGE',
} as const;
export type NetErrorCode = (typeof NetErrorCode)[keyof typeof NetErrorCode];

/** A network-layer error: a DrillError whose code is one of `NetErrorCode`. */
export class NetError extends DrillError {
  constructor(code: NetErrorCode, message: string, meta?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(code, message, meta, options);
    this.name = 'NetError';
  }
}
