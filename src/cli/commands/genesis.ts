/**
 * `drill genesis`: write the genesis file of a hashrate chain run by real processes — one
 * `drill coordinator --genesis FILE` and its `drill worker --genesis FILE`s.
 *
 *   drill genesis --data-dir COORD_DATA_DIR --producer PEER_ID[=FLOPS] [--producer ...]
 *                 [--slot-ms MS] [--epoch-slots N] [--c C] [--window-epochs N] [--fault-epochs N]
 *                 [--coordinator PEER_ID ...] [--chain-id ID] [--start-in MS]
 *                 --out genesis.json [--force]
 *
 * The bootstrap allocations (one genesis credit record per producer: the weights of the first
 * epochs, before any PoD credit reaches a snapshot) are signed by the coordinator's identity
 * key from its data dir (created when missing), and that coordinator is the one listed in
 * `coordinators`, so its PoD credit records count on the chain. Producers are workers' peer ids
 * (`drill worker --show-id`). The file is checked with `readGenesisFile` after writing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Command } from '../command.ts';
import { parseArgs, str, int, bool, list, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { bytesToHex } from '../../util/bytes.ts';
import { loadOrCreateIdentity, defaultDataDir } from '../../worker/identity.ts';
import { makeDevGenesis } from '../../chain/devgenesis.ts';
import { defaultGenesisParams, genesisHash, readGenesisFile, DEFAULT_FAULT_EPOCHS } from '../../chain/genesis.ts';
import type { GenesisConfig } from '../../chain/genesis.ts';

/** Genesis credit per producer when `=FLOPS` is omitted: 1 GFLOP (what the embedded grid uses). */
export const DEFAULT_PRODUCER_FLOPS = 1e9;
/**
 * Genesis time = now + this, by default: 10 s to copy the file to every node and start them
 * before slot 0. A node started later just begins at the current slot and fetches the blocks it
 * missed (parent fetch), so this only avoids a few empty slots.
 */
export const DEFAULT_START_IN_MS = 10_000;

const FLAGS: Record<string, FlagSpec> = {
  'data-dir': { type: 'string', help: "the coordinator's data dir: its identity key signs the allocations (created when missing; default $DRILL_HOME/coordinator or ~/.matrix-drill/coordinator)" },
  producer: { type: 'string', multiple: true, help: `PEER_ID[=FLOPS]: a worker (peer id from 'drill worker --show-id') and its genesis credit, a positive integer like 2000000000 or 2e9 (default ${DEFAULT_PRODUCER_FLOPS.toExponential()}); repeatable` },
  coordinator: { type: 'string', multiple: true, help: "another coordinator whose credit records count: its peer id (printed by 'drill coordinator'); repeatable" },
  'slot-ms': { type: 'string', help: 'slot length in ms (50..3600000)', default: String(defaultGenesisParams.slotMs) },
  'epoch-slots': { type: 'string', help: 'slots per epoch (1..1000000)', default: String(defaultGenesisParams.epochSlots) },
  c: { type: 'string', help: 'lottery c in (0, 1]: the probability that a slot has a block', default: String(defaultGenesisParams.c) },
  'window-epochs': { type: 'string', help: 'epochs of PoD credit that count in the weights (0 = all history)', default: '0' },
  'fault-epochs': { type: 'string', help: "epochs a fault record (a worker found faulty by PoD, or a producer's equivocation) bans its lottery weight (0..1000000)", default: String(DEFAULT_FAULT_EPOCHS) },
  'chain-id': { type: 'string', help: 'network name carried by every block (default matrix-drill-<genesis time>)' },
  'start-in': { type: 'string', help: 'genesis time (start of slot 0) = now + this many ms (0..86400000)', default: String(DEFAULT_START_IN_MS) },
  out: { type: 'string', help: 'where to write the genesis JSON' },
  force: { type: 'boolean', help: 'overwrite --out when it exists' },
  json: { type: 'boolean', help: 'print {"out","chainId","genesisHash","genesisTime","coordinator","coordinatorPeerId","coordinators","producers"} instead of the summary' },
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'usage: drill genesis --data-dir COORD_DATA_DIR --producer PEER_ID[=FLOPS] [--producer ...] [--slot-ms MS] [--epoch-slots N] [--c C] [--chain-id ID] [--start-in MS] --out genesis.json';

/** Parse one `--producer PEER_ID[=FLOPS]`. @throws UserError naming the flag. */
export function parseProducer(v: string): { peerId: string; flops: number } {
  const eq = v.indexOf('=');
  const id = (eq >= 0 ? v.slice(0, eq) : v).trim();
  const flopsText = eq >= 0 ? v.slice(eq + 1).trim() : undefined;
  let type: string;
  try {
    type = peerIdFromString(id).type;
  } catch {
    throw new UserError('--producer', "PEER_ID[=FLOPS] with a libp2p peer id like 12D3KooW… (print a worker's with 'drill worker --show-id')", v, 'not a peer id');
  }
  if (type !== 'Ed25519') throw new UserError('--producer', 'an Ed25519 peer id (12D3KooW…): block producers sign and prove with Ed25519', v, `a ${type} peer id`);
  let flops = DEFAULT_PRODUCER_FLOPS;
  if (flopsText !== undefined) {
    flops = Number(flopsText);
    if (flopsText === '' || !Number.isSafeInteger(flops) || flops <= 0) {
      throw new UserError('--producer', `PEER_ID=FLOPS with FLOPS a positive integer up to ${Number.MAX_SAFE_INTEGER} (e.g. 1e9)`, v);
    }
  }
  return { peerId: id, flops };
}

/** A `--coordinator PEER_ID` as the hex Ed25519 public key the genesis lists. @throws UserError. */
export function coordinatorKey(v: string): string {
  let key: Uint8Array | undefined;
  try {
    const id = peerIdFromString(v.trim());
    if (id.type === 'Ed25519') key = id.publicKey.raw;
  } catch {
    // reported below
  }
  if (!key) throw new UserError('--coordinator', "a coordinator's Ed25519 peer id (12D3KooW…, printed by 'drill coordinator')", v);
  return bytesToHex(key);
}

export const command: Command = {
  name: 'genesis',
  summary: 'write a genesis file for a hashrate chain (coordinator-signed bootstrap credit for producers)',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText(USAGE, FLAGS));
      return 0;
    }
    if (p.positionals.length > 0) throw new UserError('arguments', 'flags only (see drill genesis --help)', p.positionals[0]);
    // Every flag is checked before the identity is touched or anything is written.
    const producerArgs = list(p, 'producer');
    if (producerArgs.length === 0) throw new UserError('--producer', "at least one PEER_ID[=FLOPS] (a worker's peer id from 'drill worker --show-id')", undefined);
    const producers = producerArgs.map(parseProducer);
    const seen = new Set<string>();
    for (const pr of producers) {
      if (seen.has(pr.peerId)) throw new UserError('--producer', 'each peer id once', pr.peerId, 'given twice');
      seen.add(pr.peerId);
    }
    const extraCoordinators = [...new Set(list(p, 'coordinator').map(coordinatorKey))];
    const slotMs = int(p, 'slot-ms', 50, 3_600_000)!;
    const epochSlots = int(p, 'epoch-slots', 1, 1_000_000)!;
    const cText = str(p, 'c')!;
    const c = Number(cText);
    if (cText.trim() === '' || !(c > 0 && c <= 1)) throw new UserError('--c', 'a number in (0, 1] (the probability that a slot has a block)', cText);
    const windowEpochs = int(p, 'window-epochs', 0, 1_000_000)!;
    const faultEpochs = int(p, 'fault-epochs', 0, 1_000_000)!;
    const startIn = int(p, 'start-in', 0, 86_400_000)!;
    const chainIdFlag = str(p, 'chain-id');
    if (chainIdFlag !== undefined && !/^[A-Za-z0-9._-]{1,128}$/.test(chainIdFlag)) {
      throw new UserError('--chain-id', '1..128 characters of A-Z a-z 0-9 . _ -', chainIdFlag);
    }
    const outFlag = str(p, 'out');
    if (outFlag === undefined || outFlag === '') throw new UserError('--out', 'a path for the genesis JSON, e.g. genesis.json', outFlag);
    const out = resolve(outFlag);
    if (existsSync(out) && !bool(p, 'force')) throw new UserError('--out', 'a path that does not exist yet (or --force to overwrite)', outFlag, 'nodes started on the old file would run another chain');

    const dataDir = resolve(str(p, 'data-dir') ?? join(defaultDataDir(), 'coordinator'));
    const id = await loadOrCreateIdentity(dataDir);
    if (seen.has(id.peerId)) {
      throw new UserError('--producer', "workers' peer ids (the coordinator follows the chain, it does not produce)", id.peerId, `that is the coordinator of ${dataDir}`);
    }
    const seed = id.privateKey.raw.subarray(0, 32);
    const ownKey = bytesToHex(id.privateKey.publicKey.raw);
    const genesisTime = Date.now() + startIn;
    const chainId = chainIdFlag ?? `matrix-drill-${genesisTime}`;
    const genesis: GenesisConfig = {
      ...makeDevGenesis({ chainId, genesisTime, allocations: producers, coordinatorSeed: seed, extraCoordinators: extraCoordinators.filter((k) => k !== ownKey), slotMs, epochSlots, c, ...(windowEpochs > 0 ? { windowEpochs } : {}), faultEpochs }),
      // Fresh genesis randomness (epochs 0 and 1): not derivable from the chain id and time.
      randomness: bytesToHex(randomBytes(32)),
    };

    try {
      mkdirSync(dirname(out), { recursive: true });
      const tmp = `${out}.${randomBytes(4).toString('hex')}.tmp`;
      writeFileSync(tmp, JSON.stringify(genesis, null, 2) + '\n');
      renameSync(tmp, out);
    } catch (e) {
      throw new UserError('--out', 'a writable path', outFlag, (e as Error).message);
    }
    const written = readGenesisFile(out, '--out'); // the file every node will read must pass the same checks
    const hash = genesisHash(written);
    const coordinator = written.coordinators[0]!; // the signer: makeDevGenesis lists it first

    if (bool(p, 'json')) {
      process.stdout.write(JSON.stringify({ out, chainId, genesisHash: hash, genesisTime, coordinator, coordinatorPeerId: id.peerId, coordinators: written.coordinators, producers }) + '\n');
      return 0;
    }
    const w = (s: string): void => void process.stdout.write(s + '\n');
    w(`genesis written to ${out}`);
    w(`  chain id      ${chainId}`);
    w(`  genesis hash  ${hash}`);
    w(`  slot 0 at     ${new Date(genesisTime).toISOString()} (in ${(startIn / 1000).toFixed(1)} s)`);
    w(`  slots         ${slotMs} ms, ${epochSlots} per epoch, c = ${c}${windowEpochs > 0 ? `, credit window ${windowEpochs} epochs` : ''}, a fault bans for ${faultEpochs} epoch(s)`);
    w(`  coordinator   ${id.peerId} (key ${coordinator.slice(0, 16)}…, data dir ${dataDir}${id.created ? ', new identity' : ''})`);
    for (const k of written.coordinators.slice(1)) w(`  coordinator   key ${k.slice(0, 16)}… (also trusted)`);
    const total = producers.reduce((a, b) => a + b.flops, 0);
    for (const pr of producers) w(`  producer      ${pr.peerId}  ${pr.flops.toExponential(2)} FLOPs (${((pr.flops / total) * 100).toFixed(1)} %)`);
    w(`start the coordinator with:  npx drill coordinator --data-dir ${dataDir} --genesis ${out}`);
    w(`and each worker with:        npx drill worker --join ADDR --genesis ${out}`);
    return 0;
  },
};
