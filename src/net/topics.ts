/**
 * Typed gossip topics: a `TopicSpec` names a topic, bounds its message size and carries the
 * codec and domain validator. This file also holds the ONE place where errors become gossip
 * verdicts (`verdictFor`) and the versioned JSON codec (`jsonCodec`) most topics use.
 *
 * Verdicts follow gossipsub v1.1: ACCEPT delivers and forwards; IGNORE drops without penalty
 * (we cannot judge it: too early, duplicate, our own trouble); REJECT drops and lowers the
 * sender's score (the message is provably bad).
 */
import { DrillError } from '../util/errors.ts';
import { NetError, NetErrorCode } from './errors.ts';

export type Verdict = 'accept' | 'ignore' | 'reject';

/** The three verdicts, for validators that prefer constants over string literals. */
export const Verdicts = { accept: 'accept', ignore: 'ignore', reject: 'reject' } as const;

export interface TopicSpec<T> {
  /** Topic string, e.g. 'matrix-drill/units/1'; the trailing number is the wire version. */
  name: string;
  /** Size limit in bytes, checked before decoding. */
  maxBytes: number;
  encode(msg: T): Uint8Array;
  /** Throws a DrillError (code CODEC_*) on malformed input. */
  decode(bytes: Uint8Array): T;
  /** Domain validation; may be async. Throwing maps through `verdictFor`. */
  validate?(msg: T, from: string): Verdict | Promise<Verdict>;
}

/** A table from error code to verdict. */
export type VerdictTable = Readonly<Record<string, Verdict>>;

/**
 * Built-in mapping. Codec failures prove the sender relayed junk → reject. Node-local trouble
 * (stopped, timeouts) says nothing about the sender → ignore.
 */
const BUILTIN: VerdictTable = {
  [NetErrorCode.CODEC_TOO_LARGE]: 'reject',
  [NetErrorCode.CODEC_MALFORMED]: 'reject',
  [NetErrorCode.CODEC_VERSION]: 'reject',
  [NetErrorCode.CODEC_SCHEMA]: 'reject',
  USER_INPUT: 'reject',
  [NetErrorCode.NET_STOPPED]: 'ignore',
  [NetErrorCode.NET_TIMEOUT]: 'ignore',
};

/**
 * Codes registered by domain modules (block / unit validation). Static data (code → verdict),
 * not state: every registration of a code must agree, so import order cannot change behaviour.
 */
const registered: Record<string, Verdict> = Object.create(null) as Record<string, Verdict>;

/**
 * Register domain error codes and their verdicts, e.g.
 * `registerVerdicts({ BLOCK_BAD_SIGNATURE: 'reject', BLOCK_FUTURE_SLOT: 'ignore' })`.
 * Idempotent for identical entries.
 * @throws NetError NET_BAD_ARGUMENT if a code is already registered with a different verdict,
 *   or a verdict is not one of accept/ignore/reject.
 */
export function registerVerdicts(table: Record<string, Verdict>): void {
  for (const [code, verdict] of Object.entries(table)) {
    if (verdict !== 'accept' && verdict !== 'ignore' && verdict !== 'reject') {
      throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `registerVerdicts: ${code}: expected accept|ignore|reject, received ${String(verdict)}`, { code });
    }
    const prev = registered[code] ?? BUILTIN[code];
    if (prev !== undefined && prev !== verdict) {
      throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `registerVerdicts: ${code} is already mapped to ${prev}, refusing to remap it to ${verdict}`, { code, prev, verdict });
    }
    registered[code] = verdict;
  }
}

/**
 * Map a thrown error to a gossip verdict. Pure when `opts.table` is given (looked up first);
 * otherwise uses the registered codes and the built-ins. Rules, in order:
 * 1. a DrillError whose code is in the table / registry / built-ins → that verdict;
 * 2. any other DrillError code starting with `CODEC_` → reject (malformed bytes);
 * 3. everything else (unknown codes, TypeErrors) → `opts.fallback`, default ignore: never
 *    penalise a peer for a failure we cannot attribute to it. The node passes fallback
 *    'reject' for throws out of a topic's decode/validate (TopicSpec contract: throwing rejects).
 */
export function verdictFor(err: unknown, opts: { table?: VerdictTable; fallback?: Verdict } = {}): Verdict {
  const fallback = opts.fallback ?? 'ignore';
  // instanceof, not duck typing: Node's own errors also carry a string `code` (ECONNRESET, ...).
  if (!(err instanceof DrillError)) return fallback;
  const code = err.code;
  const table = opts.table;
  const hit = (table && Object.hasOwn(table, code) ? table[code] : undefined) ?? registered[code] ?? (Object.hasOwn(BUILTIN, code) ? BUILTIN[code] : undefined);
  if (hit !== undefined) return hit;
  if (code.startsWith('CODEC_')) return 'reject';
  return fallback;
}

/**
 * Check a TopicSpec before use (caller misuse, not untrusted input).
 * @throws NetError NET_BAD_ARGUMENT naming the field.
 */
export function checkTopicSpec(spec: TopicSpec<unknown>, maxAllowedBytes: number): void {
  if (typeof spec.name !== 'string' || spec.name.length === 0 || spec.name.length > 256) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `topic.name: expected a non-empty string of at most 256 chars, received ${JSON.stringify(spec.name)}`);
  }
  if (!Number.isSafeInteger(spec.maxBytes) || spec.maxBytes <= 0 || spec.maxBytes > maxAllowedBytes) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `topic ${spec.name}: maxBytes: expected an integer in 1..${maxAllowedBytes}, received ${String(spec.maxBytes)}`);
  }
  if (typeof spec.encode !== 'function' || typeof spec.decode !== 'function') {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `topic ${spec.name}: encode/decode: expected functions`);
  }
}

// ---------------------------------------------------------------------------------------------
// Versioned JSON codec
// ---------------------------------------------------------------------------------------------

/** JSON has no bigint: a bigint travels as `{"$bigint":"<decimal>"}`. */
const BIGINT_TAG = '$bigint';
/** Longest decimal bigint accepted on decode: 2^256 has 78 digits; 100 leaves margin and stops
 * a peer from making us parse megabyte-long numbers. */
const MAX_BIGINT_DIGITS = 100;
const BIGINT_RE = /^-?(0|[1-9][0-9]*)$/;

export interface JsonCodecOptions<T> {
  /** Wire version, a non-negative integer; decode rejects any other `v` (CODEC_VERSION). */
  version: number;
  /** Schema check of the decoded body (without `v`); throw to refuse. Returns the typed value. */
  check: (raw: unknown) => T;
  /** Optional size limit enforced by decode before parsing (CODEC_TOO_LARGE). */
  maxBytes?: number;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const utf8Encoder = new TextEncoder();

/**
 * A versioned JSON codec: the wire form is the UTF-8 JSON of `{ v: VERSION, ...body }`, with
 * bigints tagged as `{"$bigint":"123"}` and `Uint8Array` unsupported (send hex strings).
 * `decode` checks size, UTF-8, JSON, that the top level is an object, the version, then runs
 * `check` on the body (any throw from `check` becomes CODEC_SCHEMA, keeping its message).
 * @throws NetError NET_BAD_ARGUMENT for a bad `version`.
 */
export function jsonCodec<T>(opts: JsonCodecOptions<T>): Pick<TopicSpec<T>, 'encode' | 'decode'> {
  const { version, check, maxBytes } = opts;
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `jsonCodec.version: expected a non-negative integer, received ${String(version)}`);
  }
  if (typeof check !== 'function') {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, 'jsonCodec.check: expected a function');
  }
  return {
    encode(msg: T): Uint8Array {
      if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
        throw new NetError(NetErrorCode.CODEC_ENCODE, `jsonCodec.encode: expected a plain object body, received ${msg === null ? 'null' : Array.isArray(msg) ? 'an array' : typeof msg}`);
      }
      if (Object.hasOwn(msg, 'v')) {
        throw new NetError(NetErrorCode.CODEC_ENCODE, 'jsonCodec.encode: body must not have a field named "v" (reserved for the version)');
      }
      let text: string;
      try {
        text = JSON.stringify({ v: version, ...(msg as object) }, (_k, val: unknown) => {
          if (typeof val === 'bigint') return { [BIGINT_TAG]: val.toString() };
          if (val instanceof Uint8Array) throw new TypeError('Uint8Array is not JSON; encode bytes as hex');
          return val;
        });
      } catch (e) {
        throw new NetError(NetErrorCode.CODEC_ENCODE, `jsonCodec.encode: ${(e as Error).message}`, {}, { cause: e });
      }
      const bytes = utf8Encoder.encode(text);
      if (maxBytes !== undefined && bytes.length > maxBytes) {
        throw new NetError(NetErrorCode.CODEC_TOO_LARGE, `jsonCodec.encode: message is ${bytes.length} bytes, limit ${maxBytes}`, { size: bytes.length, limit: maxBytes });
      }
      return bytes;
    },
    decode(bytes: Uint8Array): T {
      if (!(bytes instanceof Uint8Array)) {
        throw new NetError(NetErrorCode.CODEC_MALFORMED, 'jsonCodec.decode: expected bytes');
      }
      if (maxBytes !== undefined && bytes.length > maxBytes) {
        throw new NetError(NetErrorCode.CODEC_TOO_LARGE, `message is ${bytes.length} bytes, limit ${maxBytes}`, { size: bytes.length, limit: maxBytes });
      }
      let raw: unknown;
      try {
        raw = JSON.parse(utf8Decoder.decode(bytes), reviveBigint);
      } catch (e) {
        if (e instanceof NetError) throw e; // from reviveBigint
        throw new NetError(NetErrorCode.CODEC_MALFORMED, `not UTF-8 JSON: ${(e as Error).message}`);
      }
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new NetError(NetErrorCode.CODEC_MALFORMED, `expected a JSON object envelope, received ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
      }
      const { v, ...body } = raw as Record<string, unknown>;
      if (v !== version) {
        throw new NetError(NetErrorCode.CODEC_VERSION, `v: expected ${version}, received ${JSON.stringify(v) ?? 'nothing'}`, { expected: version, received: typeof v === 'number' ? v : null });
      }
      try {
        return check(body);
      } catch (e) {
        if (e instanceof DrillError && e.code.startsWith('CODEC_')) throw e;
        throw new NetError(NetErrorCode.CODEC_SCHEMA, `schema: ${(e as Error)?.message ?? String(e)}`, { cause: e instanceof DrillError ? e.code : undefined }, { cause: e });
      }
    },
  };
}

function reviveBigint(_key: string, val: unknown): unknown {
  if (val !== null && typeof val === 'object' && !Array.isArray(val)) {
    const keys = Object.keys(val);
    if (keys.length === 1 && keys[0] === BIGINT_TAG) {
      const s = (val as Record<string, unknown>)[BIGINT_TAG];
      if (typeof s !== 'string' || s.length - (s.startsWith('-') ? 1 : 0) > MAX_BIGINT_DIGITS || !BIGINT_RE.test(s)) {
        throw new NetError(NetErrorCode.CODEC_MALFORMED, `${BIGINT_TAG}: expected a decimal integer string of at most ${MAX_BIGINT_DIGITS} digits, received ${typeof s === 'string' ? JSON.stringify(s.slice(0, 20)) : typeof s}`);
      }
      return BigInt(s);
    }
  }
  return val;
}
