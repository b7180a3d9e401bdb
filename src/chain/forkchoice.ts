/**
 * Fork choice, as BABE: the best chain is the one with the most primary blocks. Every block
 * here is a primary block (it carries a winning VRF ticket; there are no secondary slots), so
 * that is the highest chain. Ties are broken deterministically so that every node that has
 * seen the same blocks picks the same head:
 *   1. lower tip VRF ticket (the first 32 bytes of the tip's VRF output) — a producer cannot
 *      grind it (the VRF output is unique per key and slot);
 *   2. lower tip block hash (only when the tickets are equal, i.e. one producer equivocated).
 * Pure: compares summaries, holds no state.
 */

export interface ForkChoiceNode {
  hash: string;
  /** Primary blocks on the chain ending here (genesis excluded). */
  primaryCount: number;
  /** Tip's VRF output, 64-byte lowercase hex ('' for genesis). */
  vrfOutput: string;
}

/** Negative when `a` is the better head, positive when `b` is, 0 only for the same block. */
export function compareHeads(a: ForkChoiceNode, b: ForkChoiceNode): number {
  // Rule 1: more primary blocks wins.
  if (a.primaryCount !== b.primaryCount) return b.primaryCount - a.primaryCount;
  // Rule 2: lower tip VRF ticket wins (equal-length lowercase hex compares as numbers).
  const ta = a.vrfOutput.slice(0, 64);
  const tb = b.vrfOutput.slice(0, 64);
  if (ta !== tb) return ta < tb ? -1 : 1;
  // Rule 3: lower hash wins.
  if (a.hash !== b.hash) return a.hash < b.hash ? -1 : 1;
  return 0;
}

/** The best of several heads (undefined for none). */
export function bestHead<T extends ForkChoiceNode>(nodes: Iterable<T>): T | undefined {
  let best: T | undefined;
  for (const n of nodes) if (best === undefined || compareHeads(n, best) < 0) best = n;
  return best;
}
