/**
 * How containers find their coordinator (compose.yaml): `drill coordinator --announce
 * /dns4/HOST/tcp/PORT --address-file FILE` writes its join address once ready, and `drill worker
 * --join-file FILE` waits for the file, reads it and joins — by DNS name, over real libp2p.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, rm, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drill } from '../helpers/grid.ts';
import type { Proc } from '../helpers/grid.ts';

let tmp: string;
const procs: Proc[] = [];
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-joinfile-'));
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await rm(tmp, { recursive: true, force: true });
});

/** A TCP port that was free a moment ago (announce needs the port before the coordinator starts). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('--address-file / --join-file', () => {
  it('a worker started first waits for the file, then joins the coordinator by its announced DNS address', async () => {
    const file = join(tmp, 'grid', 'coordinator.addr');
    await mkdir(join(tmp, 'grid'));
    const worker = drill(['worker', '--join-file', file, '--threads', '1', '--data-dir', join(tmp, 'w'), '--listen', '/ip4/127.0.0.1/tcp/0']);
    procs.push(worker);
    await worker.waitFor(/does not exist yet/);

    const port = await freePort();
    const coord = drill(['coordinator', '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--announce', `/dns4/localhost/tcp/${port}`, '--address-file', file, '--data-dir', join(tmp, 'c')]);
    procs.push(coord);
    const [, peer] = await coord.waitFor(/^coordinator (\S+)/m);
    const written = await readFile(file, 'utf8');
    expect(written).toBe(`/dns4/localhost/tcp/${port}/p2p/${peer}\n`);
    await coord.waitFor(new RegExp(`workers join with: +npx drill worker --join /dns4/localhost/tcp/${port}/p2p/${peer}`));

    const [, joined] = await worker.waitFor(/joined coordinator (\S+)/);
    expect(joined).toBe(peer);
    coord.child.kill('SIGTERM');
    expect(await coord.exited).toBe(0);
    expect(coord.output()).toMatch(/workers: 1 connected/);
  });

  it('refuses an --announce that is not a multiaddr, or one with a peer id, before starting', async () => {
    for (const [bad, re] of [
      ['coordinator:9360', /--announce: expected a multiaddr like \/dns4\/coordinator\/tcp\/9360, received "coordinator:9360"/],
      ['/dns4/c/tcp/9360/p2p/12D3KooWGQX4z7nwNQ3tdVm29sCgHTM9uz6DsVYLzmmg3JYfxijc', /--announce: expected a multiaddr without \/p2p\//],
    ] as const) {
      const p = drill(['coordinator', '--announce', bad, '--data-dir', join(tmp, 'bad')]);
      expect(await p.exited).toBe(2);
      expect(p.output()).toMatch(re);
    }
  });
});
