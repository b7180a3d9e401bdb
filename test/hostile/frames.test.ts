/**
 * Oversize and lying frames over real libp2p streams. A frame's length prefix is the peer's
 * claim: a length over the cap is refused from the header, and a length under it is never
 * allocated up front — the buffer grows with the bytes that actually arrive, so a peer that
 * announces 200 MiB and sends 16 bytes costs the victim kilobytes, not 200 MiB.
 */
import { describe, it, expect, afterEach } from 'vitest';
import type { Stream } from '@libp2p/interface';
import { createDrillNode } from '../../src/net/node.ts';
import type { DrillNode } from '../../src/net/node.ts';
import { responseHeader, requestHeader } from '../../src/net/framing.ts';
import { isDrillError } from '../../src/util/errors.ts';
import { heapUsed } from './harness.ts';

const nodes: DrillNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});
async function node(): Promise<DrillNode> {
  const n = await createDrillNode();
  nodes.push(n);
  return n;
}
/** Bytes held by the process: JS heap plus ArrayBuffer backing stores (where frames live). */
function held(): number {
  const h = heapUsed();
  return h + process.memoryUsage().arrayBuffers;
}
const MiB = 1024 * 1024;

describe('lying and oversize frames', () => {
  it('a response that claims 200 MiB and sends 16 bytes costs the requester almost nothing; it times out and the node serves on', async () => {
    const victim = await node();
    const liar = await node();
    let hold: Stream | undefined;
    await liar.libp2p.handle('/hostile/lie/1', (stream: Stream) => {
      hold = stream;
      stream.send(responseHeader(0, 200 * MiB));
      stream.send(new Uint8Array(16));
      // ...and never another byte.
    });
    const before = held();
    let during = 0;
    const r = victim.request(liar.multiaddrs()[0]!, '/hostile/lie/1', new Uint8Array(1), {
      maxResponseBytes: 256 * MiB,
      timeoutMs: 3000,
      onProgress: (got) => {
        if (got === 16) during = held();
      },
    }).catch((e: unknown) => e);
    const e = await r;
    expect(isDrillError(e, 'NET_TIMEOUT')).toBe(true);
    expect(during, 'the 16 bytes arrived').toBeGreaterThan(0);
    expect(during - before).toBeLessThan(16 * MiB);
    hold?.abort(new Error('done'));
    // The victim still answers requests.
    await victim.handle('/ok/1', async () => new Uint8Array([1]));
    expect(await liar.request(victim.multiaddrs()[0]!, '/ok/1', new Uint8Array(0))).toEqual(new Uint8Array([1]));
  });

  it('a request that claims 64 MiB (under the cap) and sends 100 bytes: the responder buffers only what came', async () => {
    const victim = await node();
    const liar = await node();
    let calls = 0;
    await victim.handle('/victim/big/1', async () => {
      calls++;
      return new Uint8Array(0);
    }, { maxRequestBytes: 64 * MiB });
    await victim.handle('/ok/1', async () => new Uint8Array([1]));
    await liar.dial(victim.multiaddrs()[0]!);
    const before = held();
    const streams: Stream[] = [];
    for (let i = 0; i < 16; i++) {
      const s = await liar.libp2p.dialProtocol(victim.libp2p.peerId, '/victim/big/1');
      s.send(requestHeader(64 * MiB));
      s.send(new Uint8Array(100));
      streams.push(s);
    }
    // 16 requests of 64 MiB declared (1 GiB) sit half-sent on the victim. A round trip on the
    // same connection after them: when it answers, the victim has taken in the bytes sent before.
    expect(await liar.request(victim.peerId, '/ok/1', new Uint8Array(0))).toEqual(new Uint8Array([1]));
    expect(held() - before).toBeLessThan(32 * MiB);
    for (const s of streams) s.abort(new Error('bye'));
    expect(calls).toBe(0);
  });

  it('a request over the cap is refused from its 4-byte header, whatever follows', async () => {
    const victim = await node();
    const liar = await node();
    await victim.handle('/victim/small/1', async () => new Uint8Array(0), { maxRequestBytes: 1024 });
    const e = await liar.request(victim.multiaddrs()[0]!, '/victim/small/1', new Uint8Array(8 * MiB)).catch((x: unknown) => x);
    expect(isDrillError(e, 'NET_REQUEST_TOO_LARGE')).toBe(true);
    expect((e as Error).message).toMatch(/accepts at most 1024/);
    expect(victim.libp2p.status).toBe('started');
  });
});
