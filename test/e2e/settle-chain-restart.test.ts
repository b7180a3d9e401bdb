/**
 * The Substrate node goes away and comes back: chopsticks (solochain-template) keeps its chain
 * in a SQLite file; it is stopped while the settler runs, blocks keep finalising and queue, the
 * settler retries with backoff, and when the node is started again (same port, resumed from its
 * db) the queued anchors land — and the anchors posted before the outage are still there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArraySource, connectSubstrate, decodeAnchor, disconnectQuietly, loadSubstratePair, readRemarkAt, Settler, SettleStore } from '../../src/settle/index.ts';
import type { AnchorRow } from '../../src/settle/index.ts';
import { makeBlocks, makeTrainers, startChopsticks } from '../helpers/chopsticks.ts';
import type { ChopsticksChain } from '../helpers/chopsticks.ts';

function nextPosted(s: Settler, n: number): Promise<AnchorRow[]> {
  const rows: AnchorRow[] = [];
  return new Promise((res, rej) => {
    const on = (r: AnchorRow): void => {
      rows.push(r);
      if (rows.length === n) {
        s.off('posted', on);
        res(rows);
      }
    };
    s.on('posted', on);
    s.once('fatal', rej);
  });
}

describe('settle e2e: Substrate node stopped and started again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'settle-restart-'));
  const chains: ChopsticksChain[] = [];
  afterAll(async () => {
    for (const c of chains) await c.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('queues anchors while the node is down, retries with backoff, posts them once it is back', async () => {
    const db = join(dir, 'chain.sqlite');
    const first = await startChopsticks({ db });
    chains.push(first);
    const trainers = await makeTrainers(3);
    const source = new ArraySource();
    const store = new SettleStore(join(dir, 'settle.sqlite'));
    const alice = await loadSubstratePair('//Alice');
    const settler = new Settler(
      { url: first.url, pollIntervalMs: 60_000, backoff: { initialMs: 200, factor: 2, maxMs: 1_000, jitter: 0 } },
      { store, source, signer: alice },
    );
    source.push(...makeBlocks(1, 2, trainers));
    const before = nextPosted(settler, 2);
    settler.start();
    await before;

    // The node stops. Two more blocks finalise; the settler cannot reach the node and backs off.
    await first.close();
    source.push(...makeBlocks(3, 4, trainers));
    const retries: number[] = [];
    const twoRetries = new Promise<void>((res) => {
      settler.on('retry', (r: { delayMs: number }) => {
        retries.push(r.delayMs);
        if (retries.length === 2) res();
      });
    });
    settler.poke();
    await twoRetries;
    expect(retries.slice(0, 2)).toEqual([200, 400]);
    expect(store.unsettled().map((a) => a.fromHeight)).toEqual([3, 4]);

    // The node comes back on the same port with its chain; the queued anchors land.
    const after = nextPosted(settler, 2);
    const second = await startChopsticks({ db, resume: true, port: first.port });
    chains.push(second);
    expect((await after).map((r) => r.fromHeight)).toEqual([3, 4]);
    await settler.stop();

    // All four anchors are on the restarted chain, where the store says they are.
    const api = await connectSubstrate(second.url, { timeoutMs: 15_000 });
    try {
      const rows = store.anchors();
      expect(rows.map((r) => r.status)).toEqual(['posted', 'posted', 'posted', 'posted']);
      for (const r of rows) {
        const at = await readRemarkAt(api, r.substrateBlock!, r.extIndex!);
        expect(at?.eventMatches).toBe(true);
        expect(decodeAnchor(at!.remark).blocks[0]!.height).toBe(r.fromHeight);
      }
      expect(rows[2]!.substrateNumber!).toBeGreaterThan(rows[1]!.substrateNumber!);
    } finally {
      await disconnectQuietly(api);
      store.close();
    }
  });
});
