/**
 * Anchors from a running matrix-drill chain, on one chopsticks Substrate chain:
 *  - `drill devnet` runs block-producing nodes over libp2p with a coordinator publishing signed
 *    credit records and writes each node's block store;
 *  - an embedded grid runs a real ONNX job under PoD; its workers put the coordinator's credit
 *    records in blocks;
 * then `drill settle --chain-store` anchors the final blocks and `drill verify-credit` proves a
 * real credited worker's record against the anchor.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SettleStore } from '../../src/settle/index.ts';
import { startChopsticks } from '../helpers/chopsticks.ts';
import type { ChopsticksChain } from '../helpers/chopsticks.ts';

const ROOT = resolve(import.meta.dirname, '../..');

function drill(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/drill.js'), ...args], { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res) => child.on('close', (code) => res({ code: code ?? -1, stdout, stderr })));
}

let chain: ChopsticksChain;
beforeAll(async () => {
  chain = await startChopsticks();
});
afterAll(async () => {
  await chain?.close();
});

describe('settle e2e: a running devnet chain anchored on Substrate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'settle-grid-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('anchors the devnet blocks and proves a credited node against the anchor', async () => {
    const storeDir = join(dir, 'stores');
    const dev = await drill(['devnet', '--nodes', '2', '--slots', '12', '--slot-ms', '250', '--store-dir', storeDir, '--json']);
    expect(dev.code).toBe(0);
    const report = JSON.parse(dev.stdout) as { chainId: string; creditsIncluded: number; nodes: Array<{ height: number }> };
    expect(report.creditsIncluded).toBeGreaterThan(0);
    const nodeStore = join(storeDir, readdirSync(storeDir).find((f) => f.endsWith('node-0.sqlite'))!);

    const dataDir = join(dir, 'settle');
    const settle = await drill(['settle', '--ws', chain.url, '--suri', '//Alice', '--chain-store', nodeStore, '--confirmations', '1', '--every', '2', '--data-dir', dataDir, '--once', '--log-level', 'warn', '--json']);
    expect(settle.code, settle.stderr).toBe(0);
    const lines = settle.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = lines.at(-1) as { posted: number; anchors: number; pending: number };
    // One JSON line per anchor as it landed, then the summary.
    expect(lines.length).toBe(summary.posted + 1);
    for (const a of lines.slice(0, -1)) expect(a).toMatchObject({ anchor: expect.any(Number), from: expect.any(Number), to: expect.any(Number), substrateBlock: expect.stringMatching(/^0x[0-9a-f]{64}$/) });
    expect(summary.posted).toBeGreaterThan(0);
    expect(summary.posted).toBe(summary.anchors);

    // Pick a block that carries credit and one node it credits.
    const store = new SettleStore(join(dataDir, 'settle.sqlite'));
    let target: { height: number; peer: string } | undefined;
    for (const a of store.anchors()) {
      for (let h = a.fromHeight; h <= a.toHeight && !target; h++) {
        const b = store.getBlock(h);
        if (b && b.records.length > 0) target = { height: h, peer: b.records[0]!.credited[0]! };
      }
    }
    store.close();
    expect(target).toBeDefined();

    const ok = await drill(['verify-credit', '--ws', chain.url, '--worker', target!.peer, '--block', String(target!.height), '--data-dir', dataDir]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const out = JSON.parse(ok.stdout);
    expect(out).toMatchObject({ anchored: true, credit: { worker: target!.peer, height: target!.height } });
    expect(out.credit.records.length).toBeGreaterThan(0);
    // The anchors name the devnet's chain id, taken from its blocks.
    const { connectSubstrate, readRemarkAt, decodeAnchor, disconnectQuietly } = await import('../../src/settle/index.ts');
    const api = await connectSubstrate(chain.url, { timeoutMs: 15_000 });
    try {
      const at = await readRemarkAt(api, out.substrateBlock, out.extrinsicIndex);
      expect(decodeAnchor(at!.remark).chainId).toBe(report.chainId);
    } finally {
      await disconnectQuietly(api);
    }
  });
});

describe('settle e2e: anchors from a running grid', () => {
  const dir = mkdtempSync(join(tmpdir(), 'settle-livegrid-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a real PoD job's credit lands in blocks, is anchored, and verify-credit proves a worker's record", async () => {
    const { LocalGrid } = await import('../../src/node/local-grid.ts');
    const { prepareJob, readJobManifest } = await import('../../src/coordinator/job.ts');
    const storePath = join(dir, 'coordinator-chain.sqlite');
    const grid = new LocalGrid({ workers: 3, threadsPerWorker: 1, dataDir: join(dir, 'grid'), chain: { slotMs: 300, epochSlots: 6, storePath } });
    let jobId = '';
    try {
      await grid.start();
      // Blocks seen by the coordinator; resolve once a block with credit records has two blocks on top.
      let creditHeight = 0;
      const settled = new Promise<void>((resolveSettled) => {
        grid.chain!.on('head', (h) => {
          if (creditHeight > 0 && h.height >= creditHeight + 2) resolveSettled();
        });
        grid.chain!.on('block', (b) => {
          if (b.credits > 0 && creditHeight === 0) creditHeight = b.height;
        });
      });
      const m = await readJobManifest(join(ROOT, 'workloads/mlp/job.json'));
      const spec = await prepareJob({ model: m.model, inputs: m.inputs, outDir: join(dir, 'out'), replicas: 2, policy: m.policy });
      jobId = spec.id;
      const report = await (await grid.coordinator.submit(spec)).result;
      expect(report.status).toBe('done');
      await settled;
    } finally {
      await grid.stop();
    }

    const dataDir = join(dir, 'settle');
    const settle = await drill(['settle', '--ws', chain.url, '--suri', '//Alice', '--chain-store', storePath, '--confirmations', '1', '--data-dir', dataDir, '--once', '--log-level', 'warn', '--json']);
    expect(settle.code, settle.stderr).toBe(0);
    expect((JSON.parse(settle.stdout.trim().split('\n').at(-1)!) as { posted: number }).posted).toBeGreaterThan(0);

    // A block carrying the job's PoD credit and a worker it credits.
    const store = new SettleStore(join(dataDir, 'settle.sqlite'));
    let target: { height: number; peer: string } | undefined;
    for (const a of store.anchors()) {
      for (let h = a.fromHeight; h <= a.toHeight && !target; h++) {
        const r = store.getBlock(h)?.records.find((x) => x.job === jobId);
        if (r) target = { height: h, peer: r.credited[0]! };
      }
    }
    store.close();
    expect(target, 'an anchored block carries the job\'s credit').toBeDefined();

    const ok = await drill(['verify-credit', '--ws', chain.url, '--worker', target!.peer, '--block', String(target!.height), '--data-dir', dataDir]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const out = JSON.parse(ok.stdout);
    expect(out).toMatchObject({ anchored: true, credit: { worker: target!.peer, height: target!.height } });
    expect(out.credit.records.some((r: { record: { job: string } }) => r.record.job === jobId)).toBe(true);
  });
});
