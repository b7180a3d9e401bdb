/** Settle store (anchor queue), credit receipts from it, block sources, and error mapping. No sockets. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { creditLeaf } from '../../src/pod/credit.ts';
import { verifyMerkleProof } from '../../src/util/merkle.ts';
import {
  blockStoreSource,
  classifyRpcError,
  classifySubmitError,
  collectBlocks,
  encodeAnchor,
  buildAnchor,
  JsonLinesSource,
  linkIdentity,
  loadSubstratePair,
  proveWorkerCredit,
  receiptFromStore,
  remarkHash,
  SettleErrorCode,
  SettleStore,
  isRetryable,
} from '../../src/settle/index.ts';
import type { Block } from '../../src/chain/block.ts';
import { makeBlocks, makeTrainers } from '../helpers/chopsticks.ts';

describe('settle store and receipts', async () => {
  const trainers = await makeTrainers(4);

  it('claims each block for one anchor only, tracks the life cycle, and serves receipts', async () => {
    const store = new SettleStore(':memory:');
    const blocks = makeBlocks(1, 3, trainers);
    for (const b of blocks) store.putBlock(b);
    store.putBlock(blocks[0]!); // idempotent
    expect(store.lastBlockHeight()).toBe(3);
    const link = await linkIdentity(trainers[1]!.key, await loadSubstratePair('//Dave'));
    store.putLink(link);

    const batch = store.unanchoredBlocks(2);
    expect(batch.map((b) => b.height)).toEqual([1, 2]);
    const remark = encodeAnchor(buildAnchor('md', batch, [link]));
    const row = store.createAnchor([1, 2], remark, remarkHash(remark), [link.peer])!;
    expect(row.status).toBe('pending');
    expect(store.createAnchor([2, 3], remark, remarkHash(remark), [])).toBeUndefined(); // block 2 already claimed
    expect(store.unanchoredBlocks(10).map((b) => b.height)).toEqual([3]);
    expect(store.unanchoredLinks([link.peer])).toEqual([]); // carried by row

    store.markSubmitted(row.id, 7, 100);
    expect(store.anchor(row.id)).toMatchObject({ status: 'submitted', nonce: 7, submittedAt: 100, attempts: 1 });
    expect(receiptFromStore(store, link.ss58, 2)).toMatch(/submitted, not posted/);
    store.markPosted(row.id, '0x' + 'ab'.repeat(32), 101, 1);
    expect(store.unsettled()).toEqual([]);

    const r = receiptFromStore(store, link.ss58, 2);
    if (typeof r === 'string') throw new Error(r);
    expect(r.worker).toBe(trainers[1]!.peer);
    expect(r.ss58).toBe(link.ss58);
    expect(r.substrateBlock).toBe('0x' + 'ab'.repeat(32));
    expect(r.extrinsicIndex).toBe(1);
    for (const pr of r.records) expect(verifyMerkleProof(blocks[1]!.creditRoot, creditLeaf(pr.record), pr.proof)).toBe(true);
    expect(BigInt(r.flops)).toBe(r.records.reduce((t, p) => t + BigInt(p.record.flops), 0n));
    expect(receiptFromStore(store, 'unknown-peer', 2)).toMatch(/credits nothing/);
    expect(receiptFromStore(store, (await loadSubstratePair('//Eve')).address, 2)).toMatch(/no identity link/);
    expect(receiptFromStore(store, trainers[1]!.peer, 3)).toMatch(/not covered by an anchor/);
    store.close();
  });

  it('SETTLE_SOURCE_CONFLICT when a final block changes; SETTLE_STORE_CORRUPT when records do not hash to the root', () => {
    const store = new SettleStore(':memory:');
    const [b] = makeBlocks(1, 1, trainers);
    store.putBlock(b!);
    expect(() => store.putBlock({ ...b!, hash: 'f'.repeat(64) })).toThrow(expect.objectContaining({ code: SettleErrorCode.SOURCE_CONFLICT }));
    const tampered = { ...b!, records: b!.records.map((r, i) => (i === 0 ? { ...r, flops: r.flops + 1 } : r)) };
    expect(() => proveWorkerCredit(tampered, trainers[0]!.peer)).toThrow(expect.objectContaining({ code: SettleErrorCode.STORE_CORRUPT }));
    store.close();
  });

  it('JsonLinesSource reads final blocks after a height, skips a half-written last line, names a bad line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'settle-src-'));
    const f = join(dir, 'blocks.jsonl');
    const blocks = makeBlocks(1, 3, trainers);
    const src = new JsonLinesSource(f);
    expect(await collectBlocks(src, -1)).toEqual([]); // missing file: nothing yet
    writeFileSync(f, blocks.map((b) => JSON.stringify(b)).join('\n') + '\n' + '{"height":4,');
    expect((await collectBlocks(src, 1)).map((b) => b.height)).toEqual([2, 3]);
    appendFileSync(f, '\n');
    await expect(collectBlocks(src, 1)).rejects.toMatchObject({ code: 'USER_INPUT', message: expect.stringContaining(`${f}:4`) });
  });

  it('blockStoreSource yields the head branch down to `confirmations` deep, never a fork', async () => {
    const mk = (height: number, hash: string, parent: string): { hash: string; block: Block } => ({
      hash,
      block: { header: { v: 2, chainId: 'c', height, slot: height, parent, producer: 'p', vrfProof: '', vrfOutput: '', creditRoot: 'r'.repeat(64), creditCount: 0, faultRoot: 'f'.repeat(64), faultCount: 0 }, credits: [], faults: [], sig: '' },
    });
    const rows = [mk(0, 'g', ''), mk(1, 'a1', 'g'), mk(2, 'a2', 'a1'), mk(2, 'b2', 'a1'), mk(3, 'a3', 'a2'), mk(4, 'a4', 'a3')];
    const src = blockStoreSource({ blocks: () => rows, head: () => 'a4' }, { confirmations: 2 });
    expect((await collectBlocks(src, -1)).map((b) => b.hash)).toEqual(['g', 'a1', 'a2']);
    expect((await collectBlocks(src, 1)).map((b) => b.hash)).toEqual(['a2']);
    expect(await collectBlocks(blockStoreSource({ blocks: () => [], head: () => undefined }), -1)).toEqual([]);
  });

  it('maps node errors to codes: unfunded, nonce race, invalid, connection lost', () => {
    const acct = '5Grw';
    expect(classifySubmitError(new Error('1010: Invalid Transaction: Inability to pay some fees , e.g. account balance too low'), acct, 'ws://x')).toMatchObject({ code: SettleErrorCode.INSUFFICIENT_FUNDS });
    expect(classifySubmitError(new Error('1010: {"invalid":{"payment":null}}'), acct, 'ws://x')).toMatchObject({ code: SettleErrorCode.INSUFFICIENT_FUNDS });
    expect(classifySubmitError(new Error('1010: Invalid Transaction: Transaction is outdated'), acct, 'ws://x')).toMatchObject({ code: SettleErrorCode.TX_INVALID });
    expect(classifySubmitError(new Error('1010: {"invalid":{"stale":null}}'), acct, 'ws://x')).toMatchObject({ code: SettleErrorCode.TX_NONCE_RACE });
    expect(classifySubmitError(new Error('1014: Priority is too low: (1 vs 1)'), acct, 'ws://x')).toMatchObject({ code: SettleErrorCode.TX_NONCE_RACE });
    expect(classifyRpcError(new Error('No response received from RPC endpoint in 30s'), 'ws://x')).toMatchObject({ code: SettleErrorCode.DISCONNECTED });
    const other = new Error('something else');
    expect(classifyRpcError(other, 'ws://x')).toBe(other);
    expect(isRetryable({ code: SettleErrorCode.DISCONNECTED })).toBe(true);
    expect(isRetryable({ code: SettleErrorCode.INSUFFICIENT_FUNDS })).toBe(false);
  });
});
