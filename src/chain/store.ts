/**
 * The block store: every valid block this node has seen, in SQLite (`node:sqlite`, built into
 * Node 22), keyed by hash with height / slot / parent, plus a head pointer and the genesis hash
 * the store belongs to. On restart `loadChainState` replays the stored blocks in height order
 * into a fresh ChainState; fork choice is a pure function of the block set, so the node resumes
 * at the same head with the same ledger.
 *
 * The store is trusted (only blocks that passed validation are written): replay checks each
 * block's shape, hash and parent link, not its signatures, so a restart of a long chain is fast.
 * WAL mode: one writer (this node) and crash-safe commits.
 */
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';
import type { Block } from './block.ts';
import { blockHash, checkBlockShape } from './block.ts';
import { chainError, ChainErrorCode } from './errors.ts';
import type { GenesisConfig } from './genesis.ts';
import { ChainState } from './state.ts';

export class BlockStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #put: StatementSync;
  readonly #setMeta: StatementSync;
  readonly #getMeta: StatementSync;

  /**
   * Open (creating if needed) the store at `path` (':memory:' for a throwaway one).
   * @throws DrillError CHAIN_STORE_GENESIS_MISMATCH when it belongs to another genesis.
   */
  constructor(path: string, genesisHash: string);
  /** Internal: read-only open (see `BlockStore.openReadOnly`). */
  constructor(path: string, genesisHash: null, readOnly: true);
  constructor(path: string, genesisHash: string | null, readOnly = false) {
    this.path = path;
    this.#db = new DatabaseSync(path, { readOnly });
    if (!readOnly) {
      this.#db.exec(`
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS blocks (
          hash TEXT PRIMARY KEY,
          parent TEXT NOT NULL,
          height INTEGER NOT NULL,
          slot INTEGER NOT NULL,
          producer TEXT NOT NULL,
          data TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS blocks_height ON blocks (height, slot);
      `);
    }
    try {
      this.#put = this.#db.prepare('INSERT OR IGNORE INTO blocks (hash, parent, height, slot, producer, data) VALUES (?, ?, ?, ?, ?, ?)');
      this.#setMeta = this.#db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
      this.#getMeta = this.#db.prepare('SELECT value FROM meta WHERE key = ?');
    } catch (e) {
      this.#db.close();
      throw chainError(ChainErrorCode.STORE_CORRUPT, `block store ${path}: not a matrix-drill block store (${(e as Error).message})`, { path });
    }
    if (genesisHash === null) return;
    const stored = this.#meta('genesis');
    if (stored === undefined) this.#setMeta.run('genesis', genesisHash);
    else if (stored !== genesisHash) {
      this.#db.close();
      throw chainError(ChainErrorCode.STORE_GENESIS_MISMATCH, `block store ${path}: belongs to genesis ${stored}, this node runs genesis ${genesisHash}; use another --store path or delete it`, { path, stored, genesisHash });
    }
  }

  /**
   * Open an existing store read-only (e.g. settlement reading beside the node that writes it;
   * WAL lets readers and the writer proceed together). Writes throw.
   * @throws DrillError CHAIN_STORE_CORRUPT when the file is not a block store; SQLite errors
   *   when it does not exist.
   */
  static openReadOnly(path: string): BlockStore {
    return new BlockStore(path, null, true);
  }

  /** The genesis hash this store belongs to. */
  genesisHash(): string | undefined {
    return this.#meta('genesis');
  }

  #meta(key: string): string | undefined {
    const row = this.#getMeta.get(key) as { value: string } | undefined;
    return row?.value;
  }

  /** Persist a validated block (idempotent). */
  put(hash: string, block: Block): void {
    const h = block.header;
    this.#put.run(hash, h.parent, h.height, h.slot, h.producer, JSON.stringify(block));
  }

  /** Record the fork-choice head (informational: replay recomputes it). */
  setHead(hash: string): void {
    this.#setMeta.run('head', hash);
  }

  head(): string | undefined {
    return this.#meta('head');
  }

  count(): number {
    return Number((this.#db.prepare('SELECT COUNT(*) AS n FROM blocks').get() as { n: number | bigint }).n);
  }

  /** Stored blocks in (height, slot, hash) order — parents before children. */
  *blocks(): Generator<{ hash: string; block: Block }> {
    const rows = this.#db.prepare('SELECT hash, data FROM blocks ORDER BY height, slot, hash').iterate() as Iterable<{ hash: string; data: string }>;
    for (const row of rows) {
      let block: Block;
      try {
        block = checkBlockShape(JSON.parse(row.data));
      } catch (e) {
        throw chainError(ChainErrorCode.STORE_CORRUPT, `block store ${this.path}: block ${row.hash} does not decode: ${(e as Error).message}`, { hash: row.hash });
      }
      yield { hash: row.hash, block };
    }
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

/**
 * Rebuild chain state from a store: replay every stored block in height order.
 * @throws DrillError CHAIN_STORE_CORRUPT when a block's hash or parent link is wrong.
 */
export function loadChainState(genesis: GenesisConfig, store: BlockStore): ChainState {
  const state = new ChainState(genesis);
  for (const { hash, block } of store.blocks()) {
    if (blockHash(block.header) !== hash) {
      throw chainError(ChainErrorCode.STORE_CORRUPT, `block store ${store.path}: block ${hash} hashes to ${blockHash(block.header)}`, { hash });
    }
    if (!state.has(block.header.parent)) {
      throw chainError(ChainErrorCode.STORE_CORRUPT, `block store ${store.path}: block ${hash} has unknown parent ${block.header.parent}`, { hash });
    }
    state.add(block, hash);
  }
  return state;
}
