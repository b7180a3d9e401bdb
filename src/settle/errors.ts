/**
 * Error codes of the settlement layer. Every failure the settler or `drill verify-credit` can
 * meet maps to one code, so callers (CLI, node, tests) match on `code`, never on the message.
 */
import { DrillError } from '../util/errors.ts';

/** Settlement error codes, one line of meaning each. */
export const SettleErrorCode = {
  /** The Substrate node cannot be reached at the URL (refused, DNS, TLS, handshake timeout). */
  UNREACHABLE: 'SETTLE_UNREACHABLE',
  /** The connection to the Substrate node dropped while a request was in flight. */
  DISCONNECTED: 'SETTLE_DISCONNECTED',
  /** The signing account cannot pay the transaction fee (unfunded or below existential deposit). */
  INSUFFICIENT_FUNDS: 'SETTLE_INSUFFICIENT_FUNDS',
  /** The node refused the extrinsic before inclusion (1010 invalid / 1012 banned, other than a nonce race). */
  TX_INVALID: 'SETTLE_TX_INVALID',
  /** The nonce raced another transaction of the same account (stale / future / priority); retryable. */
  TX_NONCE_RACE: 'SETTLE_TX_NONCE_RACE',
  /** The extrinsic was included but its dispatch failed (decoded module error in the message). */
  DISPATCH_FAILED: 'SETTLE_DISPATCH_FAILED',
  /** The runtime has no `system.remarkWithEvent` (or `system.remark`) call. */
  NO_REMARK_CALL: 'SETTLE_NO_REMARK_CALL',
  /** Bytes that claim to be an anchor do not decode (bad prefix, version, JSON or field). */
  BAD_ANCHOR: 'SETTLE_BAD_ANCHOR',
  /** An identity link whose signatures do not verify. */
  BAD_IDENTITY_LINK: 'SETTLE_BAD_IDENTITY_LINK',
  /** The settle store holds data that contradicts itself (hash, root or anchor mismatch). */
  STORE_CORRUPT: 'SETTLE_STORE_CORRUPT',
  /** A block from the source contradicts what was already stored for its height. */
  SOURCE_CONFLICT: 'SETTLE_SOURCE_CONFLICT',
  /** The Substrate chain does not hold the anchor the store says it does. */
  ANCHOR_NOT_ON_CHAIN: 'SETTLE_ANCHOR_NOT_ON_CHAIN',
  /** A waiting operation hit its time limit. */
  TIMEOUT: 'SETTLE_TIMEOUT',
} as const;
export type SettleErrorCode = (typeof SettleErrorCode)[keyof typeof SettleErrorCode];

/** Build a DrillError with a settlement code. */
export function settleError(code: SettleErrorCode, message: string, meta: Record<string, unknown> = {}, cause?: unknown): DrillError {
  return new DrillError(code, message, meta, cause === undefined ? undefined : { cause });
}

/** Errors after which retrying the same anchor later can succeed (the connection, a nonce race). */
export function isRetryable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === SettleErrorCode.UNREACHABLE || code === SettleErrorCode.DISCONNECTED || code === SettleErrorCode.TX_NONCE_RACE || code === SettleErrorCode.TIMEOUT;
}
