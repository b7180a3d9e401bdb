/**
 * A worker facing hostile coordinators, over real libp2p (real workers with ONNX Runtime; the
 * hostile coordinators are scripted nodes speaking the grid protocol, or real coordinators the
 * worker was not given): an unlisted coordinator announcing units is ignored; a lease naming a
 * file outside the job's inputs is refused (and no byte of it is revealed); a peer relaying
 * another coordinator's probe earns no file trust; a coordinator that never asks for reveals
 * cannot grow the worker's memory; a lease claiming a huge model is refused before any fetch; a
 * lease naming a result spool file anywhere but directly inside the spool folder the coordinator
 * gave (on a filesystem the worker proved it shares) is refused, and no link or existing file is
 * written through.
 * Honest work completes throughout.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile, readFile, symlink, readdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createDrillNode } from '../../src/net/node.ts';
import type { DrillNode } from '../../src/net/node.ts';
import { BlobServer, sha256HexOf } from '../../src/net/blobs.ts';
import { Coordinator } from '../../src/coordinator/service.ts';
import type { JobHandle } from '../../src/coordinator/service.ts';
import { prepareJob } from '../../src/coordinator/job.ts';
import {
  PROTOCOL, helloAckCodec, claimCodec, encodeClaimReply, commitCodec, ackCodec, commitAckPrefix, unitErrorCodec,
  revealRequestCodec, decodeRevealReply, formatFsProbe,
} from '../../src/protocol/grid.ts';
import type { ClaimReply, InputFileRange, LeaseInfo } from '../../src/protocol/grid.ts';
import { encodeNpy, readNpyHeader } from '../../src/util/npy.ts';
import { decodeTensors } from '../../src/protocol/tensors.ts';
import { SPOOL_MIN_BYTES } from '../../src/worker/thread.ts';
import { heapUsed, writeIdentityModel, startWorker, when } from './harness.ts';
import type { TestWorker } from './harness.ts';

let tmp: string;
let honestNode: DrillNode;
let honest: Coordinator;
let worker: TestWorker;
const cleanups: Array<() => Promise<void>> = [];
const MiB = 1024 * 1024;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-hostile-worker-'));
  honestNode = await createDrillNode();
  honest = new Coordinator(honestNode, { dataDir: join(tmp, 'honest'), stallMs: 0 });
  await honest.start();
  worker = await startWorker(join(tmp, 'w'), honestNode.multiaddrs()[0]!, { sharedFs: true, maxPendingBytes: 1 * MiB, maxPendingResults: 64 });
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await worker?.stop();
  await honest?.stop();
  await honestNode?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** An Identity job of `rows` rows of `width` float32 on `coord`, 1 replica. */
async function identityJob(coord: Coordinator, name: string, rows: number, width: number, unitRows: number): Promise<JobHandle> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  const model = await writeIdentityModel(join(dir, 'id.onnx'), [width]);
  await writeFile(join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', dims: [rows, width], data: new Float32Array(rows * width).map((_, i) => i % 1000) }));
  const spec = await prepareJob({ model, inputs: { x: join(dir, 'x.npy') }, outDir: join(dir, 'out'), replicas: 1, unitRows, policy: 'exact', name });
  return coord.submit(spec);
}

/**
 * A scripted coordinator: answers hello (optionally pointing at a probe file), hands out the
 * leases `next()` returns, records commits, errors and the claims' fsTokens, and serves one model.
 */
async function scripted(opts: { model: Uint8Array; fsProbe?: string; spoolDir?: string; next: () => ClaimReply | null }): Promise<{
  node: DrillNode; commits: string[]; errors: string[]; fsTokens: (string | undefined)[]; blobs: BlobServer; modelHash: string;
}> {
  const node = await createDrillNode();
  cleanups.push(() => node.stop());
  const blobs = new BlobServer(node);
  const modelHash = blobs.add(opts.model);
  await blobs.start();
  const rec = { node, commits: [] as string[], errors: [] as string[], fsTokens: [] as (string | undefined)[], blobs, modelHash };
  const lease = (prefix?: Uint8Array): Uint8Array => encodeClaimReply(opts.next() ?? { ok: false, reason: 'no-work' }, prefix);
  await node.handle(PROTOCOL.hello, async () => helloAckCodec.encode({ coordinator: node.peerId, maxInflight: 4, ...(opts.fsProbe ? { fsProbe: opts.fsProbe } : {}), ...(opts.spoolDir ? { spoolDir: opts.spoolDir } : {}) }));
  await node.handle(PROTOCOL.claim, async (req) => {
    rec.fsTokens.push(claimCodec.decode(req).fsToken);
    return lease();
  });
  await node.handle(PROTOCOL.commit, async (req) => {
    const c = commitCodec.decode(req);
    rec.commits.push(c.lease);
    if (!c.claim) return ackCodec.encode({ ok: true });
    rec.fsTokens.push(c.fsToken);
    return lease(commitAckPrefix({ ok: true }));
  }, { maxRequestBytes: 64 * 1024 });
  await node.handle(PROTOCOL.error, async (req) => {
    rec.errors.push(unitErrorCodec.decode(req).message);
    return ackCodec.encode({ ok: true });
  });
  return rec;
}

function leaseInfo(id: string, modelHash: string, modelBytes: number, rows: number, extra: Partial<LeaseInfo> = {}): LeaseInfo {
  return { lease: id, job: 'hostile-job', unit: 0, modelHash, modelBytes, outputNames: ['y'], rows, deadlineMs: 60_000, ...extra };
}
/** Wait until `count()` reaches `n` (the scripted coordinator's handlers push as requests arrive). */
const seen = (count: () => number, n: number, what: string): Promise<void> =>
  when(() => count() >= n, (check) => {
    const t = setInterval(check, 10);
    return () => clearInterval(t);
  }, 30_000, what);

describe('worker: a coordinator it was not given', () => {
  it('announcing units is ignored (never joined); a genesis-listed one is joined; honest work completes', async () => {
    const strangerNode = await createDrillNode();
    const stranger = new Coordinator(strangerNode, { dataDir: join(tmp, 'stranger'), stallMs: 60_000, announceMs: 100 });
    await stranger.start();
    cleanups.push(async () => {
      await stranger.stop();
      await strangerNode.stop();
    });
    const strangerJob = await identityJob(stranger, 'stranger-job', 64, 4, 8);
    const before = heapUsed();
    const ignored = new Promise<string>((r) => worker.worker.events.on('ignored', r));
    await strangerNode.dial(worker.node.multiaddrs()[0]!);
    expect(await ignored).toBe(strangerNode.peerId);
    expect(worker.worker.joined()).toEqual([honestNode.peerId]);
    expect(stranger.workers()).toEqual([]);
    // Honest work on the coordinator the worker joined still runs.
    const job = await identityJob(honest, 'honest-1', 64, 4, 8);
    expect((await job.result).status).toBe('done');
    expect(heapUsed() - before).toBeLessThan(32 * MiB);
    // A worker that lists the same coordinator (as a genesis would) joins it on its announcement.
    const listed = await startWorker(join(tmp, 'w-listed'), undefined, { coordinators: [strangerNode.peerId] });
    cleanups.push(() => listed.stop());
    await strangerNode.dial(listed.node.multiaddrs()[0]!);
    expect((await strangerJob.result).status).toBe('done');
    expect(listed.worker.joined()).toEqual([strangerNode.peerId]);
  });
});

describe('worker: same-filesystem leases from a hostile coordinator', () => {
  it('a lease naming a file outside the job is refused, nothing of it is revealed; a well-formed one runs', async () => {
    const dir = join(tmp, 'fs');
    await mkdir(dir, { recursive: true });
    const model = await writeIdentityModel(join(dir, 'id.onnx'), [4]);
    const x = join(dir, 'x.npy');
    await writeFile(x, encodeNpy({ dtype: 'float32', dims: [8, 4], data: new Float32Array(32).map((_, i) => i) }));
    const secret = join(dir, 'secret.npy');
    await writeFile(secret, 'TOP SECRET: the private key is 42; padding padding padding padding padding');
    const fifo = join(dir, 'fifo.npy');
    execFileSync('mkfifo', [fifo]);
    const h = await readNpyHeader(x);
    const probe = join(dir, 'probe');
    const range = (over: Partial<InputFileRange>): InputFileRange => ({ path: x, offset: h.dataOffset + 2 * 16, dtype: 'float32', dims: [1, 4], ...over });
    const bad: [string, InputFileRange][] = [
      ['a file that is not .npy', range({ path: '/etc/passwd' })],
      ['a .npy-named file that is not an array', range({ path: secret })],
      ['a FIFO (must not hang)', range({ path: fifo })],
      ['the header bytes', range({ offset: 0 })],
      ['past the data', range({ offset: h.dataOffset + 8 * 16 })],
      ['a misaligned offset', range({ offset: h.dataOffset + 3 })],
      ['another dtype', range({ dtype: 'int32' })],
      ['other dims', range({ dims: [1, 2] })],
      ['more rows than the unit', range({ dims: [2, 4] })],
      ['a relative path', range({ path: 'x.npy' })],
    ];
    const leases: ClaimReply[] = [];
    const modelBytes = new Uint8Array(await readFile(model));
    const H = await scripted({ model: modelBytes, fsProbe: probe, next: () => leases.shift() ?? null });
    // The hostile shares the worker's filesystem and writes a probe naming itself: it earns the
    // worker's file trust — the confinement of lease paths is what protects the worker then.
    const token = randomBytes(32).toString('hex');
    await writeFile(probe, formatFsProbe(H.node.peerId, token));
    for (const [i, [, r]] of bad.entries()) leases.push({ ok: true, lease: leaseInfo(`bad-${i}`, H.modelHash, modelBytes.length, 1, { inputFiles: { x: r } }), inputs: {} });
    leases.push({ ok: true, lease: leaseInfo('good', H.modelHash, modelBytes.length, 1, { inputFiles: { x: range({}) } }), inputs: {} });
    const before = heapUsed();
    await worker.worker.join(H.node.multiaddrs()[0]!);
    await seen(() => H.errors.length, bad.length, 'an error report for every bad lease');
    await seen(() => H.commits.length, 1, 'the good lease committed');
    expect(H.fsTokens[0]).toBe(token);
    expect(H.commits).toEqual(['good']);
    expect(H.errors).toHaveLength(bad.length);
    for (const m of H.errors) expect(m).toMatch(/^lease input x: expected /);
    expect(H.errors.join('\n')).not.toMatch(/SECRET|root:/);
    // Reveals: nothing for a refused lease, row 2 for the good one.
    const refused = decodeRevealReply(await H.node.request(worker.node.peerId, PROTOCOL.reveal, revealRequestCodec.encode({ lease: 'bad-1' })));
    expect(refused.ok).toBe(false);
    const good = decodeRevealReply(await H.node.request(worker.node.peerId, PROTOCOL.reveal, revealRequestCodec.encode({ lease: 'good' })));
    expect(good.ok && 'outputs' in good && [...(good.outputs.y!.data as Float32Array)]).toEqual([8, 9, 10, 11]);
    const job = await identityJob(honest, 'honest-2', 64, 4, 8);
    expect((await job.result).status).toBe('done');
    expect(heapUsed() - before).toBeLessThan(32 * MiB);
  });

  it('a lease naming a result spool file outside its spool folder is refused; no file is written through or over', async () => {
    const dir = join(tmp, 'spool-fs');
    const spoolDir = join(dir, 'spool');
    await mkdir(spoolDir, { recursive: true });
    // Rows of 64 KiB: results that small or larger go to the spool (thread.ts SPOOL_MIN_BYTES).
    const W = SPOOL_MIN_BYTES / 4;
    const model = await writeIdentityModel(join(dir, 'id.onnx'), [W]);
    const x = join(dir, 'x.npy');
    await writeFile(x, encodeNpy({ dtype: 'float32', dims: [8, W], data: new Float32Array(8 * W).map((_, i) => i) }));
    const h = await readNpyHeader(x);
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'ORIGINAL');
    const name = (i: number): string => `${String(i).padStart(16, '0')}-${'b'.repeat(32)}.res`;
    await symlink(victim, join(spoolDir, name(1)));
    await writeFile(join(spoolDir, name(2)), 'KEEP');
    const bad: [string, string][] = [
      ['outside the spool folder', join(dir, name(0))],
      ['a .. path out of it', `${spoolDir}/../${name(3)}`],
      ['not a spool file name', join(spoolDir, 'evil.sh')],
      ['a relative path', name(4)],
      ['a planted link to another file', join(spoolDir, name(1))],
      ['an existing file', join(spoolDir, name(2))],
    ];
    const probe = join(dir, 'probe');
    const leases: ClaimReply[] = [];
    const modelBytes = new Uint8Array(await readFile(model));
    const H = await scripted({ model: modelBytes, fsProbe: probe, spoolDir, next: () => leases.shift() ?? null });
    await writeFile(probe, formatFsProbe(H.node.peerId, randomBytes(32).toString('hex')));
    const row2 = { x: { path: x, offset: h.dataOffset + 2 * 4 * W, dtype: 'float32', dims: [1, W] } satisfies InputFileRange };
    for (const [i, [, path]] of bad.entries()) leases.push({ ok: true, lease: leaseInfo(`spool-bad-${i}`, H.modelHash, modelBytes.length, 1, { inputFiles: row2, resultSpool: path }), inputs: {} });
    const good = join(spoolDir, name(5));
    leases.push({ ok: true, lease: leaseInfo('spool-good', H.modelHash, modelBytes.length, 1, { inputFiles: row2, resultSpool: good }), inputs: {} });
    await worker.worker.join(H.node.multiaddrs()[0]!);
    await seen(() => H.errors.length, bad.length, 'an error report for every bad spool lease');
    await seen(() => H.commits.length, 1, 'the good lease committed');
    expect(H.commits).toEqual(['spool-good']);
    for (const m of H.errors) expect(m).toMatch(/resultSpool: expected a spool file name directly inside|spoolPath: cannot create .* \(EEXIST\)/);
    expect(await readFile(victim, 'utf8')).toBe('ORIGINAL');
    expect(await readFile(join(spoolDir, name(2)), 'utf8')).toBe('KEEP');
    expect((await readdir(dir)).sort()).toEqual(['id.onnx', 'probe', 'spool', 'victim.txt', 'x.npy']);
    // The good one: its reveal carries no bytes, and the spool file holds row 2.
    const r = decodeRevealReply(await H.node.request(worker.node.peerId, PROTOCOL.reveal, revealRequestCodec.encode({ lease: 'spool-good' })));
    expect(r).toMatchObject({ ok: true, spooled: true });
    const spooled = decodeTensors(new Uint8Array(await readFile(good))).y!;
    expect(spooled.dims).toEqual([1, W]);
    expect([...(spooled.data as Float32Array)]).toEqual(Array.from({ length: W }, (_, i) => 2 * W + i));
  });

  it('a coordinator without file trust cannot have results written anywhere', async () => {
    const dir = join(tmp, 'spool-untrusted');
    await mkdir(dir, { recursive: true });
    const model = await writeIdentityModel(join(dir, 'id.onnx'), [4]);
    const bytes = new Uint8Array(await readFile(model));
    const leases: ClaimReply[] = [];
    const U = await scripted({ model: bytes, spoolDir: dir, next: () => leases.shift() ?? null });
    const target = join(dir, `${'1'.repeat(16)}-${'2'.repeat(32)}.res`);
    leases.push({ ok: true, lease: leaseInfo('untrusted-1', U.modelHash, bytes.length, 1, { resultSpool: target }), inputs: { x: { dtype: 'float32', dims: [1, 4], data: new Float32Array(4) } } });
    await worker.worker.join(U.node.multiaddrs()[0]!);
    await seen(() => U.errors.length, 1, 'the spool lease refused');
    expect(U.errors[0]).toMatch(/did not agree to write one/);
    expect(U.commits).toEqual([]);
    expect(await readdir(dir)).toEqual(['id.onnx']);
  });

  it("a peer relaying the real coordinator's probe path earns no file trust", async () => {
    const realProbe = resolve(join(tmp, 'honest'), `fs-probe-${honestNode.peerId.slice(-12)}`);
    const model = await writeIdentityModel(join(tmp, 'relay-id.onnx'), [4]);
    const bytes = new Uint8Array(await readFile(model));
    const leases: ClaimReply[] = [];
    const R = await scripted({ model: bytes, fsProbe: realProbe, next: () => leases.shift() ?? null });
    leases.push({ ok: true, lease: leaseInfo('relay-1', R.modelHash, bytes.length, 1, { inputFiles: { x: { path: join(tmp, 'fs', 'x.npy'), offset: 128, dtype: 'float32', dims: [1, 4] } } }), inputs: {} });
    await worker.worker.join(R.node.multiaddrs()[0]!);
    await seen(() => R.errors.length, 1, 'the file lease refused');
    expect(R.fsTokens.every((t) => t === undefined)).toBe(true);
    expect(R.errors[0]).toMatch(/did not agree to read them/);
    expect(R.commits).toEqual([]);
  });
});

describe('worker: a coordinator that never asks for reveals', () => {
  it('cannot make the worker hold more than its pending bounds; honest reveals still work', async () => {
    const width = 16_384; // 64 KiB of output per unit
    const model = await writeIdentityModel(join(tmp, 'wide-id.onnx'), [width]);
    const bytes = new Uint8Array(await readFile(model));
    let n = 0;
    const units = 100;
    const N = await scripted({
      model: bytes,
      next: () => (n >= units ? null : { ok: true, lease: leaseInfo(`hoard-${n++}`, sha256HexOf(bytes), bytes.length, 1), inputs: { x: { dtype: 'float32', dims: [1, width], data: new Float32Array(width).fill(n) } } }),
    });
    const before = heapUsed();
    const honestJob = identityJob(honest, 'honest-3', 256, 4, 8);
    await worker.worker.join(N.node.multiaddrs()[0]!);
    await seen(() => N.commits.length, units, `${units} commits to the hoarding coordinator`);
    const st = worker.worker.pendingStats();
    expect(st.bytes).toBeLessThanOrEqual(1 * MiB);
    expect(st.dropped).toBeGreaterThanOrEqual(units - 16);
    expect(heapUsed() - before).toBeLessThan(32 * MiB);
    expect((await (await honestJob).result).status).toBe('done');
  });
});

describe('worker: a lease claiming a huge model', () => {
  it('is refused before any fetch (modelBytes over the blob cap)', async () => {
    const model = await writeIdentityModel(join(tmp, 'huge-id.onnx'), [4]);
    const bytes = new Uint8Array(await readFile(model));
    let given = 0;
    const B = await scripted({
      model: bytes,
      next: () => (given++ > 0 ? null : { ok: true, lease: leaseInfo('huge', sha256HexOf(bytes), 3 * 1024 * MiB, 1), inputs: { x: { dtype: 'float32', dims: [1, 4], data: new Float32Array(4) } } }),
    });
    await worker.worker.join(B.node.multiaddrs()[0]!);
    await seen(() => given, 1, 'the lease handed out');
    const job = await identityJob(honest, 'honest-4', 16, 4, 8);
    expect((await job.result).status).toBe('done'); // the worker carries on
    expect(B.blobs.served).toBe(0);
    expect(B.commits).toEqual([]);
  });
});
