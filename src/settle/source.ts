/**
 * Where the settler gets finalised matrix-drill blocks from. The settler depends only on this
 * small interface, so it runs against the node's block store, a JSON-lines file, or a test array.
 */
import { readFile } from 'node:fs/promises';
import type { CreditRecord } from '../pod/credit.ts';
import { creditRecordProblem } from '../pod/credit.ts';
import { DrillError, UserError } from '../util/errors.ts';

/** What settlement needs of one finalised matrix-drill block. */
export interface SettleBlock {
  height: number;
  /** Block hash, 32-byte hex (no 0x). */
  hash: string;
  /** merkleRoot(records.map(creditLeaf)), 32-byte hex. */
  creditRoot: string;
  /** The block's credit records, in block order. */
  records: CreditRecord[];
}

/**
 * A source of finalised blocks. `finalizedBlocks(h)` yields the finalised blocks with height
 * greater than `h`, in increasing height order, as they are known now (a finite batch; the
 * settler asks again on its next poll).
 */
export interface AnchorSource {
  finalizedBlocks(afterHeight: number): AsyncIterable<SettleBlock> | Promise<SettleBlock[]>;
}

/** Drain either shape of `finalizedBlocks` into an array. */
export async function collectBlocks(src: AnchorSource, afterHeight: number): Promise<SettleBlock[]> {
  const r = src.finalizedBlocks(afterHeight);
  if (Symbol.asyncIterator in (r as object)) {
    const out: SettleBlock[] = [];
    for await (const b of r as AsyncIterable<SettleBlock>) out.push(b);
    return out;
  }
  return await (r as Promise<SettleBlock[]>);
}

/** Structural check of an untrusted SettleBlock; returns a reason or null. Never throws. */
export function settleBlockProblem(b: unknown): string | null {
  if (typeof b !== 'object' || b === null) return 'not an object';
  const x = b as Record<string, unknown>;
  if (!Number.isSafeInteger(x.height) || (x.height as number) < 0) return 'height: expected a non-negative integer';
  if (typeof x.hash !== 'string' || !/^[0-9a-f]{64}$/.test(x.hash)) return 'hash: expected 32-byte hex';
  if (typeof x.creditRoot !== 'string' || !/^[0-9a-f]{64}$/.test(x.creditRoot)) return 'creditRoot: expected 32-byte hex';
  if (!Array.isArray(x.records)) return 'records: expected an array';
  for (let i = 0; i < x.records.length; i++) {
    const p = creditRecordProblem(x.records[i]);
    if (p !== null) return `records[${i}]: ${p}`;
  }
  return null;
}

/** An in-memory source: push blocks as they finalise (tests, embedding). */
export class ArraySource implements AnchorSource {
  readonly blocks: SettleBlock[] = [];
  push(...bs: SettleBlock[]): void {
    this.blocks.push(...bs);
  }
  finalizedBlocks(afterHeight: number): Promise<SettleBlock[]> {
    return Promise.resolve(this.blocks.filter((b) => b.height > afterHeight).sort((a, b) => a.height - b.height));
  }
}

/**
 * A JSON-lines file of SettleBlock objects (one per line), re-read on every poll: what
 * `drill settle --blocks FILE` reads when no block store is given.
 * @throws UserError naming the file and line for a malformed block.
 */
export class JsonLinesSource implements AnchorSource {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }
  async finalizedBlocks(afterHeight: number): Promise<SettleBlock[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new DrillError('SETTLE_SOURCE_READ', `${this.path}: ${(e as Error).message}`, { path: this.path }, { cause: e });
    }
    const out: SettleBlock[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '') continue;
      // A line still being appended by a writer has no newline yet: skip it until it has one.
      if (i === lines.length - 1 && !text.endsWith('\n')) break;
      let b: unknown;
      try {
        b = JSON.parse(line);
      } catch {
        throw new UserError(`${this.path}:${i + 1}`, 'a JSON block {height, hash, creditRoot, records}', line);
      }
      const p = settleBlockProblem(b);
      if (p !== null) throw new UserError(`${this.path}:${i + 1}`, 'a JSON block {height, hash, creditRoot, records}', line, p);
      if ((b as SettleBlock).height > afterHeight) out.push(b as SettleBlock);
    }
    return out.sort((a, b) => a.height - b.height);
  }
}
