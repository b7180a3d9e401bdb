/**
 * The HTTP API against a real coordinator: an embedded grid (real libp2p nodes, ONNX Runtime
 * workers, the hashrate chain) with the intake core and the fastify server, one grid for the
 * whole file. A partner submits by multipart, follows the job over Server-Sent Events,
 * downloads every output (whole and by Range) and gets what a direct ONNX Runtime run gives;
 * cancels; is refused with problem documents (401, 413, 422, 400); the OpenAPI document
 * validates and every route in it answers; /metrics parses and moves with a job; `drill
 * submit --api` and `drill status --api` work against it as child processes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdir, readFile, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { parseNpy, readNpy } from '../../src/util/npy.ts';
import { parsePolicy, tensorsAgree } from '../../src/pod/policy.ts';
import { parseTokens } from '../../src/api/index.ts';
import { ROOT, directRun, drill } from '../helpers/grid.ts';
import { startApiGrid, workloadForm, openEvents, parsePrometheus, sample } from '../helpers/api.ts';
import type { ApiGrid, SseEvent } from '../helpers/api.ts';

const ACME = 'acme-token-0123456789abcdef';
const OTHER = 'other-token-0123456789abcdef';
const OPS = 'ops-token-0123456789abcdef01';
const auth = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
/** Job uploads up to 6 MiB: every workload fits (cnn is 5.4 MB); the 413 case sends more. */
const MAX_JOB_BYTES = 6 * 1024 * 1024;

let g: ApiGrid;
let doneJob = '';

beforeAll(async () => {
  g = await startApiGrid({
    grid: { chain: { slotMs: 300 } },
    limits: { maxJobBytes: MAX_JOB_BYTES },
    api: { tokens: parseTokens(`${ACME} acme\n${OTHER} other\n${OPS} ops operator\n`, 'test') },
  });
});
afterAll(async () => {
  await g?.stop();
});

async function metrics(): Promise<ReturnType<typeof parsePrometheus>> {
  const res = await fetch(`${g.url}/metrics`, { headers: auth(OPS) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

describe('HTTP API on a real grid', () => {
  it('multipart submit, SSE to completion, outputs (whole and by Range) equal a direct ONNX Runtime run; /metrics moves with the job', async () => {
    const before = await metrics();
    const events = await openEvents(`${g.url}/v1/events`, auth(ACME));
    expect(events.status).toBe(200);
    await events.waitFor((e) => e.event === 'ready', 'ready');

    const res = await fetch(`${g.url}/v1/jobs`, { method: 'POST', headers: auth(ACME), body: await workloadForm('encoder') });
    expect(res.status).toBe(201);
    const sub = (await res.json()) as { id: string; rows: number; units: number; unitRows: number };
    expect(res.headers.get('location')).toBe(`/v1/jobs/${sub.id}`);
    const rows = (await readNpy(join(ROOT, 'workloads/encoder/inputs/input_ids.npy'))).dims[0]!;
    const unitRows = 32; // workloads/encoder/job.json
    expect(sub.rows).toBe(rows);
    expect(sub.units).toBe(rows / unitRows);

    const done = await events.waitFor((e) => e.event === 'done' && (e.data as { job: string }).job === sub.id, 'done event');
    events.close();
    expect((done.data as { status: string }).status).toBe('done');
    const mine = events.events.filter((e) => (e.data as { job?: string }).job === sub.id);
    expect(mine[0]!.event).toBe('job');
    const units = mine.filter((e) => e.event === 'unit');
    expect(units.length).toBe(sub.units);
    const progress = mine.filter((e) => e.event === 'progress').map((e) => (e.data as { progress: { done: number } }).progress.done);
    expect(progress.at(-1)).toBe(sub.units);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress); // never goes back
    // Event ids increase along the stream.
    const seqs = events.events.filter((e) => e.id).map((e) => Number(e.id!.split('-')[1]));
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);

    const st = (await (await fetch(`${g.url}/v1/jobs/${sub.id}`, { headers: auth(ACME) })).json()) as { status: string; rowsDone: number; unitsDone: number; report: { units: { agreed: number }; outputs: Record<string, string> }; files: string[]; etaMs: number };
    expect(st.status).toBe('done');
    expect(st.rowsDone).toBe(rows);
    expect(st.unitsDone).toBe(sub.units);
    expect(st.etaMs).toBe(0);
    expect(st.report.units.agreed).toBe(sub.units);
    expect(st.files.sort()).toEqual(['embedding.npy', 'pooled.npy', 'report.json']);

    const golden = await directRun('encoder');
    const policy = parsePolicy('allclose:1e-3,1e-4');
    for (const name of ['embedding', 'pooled']) {
      const r = await fetch(`${g.url}/v1/jobs/${sub.id}/outputs/${name}.npy`, { headers: auth(ACME) });
      expect(r.status).toBe(200);
      expect(r.headers.get('accept-ranges')).toBe('bytes');
      const bytes = new Uint8Array(await r.arrayBuffer());
      expect(Number(r.headers.get('content-length'))).toBe(bytes.length);
      const t = parseNpy(bytes);
      expect(t.dims).toEqual(golden[name]!.dims);
      expect(tensorsAgree(policy, t, golden[name]!)).toBe(true);
      // A byte range, a suffix range, and one past the end.
      const part = await fetch(`${g.url}/v1/jobs/${sub.id}/outputs/${name}.npy`, { headers: { ...auth(ACME), range: 'bytes=100-1123' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes 100-1123/${bytes.length}`);
      expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(100, 1124));
      const tail = await fetch(`${g.url}/v1/jobs/${sub.id}/outputs/${name}.npy`, { headers: { ...auth(ACME), range: 'bytes=-16' } });
      expect(tail.status).toBe(206);
      expect(new Uint8Array(await tail.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 16));
      const past = await fetch(`${g.url}/v1/jobs/${sub.id}/outputs/${name}.npy`, { headers: { ...auth(ACME), range: `bytes=${bytes.length}-` } });
      expect(past.status).toBe(416);
      expect(past.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
      expect(((await past.json()) as Record<string, string>).code).toBe('RANGE_NOT_SATISFIABLE');
    }
    const report = JSON.parse(await (await fetch(`${g.url}/v1/jobs/${sub.id}/outputs/report.json`, { headers: auth(ACME) })).text()) as { job: string; rows: number };
    expect(report).toMatchObject({ job: sub.id, rows });

    const after = await metrics();
    const delta = (name: string, labels: Record<string, string> = {}): number => sample(after.samples, name, labels) - sample(before.samples, name, labels);
    expect(delta('drill_units_decided_total', { outcome: 'agreed' })).toBe(sub.units);
    expect(delta('drill_rows_decided_total')).toBe(rows);
    expect(delta('drill_jobs_ended_total', { status: 'done' })).toBe(1);
    expect(delta('drill_jobs', { state: 'done' })).toBe(1);
    // Every unit × 2 replicas, each credited the unit's FLOPs (rows × flopsPerRow from the model graph).
    expect(delta('drill_credit_flops_total')).toBe(2 * rows * 1158257);
    expect(delta('drill_lease_commit_seconds_count')).toBeGreaterThanOrEqual(2 * sub.units);
    expect(sample(after.samples, 'drill_workers', { state: 'connected' })).toBe(3);
    expect(after.types.get('drill_units_decided_total')).toBe('counter');
    expect(after.types.get('drill_lease_commit_seconds')).toBe('histogram');
    expect(sample(after.samples, 'drill_chain_height')).toBe(g.grid.chain!.state.head.height);
    expect(after.samples.some((s) => s.name === 'drill_gossip_verdicts_total' && s.labels.verdict === 'accept')).toBe(true);
    doneJob = sub.id;
  });

  it('partners see only their jobs; an operator sees every job; a stream replays from Last-Event-ID', async () => {
    expect(doneJob).not.toBe('');
    const other = await fetch(`${g.url}/v1/jobs/${doneJob}`, { headers: auth(OTHER) });
    expect(other.status).toBe(404);
    expect(((await other.json()) as Record<string, string>).code).toBe('JOB_UNKNOWN');
    const otherList = (await (await fetch(`${g.url}/v1/jobs`, { headers: auth(OTHER) })).json()) as { jobs: unknown[] };
    expect(otherList.jobs).toEqual([]);
    const ops = (await (await fetch(`${g.url}/v1/jobs`, { headers: auth(OPS) })).json()) as { jobs: { id: string; partner: string }[] };
    expect(ops.jobs.find((j) => j.id === doneJob)?.partner).toBe('acme');
    expect((await fetch(`${g.url}/v1/jobs/${doneJob}/outputs/report.json`, { headers: auth(OTHER) })).status).toBe(404);

    // Replay: ask for everything after this job's 'job' event.
    const all = await openEvents(`${g.url}/v1/events?job=${doneJob}`, { ...auth(ACME), 'last-event-id': '' });
    all.close();
    const first = await openEvents(`${g.url}/v1/events`, auth(OPS));
    await first.waitFor((e) => e.event === 'ready');
    first.close();
    const replay = await openEvents(`${g.url}/v1/events?job=${doneJob}`, { ...auth(ACME), 'last-event-id': (first.events[0]!.id ?? '').replace(/-\d+$/, '-1') });
    await replay.waitFor((e) => e.event === 'done', 'replayed done');
    replay.close();
    expect(replay.events.filter((e) => e.event === 'unit').length).toBe(8);
    expect(replay.events.every((e) => e.event === 'ready' || (e.data as { job?: string }).job === doneJob)).toBe(true);
    const stale = await openEvents(`${g.url}/v1/events`, { ...auth(ACME), 'last-event-id': 'deadbeef-5' });
    const reset = await stale.waitFor((e) => e.event === 'reset', 'reset');
    stale.close();
    expect(String((reset.data as { reason: string }).reason)).toMatch(/reload/);
  });

  it('cancel a running job: it fails as cancelled, the stream says so, its outputs are gone', async () => {
    const events = await openEvents(`${g.url}/v1/events`, auth(ACME));
    await events.waitFor((e) => e.event === 'ready');
    const res = await fetch(`${g.url}/v1/jobs`, { method: 'POST', headers: auth(ACME), body: await workloadForm('cnn', { unitRows: 8 }) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const del = await fetch(`${g.url}/v1/jobs/${id}`, { method: 'DELETE', headers: auth(ACME) });
    expect(del.status).toBe(200);
    const st = (await del.json()) as { status: string; cancelled: boolean; error: string };
    expect(st).toMatchObject({ status: 'failed', cancelled: true, error: 'cancelled by the partner' });
    const done = await events.waitFor((e) => e.event === 'done' && (e.data as { job: string }).job === id, 'done');
    events.close();
    expect(done.data).toMatchObject({ status: 'failed', error: 'cancelled by the partner' });
    const out = await fetch(`${g.url}/v1/jobs/${id}/outputs/probs.npy`, { headers: auth(ACME) });
    expect(out.status).toBe(404);
    expect(((await out.json()) as Record<string, string>).code).toBe('NO_OUTPUT');
  });

  it('refusals are problem documents naming the field: 401, 413, 422, 400', async () => {
    const none = await fetch(`${g.url}/v1/jobs`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ status: 401, code: 'UNAUTHORIZED', field: 'authorization', received: 'nothing' });
    const wrong = await fetch(`${g.url}/v1/workers`, { headers: auth('not-a-token-of-this-coordinator') });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as Record<string, string>).received).toBe('an unknown token');
    expect((await fetch(`${g.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${g.url}/healthz`)).status).toBe(200); // health checks need no token

    // 413: an input part past the job's byte limit, cut off while streaming; nothing is left on disk.
    const big = await workloadForm('mlp');
    big.delete('features');
    big.append('features', new Blob([new Uint8Array(MAX_JOB_BYTES + 1024 * 1024)]), 'features.npy');
    const jobsDir = join(g.tmp, 'grid', 'coordinator', 'jobs');
    const dirsBefore = (await readdir(jobsDir)).sort();
    const tooBig = await fetch(`${g.url}/v1/jobs`, { method: 'POST', headers: auth(ACME), body: big });
    expect(tooBig.status).toBe(413);
    const p413 = (await tooBig.json()) as Record<string, string>;
    expect(p413).toMatchObject({ status: 413, code: 'UPLOAD_TOO_LARGE', field: 'features' });
    expect(p413.expected).toMatch(new RegExp(`at most ${MAX_JOB_BYTES} bytes`));
    // No upload folder is left behind (other jobs' folders may be freed meanwhile).
    expect((await readdir(jobsDir)).filter((d) => !dirsBefore.includes(d))).toEqual([]);

    // 422: the same checks drill run makes, with the same message.
    const wrongName = await workloadForm('mlp');
    const f = wrongName.get('features') as Blob;
    wrongName.delete('features');
    wrongName.append('featurez', f, 'featurez.npy');
    const r422 = await fetch(`${g.url}/v1/jobs`, { method: 'POST', headers: auth(ACME), body: wrongName });
    expect(r422.status).toBe(422);
    const p422 = (await r422.json()) as Record<string, string>;
    expect(p422.code).toBe('USER_INPUT');
    expect(p422.field).toBeTruthy();
    expect(p422.detail).toBe(`${p422.field}: expected ${p422.expected}, received ${p422.received}${p422.detail.endsWith(')') ? p422.detail.slice(p422.detail.lastIndexOf(' (')) : ''}`);
    expect(p422.detail).toMatch(/featurez|features/);
    const badPolicy = await fetch(`${g.url}/v1/jobs`, { method: 'POST', headers: auth(ACME), body: await workloadForm('mlp', { policy: 'roughly' }) });
    expect(badPolicy.status).toBe(422);
    expect(((await badPolicy.json()) as Record<string, string>).received).toMatch(/roughly/);

    // 400: options against the schema, parameters against theirs.
    const badOpt = await fetch(`${g.url}/v1/jobs`, { method: 'POST', headers: auth(ACME), body: await workloadForm('mlp', { replicas: 0 }) });
    expect(badOpt.status).toBe(400);
    expect(await badOpt.json()).toMatchObject({ code: 'BAD_REQUEST', field: 'options.replicas', expected: 'at least 1', received: '0' });
    const typo = await fetch(`${g.url}/v1/jobs`, { method: 'POST', headers: auth(ACME), body: await workloadForm('mlp', { replica: 2 }) });
    expect(await typo.json()).toMatchObject({ status: 400, field: 'options.replica', expected: 'no such field' });
    const notMultipart = await fetch(`${g.url}/v1/jobs`, { method: 'POST', headers: { ...auth(ACME), 'content-type': 'application/json' }, body: '{}' });
    expect(await notMultipart.json()).toMatchObject({ status: 400, field: 'content-type' });
    const badLimit = await fetch(`${g.url}/v1/blocks?limit=9999`, { headers: auth(ACME) });
    expect(await badLimit.json()).toMatchObject({ status: 400, field: 'query.limit', expected: 'at most 500', received: '9999' });
    const badBlock = await fetch(`${g.url}/v1/blocks/zz`, { headers: auth(ACME) });
    expect(await badBlock.json()).toMatchObject({ status: 400, field: 'params.id' });
  });

  it('the OpenAPI document validates and every route in it answers a well-formed request', async () => {
    expect(doneJob).not.toBe('');
    const res = await fetch(`${g.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    const v = new Validator();
    const result = await v.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);

    const block = (await (await fetch(`${g.url}/v1/blocks?limit=1`, { headers: auth(ACME) })).json()) as { blocks: { hash: string }[] };
    const fill = (path: string): string => path.replace('{id}', path.startsWith('/v1/blocks') ? block.blocks[0]!.hash : doneJob).replace('{name}', 'pooled.npy');
    const seen: string[] = [];
    const order = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => [path, m] as const));
    // DELETE frees the finished job's files: run it last.
    order.sort((a, b) => Number(a[1] === 'delete') - Number(b[1] === 'delete'));
    for (const [path, method] of order) {
      const url = `${g.url}${fill(path)}`;
      let status: number;
      if (path === '/v1/events') {
        const s = await openEvents(url, auth(ACME));
        status = s.status;
        await s.waitFor((e) => e.event === 'ready');
        s.close();
      } else if (method === 'post') {
        status = (await fetch(url, { method: 'POST', headers: auth(ACME), body: await workloadForm('mlp') })).status;
      } else {
        const r = await fetch(url, { method: method.toUpperCase(), headers: auth(path === '/metrics' ? OPS : ACME) });
        await r.arrayBuffer();
        status = r.status;
      }
      seen.push(`${method.toUpperCase()} ${path} ${status}`);
      expect(status, `${method} ${path}`).toBeLessThan(400);
    }
    expect(seen.length).toBeGreaterThanOrEqual(12);
    expect(seen).toContain('GET /v1/jobs/{id}/outputs/{name} 200');
    expect(seen).toContain('DELETE /v1/jobs/{id} 200');
  });

  it('drill submit --api and drill status --api against it (child processes)', async () => {
    const out = await mkdtemp(join(g.tmp, 'submit-'));
    const sub = drill(['submit', '--api', g.url, '--job', join(ROOT, 'workloads/mlp/job.json'), '--out', out, '--quiet'], { DRILL_API_TOKEN: ACME });
    expect(await sub.exited, sub.output()).toBe(0);
    expect(sub.output()).toMatch(/DONE/);
    const golden = await directRun('mlp');
    for (const name of ['logits', 'probs']) expect(tensorsAgree(parsePolicy('argmax'), await readNpy(join(out, `${name}.npy`)), golden[name]!)).toBe(true);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { status: string; job: string };
    expect(report.status).toBe('done');
    // Downloaded and released: the coordinator freed the job's files, its status stays.
    const st = (await (await fetch(`${g.url}/v1/jobs/${report.job}`, { headers: auth(ACME) })).json()) as { freed: boolean; status: string };
    expect(st).toMatchObject({ status: 'done', freed: true });

    const noToken = drill(['submit', '--api', g.url, '--job', join(ROOT, 'workloads/mlp/job.json'), '--out', out], { DRILL_API_TOKEN: '' });
    expect(await noToken.exited).toBe(2);
    expect(noToken.output()).toMatch(/--token/);

    const status = drill(['status', '--api', g.url, '--token', OPS]);
    expect(await status.exited, status.output()).toBe(0);
    const text = status.output();
    for (const w of g.grid.workers) expect(text).toContain(w.node.peerId.slice(-6));
    expect(text).toContain(report.job);
    expect(text).toMatch(/chain .*height \d+/);
    const json = drill(['status', '--api', g.url, '--token', OPS, '--json']);
    expect(await json.exited).toBe(0);
    const parsed = JSON.parse(json.output()) as { workers: unknown[]; jobs: unknown[]; chain: { height: number } };
    expect(parsed.workers.length).toBe(3);
  });

  it('drill chain blocks lists the block store with the peers each block credits, as the API does', async () => {
    const api = (await (await fetch(`${g.url}/v1/blocks?limit=500`, { headers: auth(ACME) })).json()) as { blocks: { hash: string; height: number; producer: string; credits: number; credited: Record<string, number> }[] };
    const cli = drill(['chain', 'blocks', '--store', join(g.tmp, 'chain.sqlite'), '--from', '0', '--limit', '100000', '--json']);
    expect(await cli.exited, cli.output()).toBe(0);
    const listed = new Map(cli.output().trim().split('\n').map((l) => JSON.parse(l) as { hash: string; height: number; producer: string; canonical: boolean; creditRecords: number; credited: Record<string, number>; faults: unknown[] }).map((b) => [b.hash, b]));
    const credited = api.blocks.filter((b) => b.height > 0 && b.credits > 0);
    expect(credited.length).toBeGreaterThan(0); // the jobs above put credit records in blocks
    for (const b of api.blocks.filter((x) => x.height > 0)) {
      const c = listed.get(b.hash);
      if (!c) continue; // written after the listing was read
      expect(c).toMatchObject({ height: b.height, producer: b.producer, creditRecords: b.credits, credited: b.credited, faults: [] });
    }
    expect(credited.filter((b) => listed.has(b.hash)).length).toBeGreaterThan(0);
    const text = drill(['chain', 'blocks', '--store', join(g.tmp, 'chain.sqlite')]);
    expect(await text.exited).toBe(0);
    expect(text.output()).toMatch(/height +slot +block +canonical +producer +records +credits \(FLOP\) +faults/);
    const missing = drill(['chain', 'blocks', '--store', join(g.tmp, 'nope.sqlite')]);
    expect(await missing.exited).toBe(2);
    expect(missing.output()).toMatch(/--store: expected a node's block store file/);
  });
});

export type { SseEvent };
