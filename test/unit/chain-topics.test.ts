import { describe, it, expect } from 'vitest';
import { encodeBlock, decodeBlock, creditsTopic, BLOCK_MAX_BYTES } from '../../src/chain/topics.ts';
import { ChainState } from '../../src/chain/state.ts';
import { blockHash } from '../../src/chain/block.ts';
import { verdictFor } from '../../src/net/topics.ts';
import { KEYS, testGenesis, credit, makeBlock } from './chain-fixture.ts';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

describe('chain wire codecs', () => {
  const s = new ChainState(testGenesis());
  const block = makeBlock(s, KEYS[0]!, 1, undefined, [credit([KEYS[1]!.peerId])]);

  it('round-trips a block and keeps its hash', () => {
    const back = decodeBlock(encodeBlock(block));
    expect(back).toEqual(block);
    expect(blockHash(back.header)).toBe(blockHash(block.header));
  });

  it('drops unknown fields, so they cannot ride along in stored or relayed blocks', () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ v: 1, block: { ...block, extra: 'x'.repeat(100), header: { ...block.header, junk: 1 } } }));
    expect(decodeBlock(bytes)).toEqual(block);
  });

  it('refuses junk with codec codes that map to reject', () => {
    const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
    const cases: Array<[Uint8Array, string]> = [
      [new Uint8Array([0xff, 0xfe]), 'CODEC_MALFORMED'],
      [enc({ v: 2, block }), 'CODEC_VERSION'],
      [enc({ v: 1, block: { ...block, header: { ...block.header, height: 0 } } }), 'CODEC_SCHEMA'],
      [enc({ v: 1, block: { ...block, credits: [{ ...block.credits[0]!, flops: -1 }] } }), 'CODEC_SCHEMA'],
      [new Uint8Array(BLOCK_MAX_BYTES + 1), 'CODEC_TOO_LARGE'],
    ];
    for (const [bytes, code] of cases) {
      let err: unknown;
      try {
        decodeBlock(bytes);
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe(code);
      expect(verdictFor(err)).toBe('reject');
    }
  });

  it('credit records travel wrapped (their own v field is kept) and are signature-checked', async () => {
    const t = creditsTopic();
    const r = credit([KEYS[2]!.peerId]);
    const back = t.decode(t.encode(r));
    expect(back).toEqual(r);
    expect(await t.validate!(back, '')).toBe('accept');
    expect(await t.validate!({ ...back, flops: back.flops + 1 }, '')).toBe('reject');
    expect(codeOf(() => t.decode(new TextEncoder().encode(JSON.stringify({ v: 1, record: { ...r, sig: 'zz' } }))))).toBe('CODEC_SCHEMA');
  });
});
