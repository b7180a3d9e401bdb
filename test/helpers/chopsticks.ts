/**
 * Test harness for settlement: a real Substrate runtime (solochain-template, from the raw chain
 * spec in test/fixtures/chain/, provenance in its SOURCE.md) under @acala-network/chopsticks, in-process, on 127.0.0.1 with port 0,
 * building a block per extrinsic (Instant mode). With `db` the chain is kept in a SQLite file,
 * so a stopped chain can be started again (same port) with its blocks and state.
 *
 * Chopsticks quirks handled here:
 * - on a fresh chain `chain_getBlockHash(0)` and `System.BlockHash(0)` are both the 0x45…45
 *   placeholder; after a resume from the db the first reads as the real hash of block 0 while
 *   storage keeps the placeholder, so signatures made by a fresh ApiPromise fail (`badProof`).
 *   `startChopsticks` re-aligns storage with the reported genesis hash after a resume.
 * - a block is written to the db after it becomes head: `close()` waits for pending blocks.
 * Also: fixtures of signed credit records and blocks with real Ed25519 peer ids.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { creditLeaf, signCreditRecord } from '../../src/pod/credit.ts';
import type { CreditRecord } from '../../src/pod/credit.ts';
import { bytesToHex, utf8ToBytes } from '../../src/util/bytes.ts';
import { merkleRoot } from '../../src/util/merkle.ts';
import type { SettleBlock } from '../../src/settle/source.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
/**
 * The solochain-template spec (polkadot-sdk stable2503), vendored with its provenance. Not the
 * smaller 2022 node-template: under chopsticks that runtime rejects every extrinsic whose signing
 * payload exceeds 256 bytes with `1010 badProof` (measured with @polkadot/api 16.5.6), and an
 * anchor is usually longer (see test/fixtures/chain/SOURCE.md). Boots in ~2-10 s on 2 cores.
 */
export const SOLOCHAIN_SPEC = resolve(HERE, '../fixtures/chain/solochain-template-stable2503.raw.json');

export interface ChopsticksChain {
  url: string;
  port: number;
  /** Best block number as chopsticks sees it. */
  head(): number;
  /** Flush pending blocks to the db and stop the server. */
  close(): Promise<void>;
}

/**
 * Start a chopsticks chain. `port` 0 picks a free one; pass the old port to restart "the same
 * node"; `db` + `resume` continue a chain from its SQLite file.
 */
export async function startChopsticks(opts: { port?: number; db?: string; resume?: boolean; spec?: string } = {}): Promise<ChopsticksChain> {
  process.env.LOG_LEVEL ??= 'fatal';
  const { setupWithServer } = await import('@acala-network/chopsticks');
  const { BuildBlockMode, setStorage } = await import('@acala-network/chopsticks-core');
  await patchWsServer();
  const before = trackedClients.length;
  const ctx = await setupWithServer({
    genesis: opts.spec ?? SOLOCHAIN_SPEC,
    host: '127.0.0.1',
    port: opts.port ?? 0,
    'build-block-mode': BuildBlockMode.Instant,
    ...(opts.db ? { db: opts.db } : {}),
    ...(opts.resume ? { resume: true } : {}),
  } as Parameters<typeof setupWithServer>[0]);
  const chain = ctx.chain;
  // Chopsticks' close() stops listening but leaves accepted WebSockets open (answering nothing):
  // a stopped node drops its connections, so terminate ours.
  const sockets = clientsSince(before);
  if (opts.resume) {
    const reported = (await chain.getBlockAt(0))?.hash;
    if (reported) await setStorage(chain, { System: { BlockHash: [[[0], reported]] } });
  }
  const port = Number(String(ctx.addr).split(':').pop());
  if (opts.port && port !== opts.port) {
    // Chopsticks silently moves to port+1.. when the port is taken; a restart must keep its URL.
    await ctx.close();
    throw new Error(`chopsticks: port ${opts.port} is taken (it would have listened on ${port})`);
  }
  let closed = false;
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    head: () => chain.head.number,
    async close() {
      if (closed) return;
      closed = true;
      await chain.upcomingBlocks();
      await ctx.close();
      for (const ws of sockets()) ws.terminate();
    },
  };
}

/** The little of the `ws` package used here (it ships no types of its own). */
interface WsSocket {
  terminate(): void;
}
type UpgradeCb = (ws: WsSocket, req: unknown) => void;
interface WsServerProto {
  handleUpgrade(this: unknown, req: unknown, socket: unknown, head: unknown, cb: UpgradeCb): void;
}

/** Every WebSocket the `ws` servers in this process accepted, in order. */
const trackedClients: WsSocket[] = [];
let patched = false;
async function patchWsServer(): Promise<void> {
  if (patched) return;
  patched = true;
  const wsPkg = 'ws';
  const { WebSocketServer } = (await import(wsPkg)) as { WebSocketServer: { prototype: WsServerProto } };
  const orig = WebSocketServer.prototype.handleUpgrade;
  WebSocketServer.prototype.handleUpgrade = function (req, socket, head, cb) {
    return orig.call(this, req, socket, head, (ws, r) => {
      trackedClients.push(ws);
      cb(ws, r);
    });
  };
}
/** Clients accepted after index `from` (by the server started then). */
function clientsSince(from: number): () => WsSocket[] {
  return () => trackedClients.slice(from);
}

/** A trainer: a real libp2p Ed25519 key and its peer id. */
export interface Trainer {
  key: PrivateKey;
  peer: string;
}

export async function makeTrainers(n: number): Promise<Trainer[]> {
  const out: Trainer[] = [];
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPair('Ed25519');
    out.push({ key, peer: peerIdFromPrivateKey(key).toString() });
  }
  return out;
}

/** A deterministic coordinator seed for fixtures. */
export const COORDINATOR_SEED = sha256(utf8ToBytes('settle-test-coordinator'));
export const COORDINATOR_PUB = bytesToHex(ed25519.getPublicKey(COORDINATOR_SEED));

/** A signed credit record crediting `peers` (sorted) for one unit. */
export function makeRecord(job: string, unit: number, flops: number, peers: string[], faulty: string[] = []): CreditRecord {
  return signCreditRecord(
    { job, unit, resultDigest: bytesToHex(sha256(utf8ToBytes(`${job}/${unit}`))), flops, credited: peers, faulty, status: 'agreed', time: 1_700_000_000_000 + unit },
    COORDINATOR_SEED,
  );
}

/** A finalised block at `height` carrying `records` (hash: a fixture hash over height and root). */
export function makeBlock(height: number, records: CreditRecord[]): SettleBlock {
  const creditRoot = merkleRoot(records.map(creditLeaf));
  return { height, hash: bytesToHex(sha256(utf8ToBytes(`block/${height}/${creditRoot}`))), creditRoot, records };
}

/** Blocks from..to, each with `perBlock` records over rotating trainer triples. */
export function makeBlocks(from: number, to: number, trainers: Trainer[], perBlock = 3): SettleBlock[] {
  const out: SettleBlock[] = [];
  for (let h = from; h <= to; h++) {
    const recs: CreditRecord[] = [];
    for (let u = 0; u < perBlock; u++) {
      const k = h * perBlock + u;
      const peers = [0, 1, 2].map((j) => trainers[(k + j) % trainers.length]!.peer);
      recs.push(makeRecord(`job-${h}`, u, 1_000_000 * (u + 1), [...new Set(peers)]));
    }
    out.push(makeBlock(h, recs));
  }
  return out;
}
