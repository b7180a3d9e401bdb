/**
 * Request/response: one framed request and one framed response per libp2p stream, with size
 * caps both ways, a read deadline for the responder and a whole-exchange timeout for the
 * requester. A handler's typed DrillError crosses the wire as an error frame (code +
 * message); anything else is answered as INTERNAL without local details.
 */
import type { Libp2p } from 'libp2p';
import type { PeerId, Stream, Connection } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../util/log.ts';
import { DrillError } from '../util/errors.ts';
import { NetError, NetErrorCode } from './errors.ts';
import {
  DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, REQUEST_READ_TIMEOUT_MS, MAX_INBOUND_STREAMS,
} from './constants.ts';
import {
  readFrame, sendFramed, requestHeader, responseHeader, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES,
  STATUS_OK, STATUS_ERROR, MAX_ERROR_PAYLOAD_BYTES,
} from './framing.ts';
import { checkSize, checkTimeout, parseTarget } from './checks.ts';
import type { Lifecycle } from './lifecycle.ts';

export interface RequestOptions {
  /** Largest response accepted; default DEFAULT_MAX_RESPONSE_BYTES. */
  maxResponseBytes?: number;
  /** Whole-exchange timeout (dial + send + response); default DEFAULT_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called as response bytes arrive (total = declared response length). */
  onProgress?: (received: number, total: number) => void;
}

export interface HandleOptions {
  /** Largest request accepted; default DEFAULT_MAX_REQUEST_BYTES. */
  maxRequestBytes?: number;
  /**
   * Checked before any request byte is read: throw a DrillError to refuse the peer (its code and
   * message are sent back at once, so an unknown peer cannot make us buffer its request).
   */
  authorize?: (from: string) => void;
  /** Concurrent inbound streams of this protocol per connection; default MAX_INBOUND_STREAMS. */
  maxInboundStreams?: number;
}


/** Request counters (a snapshot). */
export interface RequestCounters {
  sent: number;
  failed: number;
  served: number;
  serveFailed: number;
}

/** The request/response half of a DrillNode (see DrillNode for each method's contract). */
export interface ReqResp {
  handle(protocol: string, handler: (req: Uint8Array, from: string) => Promise<Uint8Array>, opts?: HandleOptions): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  request(peerOrAddr: string, protocol: string, req: Uint8Array, opts?: RequestOptions): Promise<Uint8Array>;
  counters(): RequestCounters;
}

export function createReqResp(libp2p: Libp2p, life: Lifecycle, log: Logger): ReqResp {
  const reqCounters: RequestCounters = { sent: 0, failed: 0, served: 0, serveFailed: 0 };
  const api: ReqResp = {
    async handle(protocol, handler, hopts = {}) {
      life.assertRunning();
      const maxRequestBytes = checkSize('maxRequestBytes', hopts.maxRequestBytes, DEFAULT_MAX_REQUEST_BYTES);
      if (typeof handler !== 'function') throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `handle ${String(protocol)}: handler: expected a function`);
      if (typeof protocol !== 'string' || !protocol.startsWith('/')) {
        throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `protocol: expected an id like /matrix-drill/x/1.0.0, received ${JSON.stringify(protocol)}`);
      }
      try {
        await libp2p.handle(protocol, (stream: Stream, connection: Connection) => serve(stream, connection, protocol, handler, maxRequestBytes, hopts.authorize), {
          maxInboundStreams: hopts.maxInboundStreams ?? MAX_INBOUND_STREAMS,
        });
      } catch (e) {
        throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `handle ${protocol}: ${(e as Error).message}`, { protocol }, { cause: e });
      }
    },

    async unhandle(protocol) {
      if (!life.stopped) await libp2p.unhandle(protocol);
    },

    async request(peerOrAddr, protocol, req, ropts = {}) {
      life.assertRunning();
      const target = parseTarget(peerOrAddr);
      const maxResponseBytes = checkSize('maxResponseBytes', ropts.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES);
      const timeoutMs = checkTimeout('timeoutMs', ropts.timeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
      if (!(req instanceof Uint8Array)) throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `request: expected a Uint8Array body, received ${typeof req}`);
      if (req.length > 0xffffffff) throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `request: ${req.length} bytes exceeds the 4 GiB frame limit`);
      reqCounters.sent++;
      try {
        return await doRequest(target, peerOrAddr, protocol, req, maxResponseBytes, timeoutMs, ropts);
      } catch (e) {
        reqCounters.failed++;
        throw e;
      }
    },

    counters() {
      return { ...reqCounters };
    },
  };

  async function serve(stream: Stream, connection: Connection, protocol: string, handler: (req: Uint8Array, from: string) => Promise<Uint8Array>, maxRequestBytes: number, authorize?: (from: string) => void): Promise<void> {
    const from = connection.remotePeer.toString();
    const timer = setTimeout(() => {
      stream.abort(new NetError(NetErrorCode.NET_TIMEOUT, `request on ${protocol} not received within ${REQUEST_READ_TIMEOUT_MS} ms`));
    }, REQUEST_READ_TIMEOUT_MS);
    let status = STATUS_OK;
    let body: Uint8Array;
    try {
      authorize?.(from);
      const { payload } = await readFrame(stream, {
        headerBytes: REQUEST_HEADER_BYTES,
        lenOffset: 0,
        maxBytes: () => maxRequestBytes,
        tooLarge: (len) => new NetError(NetErrorCode.NET_REQUEST_TOO_LARGE, `request is ${len} bytes, this peer accepts at most ${maxRequestBytes} on ${protocol}`, { size: len, limit: maxRequestBytes }),
      });
      clearTimeout(timer);
      body = await handler(payload, from);
      if (!(body instanceof Uint8Array)) throw new TypeError(`handler for ${protocol} returned ${typeof body}, not a Uint8Array`);
      reqCounters.served++;
    } catch (e) {
      clearTimeout(timer);
      reqCounters.serveFailed++;
      if (stream.status !== 'open') return; // aborted/reset: nobody to answer
      status = STATUS_ERROR;
      // Only our own typed errors cross the wire; anything else may hold local details.
      const typed = e instanceof DrillError;
      const code = typed ? e.code : 'INTERNAL';
      const message = typed ? e.message : 'internal error';
      if (!typed) log.warn('request handler failed', { protocol, from, err: (e as Error)?.message });
      else log.debug('request refused', { protocol, from, code });
      body = new TextEncoder().encode(JSON.stringify({ code, message: message.slice(0, 1024) }));
    }
    try {
      await sendFramed(stream, responseHeader(status, body.length), body);
      await stream.close();
    } catch (e) {
      stream.abort(e as Error);
      log.debug('response not delivered', { protocol, from, err: (e as Error)?.message });
    }
  }

  async function doRequest(target: PeerId | Multiaddr, label: string, protocol: string, req: Uint8Array, maxResponseBytes: number, timeoutMs: number, ropts: RequestOptions): Promise<Uint8Array> {
    const ac = new AbortController();
    const fail = (err: NetError): void => {
      if (!ac.signal.aborted) ac.abort(err);
    };
    const timer = setTimeout(() => fail(new NetError(NetErrorCode.NET_TIMEOUT, `request ${protocol} to ${label} timed out after ${timeoutMs} ms`, { protocol, timeoutMs })), timeoutMs);
    const onUserAbort = (): void => fail(new NetError(NetErrorCode.NET_ABORTED, `request ${protocol} to ${label} aborted`, { protocol }));
    if (ropts.signal?.aborted) onUserAbort();
    ropts.signal?.addEventListener('abort', onUserAbort, { once: true });
    const stopOnStop = (err: Error): void => fail(err as NetError);
    life.waiters.add(stopOnStop);
    let stream: Stream | undefined;
    const abortStream = (): void => stream?.abort(ac.signal.reason as Error);
    ac.signal.addEventListener('abort', abortStream, { once: true });
    try {
      if (ac.signal.aborted) throw ac.signal.reason;
      try {
        stream = await libp2p.dialProtocol(target, protocol, { signal: ac.signal });
      } catch (e) {
        if (ac.signal.aborted) throw ac.signal.reason;
        throw new NetError(NetErrorCode.NET_DIAL_FAILED, `open ${protocol} to ${label} failed: ${(e as Error).message}`, { protocol }, { cause: e });
      }
      const s = stream;
      let answered = false;
      // Read concurrently with sending: a responder that refuses early (request too large)
      // answers before we finish sending, and we stop sending.
      const responseP = readFrame(s, {
        headerBytes: RESPONSE_HEADER_BYTES,
        lenOffset: 1,
        maxBytes: (h) => (h[0] === STATUS_OK ? maxResponseBytes : MAX_ERROR_PAYLOAD_BYTES),
        tooLarge: (len, h) => h[0] === STATUS_OK
          ? new NetError(NetErrorCode.NET_RESPONSE_TOO_LARGE, `response to ${protocol} is ${len} bytes, limit ${maxResponseBytes}`, { size: len, limit: maxResponseBytes })
          : new NetError(NetErrorCode.NET_BAD_FRAME, `error response of ${len} bytes exceeds ${MAX_ERROR_PAYLOAD_BYTES}`),
        onProgress: (r, t) => {
          answered = true;
          ropts.onProgress?.(r, t);
        },
      });
      // A failed read (response over our cap, reset) also ends the point of sending.
      responseP.catch(() => {
        answered = true;
      });
      let sendErr: unknown;
      try {
        await sendFramed(s, requestHeader(req.length), req, { signal: ac.signal, stop: () => answered });
        if (!answered) await s.close({ signal: ac.signal });
      } catch (e) {
        sendErr = e;
      }
      let frame: { header: Uint8Array; payload: Uint8Array };
      try {
        frame = await responseP;
      } catch (e) {
        if (ac.signal.aborted) throw ac.signal.reason;
        if (e instanceof NetError) throw e;
        throw new NetError(NetErrorCode.NET_BAD_FRAME, `no response to ${protocol} from ${label}: ${(e as Error)?.message ?? String(sendErr)}`, { protocol }, { cause: e });
      }
      const { header, payload } = frame;
      if (header[0] === STATUS_OK) {
        s.close().catch(() => s.abort(new Error('close failed')));
        return payload;
      }
      s.abort(new Error('error response received'));
      if (header[0] !== STATUS_ERROR) throw new NetError(NetErrorCode.NET_BAD_FRAME, `response status ${header[0]} is neither 0 nor 1`);
      throw remoteError(payload, protocol, label);
    } catch (e) {
      if (stream && stream.status === 'open') stream.abort(e as Error);
      if (ac.signal.aborted && !(e instanceof NetError)) throw ac.signal.reason;
      throw e;
    } finally {
      clearTimeout(timer);
      ropts.signal?.removeEventListener('abort', onUserAbort);
      ac.signal.removeEventListener('abort', abortStream);
      life.waiters.delete(stopOnStop);
    }
  }
  return api;
}

/** Turn an error frame into a NetError. Framing refusals keep their code; others are wrapped. */
function remoteError(payload: Uint8Array, protocol: string, label: string): NetError {
  let code = 'UNKNOWN';
  let message = '';
  try {
    const j = JSON.parse(new TextDecoder().decode(payload)) as { code?: unknown; message?: unknown };
    if (typeof j.code === 'string') code = j.code.slice(0, 64);
    if (typeof j.message === 'string') message = j.message.slice(0, 1024);
  } catch {
    message = 'unparseable error response';
  }
  if (code === NetErrorCode.NET_REQUEST_TOO_LARGE) {
    return new NetError(NetErrorCode.NET_REQUEST_TOO_LARGE, `${protocol} to ${label} refused: ${message}`, { protocol, remoteCode: code });
  }
  return new NetError(NetErrorCode.NET_REMOTE_ERROR, `${protocol} to ${label} failed remotely: ${code}: ${message}`, { protocol, remoteCode: code, remoteMessage: message });
}
