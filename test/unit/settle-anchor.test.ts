/** Anchor encoding: round trips, canonical form, strict decoding (one case per rejection). */
import { describe, expect, it } from 'vitest';
import { ANCHOR_PREFIX, anchorTotals, buildAnchor, decodeAnchor, encodeAnchor, isAnchorRemark, MAX_BLOCKS_PER_ANCHOR, remarkHash, SettleErrorCode } from '../../src/settle/index.ts';
import type { Anchor } from '../../src/settle/index.ts';
import { makeBlocks, makeTrainers } from '../helpers/chopsticks.ts';
import { blake2AsHex } from '@polkadot/util-crypto';
import { utf8ToBytes } from '../../src/util/bytes.ts';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const bytes = (s: string): Uint8Array => utf8ToBytes(s);

describe('settle anchor', async () => {
  const trainers = await makeTrainers(3);
  const blocks = makeBlocks(7, 9, trainers);
  const link = { peer: trainers[0]!.peer, ss58: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY', sigByPeer: 'ab'.repeat(64), sigBySs58: 'cd'.repeat(64) };

  it('round-trips blocks, totals and links; the remark hash is blake2_256', () => {
    const a = buildAnchor('md-test', [blocks[2]!, blocks[0]!, blocks[1]!], [link]);
    const enc = encodeAnchor(a);
    expect(text(enc).startsWith(ANCHOR_PREFIX)).toBe(true);
    expect(decodeAnchor(enc)).toEqual(a);
    expect(a.blocks.map((b) => b.height)).toEqual([7, 8, 9]);
    // 3 records × 3 credited peers, flops 1e6, 2e6, 3e6
    expect(a.blocks[0]!.creditedFlops).toBe(18_000_000n);
    expect(anchorTotals(a)).toEqual({ blocks: 3, records: 9, creditedFlops: 54_000_000n });
    expect(remarkHash(enc)).toBe(blake2AsHex(enc, 256));
    expect(isAnchorRemark(enc)).toBe(true);
    expect(isAnchorRemark(bytes('hello'))).toBe(false);
  });

  it('is exactly the documented byte layout', () => {
    const b = blocks[0]!;
    const enc = encodeAnchor(buildAnchor('md', [b]));
    expect(text(enc)).toBe(`mdrill:v1:["md",[[7,"${b.hash}","${b.creditRoot}",3,"18000000"]],[]]`);
  });

  it('totals beyond 2^53 stay exact', () => {
    const a: Anchor = { chainId: 'x', blocks: [{ height: 1, hash: 'a'.repeat(64), creditRoot: 'b'.repeat(64), records: 1, creditedFlops: 2n ** 70n }], links: [] };
    expect(decodeAnchor(encodeAnchor(a)).blocks[0]!.creditedFlops).toBe(2n ** 70n);
  });

  const good = text(encodeAnchor(buildAnchor('md', [blocks[0]!])));
  const bad: Array<[string, string, RegExp]> = [
    ['missing prefix', good.replace('mdrill:v1:', 'other:'), /missing prefix/],
    ['unknown version', good.replace('mdrill:v1:', 'mdrill:v9:'), /unsupported version/],
    ['not JSON', 'mdrill:v1:[', /not JSON/],
    ['wrong arity', 'mdrill:v1:["md",[]]', /expected \[chainId, blocks, links\]/],
    ['non-canonical whitespace', good.replace('["md",', '[ "md",'), /canonical/],
    ['flops as a number', good.replace('"18000000"', '18000000'), /blocks\[0\]/],
    ['bad hash', good.replace(blocks[0]!.hash, 'zz'), /hash: expected 32-byte hex/],
    ['no blocks', 'mdrill:v1:["md",[],[]]', /blocks: expected 1\.\./],
    ['heights not ascending', `mdrill:v1:["md",[[2,"${'a'.repeat(64)}","${'b'.repeat(64)}",0,"0"],[1,"${'a'.repeat(64)}","${'b'.repeat(64)}",0,"0"]],[]]`, /strictly ascending/],
    ['bad link signature', `mdrill:v1:["md",[[2,"${'a'.repeat(64)}","${'b'.repeat(64)}",0,"0"]],[["p","s","00","00"]]]`, /sigByPeer/],
  ];
  for (const [name, s, re] of bad) {
    it(`rejects ${name} (SETTLE_BAD_ANCHOR)`, () => {
      expect(() => decodeAnchor(bytes(s))).toThrow(expect.objectContaining({ code: SettleErrorCode.BAD_ANCHOR, message: expect.stringMatching(re) }));
    });
  }

  it('rejects invalid UTF-8 and refuses to encode too many blocks', () => {
    expect(() => decodeAnchor(new Uint8Array([0x6d, 0xff, 0xfe]))).toThrow(expect.objectContaining({ code: SettleErrorCode.BAD_ANCHOR }));
    const many = makeBlocks(1, MAX_BLOCKS_PER_ANCHOR + 1, trainers, 0);
    expect(() => encodeAnchor(buildAnchor('md', many))).toThrow(expect.objectContaining({ code: SettleErrorCode.BAD_ANCHOR }));
  });
});
