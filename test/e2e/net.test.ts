/**
 * End-to-end tests of the network layer: real libp2p nodes (TCP on 127.0.0.1 port 0, Noise,
 * Yamux, gossipsub) in one process. Every wait is on an event (message handler, verdict,
 * subscription, heartbeat, disconnect), never on a sleep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDrillNode, jsonCodec, BlobServer, fetchBlob, NetErrorCode, sha256HexOf } from '../../src/net/index.ts';
import type { DrillNode, TopicSpec, VerdictEvent } from '../../src/net/index.ts';
import type { DrillError } from '../../src/util/errors.ts';
import { UserError } from '../../src/util/errors.ts';
import { generateKeyPair } from '@libp2p/crypto/keys';

interface Note {
  seq: number;
  text: string;
  weight: bigint;
}

function checkNote(raw: unknown): Note {
  const r = raw as Record<string, unknown>;
  if (!Number.isSafeInteger(r.seq)) throw new UserError('seq', 'an integer', r.seq);
  if (typeof r.text !== 'string') throw new UserError('text', 'a string', r.text);
  if (typeof r.weight !== 'bigint') throw new UserError('weight', 'a bigint', r.weight);
  return r as unknown as Note;
}

const TOPIC = 'matrix-drill/test-notes/1';
/** Domain rule for the test topic: negative seq is provably bad (reject), text 'later' cannot be
 * judged yet (ignore). */
const notes: TopicSpec<Note> = {
  name: TOPIC,
  maxBytes: 2048,
  ...jsonCodec<Note>({ version: 1, check: checkNote }),
  validate: (m) => (m.seq < 0 ? 'reject' : m.text === 'later' ? 'ignore' : 'accept'),
};

/** Deterministic bytes (xorshift32) so blob tests are reproducible. */
function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string; meta: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    const d = e as DrillError;
    return { code: d.code, message: d.message, meta: d.meta };
  }
  throw new Error('expected a rejection');
}

/** Resolve with the first `n` verdicts observed at `node` on TOPIC. */
function nextVerdicts(node: DrillNode, n: number): Promise<VerdictEvent[]> {
  return new Promise((resolve) => {
    const seen: VerdictEvent[] = [];
    const off = node.onVerdict((ev) => {
      if (ev.topic !== TOPIC) return;
      seen.push(ev);
      if (seen.length === n) {
        off();
        resolve(seen);
      }
    });
  });
}

function nextHeartbeat(node: DrillNode): Promise<void> {
  return new Promise((resolve) => node.libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', () => resolve(), { once: true }));
}

describe('DrillNode gossip', () => {
  let a: DrillNode, b: DrillNode, c: DrillNode;
  const inbox: Record<string, Array<{ msg: Note; from: string }>> = { a: [], b: [], c: [] };
  const waiters: Array<() => void> = [];
  const until = (cond: () => boolean): Promise<void> => new Promise((resolve) => {
    if (cond()) return resolve();
    waiters.push(() => {
      if (cond()) resolve();
    });
  });
  const sink = (who: string) => (msg: Note, from: string): void => {
    inbox[who]!.push({ msg, from });
    for (const w of [...waiters]) w();
  };

  beforeAll(async () => {
    a = await createDrillNode();
    b = await createDrillNode({ bootstrap: a.multiaddrs() });
    c = await createDrillNode({ bootstrap: [...a.multiaddrs(), ...b.multiaddrs()] });
    a.subscribe(notes, sink('a'));
    b.subscribe(notes, sink('b'));
    c.subscribe(notes, sink('c'));
    await Promise.all([a.waitForTopicPeers(TOPIC, 2), b.waitForTopicPeers(TOPIC, 2), c.waitForTopicPeers(TOPIC, 2)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  it('listens on loopback and reports full multiaddrs and a 32-byte Ed25519 key', () => {
    expect(a.multiaddrs()[0]).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${a.peerId}$`));
    expect(a.peerId).toMatch(/^12D3Koo/);
    expect(a.publicKey.length).toBe(32);
    expect(a.peers().sort()).toEqual([b.peerId, c.peerId].sort());
  });

  it('delivers a published message to both other nodes with the originator as `from`', async () => {
    const res = await a.publish(notes, { seq: 1, text: 'hello', weight: 2n ** 70n });
    expect(res.recipients).toBe(2);
    await until(() => inbox.b!.length >= 1 && inbox.c!.length >= 1);
    for (const who of ['b', 'c']) {
      expect(inbox[who]).toEqual([{ msg: { seq: 1, text: 'hello', weight: 2n ** 70n }, from: a.peerId }]);
    }
    expect(inbox.a).toEqual([]); // no echo to self
    expect(a.metrics().topics[TOPIC]!.published).toBe(1);
    expect(b.metrics().topics[TOPIC]!.accept).toBe(1);
  });

  it('refuses to publish its own oversized message', async () => {
    const r = await codeOf(a.publish(notes, { seq: 2, text: 'x'.repeat(3000), weight: 0n }));
    expect(r.code).toBe(NetErrorCode.CODEC_TOO_LARGE);
    expect(r.message).toMatch(/limit 2048/);
  });

  it('rejects junk from a peer before the handler, lowers its score, and stays up', async () => {
    const raw = b.libp2p.services.pubsub; // bypasses the encoder and size check
    const enc = new TextEncoder();
    const before = inbox.a!.length;
    const verdicts = nextVerdicts(a, 5);
    await raw.publish(TOPIC, enc.encode('not json at all'));
    await raw.publish(TOPIC, enc.encode(JSON.stringify({ v: 1, seq: 'x', text: 't', weight: { $bigint: '1' } })));
    await raw.publish(TOPIC, enc.encode(JSON.stringify({ v: 1, seq: -5, text: 'neg', weight: { $bigint: '1' } })));
    await raw.publish(TOPIC, enc.encode(JSON.stringify({ v: 1, seq: 9, text: 'y'.repeat(4000), weight: { $bigint: '1' } })));
    await raw.publish(TOPIC, enc.encode(JSON.stringify({ v: 1, seq: 10, text: 'later', weight: { $bigint: '1' } })));
    const got = await verdicts;
    const byCode = got.map((v) => `${v.verdict}:${v.code}`).sort();
    expect(byCode).toEqual([
      'ignore:VALIDATOR',
      'reject:CODEC_MALFORMED',
      'reject:CODEC_SCHEMA',
      'reject:CODEC_TOO_LARGE',
      'reject:VALIDATOR',
    ]);
    expect(got.every((v) => v.from === b.peerId)).toBe(true);
    const m = a.metrics().topics[TOPIC]!;
    expect(m.reject).toBe(4);
    expect(m.ignore).toBe(1);
    expect(m.byCode).toMatchObject({ CODEC_MALFORMED: 1, CODEC_SCHEMA: 1, CODEC_TOO_LARGE: 1, VALIDATOR: 2 });
    expect(inbox.a!.length).toBe(before); // handler never saw any of them
    // The score is recomputed at most once per heartbeat: wait for two, then look.
    await nextHeartbeat(a);
    await nextHeartbeat(a);
    expect(a.peerScore(b.peerId)).toBeLessThan(0);
    expect(a.peerScore(c.peerId)).toBeGreaterThanOrEqual(0);
    // a still works: c's message arrives.
    await c.publish(notes, { seq: 3, text: 'still here', weight: 1n });
    await until(() => inbox.a!.some((x) => x.msg.seq === 3));
    expect(inbox.a!.find((x) => x.msg.seq === 3)!.from).toBe(c.peerId);
  });

});

describe('DrillNode gossip frame limit', () => {
  it('drops a gossip frame over its RPC limit without crashing, and keeps serving', async () => {
    // x caps gossip RPC frames at 64 KiB: y's 100 KiB frame is refused by the length-prefixed
    // decoder before it is buffered; x drops y as a gossip peer (until reconnect) and stays up.
    const x = await createDrillNode({ maxGossipRpcBytes: 64 * 1024 });
    const y = await createDrillNode({ bootstrap: x.multiaddrs() });
    try {
      const seen: Note[] = [];
      x.subscribe(notes, (m) => seen.push(m));
      y.subscribe(notes, () => undefined);
      await y.waitForTopicPeers(TOPIC, 1);
      const dropped = new Promise<void>((resolve) => {
        const check = (): void => {
          if (x.libp2p.services.pubsub.getSubscribers(TOPIC).length === 0) resolve();
        };
        x.libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', check);
      });
      await y.libp2p.services.pubsub.publish(TOPIC, new Uint8Array(100 * 1024).fill(0x41));
      await dropped;
      expect(seen).toEqual([]);
      expect(x.metrics().topics[TOPIC]).toMatchObject({ accept: 0, reject: 0, ignore: 0 });
      expect(x.libp2p.status).toBe('started');
      await x.handle('/test/ping/1', async () => new Uint8Array([1]));
      expect(await y.request(x.peerId, '/test/ping/1', new Uint8Array(0))).toEqual(new Uint8Array([1]));
    } finally {
      await Promise.all([x.stop(), y.stop()]);
    }
  });
});

describe('DrillNode many peers on one host', () => {
  it('does not score down peers for sharing the loopback address', async () => {
    // gossipsub's default IP-colocation penalty would put 14 peers from 127.0.0.1 at -80
    // (graylisted: everything they send ignored). Loopback is whitelisted.
    const hub = await createDrillNode();
    const spokes: DrillNode[] = [];
    try {
      const heard: string[] = [];
      hub.subscribe(notes, (_m, from) => heard.push(from));
      for (let i = 0; i < 14; i++) {
        const n = await createDrillNode({ bootstrap: hub.multiaddrs() });
        n.subscribe(notes, () => undefined);
        spokes.push(n);
      }
      await hub.waitForTopicPeers(TOPIC, 14);
      await nextHeartbeat(hub);
      await nextHeartbeat(hub);
      for (const n of spokes) expect(hub.peerScore(n.peerId)).toBeGreaterThanOrEqual(0);
      const last = spokes.at(-1)!;
      await last.waitForTopicPeers(TOPIC, 1);
      const got = new Promise<void>((resolve) => hub.onVerdict((v) => {
        if (v.verdict === 'accept' && v.from === last.peerId) resolve();
      }));
      await last.publish(notes, { seq: 1, text: 'from a spoke', weight: 1n });
      await got;
    } finally {
      await Promise.all([hub.stop(), ...spokes.map((n) => n.stop())]);
    }
  });
});

describe('DrillNode request/response', () => {
  let s: DrillNode, r: DrillNode;
  let release: (() => void) | undefined;

  beforeAll(async () => {
    s = await createDrillNode();
    r = await createDrillNode({ bootstrap: s.multiaddrs() });
    await s.handle('/test/upper/1', async (req, from) => {
      const text = new TextDecoder().decode(req).toUpperCase();
      return new TextEncoder().encode(`${text} from ${from}`);
    }, { maxRequestBytes: 1024 });
    await s.handle('/test/big/1', async (req) => new Uint8Array(new DataView(req.buffer, req.byteOffset).getUint32(0)).fill(7), { maxRequestBytes: 4 });
    await s.handle('/test/hang/1', () => new Promise<Uint8Array>((resolve) => {
      release = () => resolve(new Uint8Array(1));
    }));
    await s.handle('/test/fail/1', async () => {
      throw new UserError('unit', 'a known unit id', 'u-404');
    });
  });

  afterAll(async () => {
    await Promise.all([s?.stop(), r?.stop()]);
  });

  it('round-trips a request and tells the handler who asked', async () => {
    const res = await r.request(s.peerId, '/test/upper/1', new TextEncoder().encode('drill'));
    expect(new TextDecoder().decode(res)).toBe(`DRILL from ${r.peerId}`);
    // by multiaddr too
    const res2 = await r.request(s.multiaddrs()[0]!, '/test/upper/1', new Uint8Array(0));
    expect(new TextDecoder().decode(res2)).toBe(` from ${r.peerId}`);
  });

  it('refuses an oversized request with a clear error, and keeps serving', async () => {
    const e = await codeOf(r.request(s.peerId, '/test/upper/1', new Uint8Array(5000)));
    expect(e.code).toBe(NetErrorCode.NET_REQUEST_TOO_LARGE);
    expect(e.message).toMatch(/request is 5000 bytes, this peer accepts at most 1024/);
    const ok = await r.request(s.peerId, '/test/upper/1', new TextEncoder().encode('ok'));
    expect(new TextDecoder().decode(ok).startsWith('OK')).toBe(true);
  });

  it('refuses an oversized response from its header, and passes a large one in chunks', async () => {
    const want = (n: number): Uint8Array => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n);
      return b;
    };
    const e = await codeOf(r.request(s.peerId, '/test/big/1', want(200_000), { maxResponseBytes: 100_000 }));
    expect(e.code).toBe(NetErrorCode.NET_RESPONSE_TOO_LARGE);
    expect(e.meta).toMatchObject({ size: 200_000, limit: 100_000 });
    const big = await r.request(s.peerId, '/test/big/1', want(3_000_000), { maxResponseBytes: 3_000_000 });
    expect(big.length).toBe(3_000_000);
    expect(big.every((x) => x === 7)).toBe(true);
  });

  it('times out, aborts on signal, and the responder survives both', async () => {
    const t = await codeOf(r.request(s.peerId, '/test/hang/1', new Uint8Array(1), { timeoutMs: 200 }));
    expect(t.code).toBe(NetErrorCode.NET_TIMEOUT);
    expect(t.message).toMatch(/timed out after 200 ms/);
    release?.(); // the responder now writes to an aborted stream: must not crash
    const ac = new AbortController();
    const p = r.request(s.peerId, '/test/hang/1', new Uint8Array(1), { signal: ac.signal });
    ac.abort();
    expect((await codeOf(p)).code).toBe(NetErrorCode.NET_ABORTED);
    release?.();
    const ok = await r.request(s.peerId, '/test/upper/1', new TextEncoder().encode('x'));
    expect(ok.length).toBeGreaterThan(0);
  });

  it('reports a remote handler error with its code, and an unknown protocol as a dial failure', async () => {
    const e = await codeOf(r.request(s.peerId, '/test/fail/1', new Uint8Array(1)));
    expect(e.code).toBe(NetErrorCode.NET_REMOTE_ERROR);
    expect(e.meta.remoteCode).toBe('USER_INPUT');
    expect(e.message).toMatch(/unit: expected a known unit id, received "u-404"/);
    const d = await codeOf(r.request(s.peerId, '/test/nope/1', new Uint8Array(1)));
    expect(d.code).toBe(NetErrorCode.NET_DIAL_FAILED);
    const bad = await codeOf(r.request('not-a-peer', '/test/upper/1', new Uint8Array(1)));
    expect(bad.code).toBe(NetErrorCode.NET_BAD_ARGUMENT);
  });
});

describe('blob transfer', () => {
  let srv: DrillNode, cli: DrillNode;
  let blobs: BlobServer;

  beforeAll(async () => {
    srv = await createDrillNode();
    cli = await createDrillNode({ bootstrap: srv.multiaddrs() });
    blobs = new BlobServer(srv);
    await blobs.start();
  });

  afterAll(async () => {
    await blobs?.stop();
    await Promise.all([srv?.stop(), cli?.stop()]);
  });

  it('fetches a few-MB blob by hash, with progress, and verifies it', async () => {
    const model = seededBytes(6 * 1024 * 1024 + 123, 2026);
    const hash = blobs.add(model);
    expect(hash).toBe(sha256HexOf(model));
    const progress: Array<[number, number]> = [];
    const got = await fetchBlob(cli, srv.peerId, hash, { onProgress: (rcv, total) => progress.push([rcv, total]) });
    expect(got.length).toBe(model.length);
    expect(sha256HexOf(got)).toBe(hash);
    expect(progress.length).toBeGreaterThan(2); // arrived in chunks
    expect(progress.at(-1)).toEqual([model.length, model.length]);
    for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThanOrEqual(progress[i - 1]![0]);
  });

  it('detects a server that serves different bytes under a hash', async () => {
    const bytes = seededBytes(300_000, 7);
    const hash = blobs.add(bytes);
    bytes[150_000] ^= 0xff; // the server's copy is now tampered
    const e = await codeOf(fetchBlob(cli, srv.peerId, hash));
    expect(e.code).toBe(NetErrorCode.BLOB_HASH_MISMATCH);
    expect(e.message).toMatch(new RegExp(`requested ${hash}`));
  });

  it('reports missing and over-cap blobs, and refuses a malformed hash', async () => {
    const missing = 'ab'.repeat(32);
    expect((await codeOf(fetchBlob(cli, srv.peerId, missing))).code).toBe(NetErrorCode.BLOB_NOT_FOUND);
    const hash = blobs.add(seededBytes(200_000, 9));
    let received = 0;
    const e = await codeOf(fetchBlob(cli, srv.peerId, hash, { maxBytes: 100_000, onProgress: (r) => { received = r; } }));
    expect(e.code).toBe(NetErrorCode.BLOB_TOO_LARGE);
    expect(received).toBe(0); // refused from the header, before any payload was buffered
    expect((await codeOf(fetchBlob(cli, srv.peerId, 'XYZ'))).code).toBe(NetErrorCode.NET_BAD_ARGUMENT);
  });
});

describe('DrillNode bootstrap reconnect', () => {
  it('redials a bootstrap peer that restarts on the same address', async () => {
    const key = await generateKeyPair('Ed25519');
    let y = await createDrillNode({ privateKey: key });
    const x = await createDrillNode({ bootstrap: y.multiaddrs() });
    try {
      const port = /\/tcp\/(\d+)\//.exec(y.multiaddrs()[0]!)![1];
      const gone = new Promise<void>((resolve) => x.onPeer('disconnect', () => resolve()));
      await y.stop();
      await gone;
      const back = new Promise<string>((resolve) => x.onPeer('connect', resolve));
      y = await createDrillNode({ privateKey: key, listen: [`/ip4/127.0.0.1/tcp/${port}`] });
      expect(await back).toBe(y.peerId); // x dialled it again on its own
    } finally {
      await Promise.all([x.stop(), y.stop()]);
    }
  }, 20_000); // the first redial comes after 1 s; without one this would hang
});

describe('DrillNode.stop', () => {
  it('disconnects peers, fails pending waits and later calls with NET_STOPPED', async () => {
    const x = await createDrillNode();
    const y = await createDrillNode({ bootstrap: x.multiaddrs() });
    try {
      const gone = new Promise<string>((resolve) => y.onPeer('disconnect', resolve));
      x.subscribe(notes, () => undefined);
      const pending = codeOf(x.waitForTopicPeers(TOPIC, 5, 60_000));
      await x.stop();
      expect((await pending).code).toBe(NetErrorCode.NET_STOPPED);
      expect(await gone).toBe(x.peerId);
      expect((await codeOf(x.publish(notes, { seq: 1, text: 't', weight: 1n }))).code).toBe(NetErrorCode.NET_STOPPED);
      expect(x.libp2p.status).toBe('stopped');
      await x.stop(); // idempotent
    } finally {
      await Promise.all([x.stop(), y.stop()]);
    }
  });
});
