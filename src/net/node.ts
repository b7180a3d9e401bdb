/**
 * The matrix-drill libp2p node: TCP + Noise + Yamux + Identify + gossipsub (StrictSign,
 * content-hash message ids). This module composes the node's parts and owns its life:
 *  - gossip.ts     typed topics with validators inside gossipsub, scoring, verdict counters;
 *  - reqresp.ts    framed request/response with size caps both ways;
 *  - bootstrap.ts  dialling the peers a node starts with;
 *  - checks.ts     argument checks; lifecycle.ts the running/stopped state shared by them.
 */
import { createLibp2p, tcp, noise, yamux, identify, gossipsub, StrictSign, generateKeyPair, peerIdFromString } from '../vendor/libp2p.ts';
import type { Libp2p, Libp2pOptions } from 'libp2p';
import type { Identify } from '@libp2p/identify';
import type { GossipSub } from '@libp2p/gossipsub';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { NetError, NetErrorCode } from './errors.ts';
import type { TopicSpec } from './topics.ts';
import {
  DEFAULT_LISTEN, GOSSIP_MAX_RPC_BYTES, COLOCATION_WHITELIST, CONNECTION_ALLOW,
  RECONNECT_RETRIES, RECONNECT_INTERVAL_MS, RECONNECT_BACKOFF, GRAYLIST_BAN_MS,
} from './constants.ts';
import { checkSize, parseAddr } from './checks.ts';
import { Lifecycle } from './lifecycle.ts';
import { createGossip, contentMsgId, RPC_OVERHEAD_BYTES, SCORE_THRESHOLDS } from './gossip.ts';
import type { TopicCounters, VerdictEvent } from './gossip.ts';
import { createReqResp } from './reqresp.ts';
import type { RequestOptions, HandleOptions, RequestCounters } from './reqresp.ts';
import { dialBootstrap } from './bootstrap.ts';

export type { PrivateKey } from '@libp2p/interface';
export type { TopicCounters, VerdictEvent } from './gossip.ts';
export type { RequestOptions, HandleOptions } from './reqresp.ts';

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
  /** How long a peer disconnected for its gossip score stays banned (no connection either way). */
  banMs?: number;
  /** libp2p's metrics implementation (e.g. @libp2p/prometheus-metrics), for /metrics. */
  metrics?: Libp2pOptions['metrics'];
}

export const defaultDrillNodeOptions = {
  listen: [...DEFAULT_LISTEN],
  bootstrap: [] as string[],
  maxGossipRpcBytes: GOSSIP_MAX_RPC_BYTES,
  colocationWhitelist: [...COLOCATION_WHITELIST],
  connectionAllow: [...CONNECTION_ALLOW],
  banMs: GRAYLIST_BAN_MS,
} as const;

export interface NetMetrics {
  topics: Record<string, TopicCounters>;
  requests: RequestCounters;
  /** Peers disconnected and banned because their gossip score fell below the graylist threshold. */
  peersBanned: number;
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
  /**
   * The IP address a connected peer reaches us from (its first open connection), or null when
   * it is not connected or not over IP. Coordinators use it so that two replicas of a unit
   * never go to two peers behind one address.
   */
  remoteIp(peerId: string): string | null;
  /** Gossipsub score of a peer (negative after it sent rejected messages). */
  peerScore(peerId: string): number;
  /** Whether a peer is banned (disconnected for its gossip score; no connection either way until the ban ends). */
  isBanned(peerId: string): boolean;
  /** Plain counters: accept/ignore/reject per topic, request counts. */
  metrics(): NetMetrics;
  /** Observe every gossip verdict our validators reach (for metrics exporters, logs and
   * tests); returns an unsubscribe function. Listener errors are logged and swallowed. */
  onVerdict(cb: (ev: VerdictEvent) => void): () => void;
  stop(): Promise<void>;
}

export interface DrillServices extends Record<string, unknown> {
  pubsub: GossipSub;
  identify: Identify;
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

  // Peers cut off for their gossip score: refused both ways until their ban ends.
  const bans = new Map<string, number>();
  const banMs = opts.banMs ?? defaultDrillNodeOptions.banMs;
  let peersBanned = 0;
  const isBanned = (id: string): boolean => {
    const until = bans.get(id);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    bans.delete(id);
    return false;
  };
  const libp2p = await createLibp2p({
    privateKey,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    addresses: { listen },
    connectionGater: {
      denyDialPeer: (peer: PeerId) => isBanned(peer.toString()),
      denyInboundEncryptedConnection: (peer: PeerId) => isBanned(peer.toString()),
      denyOutboundEncryptedConnection: (peer: PeerId) => isBanned(peer.toString()),
    },
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
        scoreThresholds: { ...SCORE_THRESHOLDS },
      }),
    },
  });
  const life = new Lifecycle();
  let gossip;
  try {
    gossip = createGossip(libp2p.services.pubsub, maxRpc, life, log, {
      onGraylisted: (id, score) => {
        if (isBanned(id)) return;
        // The ban holds as long as gossipsub keeps a departed peer's score (it does not decay
        // while the peer is away), so reconnecting cannot launder it; banMs bounds it.
        bans.set(id, Date.now() + banMs);
        peersBanned++;
        log.warn('peer graylisted for invalid gossip; disconnecting and banning it', { peer: id, score, banMs });
        void libp2p.hangUp(peerIdFromString(id)).catch((e: unknown) => log.debug('hang up failed', { peer: id, err: (e as Error)?.message }));
      },
    });
  } catch (e) {
    await libp2p.stop();
    throw e;
  }
  const rr = createReqResp(libp2p, life, log);
  const peerId = libp2p.peerId.toString();

  const node: DrillNode = {
    peerId,
    publicKey: privateKey.publicKey.raw,
    privateKey,
    libp2p,

    multiaddrs() {
      return libp2p.getMultiaddrs().map((a) => a.toString());
    },

    async dial(addr) {
      life.assertRunning();
      const ma = parseAddr(addr, 'addr');
      try {
        await libp2p.dial(ma);
      } catch (e) {
        throw new NetError(NetErrorCode.NET_DIAL_FAILED, `dial ${addr} failed: ${(e as Error).message}`, { addr }, { cause: e });
      }
    },

    subscribe: (topic, handler) => gossip.subscribe(topic, handler),
    unsubscribe: (name) => gossip.unsubscribe(name),
    publish: (topic, msg) => gossip.publish(topic, msg),
    waitForTopicPeers: (name, minPeers, timeoutMs) => gossip.waitForTopicPeers(name, minPeers, timeoutMs),
    handle: (protocol, handler, hopts) => rr.handle(protocol, handler, hopts),
    unhandle: (protocol) => rr.unhandle(protocol),
    request: (peerOrAddr, protocol, req, ropts) => rr.request(peerOrAddr, protocol, req, ropts),

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

    remoteIp(id) {
      for (const c of libp2p.getConnections()) {
        if (c.remotePeer.toString() !== id || c.status !== 'open') continue;
        const ip = c.remoteAddr.getComponents().find((x) => x.name === 'ip4' || x.name === 'ip6');
        if (ip?.value) return ip.value;
      }
      return null;
    },

    peerScore: (id) => gossip.peerScore(id),
    isBanned,

    metrics() {
      return { topics: gossip.counters(), requests: rr.counters(), peersBanned };
    },

    onVerdict: (cb) => gossip.onVerdict(cb),

    async stop() {
      if (!life.stop()) return;
      gossip.close();
      await libp2p.stop();
      log.debug('stopped', { peerId });
    },
  };

  await dialBootstrap(libp2p, opts.bootstrap ?? [], life, log);
  log.info('network node started', { peerId, addrs: node.multiaddrs() });
  return node;
}
