/**
 * `drill coordinator --http` as a process: it prints where the API listens, serves /healthz and
 * /metrics with libp2p's own metrics (@libp2p/prometheus-metrics) beside the grid's, takes
 * bearer tokens from --api-tokens, and refuses what would expose it: no tokens on a non-loopback
 * address, a malformed tokens file.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drill } from '../helpers/grid.ts';
import type { Proc } from '../helpers/grid.ts';
import { parsePrometheus, sample } from '../helpers/api.ts';

const procs: Proc[] = [];
let tmp = '';
afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('drill coordinator --http', () => {
  it('serves /healthz, and /metrics with libp2p metrics, behind the tokens of --api-tokens', async () => {
    tmp = await mkdtemp(join(tmpdir(), 'drill-api-cli-'));
    const token = 'cli-test-token-0123456789abcdef';
    await writeFile(join(tmp, 'tokens'), `# test\n${token} ops operator\n`);
    const coord = drill(['coordinator', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'coord'), '--http', '127.0.0.1:0', '--api-tokens', join(tmp, 'tokens')]);
    procs.push(coord);
    const url = (await coord.waitFor(/^http: (http:\/\/127\.0\.0\.1:\d+) \(dashboard \/, API \/v1, \/openapi\.json, \/metrics; 1 token\(s\)\)$/m))[1]!;
    const health = (await (await fetch(`${url}/healthz`)).json()) as { ok: boolean; peer: string; workers: number };
    expect(health.ok).toBe(true);
    expect(coord.output()).toContain(`coordinator ${health.peer}`);
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const { samples, types } = parsePrometheus(await res.text());
    expect(types.get('drill_units_decided_total')).toBe('counter');
    expect(sample(samples, 'drill_workers', { state: 'connected' })).toBe(0);
    // libp2p's own metrics, from the node the coordinator runs.
    expect(samples.some((s) => s.name.startsWith('libp2p_'))).toBe(true);
    expect(samples.some((s) => s.name.startsWith('nodejs_'))).toBe(true);
    const page = await fetch(url);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(await page.text()).toContain('/assets/app.js');
    coord.child.kill('SIGTERM');
    expect(await coord.exited).toBe(0);
  });

  it('refuses to serve the network without tokens, and a malformed tokens file', async () => {
    const open = drill(['coordinator', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'c2'), '--http', '0.0.0.0:0']);
    procs.push(open);
    expect(await open.exited).toBe(2);
    expect(open.output()).toMatch(/--http: expected a loopback address \(127\.0\.0\.1, ::1\) when no --api-tokens are given, received "0\.0\.0\.0" \(anyone who can reach it could submit and cancel jobs/);
    await writeFile(join(tmp, 'bad-tokens'), 'short acme\n');
    const bad = drill(['coordinator', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'c3'), '--api-tokens', join(tmp, 'bad-tokens')]);
    procs.push(bad);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/--api-tokens .*bad-tokens:1: expected a token of 16\.\.512 characters/);
    const badAddr = drill(['coordinator', '--data-dir', join(tmp, 'c4'), '--http', 'localhost']);
    procs.push(badAddr);
    expect(await badAddr.exited).toBe(2);
    expect(badAddr.output()).toMatch(/--http: expected HOST:PORT/);
  });
});
