/**
 * The settler's durable state, in SQLite (`node:sqlite`, WAL): the finalised blocks it has taken
 * from its source (with their credit records, so `verify-credit` can build Merkle proofs), the
 * anchor queue, and the identity links it knows.
 *
 * Anchor life cycle: pending → submitted (nonce and Substrate head recorded BEFORE the extrinsic
 * is sent) → posted (Substrate block hash, number and extrinsic index recorded next to the
 * covered matrix-drill heights) or failed. `from_height` is UNIQUE, and an anchor row is created
 * in the same transaction that decides which blocks it covers, so one matrix-drill block is never
 * put in two anchors, even across restarts; a `submitted` row found at start-up is reconciled
 * against the chain before anything is re-sent (see Settler).
 */
import { DatabaseSync } from 'node:sqlite';
import type { CreditRecord } from '../pod/credit.ts';
import { settleError, SettleErrorCode } from './errors.ts';
import type { IdentityLink } from './identity.ts';
import { canonicalSs58 } from './identity.ts';
import type { SettleBlock } from './source.ts';

export type AnchorStatus = 'pending' | 'submitted' | 'posted' | 'failed';

/** One row of the anchor queue. */
export interface AnchorRow {
  id: number;
  fromHeight: number;
  toHeight: number;
  /** The remark bytes posted (encodeAnchor). */
  remark: Uint8Array;
  /** blake2_256(remark), 0x-hex. */
  remarkHash: string;
  status: AnchorStatus;
  /** Nonce the extrinsic was (last) signed with. */
  nonce: number | null;
  /** Substrate best block number just before the (last) submission: where a re-scan starts. */
  submittedAt: number | null;
  substrateBlock: string | null;
  substrateNumber: number | null;
  extIndex: number | null;
  attempts: number;
  lastError: string | null;
}

interface RawAnchorRow {
  id: number | bigint;
  from_height: number | bigint;
  to_height: number | bigint;
  remark: Uint8Array;
  remark_hash: string;
  status: AnchorStatus;
  nonce: number | bigint | null;
  submitted_at: number | bigint | null;
  substrate_block: string | null;
  substrate_number: number | bigint | null;
  ext_index: number | bigint | null;
  attempts: number | bigint;
  last_error: string | null;
}

const n = (v: number | bigint): number => Number(v);
const nn = (v: number | bigint | null): number | null => (v === null ? null : Number(v));

function toRow(r: RawAnchorRow): AnchorRow {
  return {
    id: n(r.id),
    fromHeight: n(r.from_height),
    toHeight: n(r.to_height),
    remark: new Uint8Array(r.remark),
    remarkHash: r.remark_hash,
    status: r.status,
    nonce: nn(r.nonce),
    submittedAt: nn(r.submitted_at),
    substrateBlock: r.substrate_block,
    substrateNumber: nn(r.substrate_number),
    extIndex: nn(r.ext_index),
    attempts: n(r.attempts),
    lastError: r.last_error,
  };
}

/** The settler's SQLite store. One writer (one settler process) per file. */
export class SettleStore {
  readonly path: string;
  readonly #db: DatabaseSync;

  /** Open (creating if needed) the store at `path` (':memory:' for a throwaway one). */
  constructor(path: string) {
    this.path = path;
    this.#db = new DatabaseSync(path);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS blocks (
        height INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        credit_root TEXT NOT NULL,
        records TEXT NOT NULL,
        anchor_id INTEGER
      );
      CREATE TABLE IF NOT EXISTS anchors (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        from_height INTEGER NOT NULL UNIQUE,
        to_height INTEGER NOT NULL,
        remark BLOB NOT NULL,
        remark_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        nonce INTEGER,
        submitted_at INTEGER,
        substrate_block TEXT,
        substrate_number INTEGER,
        ext_index INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_ms INTEGER NOT NULL,
        posted_ms INTEGER
      );
      CREATE TABLE IF NOT EXISTS links (
        peer TEXT PRIMARY KEY,
        ss58 TEXT NOT NULL,
        ss58_canonical TEXT NOT NULL,
        sig_by_peer TEXT NOT NULL,
        sig_by_ss58 TEXT NOT NULL,
        anchor_id INTEGER
      );
      CREATE INDEX IF NOT EXISTS links_ss58 ON links (ss58_canonical);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
  }

  /**
   * Store a finalised block (idempotent for the same hash).
   * @throws DrillError SETTLE_SOURCE_CONFLICT when a different block is stored at its height.
   */
  putBlock(b: SettleBlock): void {
    const prev = this.#db.prepare('SELECT hash FROM blocks WHERE height = ?').get(b.height) as { hash: string } | undefined;
    if (prev !== undefined) {
      if (prev.hash === b.hash) return;
      throw settleError(SettleErrorCode.SOURCE_CONFLICT, `finalised block ${b.height} changed from ${prev.hash} to ${b.hash}: the source is not reporting final blocks`, { height: b.height, stored: prev.hash, received: b.hash });
    }
    this.#db.prepare('INSERT INTO blocks (height, hash, credit_root, records) VALUES (?, ?, ?, ?)').run(b.height, b.hash, b.creditRoot, JSON.stringify(b.records));
  }

  /** Highest stored block height, or -1. */
  lastBlockHeight(): number {
    const r = this.#db.prepare('SELECT MAX(height) AS h FROM blocks').get() as { h: number | bigint | null };
    return r.h === null ? -1 : n(r.h);
  }

  getBlock(height: number): SettleBlock | undefined {
    const r = this.#db.prepare('SELECT height, hash, credit_root, records FROM blocks WHERE height = ?').get(height) as
      | { height: number | bigint; hash: string; credit_root: string; records: string }
      | undefined;
    if (r === undefined) return undefined;
    return { height: n(r.height), hash: r.hash, creditRoot: r.credit_root, records: JSON.parse(r.records) as CreditRecord[] };
  }

  /** Stored blocks not yet covered by an anchor, ascending. */
  unanchoredBlocks(limit: number): SettleBlock[] {
    const rows = this.#db.prepare('SELECT height FROM blocks WHERE anchor_id IS NULL ORDER BY height LIMIT ?').all(limit) as Array<{ height: number | bigint }>;
    return rows.map((r) => this.getBlock(n(r.height))!);
  }

  /**
   * Create the anchor row covering `heights` and claim the links it carries, atomically.
   * Returns the row, or undefined when one of the blocks is already anchored (a race lost).
   */
  createAnchor(heights: readonly number[], remark: Uint8Array, remarkHash: string, linkPeers: readonly string[]): AnchorRow | undefined {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const claimed = this.#db.prepare(`SELECT COUNT(*) AS c FROM blocks WHERE anchor_id IS NOT NULL AND height IN (${heights.map(() => '?').join(',')})`).get(...heights) as { c: number | bigint };
      if (n(claimed.c) > 0) {
        this.#db.exec('ROLLBACK');
        return undefined;
      }
      const res = this.#db
        .prepare("INSERT INTO anchors (from_height, to_height, remark, remark_hash, status, created_ms) VALUES (?, ?, ?, ?, 'pending', ?)")
        .run(Math.min(...heights), Math.max(...heights), remark, remarkHash, Date.now());
      const id = n(res.lastInsertRowid);
      const setBlock = this.#db.prepare('UPDATE blocks SET anchor_id = ? WHERE height = ?');
      for (const h of heights) setBlock.run(id, h);
      const setLink = this.#db.prepare('UPDATE links SET anchor_id = ? WHERE peer = ? AND anchor_id IS NULL');
      for (const p of linkPeers) setLink.run(id, p);
      this.#db.exec('COMMIT');
      return this.anchor(id);
    } catch (e) {
      this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  anchor(id: number): AnchorRow | undefined {
    const r = this.#db.prepare('SELECT * FROM anchors WHERE id = ?').get(id) as RawAnchorRow | undefined;
    return r === undefined ? undefined : toRow(r);
  }

  /** Anchors still to post (pending or submitted), oldest first. */
  unsettled(): AnchorRow[] {
    return (this.#db.prepare("SELECT * FROM anchors WHERE status IN ('pending', 'submitted') ORDER BY from_height").all() as unknown as RawAnchorRow[]).map(toRow);
  }

  /** All anchors, oldest first. */
  anchors(): AnchorRow[] {
    return (this.#db.prepare('SELECT * FROM anchors ORDER BY from_height').all() as unknown as RawAnchorRow[]).map(toRow);
  }

  /** The anchor covering matrix-drill block `height`, if any. */
  anchorForHeight(height: number): AnchorRow | undefined {
    const r = this.#db.prepare('SELECT a.* FROM anchors a JOIN blocks b ON b.anchor_id = a.id WHERE b.height = ?').get(height) as RawAnchorRow | undefined;
    return r === undefined ? undefined : toRow(r);
  }

  /** Record that the anchor is about to be sent with `nonce` while the Substrate head is `atNumber`. */
  markSubmitted(id: number, nonce: number, atNumber: number): void {
    this.#db.prepare("UPDATE anchors SET status = 'submitted', nonce = ?, submitted_at = ?, attempts = attempts + 1 WHERE id = ?").run(nonce, atNumber, id);
  }

  /** Record where the anchor landed. */
  markPosted(id: number, substrateBlock: string, substrateNumber: number, extIndex: number): void {
    this.#db
      .prepare("UPDATE anchors SET status = 'posted', substrate_block = ?, substrate_number = ?, ext_index = ?, last_error = NULL, posted_ms = ? WHERE id = ?")
      .run(substrateBlock, substrateNumber, extIndex, Date.now(), id);
  }

  /** Record a retryable error (status unchanged). */
  noteError(id: number, error: string): void {
    this.#db.prepare('UPDATE anchors SET last_error = ? WHERE id = ?').run(error, id);
  }

  /** The anchor can never be posted as is (rejected by the runtime). */
  markFailed(id: number, error: string): void {
    this.#db.prepare("UPDATE anchors SET status = 'failed', last_error = ? WHERE id = ?").run(error, id);
  }

  /** Add (or replace, while not yet anchored) a verified identity link. */
  putLink(l: IdentityLink): void {
    this.#db
      .prepare(
        `INSERT INTO links (peer, ss58, ss58_canonical, sig_by_peer, sig_by_ss58) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(peer) DO UPDATE SET ss58 = excluded.ss58, ss58_canonical = excluded.ss58_canonical,
           sig_by_peer = excluded.sig_by_peer, sig_by_ss58 = excluded.sig_by_ss58, anchor_id = NULL
         WHERE links.ss58_canonical != excluded.ss58_canonical`,
      )
      .run(l.peer, l.ss58, canonicalSs58(l.ss58), l.sigByPeer, l.sigBySs58);
  }

  /** Links of these peers not yet carried by an anchor. */
  unanchoredLinks(peers: Iterable<string>): IdentityLink[] {
    const q = this.#db.prepare('SELECT peer, ss58, sig_by_peer, sig_by_ss58 FROM links WHERE peer = ? AND anchor_id IS NULL');
    const out: IdentityLink[] = [];
    for (const p of new Set(peers)) {
      const r = q.get(p) as { peer: string; ss58: string; sig_by_peer: string; sig_by_ss58: string } | undefined;
      if (r) out.push({ peer: r.peer, ss58: r.ss58, sigByPeer: r.sig_by_peer, sigBySs58: r.sig_by_ss58 });
    }
    return out;
  }

  /** Link of a peer id or an SS58 address (any prefix), with the anchor that carried it. */
  findLink(peerOrSs58: string): (IdentityLink & { anchorId: number | null }) | undefined {
    let key = peerOrSs58;
    let col = 'peer';
    try {
      key = canonicalSs58(peerOrSs58);
      col = 'ss58_canonical';
    } catch {
      /* not an SS58 address: a peer id */
    }
    const r = this.#db.prepare(`SELECT peer, ss58, sig_by_peer, sig_by_ss58, anchor_id FROM links WHERE ${col} = ?`).get(key) as
      | { peer: string; ss58: string; sig_by_peer: string; sig_by_ss58: string; anchor_id: number | bigint | null }
      | undefined;
    return r === undefined ? undefined : { peer: r.peer, ss58: r.ss58, sigByPeer: r.sig_by_peer, sigBySs58: r.sig_by_ss58, anchorId: nn(r.anchor_id) };
  }

  getMeta(key: string): string | undefined {
    return (this.#db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.#db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
