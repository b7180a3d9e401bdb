/**
 * Who is calling the HTTP API (pure: no I/O but reading the tokens file).
 *
 * With `--api-tokens FILE` every `/v1/*` and `/metrics` request needs `Authorization: Bearer
 * TOKEN`; the file maps each token to a partner (a name, or a libp2p peer id to share jobs
 * with that partner's `drill submit --to`) and optionally the `operator` role, which sees every
 * job and not only its own. Holding a token admits its partner to the intake (the tokens file
 * is an allow list of its own); the per-partner limits apply as to any partner.
 *
 * Without tokens the API treats every caller as one local partner with the operator role, so
 * it must not be reachable from the network: it binds to loopback unless the operator passes
 * `--http-insecure`, and it refuses requests whose Host is not a loopback name (DNS rebinding)
 * or whose Origin is another site (a web page posting a form to 127.0.0.1).
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { UserError } from '../util/errors.ts';

export interface Caller {
  /** The intake partner the caller acts as. */
  partner: string;
  /** Sees every job (the dashboard's view); a partner sees only its own. */
  operator: boolean;
}

/** The caller of an API without tokens (loopback only). */
export const LOCAL_CALLER: Caller = { partner: 'local', operator: true };

/** Tokens file limit: 10,000 tokens of ~100 bytes a line is well under it. */
const MAX_TOKENS_FILE_BYTES = 1024 * 1024;
/** A token must be long enough not to be guessed: 16 characters of a random string at least. */
const MIN_TOKEN_CHARS = 16;
const TOKEN_RE = /^[A-Za-z0-9._~+/=-]+$/;
const PARTNER_RE = /^[A-Za-z0-9._@:-]{1,128}$/;

/** Tokens by their SHA-256 (looked up by hash, so comparing does not leak a token's prefix). */
export type TokenTable = ReadonlyMap<string, Caller>;

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Parse a tokens file: one `TOKEN PARTNER [operator]` per line, `#` comments, blank lines.
 * @throws UserError naming the file and line.
 */
export function parseTokens(text: string, source: string): TokenTable {
  const out = new Map<string, Caller>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const where = `--api-tokens ${source}:${i + 1}`;
    const [token, partner, role, ...rest] = line.split(/\s+/);
    if (!token || token.length < MIN_TOKEN_CHARS || token.length > 512 || !TOKEN_RE.test(token)) throw new UserError(where, `a token of ${MIN_TOKEN_CHARS}..512 characters [A-Za-z0-9._~+/=-] (e.g. from 'openssl rand -hex 32')`, `${token?.length ?? 0} characters`);
    if (!partner || !PARTNER_RE.test(partner)) throw new UserError(where, 'a partner name or peer id of 1..128 characters [A-Za-z0-9._@:-] after the token', partner);
    if ((role !== undefined && role !== 'operator' && role !== 'partner') || rest.length > 0) throw new UserError(where, "nothing after the partner but an optional role 'operator' or 'partner'", [role, ...rest].join(' '));
    const h = tokenHash(token);
    if (out.has(h)) throw new UserError(where, 'each token once', 'a token listed twice');
    out.set(h, { partner, operator: role === 'operator' });
  }
  if (out.size === 0) throw new UserError(`--api-tokens ${source}`, 'at least one line TOKEN PARTNER [operator]', 'none');
  return out;
}

/** @throws UserError naming --api-tokens. */
export function readTokensFile(path: string): TokenTable {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_TOKENS_FILE_BYTES) throw new Error(`larger than ${MAX_TOKENS_FILE_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    throw new UserError('--api-tokens', 'a readable file with one "TOKEN PARTNER [operator]" per line', path, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
  return parseTokens(text, path);
}

/** The caller a bearer token stands for, or null. */
export function authenticate(tokens: TokenTable, authorization: string | undefined, queryToken?: string): Caller | null {
  let token: string | undefined;
  const m = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  if (m) token = m[1];
  else if (authorization === undefined) token = queryToken;
  if (!token || token.length > 512) return null;
  return tokens.get(tokenHash(token)) ?? null;
}

/** Is `host` (an address or name to bind or a Host header's name) loopback? */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || h.startsWith('::ffff:127.');
}

/**
 * Parse `--http HOST:PORT` (`off` → null).
 * @throws UserError naming --http.
 */
export function parseHttpAddress(v: string): { host: string; port: number } | null {
  if (v === 'off') return null;
  const m = v.match(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UserError('--http', 'HOST:PORT (e.g. 127.0.0.1:9361, 0.0.0.0:9361, [::1]:9361) or off', v);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * The API may not serve without tokens on a non-loopback address unless the operator said so.
 * @throws UserError naming --http.
 */
export function checkExposure(host: string, tokens: TokenTable | null, insecure: boolean): void {
  if (tokens || insecure || isLoopback(host)) return;
  throw new UserError('--http', 'a loopback address (127.0.0.1, ::1) when no --api-tokens are given', host, "anyone who can reach it could submit and cancel jobs: add --api-tokens FILE, or --http-insecure if the network is trusted");
}

/**
 * Local mode (no tokens) checks of a request's Host and Origin headers: a web page on another
 * site must not be able to drive the API through the operator's browser (Origin), nor a name
 * that resolves to 127.0.0.1 (Host; skipped with --http-insecure, which serves the network).
 * Returns null when fine, else the reason.
 */
export function localRequestRefusal(hostHeader: string | undefined, origin: string | undefined, insecure: boolean): string | null {
  const name = (hostHeader ?? '').replace(/:\d+$/, '');
  if (!insecure && !isLoopback(name)) return `Host ${JSON.stringify(hostHeader ?? '')} is not this machine (an API without tokens answers only loopback names)`;
  if (origin !== undefined && origin !== 'null') {
    let o: URL;
    try {
      o = new URL(origin);
    } catch {
      return `Origin ${JSON.stringify(origin.slice(0, 80))} is not a URL`;
    }
    if (o.host !== hostHeader) return `Origin ${o.origin} is another site (an API without tokens answers only its own pages)`;
  } else if (origin === 'null') return 'Origin null (an API without tokens answers only its own pages)';
  return null;
}
