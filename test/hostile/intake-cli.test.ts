/**
 * The intake from the command line, as separate processes: `drill submit --show-id` prints the
 * partner identity (kept in its data dir); a coordinator that does not list the partner refuses
 * it with one clear line naming the flag that would let it in, and `drill submit` exits 2.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drill } from '../helpers/grid.ts';
import type { Proc } from '../helpers/grid.ts';

let tmp: string;
const procs: Proc[] = [];
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-intake-cli-'));
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await rm(tmp, { recursive: true, force: true });
});
const run = (args: string[]): Proc => {
  const p = drill(args);
  procs.push(p);
  return p;
};

describe('drill submit against a coordinator that does not know the partner', () => {
  it('prints its partner id with --show-id, and a refused submit gets one line and exit 2', async () => {
    const show = run(['submit', '--show-id', '--data-dir', join(tmp, 'partner')]);
    expect(await show.exited, show.output()).toBe(0);
    const id = show.output().match(/^(12D3KooW\w+)$/m)![1]!;
    const again = run(['submit', '--show-id', '--data-dir', join(tmp, 'partner')]);
    expect(await again.exited).toBe(0);
    expect(again.output().trim()).toBe(id); // the identity persists

    const coord = run(['coordinator', '--http', 'off', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'coord')]);
    const [, addr] = await coord.waitFor(/listening: (\S+)/);
    await coord.waitFor(/intake: 0 partner\(s\) — nobody can submit jobs/);
    const submit = run(['submit', '--to', addr!, '--job', 'workloads/rowwise/job.json', '--out', join(tmp, 'out'), '--data-dir', join(tmp, 'partner'), '--quiet']);
    expect(await submit.exited, submit.output()).toBe(2);
    const lines = submit.output().trim().split('\n').filter((l) => l.startsWith('drill submit:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`the coordinator does not accept jobs from this partner (${id})`);
    expect(lines[0]).toContain(`--allow-partner ${id}`);
    // Nothing of the refused upload was kept.
    expect(await readdir(join(tmp, 'coord', 'jobs')).catch(() => [])).toEqual([]);
    expect(coord.child.exitCode).toBeNull();
  });

  it('refuses a malformed --allow-partner with one line and exit 2', async () => {
    const coord = run(['coordinator', '--http', 'off', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'coord2'), '--allow-partner', 'not-a-peer-id']);
    expect(await coord.exited).toBe(2);
    expect(coord.output()).toMatch(/--allow-partner: expected a partner's peer id like 12D3KooW… .*received "not-a-peer-id"/);
  });
});
