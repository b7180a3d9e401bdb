/**
 * A hostile block producer (a real libp2p node holding real lottery weight) that makes two —
 * then a flood of — different blocks for one slot. An honest node accepts the first, rejects
 * the rest as equivocation (REJECT: the flooder loses gossip score), keeps one copy of the
 * evidence and publishes it; an honest producer includes it in a block, and from then on every
 * node bans the equivocator's lottery weight for the genesis' faultEpochs. Memory stays
 * bounded: one block per producer and slot enters the block tree.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { createDrillNode } from '../../src/net/node.ts';
import type { DrillNode } from '../../src/net/node.ts';
import { ChainService } from '../../src/chain/service.ts';
import { ChainState } from '../../src/chain/state.ts';
import { makeDevGenesis } from '../../src/chain/devgenesis.ts';
import { blocksTopic, BLOCKS_TOPIC_NAME, FAULTS_TOPIC_NAME } from '../../src/chain/topics.ts';
import { BlockErrorCode } from '../../src/chain/errors.ts';
import { producerKeyFromPrivateKey, slotTicket, buildBlock } from '../../src/chain/produce.ts';
import { slotAt, epochOfSlot } from '../../src/chain/epoch.ts';
import { COORD_SEED, credit } from '../unit/chain-fixture.ts';
import { heapUsed } from './harness.ts';

const nodes: DrillNode[] = [];
const services: ChainService[] = [];
afterAll(async () => {
  for (const s of services) await s.stop();
  await Promise.all(nodes.map((n) => n.stop()));
});

describe('a producer that equivocates and floods one slot', () => {
  it('first block kept, the rest rejected, evidence carried in a block, the producer banned, memory flat', async () => {
    for (let i = 0; i < 3; i++) nodes.push(await createDrillNode());
    const [a, b, h] = nodes as [DrillNode, DrillNode, DrillNode];
    await b.dial(a.multiaddrs()[0]!);
    await h.dial(b.multiaddrs()[0]!);
    // A (honest) and H (hostile) hold weight; c = 1: each wins every slot. B follows.
    const genesis = makeDevGenesis({
      genesisTime: Date.now() + 300, slotMs: 250, epochSlots: 4, c: 1, lookbackEpochs: 1, faultEpochs: 2,
      coordinatorSeed: COORD_SEED, allocations: [{ peerId: a.peerId, flops: 1000 }, { peerId: h.peerId, flops: 1000 }],
    });
    const sa = new ChainService({ node: a, genesis });
    const sb = new ChainService({ node: b, genesis }, { produce: false });
    services.push(sa, sb);
    await sa.start();
    await sb.start();
    await Promise.all([b.waitForTopicPeers(BLOCKS_TOPIC_NAME, 1), b.waitForTopicPeers(FAULTS_TOPIC_NAME, 1), h.waitForTopicPeers(BLOCKS_TOPIC_NAME, 1)]);

    const rejected: string[] = [];
    b.onVerdict((ev) => {
      if (ev.topic === BLOCKS_TOPIC_NAME && ev.from === h.peerId && ev.verdict === 'reject') rejected.push(ev.code ?? '');
    });
    // H builds, on genesis, many different valid blocks for one slot (different credit records).
    const key = producerKeyFromPrivateKey(h.privateKey);
    const local = new ChainState(genesis);
    const slot = Math.max(0, slotAt(genesis, Date.now()));
    const t = slotTicket(local, key, slot, local.genesisHash);
    expect(t.won).toBe(true);
    const blocks = Array.from({ length: 40 }, () => buildBlock(local, key, slot, local.genesisHash, t, [credit([h.peerId], 1)]));
    const sizeBefore = sb.state.size;
    const heapBefore = heapUsed();
    await h.publish(blocksTopic(), blocks[0]!);
    // The first one is accepted by B.
    await new Promise<void>((resolve) => {
      const check = (): void => ([...sb.state.nodes()].some((n) => n.producer === h.peerId) ? resolve() : void setTimeout(check, 5));
      check();
    });
    for (const blk of blocks.slice(1)) await h.publish(blocksTopic(), blk);
    // Rejections cost H gossip score; once it is graylisted B stops even looking at its messages.
    // Wait until its score is negative (gossipsub caches a peer's score for a moment: poll it).
    await new Promise<void>((resolve, reject) => {
      const until = Date.now() + 20_000;
      const check = (): void => (b.peerScore(h.peerId) < 0 && rejected.length > 0 ? resolve() : Date.now() > until ? reject(new Error(`score ${b.peerScore(h.peerId)}, ${rejected.length} rejected`)) : void setTimeout(check, 50));
      check();
    });
    expect(new Set(rejected)).toEqual(new Set([BlockErrorCode.EQUIVOCATION]));
    // One block of H's slot in B's tree (plus whatever A produced meanwhile).
    expect([...sb.state.nodes()].filter((n) => n.producer === h.peerId && n.slot === slot)).toHaveLength(1);
    expect(sb.state.size - sizeBefore).toBeLessThan(1 + 40);
    expect(heapUsed() - heapBefore).toBeLessThan(16 * 1024 * 1024);
    // Evidence: kept by B and published (at most one item for (H, slot)); A includes it in a block.
    expect(sb.pendingFaults().filter((f) => f.kind === 'equivocation').length).toBeLessThanOrEqual(1);
    const carried = await new Promise<number>((resolve) => {
      const on = (): void => {
        for (const hash of sb.state.canonicalChain()) {
          const n = sb.state.getNode(hash)!;
          if (n.block?.faults.some((f) => f.kind === 'equivocation' && f.producer === h.peerId)) {
            sb.off('head', on);
            return resolve(n.epoch);
          }
        }
      };
      sb.on('head', on);
      on();
    });
    // From the epoch of the block carrying it, H's weight is banned for faultEpochs snapshot buckets.
    expect(sb.state.ledger.isBanned(h.peerId, carried)).toBe(true);
    expect(sb.state.ledger.isBanned(h.peerId, carried + 1)).toBe(true);
    expect(sb.state.ledger.isBanned(h.peerId, carried + 2)).toBe(false);
    const snapEpoch = carried + 1 + genesis.lookbackEpochs; // the epoch whose snapshot bucket is `carried`
    expect(sb.state.epochSnapshot(sb.state.head.hash, snapEpoch).weights.has(h.peerId)).toBe(false);
    expect(epochOfSlot(genesis, slot)).toBeLessThanOrEqual(carried);
  });
});
