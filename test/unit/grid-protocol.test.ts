/**
 * Grid protocol frames (src/protocol/grid.ts, tensors.ts) and the default unit size
 * (coordinator/job.ts): lease replies built from file reads equal the ordinary encoding, tensor
 * data arrive 8-byte aligned (views, no copies), commit-and-claim replies round-trip, and
 * defaultUnitRows follows its FLOPs target and caps.
 */
import { describe, expect, it } from 'vitest';
import {
  encodeClaimReply, encodeClaimReplyFilled, decodeClaimReply, commitAckPrefix, decodeCommitReply,
  commitCodec, encodeRevealReply, decodeRevealReply, claimCodec,
} from '../../src/protocol/grid.ts';
import type { LeaseInfo } from '../../src/protocol/grid.ts';
import { tensorBytes } from '../../src/util/tensor.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { defaultUnitRows, TARGET_UNIT_FLOPS, MAX_UNIT_INPUT_BYTES, MIN_UNITS_PER_JOB } from '../../src/coordinator/job.ts';

const lease: LeaseInfo = { lease: 'job-1/0/a', job: 'job-1', unit: 0, modelHash: 'a'.repeat(64), modelBytes: 10, outputNames: ['y'], rows: 3, deadlineMs: 1000 };
const inputs: Record<string, HostTensor> = {
  x: { dtype: 'float32', dims: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i / 2) },
  m: { dtype: 'uint8', dims: [3, 3], data: Uint8Array.from({ length: 9 }, (_, i) => i) },
  k: { dtype: 'int64', dims: [3, 1], data: BigInt64Array.from([1n, -2n, 3n]) },
};

describe('lease frames', () => {
  it('a lease filled from reads equals the ordinary encoding', async () => {
    const a = encodeClaimReply({ ok: true, lease, inputs });
    const b = await encodeClaimReplyFilled(lease, inputs, async (name, dest) => dest.set(tensorBytes(inputs[name]!)));
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
  });

  it('decodes to aligned views of the message (no copies)', () => {
    const bytes = encodeClaimReply({ ok: true, lease, inputs });
    const r = decodeClaimReply(bytes);
    if (!r.ok) throw new Error('expected a lease');
    expect(r.lease).toEqual(lease);
    for (const [name, t] of Object.entries(inputs)) {
      const got = r.inputs[name]!;
      expect(got.dims).toEqual(t.dims);
      expect([...got.data]).toEqual([...t.data]);
      expect(got.data.buffer).toBe(bytes.buffer);
      expect(got.data.byteOffset % 8).toBe(0);
    }
  });

  it('reveal replies round-trip', () => {
    const r = decodeRevealReply(encodeRevealReply({ ok: true, salt: 'b'.repeat(64), outputs: inputs }));
    if (!r.ok || !('outputs' in r)) throw new Error('expected a result');
    expect([...r.outputs.x!.data]).toEqual([...inputs.x!.data]);
  });

  it('a spooled reveal carries a salt and no tensor bytes', () => {
    const r = decodeRevealReply(encodeRevealReply({ ok: true, salt: 'c'.repeat(64), spooled: true }));
    expect(r).toEqual({ ok: true, salt: 'c'.repeat(64), spooled: true });
    // A spooled head with tensor bytes smuggled after it is refused.
    const head = encodeRevealReply({ ok: true, salt: 'c'.repeat(64), spooled: true });
    const smuggled = new Uint8Array(head.length + 8);
    smuggled.set(head);
    expect(() => decodeRevealReply(smuggled)).toThrow(/spooled reveal carries no tensor bytes/);
  });
});

describe('commit-and-claim', () => {
  it('a commit may ask for the next lease; old commits parse without it', () => {
    const base = { lease: lease.lease, commitment: 'c'.repeat(64), runMs: 1, profile: 'cpu/cpu/t1' };
    expect(commitCodec.decode(commitCodec.encode(base)).claim).toBeUndefined();
    expect(commitCodec.decode(commitCodec.encode({ ...base, claim: true })).claim).toBe(true);
  });

  it('the reply carries the ack and the next lease, aligned', async () => {
    const prefix = commitAckPrefix({ ok: true });
    expect(prefix.length % 8).toBe(0);
    const bytes = await encodeClaimReplyFilled(lease, inputs, async (name, dest) => dest.set(tensorBytes(inputs[name]!)), prefix);
    const r = decodeCommitReply(bytes);
    expect(r.ok).toBe(true);
    if (!r.next?.ok) throw new Error('expected a lease');
    expect([...r.next.inputs.k!.data]).toEqual([1n, -2n, 3n]);
    expect(r.next.inputs.x!.data.byteOffset % 8).toBe(0);
  });

  it('no work, or a refused commit', () => {
    const noWork = decodeCommitReply(encodeClaimReply({ ok: false, reason: 'no-work' }, commitAckPrefix({ ok: true })));
    expect(noWork).toEqual({ ok: true, next: { ok: false, reason: 'no-work' } });
    expect(decodeCommitReply(commitAckPrefix({ ok: false, reason: 'unknown lease' }))).toEqual({ ok: false, reason: 'unknown lease' });
  });
});

describe('defaultUnitRows', () => {
  it('targets TARGET_UNIT_FLOPS of work per unit', () => {
    expect(defaultUnitRows(1e6, 3072, 2.3e8)).toBe(Math.ceil(TARGET_UNIT_FLOPS / 2.3e8));
  });
  it('caps by input bytes and by rows / MIN_UNITS_PER_JOB', () => {
    expect(defaultUnitRows(1e9, 128, 25_000)).toBe(Math.floor(MAX_UNIT_INPUT_BYTES / 128));
    expect(defaultUnitRows(3200, 128, 25_000)).toBe(Math.ceil(3200 / MIN_UNITS_PER_JOB));
    expect(defaultUnitRows(5, 128, 1)).toBe(1);
  });
});

describe('same-filesystem leases', () => {
  it('a lease may name input files instead of carrying bytes', () => {
    const inputFiles = { x: { path: '/data/x.npy', offset: 128, dtype: 'float32' as const, dims: [4, 3] } };
    const r = decodeClaimReply(encodeClaimReply({ ok: true, lease: { ...lease, inputFiles }, inputs: {} }));
    expect(r.ok && r.lease.inputFiles).toEqual(inputFiles);
    expect(r.ok && Object.keys(r.inputs)).toEqual([]);
  });
  it('rows split on a later axis are strided segments; a scalar sent whole is one run', () => {
    // A state [2, batch, 16] float32, rows 3..5 of 24: 2 runs of 2·16·4 bytes, 24·16·4 bytes apart.
    const inputFiles = {
      state: { path: '/data/state.npy', offset: 128 + 3 * 64, dtype: 'float32' as const, dims: [2, 2, 16], segments: 2, stride: 24 * 64 },
      sr: { path: '/data/sr.npy', offset: 128, dtype: 'int64' as const, dims: [] },
    };
    const r = decodeClaimReply(encodeClaimReply({ ok: true, lease: { ...lease, inputFiles }, inputs: {} }));
    expect(r.ok && r.lease.inputFiles).toEqual(inputFiles);
  });
  it('a lease may say where the rows lie (row axes); malformed axes are refused', () => {
    const rowAxes = { inputs: { audio: 0, state: 1, sr: null }, outputs: { prob: 0, stateN: 1 } };
    const r = decodeClaimReply(encodeClaimReply({ ok: true, lease: { ...lease, rowAxes }, inputs: {} }));
    expect(r.ok && r.lease.rowAxes).toEqual(rowAxes);
    for (const bad of [{ inputs: { x: -1 }, outputs: {} }, { inputs: { x: 16 }, outputs: {} }, { inputs: {}, outputs: { y: null } }, { inputs: { x: 'a' }, outputs: {} }, { inputs: [], outputs: {} }]) {
      expect(() => decodeClaimReply(encodeClaimReply({ ok: true, lease: { ...lease, rowAxes: bad as never }, inputs: {} }))).toThrow(/rowAxes/);
    }
  });

  it('rejects malformed file ranges from the network', () => {
    for (const bad of [
      { x: { path: '/d', offset: -1, dtype: 'float32', dims: [1] } },
      { x: { path: '/d', offset: 0, dtype: 'complex64', dims: [1] } },
      { x: { path: '/d', offset: 0, dtype: 'float32', dims: [1.5] } },
      { x: { path: '', offset: 0, dtype: 'float32', dims: [1] } },
      // segments that do not split the bytes evenly, that overlap, or are too many
      { x: { path: '/d', offset: 0, dtype: 'float32', dims: [3, 2], segments: 5, stride: 100 } },
      { x: { path: '/d', offset: 0, dtype: 'float32', dims: [2, 4], segments: 2, stride: 8 } },
      { x: { path: '/d', offset: 0, dtype: 'uint8', dims: [70000, 1], segments: 70000, stride: 1 } },
      { x: { path: '/d', offset: 0, dtype: 'float32', dims: [2, 4], segments: 0, stride: 16 } },
      // more bytes than a lease may carry
      { x: { path: '/d', offset: 0, dtype: 'float64', dims: [1 << 20, 1 << 20] } },
      {},
    ]) {
      const bytes = encodeClaimReply({ ok: true, lease: { ...lease, inputFiles: bad as never }, inputs: {} });
      expect(() => decodeClaimReply(bytes)).toThrow();
    }
  });
  it('claims and commits carry the filesystem token only as 32-byte hex', () => {
    expect(claimCodec.decode(claimCodec.encode({ fsToken: 'cd'.repeat(32) })).fsToken).toBe('cd'.repeat(32));
    expect(() => claimCodec.decode(claimCodec.encode({ fsToken: '../etc/passwd' }))).toThrow();
  });
});
