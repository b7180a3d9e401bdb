/**
 * Gossip under a hostile peer, over real libp2p: junk on every topic (units, credits, blocks)
 * is rejected before any handler, scores the sender down, and once it is graylisted the sender
 * is disconnected and banned — while one honest mistake is tolerated and honest work (a job on
 * a grid running the chain) completes. A message that reaches the node's message listener
 * without passing the topic validator is validated there too, never handed on unchecked.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromString } from '@libp2p/peer-id';
import { LocalGrid } from '../../src/node/local-grid.ts';
import { createDrillNode } from '../../src/net/node.ts';
import type { DrillNode, VerdictEvent } from '../../src/net/node.ts';
import { UNITS_TOPIC } from '../../src/protocol/grid.ts';
import type { UnitAnnouncement } from '../../src/protocol/grid.ts';
import { BLOCKS_TOPIC_NAME, CREDITS_TOPIC_NAME, CREDITS_TOPIC, blocksTopic } from '../../src/chain/topics.ts';
import { prepareJob, readJobManifest } from '../../src/coordinator/job.ts';
import { isDrillError } from '../../src/util/errors.ts';
import { SCORE_THRESHOLDS } from '../../src/net/gossip.ts';
import { ROOT } from '../helpers/grid.ts';
import { heapUsed } from './harness.ts';

const enc = new TextEncoder();
const nextHeartbeat = (n: DrillNode): Promise<void> => new Promise((r) => n.libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', () => r(), { once: true }));
const verdicts = (n: DrillNode, count: number, from: string): Promise<VerdictEvent[]> => new Promise((resolve) => {
  const seen: VerdictEvent[] = [];
  const off = n.onVerdict((v) => {
    if (v.from !== from) return;
    seen.push(v);
    if (seen.length === count) {
      off();
      resolve(seen);
    }
  });
});

describe('gossip: a message that skipped the topic validator', () => {
  it('is validated in the message listener: an invalid one never reaches the handler, a valid one does', async () => {
    const victim = await createDrillNode();
    try {
      const got: UnitAnnouncement[] = [];
      victim.subscribe(UNITS_TOPIC, (m) => got.push(m));
      const x = (await createDrillNode());
      await x.stop();
      const from = peerIdFromString(x.peerId);
      const announce = (coordinator: string): Uint8Array => UNITS_TOPIC.encode({ coordinator, job: 'j', unit: 0, modelHash: 'ab'.repeat(32), rows: 1, flops: 1, need: 1, at: 1 });
      const deliver = (data: Uint8Array): void => {
        // As gossipsub would emit it for a message our validator never saw.
        victim.libp2p.services.pubsub.dispatchEvent(new CustomEvent('message', { detail: { type: 'signed', from, topic: UNITS_TOPIC.name, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: x.publicKey } }));
      };
      const v1 = verdicts(victim, 1, x.peerId);
      deliver(announce(victim.peerId)); // claims to be another coordinator's announcement
      expect((await v1)[0]).toMatchObject({ verdict: 'reject', code: 'VALIDATOR' });
      const v2 = verdicts(victim, 1, x.peerId);
      deliver(enc.encode('junk'));
      expect((await v2)[0]).toMatchObject({ verdict: 'reject', code: 'CODEC_MALFORMED' });
      const v3 = verdicts(victim, 1, x.peerId);
      deliver(announce(x.peerId));
      expect((await v3)[0]!.verdict).toBe('accept');
      await new Promise((r) => setImmediate(r));
      expect(got.map((m) => m.coordinator)).toEqual([x.peerId]);
    } finally {
      await victim.stop();
    }
  });
});

describe('gossip: junk on every topic from a real hostile node', () => {
  let tmp: string;
  let grid: LocalGrid;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'drill-hostile-gossip-'));
    grid = new LocalGrid({ workers: 2, threadsPerWorker: 1, dataDir: join(tmp, 'grid'), chain: { slotMs: 300 } });
    await grid.start();
  });
  afterAll(async () => {
    await grid?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('rejects it before any handler, tolerates one mistake, then disconnects and bans the sender; honest work completes', async () => {
    const victim = grid.coordinatorNode;
    const hostile = await createDrillNode({ bootstrap: [victim.multiaddrs()[0]!] });
    try {
      // The hostile joins every topic, as a peer of the coordinator.
      hostile.subscribe(UNITS_TOPIC, () => undefined);
      hostile.subscribe(CREDITS_TOPIC, () => undefined);
      hostile.subscribe(blocksTopic(), () => undefined);
      for (const t of [UNITS_TOPIC.name, CREDITS_TOPIC_NAME, BLOCKS_TOPIC_NAME]) await hostile.waitForTopicPeers(t, 1);
      const raw = hostile.libp2p.services.pubsub;
      const before = heapUsed();

      // One honest-looking mistake: rejected, scored, but the peer stays.
      const first = verdicts(victim, 1, hostile.peerId);
      await raw.publish(CREDITS_TOPIC_NAME, enc.encode(JSON.stringify({ v: 1, record: { job: 'x' } })));
      expect((await first)[0]!.verdict).toBe('reject');
      await nextHeartbeat(victim);
      await nextHeartbeat(victim);
      expect(victim.peerScore(hostile.peerId)).toBeLessThan(0);
      expect(victim.peerScore(hostile.peerId)).toBeGreaterThanOrEqual(SCORE_THRESHOLDS.gossipThreshold);
      expect(victim.peers()).toContain(hostile.peerId);

      // Then junk on every topic.
      const gone = new Promise<void>((resolve) => {
        const off = victim.onPeer('disconnect', (p) => {
          if (p === hostile.peerId) {
            off();
            resolve();
          }
        });
      });
      const all = verdicts(victim, 6, hostile.peerId);
      await raw.publish(UNITS_TOPIC.name, enc.encode('{"v":1,"coordinator":"me"}'));
      await raw.publish(UNITS_TOPIC.name, UNITS_TOPIC.encode({ coordinator: victim.peerId, job: 'j', unit: 0, modelHash: 'ab'.repeat(32), rows: 1, flops: 1, need: 1, at: 2 }));
      await raw.publish(CREDITS_TOPIC_NAME, new Uint8Array([0xff, 0xfe, 0x00]));
      await raw.publish(CREDITS_TOPIC_NAME, enc.encode(JSON.stringify({ v: 2 })));
      await raw.publish(BLOCKS_TOPIC_NAME, enc.encode('not a block'));
      await raw.publish(BLOCKS_TOPIC_NAME, enc.encode(JSON.stringify({ v: 1, block: { header: {} } })));
      const got = await all;
      expect(got.map((v) => v.verdict)).toEqual(Array(6).fill('reject'));
      expect(new Set(got.map((v) => v.topic))).toEqual(new Set([UNITS_TOPIC.name, CREDITS_TOPIC_NAME, BLOCKS_TOPIC_NAME]));
      await gone;
      expect(victim.peerScore(hostile.peerId)).toBeLessThan(SCORE_THRESHOLDS.graylistThreshold);
      expect(victim.isBanned(hostile.peerId)).toBe(true);
      expect(victim.metrics().peersBanned).toBe(1);
      expect(victim.peers()).not.toContain(hostile.peerId);
      // Banned: it cannot come back (the victim refuses the connection once it knows who dials).
      await hostile.dial(victim.multiaddrs()[0]!).catch(() => undefined);
      const again = await hostile.request(victim.multiaddrs()[0]!, '/matrix-drill/grid/hello/1', new Uint8Array(10)).catch((e: unknown) => e);
      expect(isDrillError(again) && ['NET_DIAL_FAILED', 'NET_BAD_FRAME'].includes(again.code), String(again)).toBe(true);
      expect(victim.peers()).not.toContain(hostile.peerId);
      expect(heapUsed() - before).toBeLessThan(32 * 1024 * 1024);

      // Honest work on the same grid still completes, credit and all.
      const m = await readJobManifest(join(ROOT, 'workloads/mlp/job.json'));
      const spec = await prepareJob({ model: m.model, inputs: m.inputs, outDir: join(tmp, 'out'), replicas: 2, unitRows: m.unitRows, policy: m.policy, name: 'after-junk' });
      const report = await (await grid.coordinator.submit(spec)).result;
      expect(report.status).toBe('done');
      expect(report.creditRecords).toBeGreaterThan(0);
      expect(grid.workers.every((w) => victim.peers().includes(w.node.peerId))).toBe(true);
    } finally {
      await hostile.stop();
    }
  });
});
