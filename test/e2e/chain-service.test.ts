/**
 * ChainService on real libp2p nodes: invalid blocks are REJECTed with their code, credit
 * records published by a coordinator end up in blocks, a late joiner fetches the parents it
 * lacks and converges, and a restarted node resumes from its SQLite store.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDrillNode } from '../../src/net/node.ts';
import type { DrillNode } from '../../src/net/node.ts';
import { ChainService } from '../../src/chain/service.ts';
import type { HeadEvent } from '../../src/chain/service.ts';
import { makeDevGenesis } from '../../src/chain/devgenesis.ts';
import { blocksTopic, publishCreditRecord, BLOCKS_TOPIC_NAME, CREDITS_TOPIC_NAME } from '../../src/chain/topics.ts';
import { BlockErrorCode } from '../../src/chain/errors.ts';
import { creditRecordId } from '../../src/pod/credit.ts';
import { COORD_SEED, credit } from '../unit/chain-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'drill-chain-svc-'));
const nodes: DrillNode[] = [];
const services: ChainService[] = [];
afterAll(async () => {
  for (const s of services) await s.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the first head event of `s` satisfying `pred` (or at once if the head already does). */
function headWhere(s: ChainService, pred: (h: HeadEvent) => boolean): Promise<HeadEvent> {
  const now = { hash: s.state.head.hash, height: s.state.head.height, slot: s.state.head.slot };
  if (pred(now)) return Promise.resolve(now);
  return new Promise((resolve) => {
    const on = (h: HeadEvent): void => {
      if (pred(h)) {
        s.off('head', on);
        resolve(h);
      }
    };
    s.on('head', on);
  });
}

describe('ChainService over libp2p', () => {
  it('rejects bad blocks, includes gossiped credits, serves parents to a late joiner, resumes after restart', async () => {
    for (let i = 0; i < 3; i++) nodes.push(await createDrillNode());
    const [a, b, c] = nodes as [DrillNode, DrillNode, DrillNode];
    await b.dial(a.multiaddrs()[0]!);
    // Only A holds weight and c = 1: A wins every slot, B and C follow.
    const genesis = makeDevGenesis({ genesisTime: Date.now() + 800, slotMs: 200, epochSlots: 4, c: 1, coordinatorSeed: COORD_SEED, allocations: [{ peerId: a.peerId, flops: 1000 }] });
    const sa = new ChainService({ node: a, genesis });
    const sb = new ChainService({ node: b, genesis });
    services.push(sa, sb);
    await sa.start();
    await sb.start();
    await Promise.all([a.waitForTopicPeers(BLOCKS_TOPIC_NAME, 1), b.waitForTopicPeers(BLOCKS_TOPIC_NAME, 1), a.waitForTopicPeers(CREDITS_TOPIC_NAME, 1)]);

    // 1. A coordinator publishes a credit record through B; A includes it in a block.
    const rec = credit([b.peerId], 5000);
    const included = new Promise<void>((resolve) => sa.on('block', (ev) => { if (ev.own && ev.credits > 0) resolve(); }));
    await publishCreditRecord(b, rec);
    await included;
    await headWhere(sb, (h) => h.hash === sa.state.head.hash);
    expect(sb.state.replayedCredit(sb.state.head.hash, [creditRecordId(rec)])).toBe(creditRecordId(rec));

    // 2. A block with a broken signature, published by B, is rejected by A with its code.
    const verdict = new Promise<{ verdict: string; code?: string }>((resolve) => {
      const off = a.onVerdict((ev) => { if (ev.topic === BLOCKS_TOPIC_NAME && ev.verdict !== 'accept') { off(); resolve(ev); } });
    });
    const good = sa.state.getNode(sa.state.head.hash)!.block!;
    await b.publish(blocksTopic(), { ...good, header: { ...good.header, slot: good.header.slot + 1, height: good.header.height + 1, parent: sa.state.head.hash } });
    expect(await verdict).toMatchObject({ verdict: 'reject', code: BlockErrorCode.BAD_SIGNATURE });

    // 3. C joins late, with a store file: it fetches the missing ancestors and converges.
    const storePath = join(dir, 'c.sqlite');
    let sc = new ChainService({ node: c, genesis }, { storePath });
    services.push(sc);
    await sc.start();
    await c.dial(a.multiaddrs()[0]!);
    await c.waitForTopicPeers(BLOCKS_TOPIC_NAME, 1);
    const target = sa.state.head.height + 2;
    await headWhere(sc, (h) => h.height >= target);
    expect(sc.state.getNode(sc.state.head.hash)!.height).toBeGreaterThanOrEqual(target);
    expect(sa.state.isCanonical(sc.state.head.hash)).toBe(true);

    // 4. Restart C from its store: the head is restored before any gossip arrives.
    await sc.stop();
    const before = sc.state.head.hash;
    sc = new ChainService({ node: c, genesis }, { storePath, produce: false });
    services.push(sc);
    await sc.start();
    expect(sc.state.head.hash).toBe(before);
    expect(sc.state.replayedCredit(sc.state.head.hash, [creditRecordId(rec)])).toBe(creditRecordId(rec));
  });
});
