/**
 * Partner lists for `drill coordinator`: `--allow-partner PEER_ID` (repeatable) and
 * `--partners FILE` — one libp2p peer id per line (what `drill submit --show-id` prints),
 * optionally followed by a label; blank lines and `#` comments are skipped.
 */
import { readFileSync } from 'node:fs';
import { peerIdFromString } from '../../vendor/libp2p.ts';
import { UserError } from '../../util/errors.ts';
import type { PartnerPolicy } from './limits.ts';

/** A partners file's size limit: 10,000 partners of ~60 bytes a line is well under it. */
const MAX_PARTNERS_FILE_BYTES = 1024 * 1024;

/**
 * Check a partner's peer id (an Ed25519 libp2p peer id, as `drill submit --show-id` prints).
 * @throws UserError naming `field`.
 */
export function checkPartnerId(id: string, field: string): string {
  let ok = false;
  try {
    ok = peerIdFromString(id).type === 'Ed25519';
  } catch {
    ok = false;
  }
  if (!ok) throw new UserError(field, "a partner's peer id like 12D3KooW… (printed by 'drill submit --show-id')", id);
  return id;
}

/**
 * Read a partners file.
 * @throws UserError naming the file and line.
 */
export function readPartnersFile(path: string): string[] {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_PARTNERS_FILE_BYTES) throw new Error(`larger than ${MAX_PARTNERS_FILE_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    throw new UserError('--partners', 'a readable file with one partner peer id per line', path, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
  const ids: string[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    ids.push(checkPartnerId(line.split(/\s+/)[0]!, `--partners ${path}:${i + 1}`));
  }
  return ids;
}

/** The policy from the coordinator's flags. */
export function partnerPolicy(opts: { open?: boolean; allow?: readonly string[]; files?: readonly string[] }): PartnerPolicy {
  const partners = new Set<string>();
  for (const id of opts.allow ?? []) partners.add(checkPartnerId(id, '--allow-partner'));
  for (const f of opts.files ?? []) for (const id of readPartnersFile(f)) partners.add(id);
  return { open: opts.open ?? false, partners };
}
