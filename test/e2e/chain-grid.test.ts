/**
 * The hashrate chain on a real multi-process grid, as operators run it: two workers' peer ids
 * from `drill worker --show-id`, a genesis from `drill genesis` signed by the coordinator's key,
 * `drill coordinator --genesis` + two `drill worker --genesis` processes, and a job from
 * `drill submit`. The job's PoD credit records must land on the chain in blocks the workers
 * produce, all three nodes must agree on the head, a worker killed and restarted later
 * catches up, and a restarted coordinator resumes its block store.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, drill } from '../helpers/grid.ts';
import type { Proc } from '../helpers/grid.ts';
import { readGenesisFile, genesisHash } from '../../src/chain/genesis.ts';
import { BlockStore } from '../../src/chain/store.ts';
import type { Block } from '../../src/chain/block.ts';
import type { JobReport } from '../../src/coordinator/service.ts';

let tmp: string;
const procs: Proc[] = [];
const start = (args: string[], env: NodeJS.ProcessEnv = {}): Proc => {
  const p = drill(args, env);
  procs.push(p);
  return p;
};

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-chain-grid-'));
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await rm(tmp, { recursive: true, force: true });
});

/** Resolve once `check()` holds, re-checking whenever one of `procs` prints; reject after `ms`. */
function until(ps: Proc[], check: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const streams = ps.flatMap((p) => [p.child.stdout!, p.child.stderr!]);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      for (const s of streams) s.off('data', onData);
      if (err) reject(err);
      else resolve();
    };
    // setImmediate: let the helper's own 'data' listener append the chunk before we look.
    const onData = (): void => void setImmediate(() => {
      if (check()) done();
    });
    const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what}\n${ps.map((p) => p.output().slice(-1500)).join('\n----\n')}`)), ms);
    for (const s of streams) s.on('data', onData);
    if (check()) done();
  });
}

/** The canonical chain of a block store, head first, read beside the running node. */
function canonicalBlocks(storePath: string): Block[] {
  const store = BlockStore.openReadOnly(storePath);
  try {
    const byHash = new Map<string, Block>();
    for (const { hash, block } of store.blocks()) byHash.set(hash, block);
    const chain: Block[] = [];
    for (let b = byHash.get(store.head() ?? ''); b; b = byHash.get(b.header.parent)) chain.push(b);
    return chain;
  } finally {
    store.close();
  }
}

const lastMatch = (text: string, re: RegExp): string | undefined => [...text.matchAll(re)].at(-1)?.[1];

describe('hashrate chain on a multi-process grid', () => {
  it('drill genesis + coordinator/workers --genesis: job credit lands in worker-produced blocks, heads agree, a restarted worker catches up, restart resumes', async () => {
    // 1. Producers' peer ids, as an operator lists them.
    const ids: string[] = [];
    for (const i of [0, 1]) {
      const p = start(['worker', '--show-id', '--data-dir', join(tmp, `w${i}`)]);
      expect(await p.exited, p.output()).toBe(0);
      const m = p.output().match(/^(12D3KooW\w+)$/m);
      expect(m, p.output()).not.toBeNull();
      ids.push(m![1]!);
    }
    // Same id again: the identity persists.
    const again = start(['worker', '--show-id', '--data-dir', join(tmp, 'w0')]);
    expect(await again.exited).toBe(0);
    expect(again.output().trim()).toBe(ids[0]);

    // 2. Genesis signed by the coordinator's key (its data dir is created here).
    const genesisPath = join(tmp, 'genesis.json');
    const gen = start(['genesis', '--data-dir', join(tmp, 'coord'), '--producer', ids[0]!, '--producer', `${ids[1]!}=1e9`, '--slot-ms', '300', '--epoch-slots', '6', '--c', '0.5', '--start-in', '1000', '--out', genesisPath, '--json']);
    expect(await gen.exited, gen.output()).toBe(0);
    const summary = JSON.parse(gen.output().match(/^\{.*\}$/m)![0]) as { genesisHash: string; coordinator: string; coordinatorPeerId: string };
    const genesis = readGenesisFile(genesisPath);
    expect(genesisHash(genesis)).toBe(summary.genesisHash);
    expect(genesis.coordinators).toEqual([summary.coordinator]);
    expect(genesis.credits.flatMap((r) => r.credited).sort()).toEqual([...ids].sort());
    expect({ slotMs: genesis.slotMs, epochSlots: genesis.epochSlots, c: genesis.c }).toEqual({ slotMs: 300, epochSlots: 6, c: 0.5 });

    // A coordinator whose key the genesis does not list is refused with one clear line.
    const stranger = start(['coordinator', '--http', 'off', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'other-coord'), '--genesis', genesisPath]);
    expect(await stranger.exited).toBe(2);
    expect(stranger.output()).toMatch(/--genesis: expected a genesis that lists this coordinator/);
    // ... unless it is listed with --coordinator (its identity file has the same format as a worker's).
    const strangerId = start(['worker', '--show-id', '--data-dir', join(tmp, 'other-coord')]);
    expect(await strangerId.exited).toBe(0);
    const gen2 = start(['genesis', '--data-dir', join(tmp, 'coord'), '--producer', ids[0]!, '--coordinator', strangerId.output().trim(), '--out', join(tmp, 'genesis2.json'), '--json']);
    expect(await gen2.exited, gen2.output()).toBe(0);
    const g2 = readGenesisFile(join(tmp, 'genesis2.json'));
    expect(g2.coordinators).toHaveLength(2);
    expect(g2.coordinators[0]).toBe(summary.coordinator);

    // 3. The grid, with the chain.
    const coordArgs = ['coordinator', '--http', 'off', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'coord'), '--genesis', genesisPath, '--open-intake'];
    const coord = start(coordArgs);
    const [, storePath] = await coord.waitFor(/chain \S+ \(genesis \S+\): following, head #0, .*store (\S+)/);
    const [, addr] = await coord.waitFor(/listening: (\S+)/);
    expect(coord.output()).toContain(`coordinator ${summary.coordinatorPeerId}`);
    const workers = [0, 1].map((i) => start(['worker', '--join', addr!, '--genesis', genesisPath, '--threads', '1', '--data-dir', join(tmp, `w${i}`), '--listen', '/ip4/127.0.0.1/tcp/0', '--verbose'], { DRILL_STATUS_MS: '1000' }))
    await Promise.all(workers.map((w) => w.waitFor(/chain \S+: producing/)));
    await Promise.all(workers.map((w) => w.waitFor(/joined coordinator/)));

    // 4. A job: its credit records are published and carried by blocks.
    const out = join(tmp, 'out');
    const submit = start(['submit', '--to', addr!, '--job', join(ROOT, 'workloads/mlp/job.json'), '--out', out, '--json', '--data-dir', join(tmp, 'partner')], { DRILL_PROGRESS_MS: '0' });
    expect(await submit.exited, submit.output()).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as JobReport;
    expect(report.status).toBe('done');
    expect(report.creditRecords).toBeGreaterThan(0);

    const jobUnitsOnChain = (): Set<number> => new Set(canonicalBlocks(storePath!).flatMap((b) => b.credits.filter((r) => r.job === report.job).map((r) => r.unit)));
    await until([coord], () => jobUnitsOnChain().size === report.creditRecords, 20_000, `all ${report.creditRecords} credit records of ${report.job} on the coordinator's canonical chain`);
    const chain = canonicalBlocks(storePath!);
    const carriers = chain.filter((b) => b.credits.some((r) => r.job === report.job));
    expect(carriers.length).toBeGreaterThan(0);
    for (const b of chain) expect(ids).toContain(b.header.producer); // only the genesis producers have weight yet
    for (const b of carriers) for (const r of b.credits) {
      expect(r.coordinator).toBe(summary.coordinator);
      expect(r.credited.every((p) => ids.includes(p))).toBe(true);
    }
    // The coordinator's head lines report the records, the workers their own blocks.
    expect(coord.output()).toMatch(/block #\d+ slot \d+ by 12D3Ko\S+: [1-9]\d* credit records \(head /);
    await until(workers, () => workers.every((w) => /produced block #\d+ slot \d+ \S+: \d+ credit records/.test(w.output())), 20_000, 'a block produced by each worker');
    // Each trainer's status line shows its earnings from the chain it follows.
    await until(workers, () => workers.every((w) => /units [1-9]\d* \| rows \d+ \| verified credit [\d.]+ [kMGT]?FLOP \| faults 0 \| lottery weight [\d.]+% \| chain height [1-9]\d* \| joined 1/.test(w.output())), 20_000, 'a status line with earnings from each worker');

    // 5. Heads agree (the chain keeps growing: wait for a moment when all three print the same head).
    const coordHeight = (): number => Number(lastMatch(coord.output(), /block #(\d+) slot/g) ?? 0);
    const agree = (ws: Proc[], what: string): Promise<void> => {
      const heads = (): (string | undefined)[] => [
        lastMatch(coord.output(), /\(head (\S+)\)/g),
        ...ws.map((w) => lastMatch(w.output(), /chain head #\d+ slot \d+ (\S+)/g)),
      ];
      return until([coord, ...ws], () => {
        const h = heads();
        return h[0] !== undefined && h.every((x) => x === h[0]);
      }, 15_000, what);
    };
    await agree(workers, 'coordinator and both workers on the same head');
    expect(coordHeight()).toBeGreaterThanOrEqual(chain.length);

    // 6. A worker killed and restarted later resumes from its store and catches up on the
    //    blocks it missed (the other worker kept producing meanwhile).
    workers[1]!.child.kill('SIGKILL');
    await workers[1]!.exited;
    const atKill = coordHeight();
    await until([coord], () => coordHeight() >= atKill + 2, 20_000, 'two more blocks while worker 1 is down');
    const w1b = start(['worker', '--join', addr!, '--genesis', genesisPath, '--threads', '1', '--data-dir', join(tmp, 'w1'), '--listen', '/ip4/127.0.0.1/tcp/0', '--verbose']);
    const [, resumedAt] = await w1b.waitFor(/chain \S+: producing \(head #(\d+),/);
    expect(Number(resumedAt)).toBeGreaterThan(0); // its own store, not a fresh chain
    expect(Number(resumedAt)).toBeLessThan(atKill + 2); // the blocks made while it was down must be fetched
    await agree([workers[0]!, w1b], 'the restarted worker on the same head as the others');
    const agreedHeight = coordHeight();
    expect(agreedHeight).toBeGreaterThanOrEqual(atKill + 2);

    // 7. The coordinator restarts on its block store and resumes at (at least) that height.
    coord.child.kill('SIGINT');
    expect(await coord.exited).toBe(0);
    expect(coord.output()).toMatch(/chain head #\d+ /);
    const again2 = start(coordArgs);
    const [, resumed] = await again2.waitFor(/chain \S+ \(genesis \S+\): following, head #(\d+),/);
    expect(Number(resumed)).toBeGreaterThanOrEqual(agreedHeight);
  }, 90_000);
});
