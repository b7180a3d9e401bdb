/**
 * Fuzzing every decoder that reads remote bytes (fast-check, seeded): grid frames and tensor
 * frames, gossip messages (units, credits, faults, blocks), the intake's wire, block shapes,
 * settlement anchors, `.npy` headers and ONNX models. Whatever the input — random bytes,
 * mutations of valid encodings, or valid JSON with fields swapped for arbitrary values — a
 * decoder returns a value or throws a typed DrillError; nothing else escapes, and nothing hangs
 * (each property runs under a short test timeout). Where there is an encoder, decode ∘ encode
 * is the identity.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DrillError } from '../../src/util/errors.ts';
import {
  UNITS_TOPIC, helloCodec, helloAckCodec, claimCodec, commitCodec, ackCodec, revealRequestCodec, unitErrorCodec,
  decodeClaimReply, decodeCommitReply, decodeRevealReply, encodeClaimReply, encodeRevealReply, commitAckPrefix,
} from '../../src/protocol/grid.ts';
import type { Hello, ClaimRequest, Commit, UnitAnnouncement } from '../../src/protocol/grid.ts';
import { decodeTensors, layoutTensors } from '../../src/protocol/tensors.ts';
import { jsonCodec } from '../../src/net/topics.ts';
import { encodeBlock, decodeBlock, creditsTopic, faultsTopic } from '../../src/chain/topics.ts';
import { checkBlockShape } from '../../src/chain/block.ts';
import { ChainState } from '../../src/chain/state.ts';
import { encodeAnchor, decodeAnchor } from '../../src/settle/anchor.ts';
import type { Anchor } from '../../src/settle/anchor.ts';
import { parseNpy, encodeNpy } from '../../src/util/npy.ts';
import type { Dtype, HostTensor } from '../../src/util/tensor.ts';
import { parseModelProto, describeModel } from '../../src/onnx/decode.ts';
import { externalDataRefs } from '../../src/onnx/external.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import {
  beginCodec, submitCodec, jobQueryCodec, outputQueryCodec, jobStatusCodec, decodeChunk, encodeChunk, decodeOutputChunk, encodeOutputChunk,
} from '../../src/coordinator/intake/wire.ts';
import { KEYS, testGenesis, credit, fault, makeBlock } from './chain-fixture.ts';

const SEED = 20_240_601;
const RUNS = 300;
/** Each property gets this long: a decoder that hangs fails its test instead of the suite. */
const TIMEOUT = 15_000;
const ROOT = join(import.meta.dirname, '..', '..');
const enc = new TextEncoder();

/** Run `f`: a value or a typed DrillError pass; anything else thrown is a bug. */
function valueOrTyped(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof DrillError)) throw new Error(`untyped throw: ${String(e)}`, { cause: e });
  }
}

/** A valid encoding mutated: bytes flipped, cut, inserted, or the whole thing truncated. */
function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom('flip', 'cut', 'insert', 'truncate'), byte: fc.integer({ min: 0, max: 255 }) });
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 6 })).map(([bytes, edits]) => {
    let b = [...bytes];
    for (const e of edits) {
      const i = b.length === 0 ? 0 : e.at % b.length;
      if (e.kind === 'flip') b[i] = (b[i] ?? 0) ^ (1 << (e.byte % 8));
      else if (e.kind === 'cut') b.splice(i, 1 + (e.byte % 8));
      else if (e.kind === 'insert') b.splice(i, 0, e.byte);
      else b = b.slice(0, i);
    }
    return new Uint8Array(b);
  });
}

/** Valid JSON messages of a versioned codec with one field replaced by an arbitrary JSON value. */
function fieldSwapped(valid: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.nat(), fc.jsonValue({ maxDepth: 3 })).map(([o, k, v]) => {
    const keys = Object.keys(o);
    const key = keys.length ? keys[k % keys.length]! : 'x';
    return enc.encode(JSON.stringify({ v: 1, ...o, [key]: v }));
  });
}

const bytes = fc.uint8Array({ maxLength: 2048 });
const prop = <T>(arb: fc.Arbitrary<T>, f: (x: T) => unknown): void => fc.assert(fc.property(arb, (x) => {
  f(x); // assertions throw; a returned value (vitest's matchers return one) is not a verdict
}), { seed: SEED, numRuns: RUNS });

// ------------------------------------------------------------------------------- arbitraries

const hex = (n: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'));
const name = fc.string({ minLength: 1, maxLength: 40 });
const hello: fc.Arbitrary<Hello> = fc.record({ threads: fc.integer({ min: 1, max: 1024 }), device: fc.string({ minLength: 1, maxLength: 32 }), score: fc.double({ min: 0, max: 1e9, noNaN: true }), profile: fc.string({ minLength: 1, maxLength: 200 }) });
const claim: fc.Arbitrary<ClaimRequest> = fc.record({ job: name, unit: fc.nat(), fsToken: hex(32) }, { requiredKeys: [] });
const commit: fc.Arbitrary<Commit> = fc.record({ lease: name, commitment: hex(32), runMs: fc.nat(), profile: name, claim: fc.boolean() }, { requiredKeys: ['lease', 'commitment', 'runMs', 'profile'] });
const announce: fc.Arbitrary<UnitAnnouncement> = fc.record({ coordinator: name, job: name, unit: fc.nat(), modelHash: hex(32), rows: fc.integer({ min: 1, max: 1e6 }), flops: fc.nat(), need: fc.integer({ min: 1, max: 64 }), at: fc.nat() });

const DTYPE_ARRAYS: Record<Dtype, (n: number) => fc.Arbitrary<HostTensor['data']>> = {
  float16: (n) => fc.uint16Array({ minLength: n, maxLength: n }), // raw half bits
  float32: (n) => fc.float32Array({ minLength: n, maxLength: n }),
  float64: (n) => fc.float64Array({ minLength: n, maxLength: n }),
  int8: (n) => fc.int8Array({ minLength: n, maxLength: n }),
  uint8: (n) => fc.uint8Array({ minLength: n, maxLength: n }),
  int16: (n) => fc.int16Array({ minLength: n, maxLength: n }),
  uint16: (n) => fc.uint16Array({ minLength: n, maxLength: n }),
  int32: (n) => fc.int32Array({ minLength: n, maxLength: n }),
  uint32: (n) => fc.uint32Array({ minLength: n, maxLength: n }),
  int64: (n) => fc.bigInt64Array({ minLength: n, maxLength: n }),
  uint64: (n) => fc.bigUint64Array({ minLength: n, maxLength: n }),
  bool: (n) => fc.uint8Array({ minLength: n, maxLength: n, max: 1 }),
};
const tensor: fc.Arbitrary<HostTensor> = fc.tuple(fc.constantFrom<Dtype>(...(Object.keys(DTYPE_ARRAYS) as Dtype[])), fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 3 }))
  .chain(([dtype, dims]) => DTYPE_ARRAYS[dtype](dims.reduce((a, d) => a * d, 1)).map((data) => ({ dtype, dims, data })));
const tensors = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), tensor, { minKeys: 1, maxKeys: 3 });

/** Tensors compared by dtype, dims and bytes (NaN-safe). */
const same = (a: HostTensor, b: HostTensor): boolean =>
  a.dtype === b.dtype && a.dims.join() === b.dims.join() && Buffer.compare(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength), Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)) === 0;

// ------------------------------------------------------------------------------- grid

describe('fuzz: grid protocol frames (protocol/grid.ts, protocol/tensors.ts)', () => {
  const controls = [helloCodec, helloAckCodec, claimCodec, commitCodec, ackCodec, revealRequestCodec, unitErrorCodec, UNITS_TOPIC];
  it('control messages: random bytes, mutations and swapped fields give a value or a typed error', () => {
    const validHello = hello.map((h) => helloCodec.encode(h));
    for (const c of controls) {
      prop(fc.oneof(bytes, mutated(validHello), fieldSwapped(hello as unknown as fc.Arbitrary<Record<string, unknown>>), fieldSwapped(announce as unknown as fc.Arbitrary<Record<string, unknown>>)), (b) => valueOrTyped(() => c.decode(b)));
    }
  }, TIMEOUT);

  it('frames with tensors (claim, commit and reveal replies; tensor frames): any bytes', () => {
    const lease = { lease: 'l', job: 'j', unit: 0, modelHash: 'ab'.repeat(32), modelBytes: 10, outputNames: ['y'], rows: 1, deadlineMs: 1 };
    const validReply = tensors.map((t) => encodeClaimReply({ ok: true, lease, inputs: t }));
    const validCommit = tensors.map((t) => encodeClaimReply({ ok: true, lease, inputs: t }, commitAckPrefix({ ok: true })));
    prop(fc.oneof(bytes, mutated(validReply), mutated(validCommit)), (b) => {
      valueOrTyped(() => decodeClaimReply(b));
      valueOrTyped(() => decodeCommitReply(b));
      valueOrTyped(() => decodeRevealReply(b));
      valueOrTyped(() => decodeTensors(b));
    });
  }, TIMEOUT);

  it('round trips: hello, claim, commit, announcement, claim and reveal replies, tensor frames', () => {
    prop(hello, (h) => expect(helloCodec.decode(helloCodec.encode(h))).toEqual(h));
    prop(claim, (c) => expect(claimCodec.decode(claimCodec.encode(c))).toEqual({ job: c.job, unit: c.unit, ...(c.fsToken ? { fsToken: c.fsToken } : {}) }));
    prop(commit, (c) => expect(commitCodec.decode(commitCodec.encode(c))).toEqual(c));
    prop(announce, (a) => expect(UNITS_TOPIC.decode(UNITS_TOPIC.encode(a))).toEqual(a));
    prop(tensors, (t) => {
      const lease = { lease: 'l', job: 'j', unit: 3, modelHash: 'cd'.repeat(32), modelBytes: 99, outputNames: ['a', 'b'], rows: 2, deadlineMs: 5 };
      const r = decodeClaimReply(encodeClaimReply({ ok: true, lease, inputs: t }));
      expect(r.ok && r.lease).toEqual(lease);
      const back = r.ok ? r.inputs : {};
      expect(Object.keys(back).sort()).toEqual(Object.keys(t).sort());
      for (const k of Object.keys(t)) expect(same(back[k]!, t[k]!), k).toBe(true);
      const rv = decodeRevealReply(encodeRevealReply({ ok: true, salt: 'ef'.repeat(32), outputs: t }));
      expect(rv.ok && Object.keys(rv.outputs).every((k) => same(rv.outputs[k]!, t[k]!))).toBe(true);
      const l = layoutTensors(t);
      const frame = new Uint8Array(l.byteLength);
      l.writeInto(frame, 0);
      const d = decodeTensors(frame);
      expect(Object.keys(t).every((k) => same(d[k]!, t[k]!))).toBe(true);
    });
  }, TIMEOUT);
});

// ------------------------------------------------------------------------------- gossip & chain

describe('fuzz: gossip messages (net/topics.ts, chain/topics.ts) and blocks (chain/block.ts)', () => {
  const state = new ChainState(testGenesis());
  const blocks = [makeBlock(state, KEYS[0]!, 1), makeBlock(state, KEYS[1]!, 2, undefined, [credit([KEYS[2]!.peerId]), credit([KEYS[0]!.peerId, KEYS[1]!.peerId], 7)], [fault(KEYS[2]!.peerId)])];
  const validBlock = fc.constantFrom(...blocks).map(encodeBlock);
  const credits = creditsTopic();
  const faults = faultsTopic();
  const validCredit = fc.constantFrom(...blocks[1]!.credits).map((r) => credits.encode(r));
  const validFault = fc.constantFrom(...blocks[1]!.faults).map((f) => faults.encode(f));

  it('blocks, credit records and faults: any bytes give a value or a typed error', () => {
    prop(fc.oneof(bytes, mutated(validBlock), mutated(validCredit), mutated(validFault)), (b) => {
      valueOrTyped(() => decodeBlock(b));
      valueOrTyped(() => credits.decode(b));
      valueOrTyped(() => faults.decode(b));
    });
  }, TIMEOUT);

  it('block shapes: arbitrary JSON and blocks with a field swapped', () => {
    const swapped = fc.tuple(fc.constantFrom(...blocks), fc.constantFrom('header', 'credits', 'faults', 'signature', 'vrfProof'), fc.jsonValue({ maxDepth: 4 }))
      .map(([b, k, v]) => JSON.parse(JSON.stringify({ ...b, [k]: v })) as unknown);
    const headerSwapped = fc.tuple(fc.constantFrom(...blocks), fc.nat(), fc.jsonValue({ maxDepth: 2 }))
      .map(([b, i, v]) => {
        const keys = Object.keys(b.header);
        return { ...JSON.parse(JSON.stringify(b)), header: { ...JSON.parse(JSON.stringify(b.header)), [keys[i % keys.length]!]: v } } as unknown;
      });
    prop(fc.oneof(fc.jsonValue({ maxDepth: 5 }), swapped, headerSwapped), (raw) => valueOrTyped(() => checkBlockShape(raw)));
  }, TIMEOUT);

  it('round trips: blocks, credit records, faults, and the JSON codec with bigints', () => {
    for (const b of blocks) expect(decodeBlock(encodeBlock(b))).toEqual(b);
    for (const r of blocks[1]!.credits) expect(credits.decode(credits.encode(r))).toEqual(r);
    for (const f of blocks[1]!.faults) expect(faults.decode(faults.encode(f))).toEqual(f);
    const codec = jsonCodec<{ n: bigint; s: string; xs: number[] }>({ version: 3, check: (raw) => raw as { n: bigint; s: string; xs: number[] } });
    prop(fc.record({ n: fc.bigInt({ min: -(2n ** 256n), max: 2n ** 256n }), s: fc.string(), xs: fc.array(fc.integer()) }), (m) => expect(codec.decode(codec.encode(m))).toEqual(m));
    prop(fc.oneof(bytes, fc.jsonValue().map((v) => enc.encode(JSON.stringify({ v: 3, x: v })))), (b) => valueOrTyped(() => codec.decode(b)));
  }, TIMEOUT);
});

// ------------------------------------------------------------------------------- intake

describe('fuzz: the intake wire (coordinator/intake/wire.ts)', () => {
  it('requests and replies: any bytes give a value or a typed error; chunks and output chunks round-trip', () => {
    const codecs = [beginCodec, submitCodec, jobQueryCodec, outputQueryCodec, jobStatusCodec];
    const validBegin = fc.constant(beginCodec.encode({ files: [{ role: 'model', name: 'm', bytes: 3 }, { role: 'input', name: 'x', bytes: 4 }] }));
    prop(fc.oneof(bytes, mutated(validBegin), fc.jsonValue({ maxDepth: 4 }).map((v) => enc.encode(JSON.stringify({ v: 1, status: 'done', report: v, files: [], job: 'j', partner: 'p', name: 'n', cancelled: false, createdAt: 1, freed: false })))), (b) => {
      for (const c of codecs) valueOrTyped(() => c.decode(b));
      valueOrTyped(() => decodeChunk(b));
      valueOrTyped(() => decodeOutputChunk(b));
    });
    prop(fc.tuple(fc.string({ maxLength: 100 }), fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 512 })), ([upload, file, offset, data]) => {
      const back = decodeChunk(encodeChunk({ upload, file, offset }, data));
      expect(back.head).toEqual({ upload, file, offset });
      expect([...back.bytes]).toEqual([...data]);
      const o = decodeOutputChunk(encodeOutputChunk(offset, data));
      expect(o.size).toBe(offset);
      expect([...o.bytes]).toEqual([...data]);
    });
  }, TIMEOUT);
});

// ------------------------------------------------------------------------------- settlement

describe('fuzz: settlement anchors (settle/anchor.ts)', () => {
  const anchor: fc.Arbitrary<Anchor> = fc.record({
    chainId: fc.string({ minLength: 1, maxLength: 30 }),
    blocks: fc.uniqueArray(fc.integer({ min: 0, max: 1e9 }), { minLength: 1, maxLength: 5 }).chain((hs) => fc.tuple(...[...hs].sort((a, b) => a - b).map((height) =>
      fc.record({ height: fc.constant(height), hash: hex(32), creditRoot: hex(32), records: fc.nat({ max: 1e6 }), creditedFlops: fc.bigInt({ min: 0n, max: 2n ** 80n }) })))),
    links: fc.constant([]),
  });
  it('any bytes give a value or a typed error; decode ∘ encode is the identity', () => {
    prop(fc.oneof(bytes, mutated(anchor.map(encodeAnchor)), fc.jsonValue().map((v) => enc.encode(`mdrill:v1:${JSON.stringify(v)}`))), (b) => valueOrTyped(() => decodeAnchor(b)));
    prop(anchor, (a) => expect(decodeAnchor(encodeAnchor(a))).toEqual(a));
  }, TIMEOUT);
});

// ------------------------------------------------------------------------------- files

describe('fuzz: .npy headers (util/npy.ts)', () => {
  it('any bytes give a value or a typed error; parse ∘ encode is the identity', () => {
    prop(fc.oneof(bytes, mutated(tensor.map(encodeNpy)), fc.string().map((h) => {
      const head = enc.encode(h);
      const out = new Uint8Array(10 + head.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, head.length & 0xff, head.length >> 8]);
      out.set(head, 10);
      return out;
    })), (b) => valueOrTyped(() => parseNpy(b)));
    prop(tensor, (t) => expect(same(parseNpy(encodeNpy(t)), t)).toBe(true));
  }, TIMEOUT);
});

describe('fuzz: ONNX models (onnx/decode.ts, the protobuf.js decoder on main)', () => {
  it('random bytes and mutated real models give a model message and description, or a typed error', async () => {
    const g = new GraphBuilder({ name: 'tiny', seed: 7 });
    const x = g.input('x', 'float32', ['batch', 4]);
    g.output(g.op('Relu', [g.op('MatMul', [x, g.weight('w', [4, 3])])]), 'float32', ['batch', 3], 'y');
    const models = [await g.toBytes(), new Uint8Array(readFileSync(join(ROOT, 'workloads/rowwise/model.onnx'))), new Uint8Array(readFileSync(join(ROOT, 'workloads/mlp/model.onnx')))];
    /** What the coordinator does with a partner's model bytes before ONNX Runtime sees them (coordinator/model.ts). */
    const decode = async (b: Uint8Array): Promise<void> => {
      try {
        const msg = await parseModelProto(b);
        externalDataRefs(msg);
        describeModel(msg);
      } catch (e) {
        if (!(e instanceof DrillError)) throw new Error(`untyped throw: ${String(e)}`, { cause: e });
      }
    };
    await fc.assert(fc.asyncProperty(fc.oneof(bytes, mutated(fc.constantFrom(...models))), decode), { seed: SEED, numRuns: 150 });
    for (const m of models) expect(describeModel(await parseModelProto(m)).inputs.length).toBeGreaterThan(0);
  }, TIMEOUT);
});
