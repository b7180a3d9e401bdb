/**
 * The coordinator facing hostile workers, over real libp2p: a hello claiming 1,024 threads earns
 * only the capped number of leases; workers that come and go are forgotten after a while (the
 * registry stays bounded) while a running job's report keeps what it shows about them; honest
 * work completes throughout.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalGrid } from '../../src/node/local-grid.ts';
import { createDrillNode } from '../../src/net/node.ts';
import { prepareJob } from '../../src/coordinator/job.ts';
import type { JobHandle } from '../../src/coordinator/service.ts';
import { defaultCoordinatorOptions } from '../../src/coordinator/service.ts';
import { PROTOCOL, helloCodec, helloAckCodec, claimCodec, decodeClaimReply, commitCodec, ackCodec, revealRequestCodec, encodeRevealReply } from '../../src/protocol/grid.ts';
import type { ClaimReply } from '../../src/protocol/grid.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { commitment, resultDigest } from '../../src/pod/commit.ts';
import { encodeNpy } from '../../src/util/npy.ts';
import { heapUsed, writeIdentityModel, when } from './harness.ts';

let tmp: string;
let grid: LocalGrid;
let offset = 0;
const FORGET_MS = 60_000;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-hostile-workers-'));
  grid = new LocalGrid({ workers: 1, threadsPerWorker: 1, sharedFs: false, dataDir: join(tmp, 'grid'), coordinator: { now: () => Date.now() + offset, announceMs: 50, forgetWorkerMs: FORGET_MS } });
  await grid.start();
});
afterAll(async () => {
  await grid?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** A job of `rows` rows of 4 float32 through an Identity model, `unitRows` per unit, 1 replica. */
async function identityJob(name: string, rows: number, unitRows: number): Promise<JobHandle> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  const model = await writeIdentityModel(join(dir, 'id.onnx'), [4]);
  const data = new Float32Array(rows * 4).map((_, i) => i);
  await writeFile(join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', dims: [rows, 4], data }));
  const spec = await prepareJob({ model, inputs: { x: join(dir, 'x.npy') }, outDir: join(dir, 'out'), replicas: 1, unitRows, policy: 'exact', name });
  return grid.coordinator.submit(spec);
}

/** Poll a condition the coordinator changes on its own clock tick (no event exists for a prune). */
const ticks = (check: () => void): (() => void) => {
  const t = setInterval(check, 20);
  return () => clearInterval(t);
};

describe('coordinator: a worker hello claiming huge threads', () => {
  it('is clamped to the thread cap: 2 leases per capped thread, then busy; honest work completes', async () => {
    const cap = defaultCoordinatorOptions.maxWorkerThreads;
    const before = heapUsed();
    const hostile = await createDrillNode();
    let job: JobHandle;
    try {
      const coord = grid.coordinatorNode.multiaddrs()[0]!;
      const ack = helloAckCodec.decode(await hostile.request(coord, PROTOCOL.hello, helloCodec.encode({ threads: 1024, device: 'cpu', score: 1e6, profile: '{}' })));
      job = await identityJob('threads', 800, 2); // 400 units
      expect(ack.maxInflight).toBe(2 * cap);
      expect(grid.coordinator.workers().find((w) => w.peer === hostile.peerId)!.threads).toBe(cap);
      let leased = 0;
      let reason = '';
      for (let i = 0; i < 600 && !reason; i++) {
        const r = decodeClaimReply(await hostile.request(coord, PROTOCOL.claim, claimCodec.encode({})));
        if (r.ok) leased++;
        else reason = r.reason;
      }
      expect(leased).toBe(2 * cap);
      expect(reason).toBe('busy');
    } finally {
      await hostile.stop(); // its leases are re-issued at once
    }
    const report = await job.result;
    expect(report.status).toBe('done');
    expect(report.units.total).toBe(400);
    expect(report.workers.map((w) => w.peer)).toEqual([grid.workers[0]!.node.peerId]);
    expect(heapUsed() - before).toBeLessThan(32 * 1024 * 1024);
  });
});

describe('coordinator: workers that come and go', () => {
  it('forgets disconnected workers after a while; a running job still reports them', async () => {
    const coord = grid.coordinatorNode.multiaddrs()[0]!;
    const before = heapUsed();
    // 20 hostile peers say hello and leave.
    for (let i = 0; i < 20; i++) {
      const n = await createDrillNode();
      await n.request(coord, PROTOCOL.hello, helloCodec.encode({ threads: 8, device: 'gpu?', score: 1, profile: 'x'.repeat(1000) }));
      await n.stop();
    }
    // A scripted honest worker (the model is Identity, so it computes results itself) runs one
    // unit of a running job — commit, reveal — and leaves cleanly.
    const job = await identityJob('churn', 4000, 40); // 100 units
    const w2 = await createDrillNode();
    const w2id = w2.peerId;
    const results = new Map<string, { salt: string; outputs: Record<string, HostTensor> }>();
    await w2.handle(PROTOCOL.reveal, async (req) => {
      const r = results.get(revealRequestCodec.decode(req).lease);
      return encodeRevealReply(r ? { ok: true, ...r } : { ok: false, reason: 'no such result' });
    });
    await w2.request(coord, PROTOCOL.hello, helloCodec.encode({ threads: 3, device: 'tpu', score: 1, profile: 'scripted' }));
    const decided = new Promise<void>((resolve) => {
      const on = (d: { workers: string[] }): void => {
        if (!d.workers.includes(w2id)) return;
        job.events.off('unit', on);
        resolve();
      };
      job.events.on('unit', on);
    });
    let lease: ClaimReply | undefined;
    for (let i = 0; i < 100 && !lease?.ok; i++) lease = decodeClaimReply(await w2.request(coord, PROTOCOL.claim, claimCodec.encode({})));
    expect(lease?.ok).toBe(true);
    if (!lease?.ok) return;
    const outputs = { y: lease.inputs.x! };
    const salt = 'ab'.repeat(32);
    results.set(lease.lease.lease, { salt, outputs });
    const ack = ackCodec.decode(await w2.request(coord, PROTOCOL.commit, commitCodec.encode({ lease: lease.lease.lease, commitment: commitment(w2id, lease.lease.lease, salt, resultDigest(outputs)), runMs: 1, profile: 'scripted' })));
    expect(ack.ok).toBe(true);
    await decided;
    await w2.stop();
    const gone = (): string[] => grid.coordinator.workers().filter((w) => !w.connected).map((w) => w.peer);
    await when(() => gone().includes(w2id) && gone().length >= 21, ticks, 10_000, 'the departures seen');
    offset += FORGET_MS + 1;
    await when(() => grid.coordinator.workers().length === 1, ticks, 10_000, 'the registry forgetting the departed workers');
    expect(grid.coordinator.workers()[0]!.peer).toBe(grid.workers[0]!.node.peerId);
    const report = await job.result;
    expect(report.status, report.error).toBe('done');
    const r2 = report.workers.find((w) => w.peer === w2id);
    expect(r2, 'the departed worker is in the report').toBeDefined();
    expect(r2!.unitsRun).toBe(1);
    expect({ threads: r2!.threads, device: r2!.device, profile: r2!.profile }).toEqual({ threads: 3, device: 'tpu', profile: 'scripted' });
    expect(heapUsed() - before).toBeLessThan(32 * 1024 * 1024);
  });
});
