/**
 * AnchorSource over the node's block store (src/chain/store.ts): a block is final once it is on
 * the branch of the stored fork-choice head and at least `confirmations` blocks deep. The store
 * is only read, so `drill settle --chain-store PATH` can run beside the node that writes it
 * (SQLite WAL allows one writer and concurrent readers).
 */
import type { Block } from '../chain/block.ts';
import type { SettleBlock, AnchorSource } from './source.ts';

/** What the adapter needs of a block store (BlockStore satisfies it). */
export interface ReadableBlockStore {
  blocks(): Iterable<{ hash: string; block: Block }>;
  head(): string | undefined;
}

export interface ChainSourceOptions {
  /**
   * Depth at which a block counts as final. 6: matrix-drill's VRF lottery can elect two producers
   * in a slot, and forks of more than a few blocks are vanishingly rare at the default lottery
   * rate; anchors are permanent, so waiting a few slots is cheap insurance.
   */
  confirmations: number;
}

export const defaultChainSourceOptions: ChainSourceOptions = { confirmations: 6 };

/** An AnchorSource reading final blocks from a block store. */
export function blockStoreSource(store: ReadableBlockStore, opts: Partial<ChainSourceOptions> = {}): AnchorSource {
  const { confirmations } = { ...defaultChainSourceOptions, ...opts };
  return {
    finalizedBlocks(afterHeight: number): Promise<SettleBlock[]> {
      const byHash = new Map<string, Block>();
      for (const { hash, block } of store.blocks()) byHash.set(hash, block);
      const head = store.head();
      const headBlock = head === undefined ? undefined : byHash.get(head);
      if (head === undefined || headBlock === undefined) return Promise.resolve([]);
      const finalHeight = headBlock.header.height - confirmations;
      const out: SettleBlock[] = [];
      let cur: string | undefined = head;
      while (cur !== undefined) {
        const b = byHash.get(cur);
        if (b === undefined || b.header.height <= afterHeight) break;
        if (b.header.height <= finalHeight) out.push({ height: b.header.height, hash: cur, creditRoot: b.header.creditRoot, records: b.credits });
        cur = b.header.parent;
      }
      return Promise.resolve(out.reverse());
    },
  };
}
