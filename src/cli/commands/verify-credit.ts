/**
 * `drill verify-credit`: prove a trainer's credit in one matrix-drill block against the anchor a
 * Substrate chain holds. Prints {"anchored": true, "substrateBlock", "root", "credit"} and exits 0,
 * or {"anchored": false, "reason"} and exits 1. `--receipt FILE` re-checks a saved result (or any
 * receipt) against the chain alone, with no local store.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../command.ts';
import { bool, helpText, int, parseArgs, str } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { defaultDataDir } from '../../worker/identity.ts';
import { checkReceipt, connectSubstrate, disconnectQuietly, receiptFromStore, SettleStore } from '../../settle/index.ts';
import type { CreditReceipt, VerifyResult } from '../../settle/index.ts';
import { SETTLE_DB_FILE } from './settle.ts';

const SPEC: Record<string, FlagSpec> = {
  ws: { type: 'string', help: 'Substrate node WebSocket URL holding the anchors' },
  worker: { type: 'string', help: "trainer's libp2p peer id, or its SS58 address when linked" },
  block: { type: 'string', help: 'matrix-drill block height' },
  'data-dir': { type: 'string', help: `settler data folder with ${SETTLE_DB_FILE}; default $DRILL_HOME/settle or ~/.matrix-drill/settle` },
  receipt: { type: 'string', help: 'check this saved receipt / verify-credit output (JSON) instead of building one from the store' },
  'timeout-ms': { type: 'string', help: 'connection time limit', default: '15000' },
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'usage: drill verify-credit --ws URL --worker PEER|SS58 --block HEIGHT [--data-dir DIR]\n       drill verify-credit --ws URL --receipt FILE';

function loadReceipt(path: string): CreditReceipt {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError('--receipt', 'a JSON receipt (the output of drill verify-credit)', path, (e as Error).message);
  }
  const o = j as { credit?: unknown; records?: unknown };
  const r = (o && typeof o === 'object' && o.credit && typeof o.credit === 'object' ? o.credit : o) as CreditReceipt;
  if (!r || typeof r !== 'object' || !Array.isArray(r.records)) throw new UserError('--receipt', 'a JSON receipt with records', path);
  return r;
}

export const command: Command = {
  name: 'verify-credit',
  summary: "prove a trainer's credit against an anchor on a Substrate chain",
  async run(argv: string[]): Promise<number> {
    const p = parseArgs(argv, SPEC);
    if (bool(p, 'help')) {
      process.stdout.write(helpText(USAGE, SPEC));
      return 0;
    }
    const url = str(p, 'ws');
    if (url === undefined) throw new UserError('--ws', 'a Substrate node URL such as ws://127.0.0.1:9944', undefined);
    const receiptFile = str(p, 'receipt');
    let receipt: CreditReceipt;
    if (receiptFile !== undefined) receipt = loadReceipt(receiptFile);
    else {
      const worker = str(p, 'worker');
      if (worker === undefined) throw new UserError('--worker', 'a peer id or SS58 address', undefined);
      const height = int(p, 'block', 0);
      if (height === undefined) throw new UserError('--block', 'a matrix-drill block height', undefined);
      const dbPath = join(str(p, 'data-dir') ?? join(defaultDataDir(), 'settle'), SETTLE_DB_FILE);
      if (!existsSync(dbPath)) throw new UserError('--data-dir', `a folder holding ${SETTLE_DB_FILE} (written by drill settle)`, dbPath, 'not found');
      const store = new SettleStore(dbPath);
      try {
        const r = receiptFromStore(store, worker, height);
        if (typeof r === 'string') {
          process.stdout.write(JSON.stringify({ anchored: false, reason: r }) + '\n');
          return 1;
        }
        receipt = r;
      } finally {
        store.close();
      }
    }
    const api = await connectSubstrate(url, { timeoutMs: int(p, 'timeout-ms', 100, 600_000)! });
    let result: VerifyResult;
    try {
      result = await checkReceipt(api, receipt);
    } finally {
      await disconnectQuietly(api);
    }
    process.stdout.write(JSON.stringify(result) + '\n');
    return result.anchored ? 0 : 1;
  },
};
