/**
 * The matrix-drill libp2p node: TCP + Noise + Yamux + Identify + gossipsub (StrictSign,
 * content-hash message ids), typed topics with validators that run inside gossipsub (so junk
 * is REJECTed and costs its sender score before any handler sees it), and a framed
 * request/response protocol with size caps both ways.
 *
 * This is the thin I/O shell: domain rules live in the TopicSpec validators supplied by
 * chain/, coordinator/ and worker/; this module only turns their verdicts and errors into
 * gossipsub results (`verdictFor`) and counts them.
 */
import { createHash } from 'node:crypto';
import { createLibp2p } from 'libp2p';
import type { Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import type { Identify } from '@libp2p/identify';
import { gossipsub, StrictSign, TopicValidatorResult } from '@libp2p/gossipsub';
import type { GossipSub, Message, TopicValidatorFn } from '@libp2p/gossipsub';
import { createTopicScoreParams } from '@libp2p/gossipsub/score';
import type { TopicScoreParams } from '@libp2p/gossipsub/score';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Multiaddr } from '@multiformats/multiaddr';
import { KEEP_ALIVE } from '@libp2p/interface';
import type { PeerId, PrivateKey, Stream, Connection } from '@libp2p/interface';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { DrillError } from '../util/errors.ts';
import { NetError, NetErrorCode } from './errors.ts';
import { checkTopicSpec, verdictFor } from './topics.ts';
import type { TopicSpec, Verdict } from './topics.ts';
import {
  DEFAULT_LISTEN, GOSSIP_MAX_RPC_BYTES, DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, REQUEST_READ_TIMEOUT_MS,
  DEFAULT_TOPIC_PEERS_TIMEOUT_MS, MAX_INBOUND_STREAMS, COLOCATION_WHITELIST, CONNECTION_ALLOW,
  RECONNECT_RETRIES, RECONNECT_INTERVAL_MS, RECONNECT_BACKOFF,
} from './constants.ts';
import {
  readFrame, sendFramed, requestHeader, responseHeader, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES,
  STATUS_OK, STATUS_ERROR, MAX_ERROR_PAYLOAD_BYTES,
} from './framing.ts';

export type { PrivateKey } from '@libp2p/interface';

export interface DrillNodeOptions {
  /** libp2p Ed25519 private key (from @libp2p/crypto/keys). Generated when absent. */
  privateKey?: PrivateKey;
  /** Listen multiaddrs; default ['/ip4/127.0.0.1/tcp/0']. */
  listen?: string[];
  /** Peers to dial at start (full multiaddrs with /p2p/<id>). A failed dial is logged, not
   * fatal. Reached bootstrap peers are kept: libp2p redials them when the connection drops. */
  bootstrap?: string[];
  logger?: Logger;
  /** Largest gossipsub RPC frame accepted from a peer; default GOSSIP_MAX_RPC_BYTES. */
  maxGossipRpcBytes?: number;
  /** IPs exempt from gossipsub's IP-colocation penalty; default loopback (see
   * COLOCATION_WHITELIST). Add a LAN address when many trusted nodes share one host. */
  colocationWhitelist?: string[];
  /** Networks (multiaddr CIDRs like '/ip4/10.0.0.0/ipcidr/8') exempt from libp2p's inbound
   * connection rate limit; default loopback (see CONNECTION_ALLOW). */
  connectionAllow?: string[];
}

export const defaultDrillNodeOptions = {
  listen: [...DEFAULT_LISTEN],
  bootstrap: [] as string[],
  maxGossipRpcBytes: GOSSIP_MAX_RPC_BYTES,
  colocationWhitelist: [...COLOCATION_WHITELIST],
  connectionAllow: [...CONNECTION_ALLOW],
} as const;

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
}

/** Plain per-topic gossip counters (a snapshot; mutate freely). */
export interface TopicCounters {
  /** Messages our validator accepted (and the handler then saw). */
  accept: number;
  ignore: number;
  reject: number;
  /** Verdicts other than accept, by error code ('VALIDATOR' when validate() returned the verdict). */
  byCode: Record<string, number>;
  /** Messages this node published. */
  published: number;
  /** Handler throws (logged; the node carries on). */
  handlerErrors: number;
}

export interface NetMetrics {
  topics: Record<string, TopicCounters>;
  requests: { sent: number; failed: number; served: number; serveFailed: number };
}

export interface DrillNode {
  readonly peerId: string;
  /** Raw 32-byte Ed25519 public key of this node. */
  readonly publicKey: Uint8Array;
  readonly privateKey: PrivateKey;
  /** Full addresses including /p2p/<peerId>. */
  multiaddrs(): string[];
  /** Escape hatch to the underlying libp2p node. */
  readonly libp2p: Libp2p<DrillServices>;
  /** @throws NetError NET_DIAL_FAILED */
  dial(addr: string): Promise<void>;
  /**
   * Subscribe with a typed topic; the topic's validator runs BEFORE the handler (as a gossipsub
   * topic validator: accept/ignore/reject) — the handler only sees accepted, decoded messages.
   * `from` is the message's signing originator (not the relaying peer). Several handlers may share
   * one topic if they pass the same TopicSpec object.
   * @throws NetError NET_BAD_ARGUMENT for a bad spec or a different spec on a subscribed topic.
   */
  subscribe<T>(topic: TopicSpec<T>, handler: (msg: T, from: string) => void): void;
  unsubscribe(topicName: string): void;
  /**
   * Encode, check size, publish. Never throws for "no peers subscribed" (resolves with 0
   * recipients). Identical bytes on a topic within gossipsub's seen-cache window (~2 min) are
   * deduplicated by content id and not re-sent (recipients 0).
   * @throws NetError CODEC_TOO_LARGE / CODEC_ENCODE for our own bad message; NET_STOPPED.
   */
  publish<T>(topic: TopicSpec<T>, msg: T): Promise<{ recipients: number }>;
  /** Resolves once at least `minPeers` peers are subscribed to the topic (event-driven).
   * @throws NetError NET_TOPIC_PEERS_TIMEOUT, NET_STOPPED */
  waitForTopicPeers(topicName: string, minPeers: number, timeoutMs?: number): Promise<void>;
  /** Request/response protocol: one framed request, one framed response per stream. A handler
   * throw is sent back as an error frame (DrillError code + message; other errors as INTERNAL). */
  handle(protocol: string, handler: (req: Uint8Array, from: string) => Promise<Uint8Array>, opts?: HandleOptions): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  /**
   * Send one request and await one response. `peerOrAddr` is a peer id (must be connected or
   * known) or a full multiaddr.
   * @throws NetError NET_TIMEOUT, NET_ABORTED, NET_DIAL_FAILED, NET_REQUEST_TOO_LARGE (the
   *   responder's cap), NET_RESPONSE_TOO_LARGE, NET_REMOTE_ERROR (meta.remoteCode), NET_BAD_FRAME.
   */
  request(peerOrAddr: string, protocol: string, req: Uint8Array, opts?: RequestOptions): Promise<Uint8Array>;
  /** Peer connect/disconnect events; returns an unsubscribe function. */
  onPeer(event: 'connect' | 'disconnect', cb: (peerId: string) => void): () => void;
  /** Currently connected peer ids. */
  peers(): string[];
  /** Gossipsub score of a peer (negative after it sent rejected messages). */
  peerScore(peerId: string): number;
  /** Plain counters: accept/ignore/reject per topic, request counts. */
  metrics(): NetMetrics;
  /** Observe every gossip verdict our validators reach (for metrics exporters, logs and
   * tests); returns an unsubscribe function. Listener errors are logged and swallowed. */
  onVerdict(cb: (ev: VerdictEvent) => void): () => void;
  stop(): Promise<void>;
}

/** One gossip validation outcome. */
export interface VerdictEvent {
  topic: string;
  verdict: Verdict;
  /** Error code behind a non-accept verdict ('VALIDATOR' when validate() returned it). */
  code?: string;
  /** Signing originator of the message. */
  from: string;
}

export interface DrillServices extends Record<string, unknown> {
  pubsub: GossipSub;
  identify: Identify;
}

/**
 * Topic score parameters: our topics are low-rate, so the mesh-delivery-deficit penalties
 * (which punish quiet peers) are off; an invalid message costs -10·n² (weight × count²), so three
 * rejected messages take a peer past the default graylist threshold (-80) while one honest
 * mistake only stops gossip to it briefly (gossip threshold -10).
 */
const TOPIC_SCORE = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 100,
  firstMessageDeliveriesWeight: 0.5,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 20,
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.9,
} as const;

/** Message id = sha256(topic ‖ 0x00 ‖ data): content-addressed, so the same payload relayed by
 * two routes is deduplicated, and the same bytes on two topics are distinct messages. */
function contentMsgId(msg: Message): Uint8Array {
  return createHash('sha256').update(msg.topic).update(new Uint8Array([0])).update(msg.data).digest();
}

/** Re-check interval of waitForTopicPeers for the outbound-stream condition (no event exists for
 * it): 20 ms is invisible next to a connection set-up and costs nothing while waiting. */
const TOPIC_PEERS_POLL_MS = 20;

/** Longest a topic validator may take: gossipsub asks validators to answer fast (< 100 ms) so
 * scoring stays fair; chain validation (VRF + signatures + Merkle root) takes milliseconds, so
 * 5 s only trips on a stuck validator, whose message is then IGNOREd. */
const VALIDATE_TIMEOUT_MS = 5_000;

/** Room in a gossip RPC frame for everything but the payload: signature (64 B), public key
 * and peer id (~80 B), topic, seqno and protobuf tags. 1 KiB is ample. */
const RPC_OVERHEAD_BYTES = 1024;

const toGossip: Record<Verdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject,
};

function parseAddr(addr: string, field: string): Multiaddr {
  try {
    return multiaddr(addr);
  } catch (e) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `${field}: expected a multiaddr like /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo..., received ${JSON.stringify(addr)}`, {}, { cause: e });
  }
}

function parseTarget(peerOrAddr: string): PeerId | Multiaddr {
  if (typeof peerOrAddr !== 'string' || peerOrAddr.length === 0) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `peer: expected a peer id or multiaddr, received ${String(peerOrAddr)}`);
  }
  if (peerOrAddr.startsWith('/')) return parseAddr(peerOrAddr, 'peer');
  try {
    return peerIdFromString(peerOrAddr);
  } catch (e) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `peer: expected a peer id (12D3Koo...) or multiaddr, received ${JSON.stringify(peerOrAddr.slice(0, 60))}`, {}, { cause: e });
  }
}

function checkSize(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `${field}: expected an integer in 0..4294967295, received ${String(v)}`);
  }
  return v;
}

function checkTimeout(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 2 ** 31 - 1) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `${field}: expected milliseconds in 1..2147483647, received ${String(v)}`);
  }
  return v;
}

const TIMED_OUT = Symbol('timed out');

/** Resolve `p`, or TIMED_OUT if it takes longer than `ms` (a stuck validator must not pin
 * gossipsub's processing of a message forever; we cannot judge it, so it is IGNOREd). */
function withTimeout<T>(p: T | Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (!(p instanceof Promise)) return Promise.resolve(p);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

interface Subscription {
  spec: TopicSpec<unknown>;
  handlers: Array<(msg: unknown, from: string) => void>;
}

/**
 * Create and start a node. Listens on loopback port 0 by default and dials `bootstrap`.
 * @throws NetError NET_BAD_ARGUMENT for malformed addresses; libp2p errors if it cannot listen.
 */
export async function createDrillNode(opts: DrillNodeOptions = {}): Promise<DrillNode> {
  const log = (opts.logger ?? silentLogger).child('net');
  const privateKey = opts.privateKey ?? (await generateKeyPair('Ed25519'));
  if (privateKey.type !== 'Ed25519') {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `privateKey: expected an Ed25519 key, received ${privateKey.type}`);
  }
  const listen = opts.listen ?? [...defaultDrillNodeOptions.listen];
  for (const a of listen) parseAddr(a, 'listen');
  const maxRpc = checkSize('maxGossipRpcBytes', opts.maxGossipRpcBytes, defaultDrillNodeOptions.maxGossipRpcBytes);
  if (maxRpc < 4 * RPC_OVERHEAD_BYTES) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `maxGossipRpcBytes: expected at least ${4 * RPC_OVERHEAD_BYTES}, received ${maxRpc}`);
  }

  const libp2p = await createLibp2p({
    privateKey,
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      allow: opts.connectionAllow ?? [...defaultDrillNodeOptions.connectionAllow],
      reconnectRetries: RECONNECT_RETRIES,
      reconnectRetryInterval: RECONNECT_INTERVAL_MS,
      reconnectBackoffFactor: RECONNECT_BACKOFF,
    },
    services: {
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        msgIdFn: contentMsgId,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        emitSelf: false,
        maxInboundDataLength: maxRpc,
        // Our largest message plus protobuf framing must fit in one outbound RPC to each peer;
        // twice the inbound cap lets a few queue while a slow peer drains.
        maxOutboundBufferSize: 2 * maxRpc,
        scoreParams: {
          IPColocationFactorWhitelist: new Set(opts.colocationWhitelist ?? defaultDrillNodeOptions.colocationWhitelist),
        },
      }),
    },
  });
  const pubsub = libp2p.services.pubsub;
  // The GossipSub interface hides scoring; the implementation class has it (checked here so a
  // gossipsub upgrade that moves it fails loudly at start, not silently unscored).
  const scoring = pubsub as unknown as {
    score?: { params?: { topics?: Record<string, TopicScoreParams> } };
    getScore?: (id: string) => number;
    streamsOutbound?: Map<string, unknown>;
  };
  const scoreTopics = scoring.score?.params?.topics;
  const outbound = scoring.streamsOutbound;
  if (scoreTopics === undefined || typeof scoring.getScore !== 'function' || !(outbound instanceof Map)) {
    await libp2p.stop();
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, 'installed @libp2p/gossipsub exposes no score params; expected @libp2p/gossipsub@17');
  }
  const subs = new Map<string, Subscription>();
  const decoded = new WeakMap<Message, unknown>();
  const counters = new Map<string, TopicCounters>();
  const reqCounters = { sent: 0, failed: 0, served: 0, serveFailed: 0 };
  const stopWaiters = new Set<(err: Error) => void>();
  let stopped = false;

  const topicCounters = (name: string): TopicCounters => {
    let c = counters.get(name);
    if (!c) {
      c = { accept: 0, ignore: 0, reject: 0, byCode: {}, published: 0, handlerErrors: 0 };
      counters.set(name, c);
    }
    return c;
  };
  const verdictListeners = new Set<(ev: VerdictEvent) => void>();
  const count = (name: string, verdict: Verdict, code: string | undefined, from: string): void => {
    const c = topicCounters(name);
    c[verdict]++;
    if (verdict !== 'accept' && code !== undefined) c.byCode[code] = (c.byCode[code] ?? 0) + 1;
    for (const l of verdictListeners) {
      try {
        l({ topic: name, verdict, code: verdict === 'accept' ? undefined : code, from });
      } catch (e) {
        log.warn('verdict listener failed', { err: (e as Error)?.message });
      }
    }
  };

  const assertRunning = (): void => {
    if (stopped) throw new NetError(NetErrorCode.NET_STOPPED, 'network node is stopped');
  };

  const makeValidator = (spec: TopicSpec<unknown>): TopicValidatorFn => async (propagationSource, msg) => {
    // Never throw out of here: gossipsub maps unexpected throws to IGNORE, not REJECT.
    const from = msg.type === 'signed' ? msg.from.toString() : propagationSource.toString();
    let verdict: Verdict;
    let code: string | undefined;
    if (msg.data.length > spec.maxBytes) {
      verdict = 'reject';
      code = NetErrorCode.CODEC_TOO_LARGE;
    } else {
      let value: unknown;
      try {
        value = spec.decode(msg.data);
      } catch (e) {
        verdict = verdictFor(e, { fallback: 'reject' });
        code = e instanceof DrillError ? e.code : 'DECODE_FAILED';
        count(spec.name, verdict === 'accept' ? 'reject' : verdict, code, from);
        log.debug('gossip decode failed', { topic: spec.name, from, code, err: (e as Error)?.message });
        return verdict === 'accept' ? TopicValidatorResult.Reject : toGossip[verdict];
      }
      try {
        const v = spec.validate ? await withTimeout(spec.validate(value, from), VALIDATE_TIMEOUT_MS) : 'accept';
        if (v === 'accept' || v === 'ignore' || v === 'reject') {
          verdict = v;
          code = 'VALIDATOR';
        } else if (v === TIMED_OUT) {
          log.warn('topic validator timed out; ignoring message', { topic: spec.name, ms: VALIDATE_TIMEOUT_MS });
          verdict = 'ignore';
          code = 'VALIDATOR_TIMEOUT';
        } else {
          log.warn('topic validator returned a non-verdict; ignoring message', { topic: spec.name, got: String(v) });
          verdict = 'ignore';
          code = 'VALIDATOR_BAD_RESULT';
        }
      } catch (e) {
        verdict = verdictFor(e, { fallback: 'reject' });
        code = e instanceof DrillError ? e.code : 'VALIDATOR_THREW';
        log.debug('gossip validation failed', { topic: spec.name, from, code, err: (e as Error)?.message });
      }
      if (verdict === 'accept') decoded.set(msg, value);
    }
    count(spec.name, verdict, code, from);
    return toGossip[verdict];
  };

  pubsub.addEventListener('message', (evt) => {
    const msg = evt.detail;
    const sub = subs.get(msg.topic);
    if (!sub) return;
    let value: unknown;
    if (decoded.has(msg)) {
      value = decoded.get(msg);
      decoded.delete(msg);
    } else {
      // Not seen by our validator (e.g. subscribed while in flight): validate synchronously.
      try {
        if (msg.data.length > sub.spec.maxBytes) return;
        value = sub.spec.decode(msg.data);
      } catch {
        return;
      }
    }
    const from = msg.type === 'signed' ? msg.from.toString() : '';
    for (const h of sub.handlers) {
      try {
        const r = h(value, from) as unknown;
        if (r instanceof Promise) {
          r.catch((e: unknown) => {
            topicCounters(msg.topic).handlerErrors++;
            log.warn('gossip handler failed', { topic: msg.topic, err: (e as Error)?.message });
          });
        }
      } catch (e) {
        topicCounters(msg.topic).handlerErrors++;
        log.warn('gossip handler failed', { topic: msg.topic, err: (e as Error)?.message });
      }
    }
  });

  const peerId = libp2p.peerId.toString();
  const publicKey = privateKey.publicKey.raw;

  const node: DrillNode = {
    peerId,
    publicKey,
    privateKey,
    libp2p,

    multiaddrs() {
      return libp2p.getMultiaddrs().map((a) => a.toString());
    },

    async dial(addr) {
      assertRunning();
      const ma = parseAddr(addr, 'addr');
      try {
        await libp2p.dial(ma);
      } catch (e) {
        throw new NetError(NetErrorCode.NET_DIAL_FAILED, `dial ${addr} failed: ${(e as Error).message}`, { addr }, { cause: e });
      }
    },

    subscribe<T>(topic: TopicSpec<T>, handler: (msg: T, from: string) => void): void {
      assertRunning();
      checkTopicSpec(topic as TopicSpec<unknown>, maxRpc - RPC_OVERHEAD_BYTES);
      const existing = subs.get(topic.name);
      if (existing) {
        if (existing.spec !== (topic as TopicSpec<unknown>)) {
          throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `subscribe ${topic.name}: already subscribed with a different TopicSpec; share one spec object per topic`);
        }
        existing.handlers.push(handler as (msg: unknown, from: string) => void);
        return;
      }
      const spec = topic as TopicSpec<unknown>;
      subs.set(topic.name, { spec, handlers: [handler as (msg: unknown, from: string) => void] });
      topicCounters(topic.name);
      pubsub.topicValidators.set(topic.name, makeValidator(spec));
      scoreTopics[topic.name] = createTopicScoreParams(TOPIC_SCORE);
      pubsub.subscribe(topic.name);
      log.debug('subscribed', { topic: topic.name });
    },

    unsubscribe(topicName) {
      if (!subs.delete(topicName)) return;
      pubsub.topicValidators.delete(topicName);
      if (!stopped) pubsub.unsubscribe(topicName);
    },

    async publish<T>(topic: TopicSpec<T>, msg: T): Promise<{ recipients: number }> {
      assertRunning();
      const bytes = topic.encode(msg);
      // The gossip frame limit matters too: peers drop (and cut off) frames over it.
      const limit = Math.min(topic.maxBytes, maxRpc - RPC_OVERHEAD_BYTES);
      if (bytes.length > limit) {
        throw new NetError(NetErrorCode.CODEC_TOO_LARGE, `publish ${topic.name}: message is ${bytes.length} bytes, limit ${limit}`, { size: bytes.length, limit });
      }
      const res = await pubsub.publish(topic.name, bytes);
      topicCounters(topic.name).published++;
      return { recipients: res.recipients.length };
    },

    waitForTopicPeers(topicName, minPeers, timeoutMsArg) {
      if (!Number.isSafeInteger(minPeers) || minPeers < 0) {
        return Promise.reject(new NetError(NetErrorCode.NET_BAD_ARGUMENT, `minPeers: expected a non-negative integer, received ${String(minPeers)}`));
      }
      let timeoutMs: number;
      try {
        timeoutMs = checkTimeout('timeoutMs', timeoutMsArg, DEFAULT_TOPIC_PEERS_TIMEOUT_MS);
      } catch (e) {
        return Promise.reject(e as Error);
      }
      // A peer counts once it is subscribed AND our outbound gossip stream to it is open:
      // before that, gossipsub silently drops what we publish to it.
      const have = (): number => pubsub.getSubscribers(topicName).filter((p) => outbound.has(p.toString())).length;
      if (stopped) return Promise.reject(new NetError(NetErrorCode.NET_STOPPED, 'network node is stopped'));
      if (have() >= minPeers) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (have() >= minPeers) finish();
        };
        const cleanups: Array<() => void> = [];
        const finish = (err?: Error): void => {
          clearTimeout(timer);
          for (const c of cleanups) c();
          pubsub.removeEventListener('subscription-change', check);
          pubsub.removeEventListener('gossipsub:graft', check);
          stopWaiters.delete(finish);
          if (err) reject(err);
          else resolve();
        };
        const timer = setTimeout(() => {
          finish(new NetError(NetErrorCode.NET_TOPIC_PEERS_TIMEOUT, `waitForTopicPeers ${topicName}: ${have()} of ${minPeers} peers subscribed after ${timeoutMs} ms`, { topic: topicName, have: have(), need: minPeers }));
        }, timeoutMs);
        pubsub.addEventListener('subscription-change', check);
        pubsub.addEventListener('gossipsub:graft', check);
        // gossipsub emits no event when an outbound stream opens; re-check on a short tick.
        const poll = setInterval(check, TOPIC_PEERS_POLL_MS);
        cleanups.push(() => clearInterval(poll));
        stopWaiters.add(finish);
      });
    },

    async handle(protocol, handler, hopts = {}) {
      assertRunning();
      const maxRequestBytes = checkSize('maxRequestBytes', hopts.maxRequestBytes, DEFAULT_MAX_REQUEST_BYTES);
      if (typeof handler !== 'function') throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `handle ${String(protocol)}: handler: expected a function`);
      if (typeof protocol !== 'string' || !protocol.startsWith('/')) {
        throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `protocol: expected an id like /matrix-drill/x/1.0.0, received ${JSON.stringify(protocol)}`);
      }
      try {
        await libp2p.handle(protocol, (stream: Stream, connection: Connection) => serve(stream, connection, protocol, handler, maxRequestBytes), {
          maxInboundStreams: MAX_INBOUND_STREAMS,
        });
      } catch (e) {
        throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `handle ${protocol}: ${(e as Error).message}`, { protocol }, { cause: e });
      }
    },

    async unhandle(protocol) {
      if (!stopped) await libp2p.unhandle(protocol);
    },

    async request(peerOrAddr, protocol, req, ropts = {}) {
      assertRunning();
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

    onPeer(event, cb) {
      const name = event === 'connect' ? 'peer:connect' : 'peer:disconnect';
      const listener = (evt: CustomEvent<PeerId>): void => {
        try {
          cb(evt.detail.toString());
        } catch (e) {
          log.warn('peer listener failed', { event, err: (e as Error)?.message });
        }
      };
      libp2p.addEventListener(name, listener);
      return () => libp2p.removeEventListener(name, listener);
    },

    peers() {
      return libp2p.getPeers().map((p) => p.toString());
    },

    peerScore(id) {
      return scoring.getScore!(id);
    },

    metrics() {
      const topics: Record<string, TopicCounters> = {};
      for (const [name, c] of counters) topics[name] = { ...c, byCode: { ...c.byCode } };
      return { topics, requests: { ...reqCounters } };
    },

    onVerdict(cb) {
      verdictListeners.add(cb);
      return () => verdictListeners.delete(cb);
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      for (const finish of [...stopWaiters]) finish(new NetError(NetErrorCode.NET_STOPPED, 'network node stopped while waiting'));
      for (const name of subs.keys()) pubsub.topicValidators.delete(name);
      subs.clear();
      await libp2p.stop();
      log.debug('stopped', { peerId });
    },
  };

  async function serve(stream: Stream, connection: Connection, protocol: string, handler: (req: Uint8Array, from: string) => Promise<Uint8Array>, maxRequestBytes: number): Promise<void> {
    const from = connection.remotePeer.toString();
    const timer = setTimeout(() => {
      stream.abort(new NetError(NetErrorCode.NET_TIMEOUT, `request on ${protocol} not received within ${REQUEST_READ_TIMEOUT_MS} ms`));
    }, REQUEST_READ_TIMEOUT_MS);
    let status = STATUS_OK;
    let body: Uint8Array;
    try {
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
    stopWaiters.add(stopOnStop);
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
      stopWaiters.delete(stopOnStop);
    }
  }

  for (const addr of opts.bootstrap ?? []) {
    try {
      assertRunning();
      const conn = await libp2p.dial(parseAddr(addr, 'bootstrap'));
      // Tagged peers are redialled by libp2p when the connection drops (e.g. a coordinator
      // restarts): RECONNECT_RETRIES attempts with growing back-off.
      await libp2p.peerStore.merge(conn.remotePeer, { tags: { [KEEP_ALIVE]: { value: 1 } } });
    } catch (e) {
      log.warn('bootstrap dial failed', { addr, err: (e as Error).message });
    }
  }
  log.info('network node started', { peerId, addrs: node.multiaddrs() });
  return node;
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
