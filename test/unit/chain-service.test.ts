/**
 * ChainService logic without sockets: an in-memory fake network (full mesh, synchronous
 * delivery through each topic's validator, request/response by peer id, a partition switch),
 * fake timers and a fake clock. Two producers that both win every slot (c = 1) are partitioned,
 * grow competing branches (one carrying a credit record), and are reconnected: each fetches the
 * other's branch as unknown parents, fork choice picks one head on both, the loser reorgs, and
 * the losing branch's credit record is re-published and ends up on the agreed chain exactly once.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { DrillNode } from '../../src/net/node.ts';
import type { TopicSpec } from '../../src/net/topics.ts';
import { verdictFor } from '../../src/net/topics.ts';
import { ChainService } from '../../src/chain/service.ts';
import { makeDevGenesis } from '../../src/chain/devgenesis.ts';
import { creditRecordId } from '../../src/pod/credit.ts';
import { COORD_SEED, credit, seed } from './chain-fixture.ts';

class FakeNet {
  readonly nodes: FakeNode[] = [];
  partitioned = false;
  verdicts: Array<{ topic: string; verdict: string; code?: string }> = [];
  reachable(from: FakeNode): FakeNode[] {
    return this.partitioned ? [] : this.nodes.filter((n) => n !== from);
  }
}

class FakeNode {
  readonly peerId: string;
  readonly privateKey: PrivateKey;
  readonly net: FakeNet;
  readonly subs = new Map<string, { spec: TopicSpec<unknown>; handler: (m: unknown, from: string) => void }>();
  readonly protocols = new Map<string, (req: Uint8Array, from: string) => Promise<Uint8Array>>();
  constructor(net: FakeNet, key: PrivateKey) {
    this.net = net;
    this.privateKey = key;
    this.peerId = peerIdFromPrivateKey(key).toString();
    net.nodes.push(this);
  }
  subscribe<T>(spec: TopicSpec<T>, handler: (m: T, from: string) => void): void {
    this.subs.set(spec.name, { spec: spec as TopicSpec<unknown>, handler: handler as (m: unknown, from: string) => void });
  }
  unsubscribe(name: string): void {
    this.subs.delete(name);
  }
  publish<T>(spec: TopicSpec<T>, msg: T): Promise<{ recipients: number }> {
    const bytes = spec.encode(msg);
    let recipients = 0;
    for (const other of this.net.reachable(this)) if (other.deliver(spec.name, bytes, this.peerId)) recipients++;
    return Promise.resolve({ recipients });
  }
  deliver(topic: string, bytes: Uint8Array, from: string): boolean {
    const sub = this.subs.get(topic);
    if (!sub) return false;
    let verdict: string;
    let code: string | undefined;
    let value: unknown;
    try {
      value = sub.spec.decode(bytes);
      verdict = (sub.spec.validate?.(value, from) as string | undefined) ?? 'accept';
    } catch (e) {
      verdict = verdictFor(e, { fallback: 'reject' });
      code = (e as { code?: string }).code;
    }
    this.net.verdicts.push({ topic, verdict, code });
    if (verdict === 'accept') sub.handler(value, from);
    return true;
  }
  async handle(protocol: string, h: (req: Uint8Array, from: string) => Promise<Uint8Array>): Promise<void> {
    this.protocols.set(protocol, h);
  }
  async unhandle(protocol: string): Promise<void> {
    this.protocols.delete(protocol);
  }
  async request(peer: string, protocol: string, req: Uint8Array): Promise<Uint8Array> {
    const other = this.net.reachable(this).find((n) => n.peerId === peer);
    const h = other?.protocols.get(protocol);
    if (!h) throw new Error(`no route to ${peer} ${protocol}`);
    return h(req, this.peerId);
  }
  peers(): string[] {
    return this.net.reachable(this).map((n) => n.peerId);
  }
}

const T0 = 1_700_000_000_000;
const SLOT = 1000;

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

describe('ChainService (fake network, fake clock)', () => {
  it('resolves a partition: fetches the other branch, agrees on one head, keeps every credit record exactly once', async () => {
    const net = new FakeNet();
    const a = new FakeNode(net, await generateKeyPairFromSeed('Ed25519', seed('svc-a')));
    const b = new FakeNode(net, await generateKeyPairFromSeed('Ed25519', seed('svc-b')));
    const genesis = makeDevGenesis({ genesisTime: T0 + SLOT, slotMs: SLOT, epochSlots: 4, c: 1, maxClockDriftMs: 0, coordinatorSeed: COORD_SEED, allocations: [{ peerId: a.peerId, flops: 1000 }, { peerId: b.peerId, flops: 1000 }] });
    const sa = new ChainService({ node: a as unknown as DrillNode, genesis });
    const sb = new ChainService({ node: b as unknown as DrillNode, genesis });
    await sa.start();
    await sb.start();
    const reorgs: string[] = [];
    sa.on('reorg', () => reorgs.push('a'));
    sb.on('reorg', () => reorgs.push('b'));

    // Connected: one block per slot (the first timer to fire wins; the other sees the slot taken).
    await vi.advanceTimersByTimeAsync(SLOT * 3 + 1);
    expect(sa.state.head.hash).toBe(sb.state.head.hash);
    expect(sa.state.head.height).toBe(3);

    // Partitioned: both extend their own branch, each carrying a record the other never saw.
    net.partitioned = true;
    const recA = credit([b.peerId], 777);
    const recB = credit([a.peerId], 555);
    await sa.submitCredit(recA);
    await sb.submitCredit(recB);
    await vi.advanceTimersByTimeAsync(SLOT * 3);
    expect(sa.state.head.hash).not.toBe(sb.state.head.hash);
    expect(sa.state.head.height).toBe(6);
    expect(sb.state.head.height).toBe(6);

    // Reconnected: the next blocks have unknown parents; each side fetches the other's branch.
    net.partitioned = false;
    await vi.advanceTimersByTimeAsync(SLOT * 3);
    expect(sa.state.head.hash).toBe(sb.state.head.hash);
    expect(reorgs.length).toBeGreaterThanOrEqual(1);
    expect(net.verdicts.some((v) => v.code === 'BLOCK_PARENT_UNKNOWN' && v.verdict === 'ignore')).toBe(true);
    expect(net.verdicts.some((v) => v.verdict === 'reject')).toBe(false);
    // Both records are on the agreed chain exactly once: the losing branch's record went back
    // to its producer's mempool, was re-published and re-included.
    for (const rec of [recA, recB]) {
      const id = creditRecordId(rec);
      const carrying = sa.state.canonicalChain().filter((h) => sa.state.getNode(h)!.creditIds.includes(id));
      expect(carrying).toHaveLength(1);
    }
    expect([...sa.state.ledger.window()]).toEqual([...sb.state.ledger.window()]);
    expect(sa.status().pendingCredits).toBe(0);
    await sa.stop();
    await sb.stop();
  });
});
