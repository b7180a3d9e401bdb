/**
 * `drill settle`: anchor finalised matrix-drill blocks (credit roots, totals and trainer identity
 * links) on a Substrate chain with `system.remarkWithEvent`, queueing durably and retrying with
 * backoff while the node is unreachable. Also `--show-identity`, which prints a worker's signed
 * peer id ↔ SS58 link, and `--link FILE`, which registers such links with the settler.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { privateKeyFromProtobuf } from '../../vendor/libp2p.ts';
import type { Command } from '../command.ts';
import { bool, helpText, int, list, parseArgs, str } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { createLogger } from '../../util/log.ts';
import type { LogLevel } from '../../util/log.ts';
import { defaultDataDir, IDENTITY_FILE } from '../../worker/identity.ts';
import { BlockStore } from '../../chain/store.ts';
import {
  blockStoreSource,
  defaultChainSourceOptions,
  defaultSettlerOptions,
  JsonLinesSource,
  linkIdentity,
  loadSubstratePair,
  MAX_BLOCKS_PER_ANCHOR,
  Settler,
  SettleStore,
  verifyIdentityLink,
} from '../../settle/index.ts';
import type { AnchorSource, IdentityLink } from '../../settle/index.ts';
import { onStopSignal } from '../signals.ts';
import { LOG_FORMAT_FLAG, logFormatOf } from '../output.ts';
import type { AnchorRow } from '../../settle/store.ts';

/** File name of the settler's SQLite store inside --data-dir. */
export const SETTLE_DB_FILE = 'settle.sqlite';

const SPEC: Record<string, FlagSpec> = {
  ws: { type: 'string', help: 'Substrate node WebSocket URL, e.g. ws://127.0.0.1:9944' },
  suri: { type: 'string', help: 'signing account: //Alice, "mnemonic words", a 0x seed, or a file holding one' },
  'data-dir': { type: 'string', help: `settler data folder (holds ${SETTLE_DB_FILE}); default $DRILL_HOME/settle or ~/.matrix-drill/settle` },
  blocks: { type: 'string', help: 'finalised blocks as JSON lines {height, hash, creditRoot, records} (re-read every poll)' },
  'chain-store': { type: 'string', help: "a matrix-drill node's block store (SQLite) to take final blocks from" },
  confirmations: { type: 'string', help: 'depth at which a --chain-store block is final', default: String(defaultChainSourceOptions.confirmations) },
  every: { type: 'string', help: `matrix-drill blocks per anchor (1..${MAX_BLOCKS_PER_ANCHOR})`, default: String(defaultSettlerOptions.every) },
  'chain-id': { type: 'string', help: `matrix-drill network id written into anchors; default the --chain-store blocks' chainId, else ${defaultSettlerOptions.chainId}` },
  'wait-for': { type: 'string', help: 'record an anchor when inBlock or finalized', default: defaultSettlerOptions.waitFor },
  'poll-ms': { type: 'string', help: 'how often to look for new final blocks', default: String(defaultSettlerOptions.pollIntervalMs) },
  'retry-first-connect': { type: 'boolean', help: 'keep retrying when the node cannot be reached at start (default: fail at once)' },
  once: { type: 'boolean', help: 'post what is final now, then exit (cron style)' },
  link: { type: 'string', multiple: true, help: 'register an identity link (JSON file from --show-identity) to carry in anchors' },
  'show-identity': { type: 'boolean', help: 'print the signed link between a worker identity (--identity) and --suri, then exit' },
  identity: { type: 'string', help: `worker data folder or its ${IDENTITY_FILE} (for --show-identity); default $DRILL_HOME/worker or ~/.matrix-drill/worker (where drill worker keeps it)` },
  json: { type: 'boolean', help: 'print each anchor, and the summary at the end, as JSON lines' },
  'log-level': { type: 'string', help: 'error | warn | info | debug', default: 'info' },
  'log-format': LOG_FORMAT_FLAG,
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'usage: drill settle --ws URL --suri SURI (--blocks FILE | --chain-store PATH) [--every N] [--once]\n       drill settle --show-identity --suri SURI [--identity DIR]';

function readLink(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError('--link', 'a JSON identity link file from drill settle --show-identity', path, (e as Error).message);
  }
}

async function showIdentity(identity: string, suri: string): Promise<number> {
  let path = identity;
  try {
    if (statSync(identity).isDirectory()) path = join(identity, IDENTITY_FILE);
  } catch {
    throw new UserError('--identity', `a worker data folder or its ${IDENTITY_FILE}`, identity, 'not found');
  }
  let key;
  try {
    key = privateKeyFromProtobuf(new Uint8Array(readFileSync(path)));
  } catch (e) {
    throw new UserError('--identity', 'a libp2p protobuf Ed25519 private key file', path, (e as Error).message);
  }
  const pair = await loadSubstratePair(suri);
  const link = await linkIdentity(key, pair);
  process.stdout.write(JSON.stringify(link, null, 2) + '\n');
  return 0;
}

function openChainStore(path: string): BlockStore {
  try {
    statSync(path);
    return BlockStore.openReadOnly(path);
  } catch (e) {
    throw new UserError('--chain-store', "a matrix-drill node's block store file", path, (e as Error).message);
  }
}

export const command: Command = {
  name: 'settle',
  summary: 'anchor matrix-drill blocks and credit roots on a Substrate chain',
  async run(argv: string[]): Promise<number> {
    const p = parseArgs(argv, SPEC);
    if (bool(p, 'help')) {
      process.stdout.write(helpText(USAGE, SPEC));
      return 0;
    }
    const suri = str(p, 'suri');
    if (suri === undefined) throw new UserError('--suri', 'a Substrate signing key (//Alice, a mnemonic, or a file)', undefined);
    if (bool(p, 'show-identity')) return showIdentity(str(p, 'identity') ?? join(defaultDataDir(), 'worker'), suri);

    const url = str(p, 'ws');
    if (url === undefined) throw new UserError('--ws', 'a Substrate node URL such as ws://127.0.0.1:9944', undefined);
    const waitFor = str(p, 'wait-for');
    if (waitFor !== 'inBlock' && waitFor !== 'finalized') throw new UserError('--wait-for', 'inBlock or finalized', waitFor);
    const level = str(p, 'log-level') as LogLevel;
    if (!['error', 'warn', 'info', 'debug'].includes(level)) throw new UserError('--log-level', 'error, warn, info or debug', level);
    const every = int(p, 'every', 1, MAX_BLOCKS_PER_ANCHOR)!;
    const pollIntervalMs = int(p, 'poll-ms', 100, 3_600_000)!;
    const blocksFile = str(p, 'blocks');
    const chainStore = str(p, 'chain-store');
    if ((blocksFile === undefined) === (chainStore === undefined)) throw new UserError('--blocks / --chain-store', 'exactly one block source', blocksFile ?? chainStore ?? undefined);

    const logger = createLogger({ level, format: logFormatOf(p) });
    const signer = await loadSubstratePair(suri);
    const dataDir = str(p, 'data-dir') ?? join(defaultDataDir(), 'settle');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const store = new SettleStore(join(dataDir, SETTLE_DB_FILE));
    let chain: BlockStore | undefined;
    try {
      for (const f of list(p, 'link')) {
        const l = readLink(f);
        if (!(await verifyIdentityLink(l))) throw new UserError('--link', 'an identity link whose two signatures verify', f);
        store.putLink(l as IdentityLink);
        logger.info('identity link registered', { peer: (l as IdentityLink).peer, ss58: (l as IdentityLink).ss58 });
      }
      let source: AnchorSource;
      let chainId = str(p, 'chain-id');
      if (chainStore !== undefined) {
        chain = openChainStore(chainStore);
        if (chainId === undefined) for (const { block } of chain.blocks()) {
          chainId = block.header.chainId;
          break;
        }
        source = blockStoreSource(chain, { confirmations: int(p, 'confirmations', 0, 10_000)! });
      } else source = new JsonLinesSource(blocksFile!);

      const settler = new Settler(
        { url, every, pollIntervalMs, waitFor, chainId: chainId ?? defaultSettlerOptions.chainId, retryFirstConnect: bool(p, 'retry-first-connect') },
        { store, source, signer, logger },
      );
      logger.info('settling', { url, account: signer.address, every, store: store.path });
      const once = bool(p, 'once');
      const json = bool(p, 'json');
      let posted = 0;
      // Each anchor as it lands: one line for a person, or a JSON line with --json.
      settler.on('posted', (a: AnchorRow) => {
        posted++;
        const blocks = a.toHeight - a.fromHeight + 1;
        process.stdout.write(json
          ? JSON.stringify({ anchor: a.id, from: a.fromHeight, to: a.toHeight, blocks, substrateBlock: a.substrateBlock, substrateNumber: a.substrateNumber, extrinsicIndex: a.extIndex, remarkHash: a.remarkHash }) + '\n'
          : `anchor ${a.id}: matrix-drill blocks #${a.fromHeight}..#${a.toHeight} (${blocks}) → substrate block #${a.substrateNumber ?? '?'} ${a.substrateBlock ?? '?'}, extrinsic ${a.extIndex ?? '?'}\n`);
      });
      const stop = (): void => void settler.stop();
      const offSignal = onStopSignal(stop);
      if (once) settler.once('idle', stop);
      settler.start();
      try {
        await settler.done;
      } finally {
        await settler.stop();
        offSignal();
      }
      const anchors = store.anchors();
      const summary = {
        account: signer.address,
        posted,
        anchors: anchors.length,
        pending: anchors.filter((a) => a.status !== 'posted').length,
        last: anchors.filter((a) => a.status === 'posted').map((a) => ({ from: a.fromHeight, to: a.toHeight, substrateBlock: a.substrateBlock, extrinsicIndex: a.extIndex })).pop() ?? null,
      };
      process.stdout.write(json
        ? JSON.stringify(summary) + '\n'
        : `settled: ${posted} anchor(s) posted this run by ${signer.address}; ${summary.anchors} in the queue, ${summary.pending} pending${summary.last ? `; last: blocks #${summary.last.from}..#${summary.last.to} in substrate block ${summary.last.substrateBlock}` : ''}\n`);
      return 0;
    } finally {
      chain?.close();
      store.close();
    }
  },
};
