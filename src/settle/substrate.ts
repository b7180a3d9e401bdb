/**
 * The thin @polkadot/api shell of settlement: connect with a clear error, post a remark and wait
 * for inclusion, read a remark back from a block body and check it against `system.Remarked`,
 * and scan recent blocks for a remark already posted. Works with any FRAME runtime that has
 * `system.remarkWithEvent` (every runtime since 2021); falls back to `system.remark` without the
 * event check.
 *
 * The provider never reconnects by itself (autoConnectMs = 0): the Settler owns retries, with
 * backoff, and opens a fresh ApiPromise each time, so metadata and genesis are re-read after a
 * node restart or runtime upgrade.
 */
import { ApiPromise, WsProvider } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { SignedBlock, DispatchError, EventRecord } from '@polkadot/types/interfaces';
import { u8aEq, u8aToHex } from '@polkadot/util';
import { UserError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { remarkHash } from './anchor.ts';
import { settleError, SettleErrorCode } from './errors.ts';
import { canonicalSs58 } from './identity.ts';

export type WaitFor = 'inBlock' | 'finalized';

/** RPC request limit. 30 s: a healthy node answers in milliseconds; a hung one is dropped and retried. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

const CONNECTION_LOST = /No response received from RPC endpoint|disconnected from|WebSocket is not connected|Abnormal Closure|ECONNREFUSED|ECONNRESET|socket hang up/i;

/**
 * Map an error thrown by an @polkadot/api call to SETTLE_DISCONNECTED when it means the
 * connection is gone or the node stopped answering; other errors are returned unchanged.
 */
export function classifyRpcError(e: unknown, url: string): unknown {
  if ((e as { code?: unknown })?.code !== undefined && String((e as { code: unknown }).code).startsWith('SETTLE_')) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (CONNECTION_LOST.test(msg)) return settleError(SettleErrorCode.DISCONNECTED, `lost the connection to ${url}: ${msg}`, { url }, e);
  return e;
}

/** Where an extrinsic landed. */
export interface Inclusion {
  /** Substrate block hash, 0x-hex. */
  blockHash: string;
  blockNumber: number;
  /** Index of the extrinsic in the block body. */
  extIndex: number;
}

/** @throws UserError naming `field` when `url` is not a ws:// or wss:// URL. */
export function checkWsUrl(url: string, field = '--ws'): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(field, 'a ws:// or wss:// URL such as ws://127.0.0.1:9944', url);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new UserError(field, 'a ws:// or wss:// URL such as ws://127.0.0.1:9944', url);
  return url;
}

/**
 * Connect to a Substrate node and wait until the API is ready (metadata loaded).
 * @throws UserError for a malformed URL; DrillError SETTLE_UNREACHABLE when the node cannot be
 *   reached or does not answer as a Substrate node within `timeoutMs`.
 */
export async function connectSubstrate(url: string, opts: { timeoutMs: number; requestTimeoutMs?: number; logger?: Logger }): Promise<ApiPromise> {
  checkWsUrl(url);
  const unreachable = (why: string, cause?: unknown): Error =>
    settleError(SettleErrorCode.UNREACHABLE, `cannot reach Substrate node at ${url}: ${why}`, { url }, cause);
  // Probe with a socket we own first: a WsProvider whose first connection fails keeps an internal
  // interval alive (the process would never exit), so it is only created for a live endpoint.
  await probeWebSocket(url, opts.timeoutMs).catch((e: unknown) => {
    throw unreachable((e as Error).message, e);
  });
  // Per-request limit: a node that keeps the socket open but stops answering must not hang us.
  const provider = new WsProvider(url, 0, {}, opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unreachable(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  });
  try {
    await Promise.race([
      new Promise<void>((resolve, reject) => {
        const offC = provider.on('connected', () => {
          offC();
          offE();
          resolve();
        });
        const offE = provider.on('error', (e: unknown) => {
          offC();
          offE();
          const msg = (e as { message?: string; error?: { message?: string } })?.error?.message ?? (e as { message?: string })?.message ?? 'connection failed';
          reject(unreachable(msg, e));
        });
        provider.connect().catch((e: unknown) => reject(unreachable((e as Error).message, e)));
      }),
      timeout,
    ]);
    const api = new ApiPromise({ provider, noInitWarn: true });
    await Promise.race([api.isReadyOrError, timeout]).catch((e: unknown) => {
      throw (e as { code?: string }).code === SettleErrorCode.UNREACHABLE ? e : unreachable(`not a Substrate RPC endpoint (${(e as Error).message})`, e);
    });
    opts.logger?.debug('connected', { url, chain: api.runtimeChain.toString(), spec: api.runtimeVersion.specName.toString() });
    return api;
  } catch (e) {
    await provider.disconnect().catch(() => undefined);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Open and close a WebSocket to `url`; rejects with the reason when it does not open within `timeoutMs`. */
function probeWebSocket(url: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      reject(e as Error);
      return;
    }
    const t = setTimeout(() => {
      ws.close();
      reject(new Error(`no WebSocket handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(t);
      ws.close(1000);
      resolve();
    };
    ws.onerror = (ev: Event) => {
      clearTimeout(t);
      const inner = (ev as Event & { error?: { message?: string; cause?: { code?: string; message?: string } } }).error;
      reject(new Error(inner?.cause?.code ?? inner?.cause?.message ?? inner?.message ?? 'connection refused or not a WebSocket endpoint'));
    };
  });
}

/** Decode a dispatch error into "pallet.Error: docs". */
export function describeDispatchError(api: ApiPromise, err: DispatchError): string {
  if (err.isModule) {
    try {
      const m = api.registry.findMetaError(err.asModule);
      return `${m.section}.${m.name}${m.docs.length ? `: ${m.docs.join(' ')}` : ''}`;
    } catch {
      return err.toString();
    }
  }
  return err.type + (err.isToken ? `.${err.asToken.type}` : err.isArithmetic ? `.${err.asArithmetic.type}` : '');
}

/**
 * Map an error from `signAndSend` (an RPC error before inclusion) to a settlement error.
 * Runtimes word these differently: a node says "1010: Invalid Transaction: Inability to pay some
 * fees", chopsticks `1010: {"invalid":{"payment":null}}`.
 */
export function classifySubmitError(e: unknown, account: string, url: string): Error {
  const msg = e instanceof Error ? e.message : String(e);
  if ((e as { code?: unknown })?.code !== undefined && typeof (e as { code?: unknown }).code === 'string' && String((e as { code: string }).code).startsWith('SETTLE_')) return e as Error;
  if (/Inability to pay|"payment"|\bpayment\b|InsufficientBalance|balance too low/i.test(msg)) {
    return settleError(SettleErrorCode.INSUFFICIENT_FUNDS, `account ${account} cannot pay the transaction fee on ${url} (unfunded or below the existential deposit): fund it, or use another --suri [${msg}]`, { account, url }, e);
  }
  if (/stale|future|1014|Priority is too low|already imported|AlreadyImported|temporarily banned|1012|usurped/i.test(msg)) {
    return settleError(SettleErrorCode.TX_NONCE_RACE, `transaction of ${account} raced another one with the same nonce: ${msg}`, { account }, e);
  }
  if (CONNECTION_LOST.test(msg)) {
    return settleError(SettleErrorCode.DISCONNECTED, `lost the connection to ${url}: ${msg}`, { url }, e);
  }
  if (/^1010|Invalid Transaction|"invalid"/i.test(msg)) {
    return settleError(SettleErrorCode.TX_INVALID, `the node at ${url} rejected the anchor extrinsic of ${account}: ${msg}`, { account, url }, e);
  }
  return settleError(SettleErrorCode.TX_INVALID, `submitting the anchor extrinsic to ${url} failed: ${msg}`, { account, url }, e);
}

/** The remark call this runtime offers. @throws DrillError SETTLE_NO_REMARK_CALL. */
function remarkCall(api: ApiPromise, remark: Uint8Array) {
  const sys = api.tx.system;
  // Bytes from a Uint8Array is read as SCALE (length-prefixed); from hex it is the raw content.
  const arg = u8aToHex(remark);
  if (sys?.remarkWithEvent) return sys.remarkWithEvent(arg);
  if (sys?.remark) return sys.remark(arg);
  throw settleError(SettleErrorCode.NO_REMARK_CALL, `runtime ${api.runtimeVersion.specName.toString()} has no system.remarkWithEvent or system.remark call`);
}

/**
 * Sign and submit `remark` with an explicit nonce; resolve once it is in a block (or finalised),
 * with its block hash, number and extrinsic index.
 * @throws DrillError SETTLE_INSUFFICIENT_FUNDS | TX_INVALID | TX_NONCE_RACE | DISPATCH_FAILED |
 *   DISCONNECTED | TIMEOUT.
 */
export async function submitRemark(
  api: ApiPromise,
  pair: KeyringPair,
  remark: Uint8Array,
  opts: { nonce: number; waitFor: WaitFor; timeoutMs: number; url: string },
): Promise<Inclusion> {
  const tx = remarkCall(api, remark);
  const provider = (api as unknown as { _rpcCore: { provider: WsProvider } })._rpcCore.provider;
  let unsub: (() => void) | undefined;
  let offDisc: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Inclusion>((resolve, reject) => {
      offDisc = provider.on('disconnected', () => reject(settleError(SettleErrorCode.DISCONNECTED, `lost the connection to ${opts.url} while waiting for the anchor's inclusion`, { url: opts.url })));
      timer = setTimeout(() => reject(settleError(SettleErrorCode.TIMEOUT, `anchor extrinsic not ${opts.waitFor === 'inBlock' ? 'included' : 'finalised'} within ${opts.timeoutMs} ms`, { nonce: opts.nonce })), opts.timeoutMs);
      tx.signAndSend(pair, { nonce: opts.nonce }, (r) => {
        const s = r.status;
        const at = opts.waitFor === 'inBlock' ? (s.isInBlock ? s.asInBlock : s.isFinalized ? s.asFinalized : undefined) : s.isFinalized ? s.asFinalized : undefined;
        if (r.dispatchError && (s.isInBlock || s.isFinalized)) {
          reject(settleError(SettleErrorCode.DISPATCH_FAILED, `anchor extrinsic failed in block ${(s.isInBlock ? s.asInBlock : s.asFinalized).toHex()}: ${describeDispatchError(api, r.dispatchError)}`));
          return;
        }
        if (at !== undefined) {
          const blockHash = at.toHex();
          api.rpc.chain
            .getHeader(blockHash)
            .then((h) => resolve({ blockHash, blockNumber: h.number.toNumber(), extIndex: r.txIndex ?? -1 }))
            .catch((e: unknown) => reject(classifySubmitError(e, pair.address, opts.url)));
          return;
        }
        if (s.isInvalid || s.isDropped || s.isUsurped) {
          reject(settleError(s.isUsurped ? SettleErrorCode.TX_NONCE_RACE : SettleErrorCode.TX_INVALID, `anchor extrinsic ${s.type.toLowerCase()} by the node at ${opts.url}`, { nonce: opts.nonce }));
        }
      })
        .then((u) => {
          unsub = u;
        })
        .catch((e: unknown) => reject(classifySubmitError(e, pair.address, opts.url)));
    });
  } finally {
    clearTimeout(timer);
    offDisc?.();
    unsub?.();
  }
}

/** What a Substrate block holds at one extrinsic index, as far as anchors are concerned. */
export interface RemarkAt {
  /** The remark argument bytes. */
  remark: Uint8Array;
  /** Signer SS58 as the node encodes it. */
  signer: string;
  /** The extrinsic dispatched successfully (system.ExtrinsicSuccess). */
  success: boolean;
  /** A system.Remarked event for this extrinsic carries blake2_256(remark) (false for plain system.remark). */
  eventMatches: boolean;
  blockNumber: number;
}

function isRemark(section: string, method: string): boolean {
  return section === 'system' && (method === 'remarkWithEvent' || method === 'remark');
}

/**
 * Read the remark at (`blockHash`, `extIndex`) from the block body and check it against the
 * block's events. Returns undefined when that extrinsic is not a system remark.
 * @throws the RPC error when the node does not know the block or cannot be reached.
 */
export async function readRemarkAt(api: ApiPromise, blockHash: string, extIndex: number): Promise<RemarkAt | undefined> {
  const [signed, events] = await Promise.all([api.rpc.chain.getBlock(blockHash), api.query.system.events.at(blockHash)]);
  const ex = signed.block.extrinsics[extIndex];
  if (ex === undefined || !isRemark(ex.method.section, ex.method.method)) return undefined;
  const remark = (ex.method.args[0] as unknown as { toU8a(bare: boolean): Uint8Array }).toU8a(true);
  const mine = (events as unknown as EventRecord[]).filter((e) => e.phase.isApplyExtrinsic && e.phase.asApplyExtrinsic.toNumber() === extIndex);
  const success = mine.some((e) => e.event.section === 'system' && e.event.method === 'ExtrinsicSuccess');
  const want = remarkHash(remark);
  const eventMatches = mine.some((e) => e.event.section === 'system' && e.event.method === 'Remarked' && (e.event.data[1] as unknown as { toHex(): string }).toHex() === want);
  return { remark, signer: ex.signer.toString(), success, eventMatches, blockNumber: signed.block.header.number.toNumber() };
}

/**
 * Look for `remark` sent by `signer` in blocks fromNumber..best (at most maxBlocks of them).
 * Used after a restart for an anchor that was submitted but never recorded as included.
 * @throws the RPC error when the node cannot be reached.
 */
export async function findRemark(api: ApiPromise, signer: string, remark: Uint8Array, fromNumber: number, maxBlocks: number): Promise<Inclusion | undefined> {
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const start = Math.max(0, Math.max(fromNumber, best - maxBlocks + 1));
  for (let num = start; num <= best; num++) {
    const hash = (await api.rpc.chain.getBlockHash(num)).toHex();
    const signed: SignedBlock = await api.rpc.chain.getBlock(hash);
    const idx = signed.block.extrinsics.findIndex(
      (ex) => ex.isSigned && isRemark(ex.method.section, ex.method.method) && canonicalSs58(ex.signer.toString()) === canonicalSs58(signer) && u8aEq((ex.method.args[0] as unknown as { toU8a(bare: boolean): Uint8Array }).toU8a(true), remark),
    );
    if (idx >= 0) {
      const at = await readRemarkAt(api, hash, idx);
      if (at?.success) return { blockHash: hash, blockNumber: num, extIndex: idx };
    }
  }
  return undefined;
}

/** The account's next nonce, counting transactions in the node's pool. */
export async function nextNonce(api: ApiPromise, address: string): Promise<number> {
  return (await api.rpc.system.accountNextIndex(address)).toNumber();
}

/** The account's nonce as of the best block (transactions included so far). */
export async function includedNonce(api: ApiPromise, address: string): Promise<number> {
  const info = (await api.query.system.account(address)) as unknown as { nonce: { toNumber(): number } };
  return info.nonce.toNumber();
}

/** Disconnect, swallowing errors (the connection may already be gone). */
export async function disconnectQuietly(api: ApiPromise | undefined): Promise<void> {
  if (api === undefined) return;
  await api.disconnect().catch(() => undefined);
}
