/**
 * Attacks on the protocol itself, by a scripted worker — a real libp2p node speaking the grid
 * protocol with bad intent (it runs the model honestly, then cheats in what it sends):
 *  - a reveal that does not open its commitment (it committed to one result, reveals another);
 *  - a result whose outputs do not match what the model produces (an extra column).
 * Both are hard faults: the worker is quarantined in the job at once, every decision that
 * rested on it is redone, and it earns nothing; the partner's outputs stay exact.
 */
import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDrillNode } from '../../src/net/node.ts';
import type { DrillNode } from '../../src/net/node.ts';
import { fetchBlob } from '../../src/net/blobs.ts';
import { DirectSession } from '../../src/worker/direct.ts';
import { commitment, resultDigest } from '../../src/pod/commit.ts';
import {
  PROTOCOL, helloCodec, helloAckCodec, claimCodec, decodeClaimReply, commitCodec, ackCodec, revealRequestCodec, encodeRevealReply, MAX_UNIT_BYTES,
} from '../../src/protocol/grid.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { startAttack, runJob, expectOutputsEqualDirect } from './harness.ts';

type Result = Record<string, HostTensor>;
type Trick = 'bad-reveal' | 'bad-shape';

/** Widen every output by one column of zeros (rank and rows kept: only a fixed dim is wrong). */
function widen(r: Result): Result {
  const out: Result = {};
  for (const [k, t] of Object.entries(r)) {
    const rows = t.dims[0]!;
    const per = t.data.length / rows;
    const data = new (t.data.constructor as Float32ArrayConstructor)(rows * (per + 1));
    for (let i = 0; i < rows; i++) data.set((t.data as Float32Array).subarray(i * per, (i + 1) * per), i * (per + 1));
    out[k] = { dtype: t.dtype, dims: [rows, ...t.dims.slice(1, -1), (t.dims[t.dims.length - 1] ?? 1) + 1], data } as HostTensor;
  }
  return out;
}

/** A worker that claims units, runs them honestly, and cheats in the protocol. */
async function scriptedWorker(coordinator: string, trick: Trick, dir: string): Promise<{ node: DrillNode; ran: () => number; stop: () => Promise<void> }> {
  const node = await createDrillNode();
  const pending = new Map<string, { salt: string; outputs: Result }>();
  let ran = 0;
  let stopped = false;
  await node.handle(PROTOCOL.reveal, async (req) => {
    const p = pending.get(revealRequestCodec.decode(req).lease);
    if (!p) return encodeRevealReply({ ok: false, reason: 'no such result' });
    return encodeRevealReply({ ok: true, salt: p.salt, outputs: p.outputs });
  });
  const ack = helloAckCodec.decode(await node.request(coordinator, PROTOCOL.hello, helloCodec.encode({ threads: 1, device: 'cpu', score: 1, profile: '{}' })));
  const sessions = new Map<string, DirectSession>();
  const loop = (async () => {
    while (!stopped) {
      let reply;
      try {
        reply = decodeClaimReply(await node.request(ack.coordinator, PROTOCOL.claim, claimCodec.encode({}), { maxResponseBytes: MAX_UNIT_BYTES }));
      } catch {
        return;
      }
      if (!reply.ok) {
        if (reply.reason === 'not-registered') return;
        await new Promise((r) => setTimeout(r, 20)); // poll for work: this worker ignores gossip
        continue;
      }
      const l = reply.lease;
      let s = sessions.get(l.modelHash);
      if (!s) {
        const path = join(dir, `${l.modelHash}.onnx`);
        await writeFile(path, await fetchBlob(node, ack.coordinator, l.modelHash));
        s = await DirectSession.open(path, { intraOpThreads: 1 });
        sessions.set(l.modelHash, s);
      }
      const honest = await s.run(reply.inputs, l.outputNames);
      ran++;
      const salt = randomBytes(32).toString('hex');
      const revealed = trick === 'bad-shape' ? widen(honest) : honest;
      // bad-reveal: commit to a result it never reveals (here: the honest one with a flipped value).
      const committedTo = trick === 'bad-reveal' ? resultDigest(Object.fromEntries(Object.entries(honest).map(([k, t]) => [k, { ...t, data: (t.data as Float32Array).map((x) => x + 1) }]))) : resultDigest(revealed);
      pending.set(l.lease, { salt, outputs: revealed });
      const c = commitment(node.peerId, l.lease, salt, committedTo);
      try {
        ackCodec.decode(await node.request(ack.coordinator, PROTOCOL.commit, commitCodec.encode({ lease: l.lease, commitment: c, runMs: 1, profile: 'cpu/cpu/t1' })));
      } catch {
        return;
      }
    }
  })();
  return {
    node,
    ran: () => ran,
    async stop() {
      stopped = true;
      await node.stop();
      await loop.catch(() => undefined);
      for (const s of sessions.values()) await s.release();
    },
  };
}

describe('protocol cheats by a scripted worker', () => {
  for (const trick of ['bad-reveal', 'bad-shape'] as const) {
    it(`${trick}: quarantined at once with a hard fault, its decisions redone, no credit, outputs exact`, async () => {
      const a = await startAttack({ workers: 3, cheaters: 0, seed: `adv-${trick}` });
      const dir = await mkdtemp(join(tmpdir(), 'drill-scripted-'));
      const w = await scriptedWorker(a.grid.coordinatorNode.multiaddrs()[0]!, trick, dir);
      try {
        // The mlp's model outputs are float32 [rows, classes]; its policy is argmax.
        const { report, decisions } = await runJob(a, 'mlp', { unitRows: 32, tag: trick });
        await expectOutputsEqualDirect('mlp', report);
        const mine = report.workers.find((x) => x.peer === w.node.peerId);
        expect(w.ran(), 'the scripted worker ran units').toBeGreaterThan(0);
        expect(mine, 'the scripted worker is in the report').toBeDefined();
        expect(mine!.credit).toBe(0);
        expect(mine!.quarantined).toBe(true);
        expect(mine!.faultReasons).toEqual([trick === 'bad-reveal' ? 'reveal-mismatch' : 'bad-outputs']);
        for (const x of report.workers) if (x.peer !== w.node.peerId) expect(x.quarantined).toBe(false);
        const last = new Map<number, string[]>();
        for (const d of decisions) last.set(d.unit, d.decidedBy);
        for (const by of last.values()) expect(by).not.toContain(w.node.peerId);
      } finally {
        await w.stop();
        await a.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
