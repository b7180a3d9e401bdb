/** Block store on a real SQLite file: a reopened store rebuilds the same head and ledger. */
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainState } from '../../src/chain/state.ts';
import { BlockStore, loadChainState } from '../../src/chain/store.ts';
import { validateBlock } from '../../src/chain/validate.ts';
import { blockHash } from '../../src/chain/block.ts';
import type { Block } from '../../src/chain/block.ts';
import { ChainErrorCode } from '../../src/chain/errors.ts';
import { readGenesisFile, genesisHash } from '../../src/chain/genesis.ts';
import { writeFileSync } from 'node:fs';
import { KEYS, testGenesis, credit, makeBlock, at } from '../unit/chain-fixture.ts';

const [A, B] = KEYS as [(typeof KEYS)[0], (typeof KEYS)[0]];
const dir = mkdtempSync(join(tmpdir(), 'drill-chain-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function importInto(s: ChainState, store: BlockStore, b: Block): void {
  const v = validateBlock(s, b, at(1000));
  store.put(v.hash, v.block);
  const r = s.add(v.block, v.hash);
  if (r.headChanged) store.setHead(r.head.hash);
}

describe('BlockStore', () => {
  it('survives close and reopen: same head, same canonical chain, same ledger, forks kept', () => {
    const path = join(dir, 'chain.sqlite');
    const g = testGenesis();
    const s = new ChainState(g);
    const store = new BlockStore(path, s.genesisHash);
    // A main chain over three epochs with credit records, plus a one-block fork.
    for (const slot of [1, 2, 5, 6, 9, 13]) importInto(s, store, makeBlock(s, slot % 2 ? A : B, slot, s.head.hash, [credit([A.peerId, B.peerId], 10 * slot)]));
    const forkParent = s.canonicalChain()[3]!;
    importInto(s, store, makeBlock(s, B, 7, forkParent, [credit([B.peerId], 999)]));
    const head = s.head.hash;
    expect(store.head()).toBe(head);
    expect(store.count()).toBe(7);
    store.close();

    // A read-only reader (settlement beside the node) sees the same blocks and head.
    const ro = BlockStore.openReadOnly(path);
    expect(ro.head()).toBe(head);
    expect(ro.genesisHash()).toBe(s.genesisHash);
    expect([...ro.blocks()].length).toBe(7);
    expect(() => ro.setHead('00'.repeat(32))).toThrow();
    ro.close();

    const reopened = new BlockStore(path, s.genesisHash);
    const r = loadChainState(g, reopened);
    expect(r.head.hash).toBe(head);
    expect(reopened.head()).toBe(head);
    expect(r.canonicalChain()).toEqual(s.canonicalChain());
    expect(r.size).toBe(s.size);
    expect([...r.ledger.window()]).toEqual([...s.ledger.window()]);
    // The resumed node keeps building: a new block on the restored head validates.
    const next = makeBlock(r, A, 17, r.head.hash, [credit([A.peerId])]);
    importInto(r, reopened, next);
    expect(r.head.hash).toBe(blockHash(next.header));
    reopened.close();
  });

  it('refuses a store that belongs to another genesis', () => {
    const path = join(dir, 'other.sqlite');
    new BlockStore(path, 'aa'.repeat(32)).close();
    let code: string | undefined;
    try {
      new BlockStore(path, 'bb'.repeat(32));
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    expect(code).toBe(ChainErrorCode.STORE_GENESIS_MISMATCH);
  });
});

describe('genesis file', () => {
  it('round-trips through JSON with the same hash; bad fields and files are named', () => {
    const g = testGenesis();
    const path = join(dir, 'genesis.json');
    writeFileSync(path, JSON.stringify(g, null, 2));
    const back = readGenesisFile(path);
    expect(genesisHash(back)).toBe(genesisHash(g));
    const codeAndMsg = (fn: () => unknown): [string | undefined, string] => {
      try {
        fn();
      } catch (e) {
        return [(e as { code?: string }).code, (e as Error).message];
      }
      return [undefined, ''];
    };
    writeFileSync(path, JSON.stringify({ ...g, c: 2 }));
    expect(codeAndMsg(() => readGenesisFile(path))).toEqual([ChainErrorCode.BAD_GENESIS, 'genesis.c: expected a number in (0, 1], received 2']);
    writeFileSync(path, JSON.stringify({ ...g, credits: [{ ...g.credits[0]!, flops: 1e12 }] }));
    expect(codeAndMsg(() => readGenesisFile(path))[1]).toContain('genesis.credits[0]');
    expect(codeAndMsg(() => readGenesisFile(join(dir, 'missing.json')))[0]).toBe('USER_INPUT');
  });
});
