/**
 * The intake under hostile partners: a real coordinator (libp2p, SQLite, ONNX Runtime workers)
 * with the intake core and its libp2p transport, and real libp2p nodes playing partners. A
 * stranger is refused before any of its bytes are read; a partner over each limit is refused
 * with the limit named; nothing a partner does grows the coordinator's heap; honest jobs still
 * run to the end; a job's files are freed once fetched (or cancelled, or expired) while its
 * status and report stay queryable.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalGrid } from '../../src/node/local-grid.ts';
import { createDrillNode } from '../../src/net/node.ts';
import type { DrillNode } from '../../src/net/node.ts';
import { fetchBlob } from '../../src/net/blobs.ts';
import { encodeNpy, readNpy } from '../../src/util/npy.ts';
import { isDrillError } from '../../src/util/errors.ts';
import { parsePolicy, tensorsAgree } from '../../src/pod/policy.ts';
import { IntakeCore, IntakeServer, IntakeClient, IntakeErrorCode, INTAKE_PROTOCOL, CHUNK_BYTES } from '../../src/coordinator/intake/index.ts';
import type { ClientFile, IntakeLimits } from '../../src/coordinator/intake/index.ts';
import { encodeChunk, beginCodec } from '../../src/coordinator/intake/wire.ts';
import { ROOT } from '../helpers/grid.ts';
import { heapUsed, writeIdentityModel } from './harness.ts';

let tmp: string;
let grid: LocalGrid;
let core: IntakeCore;
let server: IntakeServer;
let partner: DrillNode;
let stranger: DrillNode;
let clock = 0;
const realNow = (): number => Date.now() + clock;
const MLP = join(ROOT, 'workloads/mlp');

const LIMITS: Partial<IntakeLimits> = { maxJobsPerPartner: 2, maxJobBytes: 16 * 1024 * 1024, maxModelBytes: 4 * 1024 * 1024, outputTtlMs: 60_000, uploadIdleMs: 30_000 };

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-intake-'));
  grid = new LocalGrid({ workers: 2, threadsPerWorker: 1, sharedFs: false, dataDir: join(tmp, 'grid') });
  await grid.start();
  partner = await createDrillNode();
  stranger = await createDrillNode();
  core = new IntakeCore(grid.coordinator, { dataDir: join(tmp, 'grid', 'coordinator'), policy: { open: false, partners: new Set([partner.peerId]) }, limits: LIMITS, now: realNow });
  await core.start();
  server = new IntakeServer(grid.coordinatorNode, core);
  await server.start();
});
afterAll(async () => {
  await server?.stop();
  await core?.stop();
  await partner?.stop();
  await stranger?.stop();
  await grid?.stop();
  await rm(tmp, { recursive: true, force: true });
});

const coordAddr = (): string => grid.coordinatorNode.multiaddrs()[0]!;
async function mlpFiles(): Promise<ClientFile[]> {
  const model = join(MLP, 'model.onnx');
  const features = join(MLP, 'inputs/features.npy');
  return [
    { role: 'model', name: 'model.onnx', path: model, bytes: (await stat(model)).size },
    { role: 'input', name: 'features', path: features, bytes: (await stat(features)).size },
  ];
}
async function remoteCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isDrillError(e)) return String(e.meta.remoteCode ?? e.code);
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('intake: a peer that is not a partner', () => {
  it('is refused on every protocol before its request is read; the coordinator heap stays flat', async () => {
    const before = heapUsed();
    const begin = beginCodec.encode({ files: [{ role: 'model', name: 'm', bytes: 10 }, { role: 'input', name: 'x', bytes: 10 }] });
    expect(await remoteCode(stranger.request(coordAddr(), INTAKE_PROTOCOL.begin, begin))).toBe(IntakeErrorCode.PARTNER_REFUSED);
    // 16 full-size chunks at once (4 MiB each, 64 MiB in all): refused from the first bytes, or
    // reset past the 4 chunk streams a connection may hold open. None is accepted.
    const chunk = encodeChunk({ upload: 'up-x', file: 0, offset: 0 }, new Uint8Array(CHUNK_BYTES).fill(7));
    const codes = await Promise.all(Array.from({ length: 16 }, () => remoteCode(stranger.request(coordAddr(), INTAKE_PROTOCOL.chunk, chunk, { timeoutMs: 60_000 }))));
    expect(codes.filter((c) => c === IntakeErrorCode.PARTNER_REFUSED).length).toBeGreaterThanOrEqual(4);
    for (const c of codes) expect([IntakeErrorCode.PARTNER_REFUSED, 'NET_BAD_FRAME', 'NET_DIAL_FAILED']).toContain(c);
    for (const p of [INTAKE_PROTOCOL.submit, INTAKE_PROTOCOL.job, INTAKE_PROTOCOL.output, INTAKE_PROTOCOL.cancel, INTAKE_PROTOCOL.release]) {
      expect(await remoteCode(stranger.request(coordAddr(), p, new Uint8Array(100)))).toBe(IntakeErrorCode.PARTNER_REFUSED);
    }
    expect(heapUsed() - before).toBeLessThan(16 * 1024 * 1024);
    // The client turns the refusal into one clear USER_INPUT line naming the partner id to allow.
    const e = await new IntakeClient(stranger, coordAddr()).upload(await mlpFiles()).catch((x: unknown) => x);
    expect(isDrillError(e, 'USER_INPUT')).toBe(true);
    expect((e as Error).message).toContain(`--allow-partner ${stranger.peerId}`);
  });
});

describe('intake: an honest partner', () => {
  it('uploads in chunks, runs the job, downloads the outputs; release frees the files and the model blob, the report stays queryable', async () => {
    const client = new IntakeClient(partner, coordAddr());
    const upload = await client.upload(await mlpFiles());
    const reply = await client.submit(upload, { unitRows: 256, policy: 'argmax' });
    expect(reply.units).toBe(8);
    let st = await client.status(reply.job, 0);
    while (st.status === 'running') st = await client.status(reply.job, st.progress?.done ?? 0);
    expect(st.status).toBe('done');
    expect([...st.files].sort()).toEqual(['logits.npy', 'probs.npy', 'report.json']);
    const out = join(tmp, 'honest');
    await mkdir(out, { recursive: true });
    for (const f of st.files) await client.download(reply.job, f, join(out, f));
    for (const f of ['logits.npy', 'probs.npy']) {
      const got = await readNpy(join(out, f));
      expect(tensorsAgree(parsePolicy('allclose:1e-3,1e-4'), got, await readNpy(join(MLP, 'golden', f))), f).toBe(true);
    }
    const uploadDir = grid.coordinator.store().getJob(reply.job)!.uploadDir!;
    expect(existsSync(uploadDir)).toBe(true);
    await client.release(reply.job);
    expect(existsSync(uploadDir)).toBe(false);
    const after = core.status(partner.peerId, reply.job);
    expect(after).toMatchObject({ status: 'done', freed: true, files: [] });
    expect(after.report!.rows).toBe(2048);
    // The model is no longer served: the blob was freed when the job ended.
    const err = await fetchBlob(partner, grid.coordinatorNode.peerId, after.report!.model.sha256).catch((x: unknown) => x);
    expect(isDrillError(err, 'BLOB_NOT_FOUND')).toBe(true);
    // Another partner cannot see it.
    expect(() => core.status(stranger.peerId, reply.job)).toThrow(/no such job of partner/);
    expect(core.list(partner.peerId).map((j) => j.job)).toContain(reply.job);
  });
});

describe('intake: a partner over each limit', () => {
  it('concurrent jobs: the third upload is refused while two are open; a finished one frees its slot', async () => {
    const a = await core.beginUpload(partner.peerId, { files: [{ role: 'model', name: 'm', bytes: 1 }, { role: 'input', name: 'x', bytes: 1 }] });
    const b = await core.beginUpload(partner.peerId, { files: [{ role: 'model', name: 'm', bytes: 1 }, { role: 'input', name: 'x', bytes: 1 }] });
    const c = await core.beginUpload(partner.peerId).catch((e: unknown) => e);
    expect(isDrillError(c, IntakeErrorCode.TOO_MANY_JOBS)).toBe(true);
    expect((c as Error).message).toMatch(/at most 2 jobs at once/);
    await core.abortUpload(partner.peerId, a.upload);
    const d = await core.beginUpload(partner.peerId);
    await core.abortUpload(partner.peerId, b.upload);
    await core.abortUpload(partner.peerId, d.upload);
  });

  it('bytes per job: a declaration over the limit, a chunk past its file, a stream past the limit — each refused, nothing kept', async () => {
    const over = await core.beginUpload(partner.peerId, { files: [{ role: 'model', name: 'm', bytes: 1000 }, { role: 'input', name: 'x', bytes: 16 * 1024 * 1024 }] }).catch((e: unknown) => e);
    expect(isDrillError(over, IntakeErrorCode.UPLOAD_TOO_LARGE)).toBe(true);
    const bigModel = await core.beginUpload(partner.peerId, { files: [{ role: 'model', name: 'm', bytes: 5 * 1024 * 1024 }] }).catch((e: unknown) => e);
    expect(isDrillError(bigModel, IntakeErrorCode.UPLOAD_TOO_LARGE)).toBe(true);

    const up = await core.beginUpload(partner.peerId, { files: [{ role: 'model', name: 'm', bytes: 10 }] });
    const past = await core.writeChunk(partner.peerId, up.upload, 0, 5, new Uint8Array(6)).catch((e: unknown) => e);
    expect(isDrillError(past, IntakeErrorCode.UPLOAD_BAD)).toBe(true); // gap at 0..5 and past the end
    const gap = await core.writeChunk(partner.peerId, up.upload, 0, 3, new Uint8Array(1)).catch((e: unknown) => e);
    expect((gap as Error).message).toMatch(/no gaps/);
    // A stream without a declared size is cut off at the job's byte limit (16 MiB), before the disk holds more.
    const before = heapUsed();
    async function* endless(): AsyncGenerator<Uint8Array> {
      const block = new Uint8Array(1024 * 1024);
      for (;;) yield block;
    }
    const cut = await core.writeStream(partner.peerId, up.upload, { role: 'input', name: 'x' }, endless()).catch((e: unknown) => e);
    expect(isDrillError(cut, IntakeErrorCode.UPLOAD_TOO_LARGE)).toBe(true);
    expect(heapUsed() - before).toBeLessThan(8 * 1024 * 1024);
    const dir = join(tmp, 'grid', 'coordinator', 'jobs', up.upload);
    expect(existsSync(join(dir, 'inputs', '1.npy'))).toBe(false);
    await core.abortUpload(partner.peerId, up.upload);
    expect(existsSync(dir)).toBe(false);
  });

  it('unit floor and ceiling: a 2M-row job with 1-row units (a ~8 MB upload) is refused, naming the smallest unit; the heap stays flat', async () => {
    const rows = 2_000_000;
    const dir = join(tmp, 'tiny-units');
    await mkdir(dir, { recursive: true });
    const model = await writeIdentityModel(join(dir, 'id.onnx'), [1]);
    const x = join(dir, 'x.npy');
    await writeFile(x, encodeNpy({ dtype: 'float32', dims: [rows, 1], data: new Float32Array(rows) }));
    const files: ClientFile[] = [
      { role: 'model', name: 'id.onnx', path: model, bytes: (await stat(model)).size },
      { role: 'input', name: 'x', path: x, bytes: (await stat(x)).size },
    ];
    const client = new IntakeClient(partner, coordAddr());
    const before = heapUsed();
    const upload = await client.upload(files);
    const e = await client.submit(upload, { unitRows: 1 }).catch((err: unknown) => err);
    expect(isDrillError(e, 'USER_INPUT')).toBe(true);
    expect(isDrillError(e) && e.meta.remoteCode).toBe(IntakeErrorCode.UNITS_REFUSED);
    expect((e as Error).message).toMatch(/unitRows: expected at least 1024 rows per unit .* received 1 \(2000000 units\)/);
    expect(heapUsed() - before).toBeLessThan(32 * 1024 * 1024);
    expect(grid.coordinator.workers().length).toBe(2); // the coordinator is fine
    // Without unitRows the default unit size respects the floor: the job is accepted.
    const again = await client.submit(await client.upload(files), {});
    expect(again.unitRows).toBeGreaterThanOrEqual(1024);
    expect(again.units).toBeLessThanOrEqual(64);
    await client.cancel(again.job);
  });

  it('a cancelled job fails with "cancelled by the partner" and its files are freed at once', async () => {
    const client = new IntakeClient(partner, coordAddr());
    const cnn = join(ROOT, 'workloads/cnn');
    const files: ClientFile[] = [
      { role: 'model', name: 'model.onnx', path: join(cnn, 'model.onnx'), bytes: (await stat(join(cnn, 'model.onnx'))).size },
      { role: 'input', name: 'image', path: join(cnn, 'inputs/image.npy'), bytes: (await stat(join(cnn, 'inputs/image.npy'))).size },
    ];
    const reply = await client.submit(await client.upload(files), { unitRows: 64 });
    const uploadDir = grid.coordinator.store().getJob(reply.job)!.uploadDir!;
    const st = await client.cancel(reply.job);
    expect(st).toMatchObject({ status: 'failed', cancelled: true, error: 'cancelled by the partner' });
    await core.sweep();
    expect(existsSync(uploadDir)).toBe(false);
    expect(core.status(partner.peerId, reply.job).freed).toBe(true);
  });

  it('an unreleased finished job is freed after the output TTL; an idle upload after uploadIdleMs', async () => {
    const client = new IntakeClient(partner, coordAddr());
    const reply = await client.submit(await client.upload(await mlpFiles()), { unitRows: 512 });
    const h = grid.coordinator.job(reply.job);
    if (h) await h.result;
    const idle = await core.beginUpload(partner.peerId, { files: [{ role: 'model', name: 'm', bytes: 4 }] });
    const row = grid.coordinator.store().getJob(reply.job)!;
    await core.sweep();
    expect(existsSync(row.uploadDir!)).toBe(true);
    clock += 61_000;
    try {
      await core.sweep();
    } finally {
      clock -= 61_000;
    }
    expect(existsSync(row.uploadDir!)).toBe(false);
    expect(core.status(partner.peerId, reply.job)).toMatchObject({ status: 'done', freed: true });
    expect(await remoteCode(core.writeChunk(partner.peerId, idle.upload, 0, 0, new Uint8Array(4)))).toBe(IntakeErrorCode.UPLOAD_UNKNOWN);
  });
});
