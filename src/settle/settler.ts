/**
 * The Settler service: takes finalised matrix-drill blocks from an AnchorSource, stores them,
 * groups them `every` at a time into anchors (queued durably in the SettleStore), and posts each
 * anchor to a Substrate chain as a `system.remarkWithEvent`, one at a time, recording where it
 * landed.
 *
 * Never twice: before an anchor is sent its row is marked `submitted` with the nonce and the
 * Substrate head; the row becomes `posted` only with the inclusion. If the process dies in
 * between, the next start first scans the chain from that head for the same remark from the same
 * account and records it if found; if not found and the account's nonce has not moved past the
 * recorded one, it re-sends with the SAME nonce, so at most one of the two can ever be included.
 *
 * Unreachable node: every failure to connect or lost connection closes the API and retries after
 * a capped exponential backoff, forever, while blocks keep queueing. Errors that retrying cannot
 * fix (unfunded account, rejected extrinsic) stop the settler: `done` rejects with them.
 *
 * Events: 'anchored' (row queued), 'posted' (row, Inclusion), 'retry' ({ attempt, delayMs, error }),
 * 'connected' (url), 'fatal' (error), 'idle' (nothing left to post).
 */
import { EventEmitter } from 'node:events';
import type { ApiPromise } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { buildAnchor, encodeAnchor, MAX_BLOCKS_PER_ANCHOR, remarkHash } from './anchor.ts';
import type { BackoffOptions } from './backoff.ts';
import { backoffDelay, defaultBackoffOptions } from './backoff.ts';
import { isRetryable, settleError, SettleErrorCode } from './errors.ts';
import type { AnchorSource } from './source.ts';
import { collectBlocks } from './source.ts';
import type { AnchorRow, SettleStore } from './store.ts';
import type { Inclusion, WaitFor } from './substrate.ts';
import { checkWsUrl, classifyRpcError, connectSubstrate, DEFAULT_REQUEST_TIMEOUT_MS, disconnectQuietly, findRemark, includedNonce, nextNonce, submitRemark } from './substrate.ts';

export interface SettlerOptions {
  /** Substrate node WebSocket URL. */
  url: string;
  /** The matrix-drill network id written into anchors. */
  chainId: string;
  /** Matrix-drill blocks per anchor: 1 = one anchor per finalised block. */
  every: number;
  /** How often to ask the source for new finalised blocks. 2 s: about a matrix-drill slot. */
  pollIntervalMs: number;
  /** Connect + metadata time limit. 15 s: a cold node over a slow link answers well within it. */
  connectTimeoutMs: number;
  /** Per-RPC-request limit; a node that stops answering is dropped and retried. */
  requestTimeoutMs: number;
  /** Inclusion time limit per extrinsic. 120 s: ~20 six-second Substrate blocks of congestion. */
  inclusionTimeoutMs: number;
  /** 'inBlock' records the anchor as soon as it is in a block; 'finalized' waits for GRANDPA. */
  waitFor: WaitFor;
  /**
   * Retry when the very first connection fails. false: a node that was never reached is far
   * more often a wrong URL than an outage, so say so at once (SETTLE_UNREACHABLE is fatal until
   * the first connection succeeds; later outages are always retried).
   */
  retryFirstConnect: boolean;
  /** Reconnect schedule while the node is unreachable. */
  backoff: BackoffOptions;
  /**
   * How many Substrate blocks a restart scans for an anchor submitted but not recorded. 256:
   * four times the default mortal era (64 blocks), after which the extrinsic can no longer land.
   */
  rescanBlocks: number;
}

export const defaultSettlerOptions: Omit<SettlerOptions, 'url'> = {
  chainId: 'matrix-drill',
  every: 1,
  pollIntervalMs: 2_000,
  connectTimeoutMs: 15_000,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  inclusionTimeoutMs: 120_000,
  waitFor: 'inBlock',
  retryFirstConnect: false,
  backoff: defaultBackoffOptions,
  rescanBlocks: 256,
};

export interface SettlerDeps {
  store: SettleStore;
  source: AnchorSource;
  /** Substrate account that signs the anchors (pays the fees). */
  signer: KeyringPair;
  logger?: Logger;
}

/** Posts anchors of finalised matrix-drill blocks to a Substrate chain. */
export class Settler extends EventEmitter {
  readonly options: SettlerOptions;
  readonly #store: SettleStore;
  readonly #source: AnchorSource;
  readonly #signer: KeyringPair;
  readonly #log: Logger;
  #running = false;
  #api: ApiPromise | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #failures = 0;
  #nonceFloor = 0;
  #everConnected = false;

  /** @throws UserError for a malformed URL; DrillError SETTLE_BAD_ANCHOR for `every` out of 1..64. */
  constructor(opts: Partial<SettlerOptions> & { url: string }, deps: SettlerDeps) {
    super();
    this.options = { ...defaultSettlerOptions, ...opts };
    checkWsUrl(this.options.url);
    if (!Number.isInteger(this.options.every) || this.options.every < 1 || this.options.every > MAX_BLOCKS_PER_ANCHOR) {
      throw settleError(SettleErrorCode.BAD_ANCHOR, `every: expected 1..${MAX_BLOCKS_PER_ANCHOR}, received ${this.options.every}`);
    }
    this.#store = deps.store;
    this.#source = deps.source;
    this.#signer = deps.signer;
    this.#log = (deps.logger ?? silentLogger).child('settle');
  }

  /** The signing account's address. */
  get account(): string {
    return this.#signer.address;
  }

  /** Start the loop. `done` settles when it ends (stop() or a fatal error). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
    // 'fatal' listeners and `done` carry the error; avoid an unhandled rejection here.
    this.#loop.catch(() => undefined);
  }

  /** Resolves when the loop ends after stop(); rejects with the error that stopped it. */
  get done(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  /** Ask the source for new blocks now instead of at the next poll. */
  poke(): void {
    this.#wake?.();
  }

  /** Stop after the extrinsic in flight (if any) settles; close the connection. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop?.catch(() => undefined);
    await disconnectQuietly(this.#api);
    this.#api = undefined;
  }

  async #run(): Promise<void> {
    try {
      while (this.#running) {
        await this.#ingest();
        const todo = this.#store.unsettled();
        if (todo.length > 0) {
          try {
            const api = await this.#connected();
            for (const row of todo) {
              if (!this.#running) break;
              const inc = await this.#settle(api, row);
              this.#failures = 0;
              this.emit('posted', this.#store.anchor(row.id)!, inc);
            }
            if (this.#running && this.#store.unsettled().length === 0) this.emit('idle');
          } catch (caught) {
            const e = classifyRpcError(caught, this.options.url);
            if (!isRetryable(e)) throw e;
            if (!this.#everConnected && !this.options.retryFirstConnect && (e as { code?: string }).code === SettleErrorCode.UNREACHABLE) throw e;
            await this.#dropConnection();
            const delayMs = backoffDelay(this.#failures, this.options.backoff);
            this.#failures++;
            this.#log.warn('substrate unavailable, will retry', { attempt: this.#failures, delayMs, error: (e as Error).message });
            this.emit('retry', { attempt: this.#failures, delayMs, error: e as Error });
            await this.#pause(delayMs);
            continue;
          }
        } else if (this.#running) this.emit('idle');
        await this.#pause(this.options.pollIntervalMs);
      }
    } catch (e) {
      this.#running = false;
      this.#log.error('settlement stopped', { error: (e as Error).message, code: (e as { code?: string }).code });
      this.emit('fatal', e);
      await this.#dropConnection();
      throw e;
    }
  }

  #pause(ms: number): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** Pull finalised blocks from the source into the store and cut them into anchors. */
  async #ingest(): Promise<void> {
    const blocks = await collectBlocks(this.#source, this.#store.lastBlockHeight());
    for (const b of blocks) this.#store.putBlock(b);
    for (;;) {
      const batch = this.#store.unanchoredBlocks(this.options.every);
      if (batch.length < this.options.every) break;
      const peers = new Set(batch.flatMap((b) => b.records.flatMap((r) => r.credited)));
      const links = this.#store.unanchoredLinks(peers);
      const remark = encodeAnchor(buildAnchor(this.options.chainId, batch, links));
      const row = this.#store.createAnchor(
        batch.map((b) => b.height),
        remark,
        remarkHash(remark),
        links.map((l) => l.peer),
      );
      if (row === undefined) break;
      this.#log.info('anchor queued', { from: row.fromHeight, to: row.toHeight, links: links.length, bytes: remark.length });
      this.emit('anchored', row);
    }
  }

  async #connected(): Promise<ApiPromise> {
    if (this.#api?.isConnected) return this.#api;
    await this.#dropConnection();
    this.#api = await connectSubstrate(this.options.url, { timeoutMs: this.options.connectTimeoutMs, requestTimeoutMs: this.options.requestTimeoutMs, logger: this.#log });
    this.#everConnected = true;
    this.#log.info('connected to substrate', { url: this.options.url, account: this.account });
    this.emit('connected', this.options.url);
    return this.#api;
  }

  async #dropConnection(): Promise<void> {
    const api = this.#api;
    this.#api = undefined;
    await disconnectQuietly(api);
  }

  /** Post one anchor (or find it already posted) and record the inclusion. */
  async #settle(api: ApiPromise, row: AnchorRow): Promise<Inclusion> {
    const addr = this.#signer.address;
    let nonce: number | undefined;
    if (row.status === 'submitted' && row.submittedAt !== null) {
      const found = await findRemark(api, addr, row.remark, row.submittedAt, this.options.rescanBlocks);
      if (found) {
        this.#log.info('anchor found on chain after restart, not re-sending', { from: row.fromHeight, block: found.blockHash, ext: found.extIndex });
        this.#store.markPosted(row.id, found.blockHash, found.blockNumber, found.extIndex);
        return found;
      }
      // Not included. If the account's nonce has not passed the recorded one, the old extrinsic
      // may still be pending: re-send with the same nonce so only one of them can ever land.
      if (row.nonce !== null && (await includedNonce(api, addr)) <= row.nonce) nonce = row.nonce;
    }
    if (nonce === undefined) nonce = Math.max(await nextNonce(api, addr), this.#nonceFloor);
    const head = (await api.rpc.chain.getHeader()).number.toNumber();
    this.#store.markSubmitted(row.id, nonce, head);
    try {
      const inc = await submitRemark(api, this.#signer, row.remark, {
        nonce,
        waitFor: this.options.waitFor,
        timeoutMs: this.options.inclusionTimeoutMs,
        url: this.options.url,
      });
      this.#nonceFloor = nonce + 1;
      this.#store.markPosted(row.id, inc.blockHash, inc.blockNumber, inc.extIndex);
      this.#log.info('anchor posted', { from: row.fromHeight, to: row.toHeight, block: inc.blockHash, number: inc.blockNumber, ext: inc.extIndex });
      return inc;
    } catch (e) {
      const msg = (e as Error).message;
      if (isRetryable(e)) this.#store.noteError(row.id, msg);
      else if ((e as { code?: string }).code === SettleErrorCode.DISPATCH_FAILED) this.#store.markFailed(row.id, msg);
      else this.#store.noteError(row.id, msg);
      throw e;
    }
  }
}
