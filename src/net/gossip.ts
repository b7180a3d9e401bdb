/**
 * Gossip: typed topics over gossipsub with validators that run inside gossipsub (so junk is
 * REJECTed and costs its sender score before any handler sees it), content-hash message ids,
 * per-topic score parameters and verdict counters. Domain rules live in the TopicSpec
 * validators supplied by chain/, coordinator/ and worker/; this module only turns their
 * verdicts and errors into gossipsub results (`verdictFor`) and counts them.
 */
import { createHash } from 'node:crypto';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { GossipSub, Message, TopicValidatorFn } from '@libp2p/gossipsub';
import { createTopicScoreParams } from '@libp2p/gossipsub/score';
import type { TopicScoreParams } from '@libp2p/gossipsub/score';
import type { Logger } from '../util/log.ts';
import { DrillError } from '../util/errors.ts';
import { NetError, NetErrorCode } from './errors.ts';
import { checkTopicSpec, verdictFor } from './topics.ts';
import type { TopicSpec, Verdict } from './topics.ts';
import { DEFAULT_TOPIC_PEERS_TIMEOUT_MS } from './constants.ts';
import { checkTimeout } from './checks.ts';
import type { Lifecycle } from './lifecycle.ts';

/**
 * Topic score parameters: our topics are low-rate, so the mesh-delivery-deficit penalties
 * (which punish quiet peers) are off. An invalid (REJECTed) message costs -10·n² (weight ×
 * count²) against the thresholds of SCORE_THRESHOLDS: one honest mistake (-10) stays at the
 * gossip threshold, two (-40) stop our gossip to the peer, three (-90) graylist it — and a
 * graylisted peer is disconnected (see createGossip). The count decays 1 % a second (half-life
 * ~70 s, gone after ~4 min), so junk sent slowly still adds up: one rejected message every
 * ~30 s keeps a peer past the graylist. Positive credit (time in mesh, first deliveries) is
 * capped at +10 per topic (gossipsub's topicScoreCap), so good messages cannot buy bad ones.
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
  invalidMessageDeliveriesDecay: 0.99,
} as const;

/**
 * Score thresholds (gossipsub's defaults, stated so the topic parameters above are tuned
 * against them):
 * - gossipThreshold -10: below it we send the peer no gossip (IHAVE) and ignore its gossip
 *   (two rejected messages);
 * - publishThreshold -50: below it we do not publish our own messages to it;
 * - graylistThreshold -80: below it gossipsub ignores every RPC from it — and createGossip then
 *   disconnects and bans it (three rejected messages);
 * - acceptPXThreshold 100: peer exchange only from very well-behaved peers (we use no PX);
 * - opportunisticGraftThreshold 5: low, our mesh scores are small (time in mesh counts 0.01/s).
 */
export const SCORE_THRESHOLDS = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 100,
  opportunisticGraftThreshold: 5,
} as const;

/** Message id = sha256(topic ‖ 0x00 ‖ data): content-addressed, so the same payload relayed by
 * two routes is deduplicated, and the same bytes on two topics are distinct messages. */
export function contentMsgId(msg: Message): Uint8Array {
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
export const RPC_OVERHEAD_BYTES = 1024;

const toGossip: Record<Verdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject,
};

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

/** One gossip validation outcome. */
export interface VerdictEvent {
  topic: string;
  verdict: Verdict;
  /** Error code behind a non-accept verdict ('VALIDATOR' when validate() returned it). */
  code?: string;
  /** Signing originator of the message. */
  from: string;
}


/** The gossip half of a DrillNode (see DrillNode for each method's contract). */
export interface Gossip {
  subscribe<T>(topic: TopicSpec<T>, handler: (msg: T, from: string) => void): void;
  unsubscribe(topicName: string): void;
  publish<T>(topic: TopicSpec<T>, msg: T): Promise<{ recipients: number }>;
  waitForTopicPeers(topicName: string, minPeers: number, timeoutMs?: number): Promise<void>;
  peerScore(peerId: string): number;
  onVerdict(cb: (ev: VerdictEvent) => void): () => void;
  /** Snapshot of the per-topic counters. */
  counters(): Record<string, TopicCounters>;
  /** Drop every subscription's validator (the node is stopping). */
  close(): void;
}

/** What the gossip half does with a peer whose score fell below the graylist threshold. */
export interface GossipOptions {
  /** Disconnect (and ban) a graylisted peer; called once per heartbeat while it stays connected. */
  onGraylisted?: (peerId: string, score: number) => void;
}

/**
 * Wire typed topics onto a gossipsub instance. On every gossipsub heartbeat, connected peers
 * scored below SCORE_THRESHOLDS.graylistThreshold are handed to `onGraylisted` (gossipsub
 * itself only ignores their RPCs; they could keep their connection and its other protocols).
 * @throws NetError NET_BAD_ARGUMENT when the installed gossipsub exposes no score params
 *   (scoring is how peers that send junk lose standing; we refuse to run unscored).
 */
export function createGossip(pubsub: GossipSub, maxRpc: number, life: Lifecycle, log: Logger, gopts: GossipOptions = {}): Gossip {
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
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, 'installed @libp2p/gossipsub exposes no score params; expected @libp2p/gossipsub@17');
  }
  const subs = new Map<string, Subscription>();
  const decoded = new WeakMap<Message, unknown>();
  const counters = new Map<string, TopicCounters>();

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

  /**
   * The topic's checks on one message, in order: size, decode, validate (with a time limit).
   * Never throws; counts the verdict. Used inside gossipsub's validator and for any message that
   * reaches our 'message' listener without having passed it.
   */
  const judge = async (spec: TopicSpec<unknown>, data: Uint8Array, from: string): Promise<{ verdict: Verdict; value?: unknown }> => {
    let verdict: Verdict;
    let code: string | undefined;
    let value: unknown;
    if (data.length > spec.maxBytes) {
      verdict = 'reject';
      code = NetErrorCode.CODEC_TOO_LARGE;
    } else {
      try {
        value = spec.decode(data);
      } catch (e) {
        verdict = verdictFor(e, { fallback: 'reject' });
        code = e instanceof DrillError ? e.code : 'DECODE_FAILED';
        if (verdict === 'accept') verdict = 'reject';
        count(spec.name, verdict, code, from);
        log.debug('gossip decode failed', { topic: spec.name, from, code, err: (e as Error)?.message });
        return { verdict };
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
    }
    count(spec.name, verdict, code, from);
    return verdict === 'accept' ? { verdict, value } : { verdict };
  };

  const makeValidator = (spec: TopicSpec<unknown>): TopicValidatorFn => async (propagationSource, msg) => {
    // Never throw out of here: gossipsub maps unexpected throws to IGNORE, not REJECT.
    const from = msg.type === 'signed' ? msg.from.toString() : propagationSource.toString();
    const j = await judge(spec, msg.data, from);
    if (j.verdict === 'accept') decoded.set(msg, j.value);
    return toGossip[j.verdict];
  };

  const dispatch = (sub: Subscription, topic: string, value: unknown, from: string): void => {
    for (const h of sub.handlers) {
      try {
        const r = h(value, from) as unknown;
        if (r instanceof Promise) {
          r.catch((e: unknown) => {
            topicCounters(topic).handlerErrors++;
            log.warn('gossip handler failed', { topic, err: (e as Error)?.message });
          });
        }
      } catch (e) {
        topicCounters(topic).handlerErrors++;
        log.warn('gossip handler failed', { topic, err: (e as Error)?.message });
      }
    }
  };

  pubsub.addEventListener('message', (evt) => {
    const msg = evt.detail;
    const sub = subs.get(msg.topic);
    if (!sub) return;
    if (decoded.has(msg)) {
      const value = decoded.get(msg);
      decoded.delete(msg);
      dispatch(sub, msg.topic, value, msg.type === 'signed' ? msg.from.toString() : '');
      return;
    }
    // Not seen by our validator (it was not installed yet, or gossipsub delivered it another
    // way): run the topic's full checks now and hand it on only if they accept it. Unsigned
    // messages never reach a handler (StrictSign: nobody to hold responsible).
    if (msg.type !== 'signed') return;
    const from = msg.from.toString();
    void judge(sub.spec, msg.data, from).then((j) => {
      if (j.verdict === 'accept' && subs.get(msg.topic) === sub) dispatch(sub, msg.topic, j.value, from);
    });
  });

  // Graylisted peers: gossipsub ignores their RPCs; we also cut them off (onGraylisted).
  if (gopts.onGraylisted) {
    const onGraylisted = gopts.onGraylisted;
    pubsub.addEventListener('gossipsub:heartbeat', () => {
      if (life.stopped) return;
      for (const p of pubsub.getPeers()) {
        const id = p.toString();
        const score = scoring.getScore!(id);
        if (score < SCORE_THRESHOLDS.graylistThreshold) onGraylisted(id, score);
      }
    });
  }

  return {
    subscribe<T>(topic: TopicSpec<T>, handler: (msg: T, from: string) => void): void {
      life.assertRunning();
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
      if (!life.stopped) pubsub.unsubscribe(topicName);
    },

    async publish<T>(topic: TopicSpec<T>, msg: T): Promise<{ recipients: number }> {
      life.assertRunning();
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
      if (life.stopped) return Promise.reject(new NetError(NetErrorCode.NET_STOPPED, 'network node is stopped'));
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
          life.waiters.delete(finish);
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
        life.waiters.add(finish);
      });
    },
    peerScore(id) {
      return scoring.getScore!(id);
    },
    onVerdict(cb) {
      verdictListeners.add(cb);
      return () => verdictListeners.delete(cb);
    },

    counters() {
      const topics: Record<string, TopicCounters> = {};
      for (const [name, c] of counters) topics[name] = { ...c, byCode: { ...c.byCode } };
      return topics;
    },

    close() {
      for (const name of subs.keys()) pubsub.topicValidators.delete(name);
      subs.clear();
    },
  };
}
