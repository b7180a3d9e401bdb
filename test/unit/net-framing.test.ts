/**
 * Unit tests of the request/response framing (src/net/framing.ts) over a scripted in-memory
 * stream: frames split anywhere, truncated, over-long, over the cap; chunked sending with
 * backpressure. The e2e tests cover the same code over real yamux streams.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Stream } from '@libp2p/interface';
import { readFrame, sendFramed, requestHeader, responseHeader, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES } from '../../src/net/framing.ts';
import { NetError, NetErrorCode } from '../../src/net/errors.ts';
import { STREAM_CHUNK_BYTES } from '../../src/net/constants.ts';
import { equalBytes } from '../../src/util/bytes.ts';

/** A stream whose readable side yields the given chunks, then ends. */
function scripted(chunks: Uint8Array[]): { stream: Stream; pulled: () => number } {
  let pulled = 0;
  const stream = {
    async *[Symbol.asyncIterator]() {
      for (const c of chunks) {
        pulled++;
        yield c;
      }
    },
  } as unknown as Stream;
  return { stream, pulled: () => pulled };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

const reqOpts = (max: number) => ({
  headerBytes: REQUEST_HEADER_BYTES,
  lenOffset: 0,
  maxBytes: () => max,
  tooLarge: (len: number) => new NetError(NetErrorCode.NET_REQUEST_TOO_LARGE, `too large: ${len}`),
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as NetError).code;
  }
  return 'resolved';
}

describe('readFrame', () => {
  it('reassembles a frame however the transport splits it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(400), { maxLength: 12 }), async (payload, cuts) => {
        const wire = concat(requestHeader(payload.length), payload);
        const { stream } = scripted(splitAt(wire, cuts));
        const got = await readFrame(stream, reqOpts(1000));
        expect(got.payload).toEqual(payload);
      }),
      { seed: 11, numRuns: 150 },
    );
  });

  it('reads a response header with its status byte', async () => {
    const { stream } = scripted([concat(responseHeader(1, 3), new Uint8Array([1, 2, 3]))]);
    const got = await readFrame(stream, { ...reqOpts(10), headerBytes: RESPONSE_HEADER_BYTES, lenOffset: 1 });
    expect(got.header[0]).toBe(1);
    expect(got.payload).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('refuses an over-cap length from the header without pulling the payload', async () => {
    const { stream, pulled } = scripted([requestHeader(5000), new Uint8Array(5000)]);
    expect(await codeOf(readFrame(stream, reqOpts(100)))).toBe(NetErrorCode.NET_REQUEST_TOO_LARGE);
    expect(pulled()).toBe(1);
  });

  it('reports truncated headers and payloads, and bytes past the frame', async () => {
    expect(await codeOf(readFrame(scripted([new Uint8Array([0, 0])]).stream, reqOpts(100)))).toBe(NetErrorCode.NET_BAD_FRAME);
    expect(await codeOf(readFrame(scripted([requestHeader(10), new Uint8Array(4)]).stream, reqOpts(100)))).toBe(NetErrorCode.NET_BAD_FRAME);
    expect(await codeOf(readFrame(scripted([concat(requestHeader(2), new Uint8Array(3))]).stream, reqOpts(100)))).toBe(NetErrorCode.NET_BAD_FRAME);
  });

  it('accepts an empty payload', async () => {
    const got = await readFrame(scripted([requestHeader(0)]).stream, reqOpts(100));
    expect(got.payload.length).toBe(0);
  });
});

describe('sendFramed', () => {
  it('sends header then payload in bounded chunks, waiting for drain when asked', async () => {
    const sent: Uint8Array[] = [];
    let drains = 0;
    const stream = {
      send(d: Uint8Array): boolean {
        sent.push(d);
        return sent.length % 2 === 0; // every other send reports a full buffer
      },
      async onDrain(): Promise<void> {
        drains++;
      },
    } as unknown as Stream;
    const payload = new Uint8Array(3 * STREAM_CHUNK_BYTES + 17).map((_, i) => i & 0xff);
    await sendFramed(stream, requestHeader(payload.length), payload);
    expect(sent.length).toBe(5);
    expect(sent.slice(1).every((c) => c.length <= STREAM_CHUNK_BYTES)).toBe(true);
    expect(equalBytes(concat(...sent), concat(requestHeader(payload.length), payload))).toBe(true);
    expect(drains).toBe(3); // after sends 1, 3, 5
  });

  it('stops early when the peer has already answered', async () => {
    const sent: Uint8Array[] = [];
    const stream = { send: (d: Uint8Array) => (sent.push(d), true), onDrain: async () => undefined } as unknown as Stream;
    await sendFramed(stream, requestHeader(10 * STREAM_CHUNK_BYTES), new Uint8Array(10 * STREAM_CHUNK_BYTES), { stop: () => sent.length >= 3 });
    expect(sent.length).toBe(3);
  });
});
