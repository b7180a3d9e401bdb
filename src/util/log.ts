/**
 * Structured logging. Modules take a Logger and derive a child; nothing logs through a
 * module-level singleton. Two formats for the same calls:
 * - `human` (default): `2026-11-30T05:00:00.000Z INFO  [drill:net] msg {"ctx":…}` on stderr;
 * - `json`: one JSON object per line (pino) with `level` (its name), `time` (ISO 8601),
 *   `module` (the child name), the context fields, then `msg` — for log collectors.
 * Level from DRILL_LOG (error|warn|info|debug|silent), default warn for library use (the CLI
 * raises it to info for long-running services); format from DRILL_LOG_FORMAT or the CLI's
 * --log-format. An unknown value is a UserError naming the variable, never a silent default.
 */
import { createRequire } from 'node:module';
import type { DestinationStream, Logger as PinoLogger, pino as PinoFactory } from 'pino';
import { UserError } from './errors.ts';

/** pino, loaded on first use: importing it costs ~65 ms, which `drill vrf` or `--version` need
 * not pay when nothing logs JSON. */
let pinoFactory: typeof PinoFactory | undefined;
function loadPino(): typeof PinoFactory {
  pinoFactory ??= (createRequire(import.meta.url)('pino') as { pino: typeof PinoFactory }).pino;
  return pinoFactory;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent';
export type LogFormat = 'human' | 'json';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'silent'];
export const LOG_FORMATS: readonly LogFormat[] = ['human', 'json'];
const ORDER: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };
/** JSON keys a context field may not overwrite: it is written as `ctx_<key>` instead. */
const RESERVED = new Set(['level', 'time', 'module', 'msg']);

export interface Logger {
  error(msg: string, ctx?: Record<string, unknown>): void;
  warn(msg: string, ctx?: Record<string, unknown>): void;
  info(msg: string, ctx?: Record<string, unknown>): void;
  debug(msg: string, ctx?: Record<string, unknown>): void;
  child(module: string): Logger;
}

/**
 * A log level named by `field` (DRILL_LOG, --log-level); undefined when unset or empty.
 * @throws UserError naming `field` for any other value.
 */
export function parseLogLevel(value: string | undefined, field = 'DRILL_LOG'): LogLevel | undefined {
  if (value === undefined || value === '') return undefined;
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new UserError(field, `one of ${LOG_LEVELS.join(', ')}`, value);
}

/**
 * A log format named by `field` (DRILL_LOG_FORMAT, --log-format); undefined when unset or empty.
 * @throws UserError naming `field` for any other value.
 */
export function parseLogFormat(value: string | undefined, field = 'DRILL_LOG_FORMAT'): LogFormat | undefined {
  if (value === undefined || value === '') return undefined;
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new UserError(field, `one of ${LOG_FORMATS.join(', ')}`, value);
}

/**
 * DRILL_LOG, checked. @throws UserError naming DRILL_LOG when it is set to an unknown level.
 */
export function envLogLevel(): LogLevel | undefined {
  return parseLogLevel(process.env.DRILL_LOG, 'DRILL_LOG');
}

/**
 * DRILL_LOG_FORMAT, checked (human when unset). @throws UserError naming DRILL_LOG_FORMAT.
 */
export function envLogFormat(): LogFormat {
  return parseLogFormat(process.env.DRILL_LOG_FORMAT, 'DRILL_LOG_FORMAT') ?? 'human';
}

export interface LoggerOptions {
  /** Default: DRILL_LOG, else warn. */
  level?: LogLevel;
  /** Default: DRILL_LOG_FORMAT, else human. */
  format?: LogFormat;
  /** Name of the root module (children append `:name`). Default `drill`. */
  module?: string;
  /** Where finished lines go (without the newline). Default: stderr, written synchronously. */
  sink?: (line: string) => void;
}

/**
 * @throws UserError when `level`/`format` are not given and DRILL_LOG / DRILL_LOG_FORMAT hold
 * an unknown value.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? envLogLevel() ?? 'warn';
  const format = opts.format ?? envLogFormat();
  const mod = opts.module ?? 'drill';
  if (format === 'json') return jsonLogger(rootPino(level, opts.sink), mod);
  const sink = opts.sink ?? ((line: string) => void process.stderr.write(line + '\n'));
  return humanLogger(level, mod, sink);
}

export const silentLogger: Logger = createLogger({ level: 'silent', format: 'human' });

function humanLogger(level: LogLevel, mod: string, sink: (line: string) => void): Logger {
  const emit = (l: LogLevel, msg: string, ctx?: Record<string, unknown>): void => {
    if (ORDER[l] > ORDER[level]) return;
    const extra = ctx && Object.keys(ctx).length ? ' ' + JSON.stringify(ctx, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) : '';
    sink(`${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} [${mod}] ${msg}${extra}`);
  };
  return {
    error: (m, c) => emit('error', m, c),
    warn: (m, c) => emit('warn', m, c),
    info: (m, c) => emit('info', m, c),
    debug: (m, c) => emit('debug', m, c),
    child: (m) => humanLogger(level, `${mod}:${m}`, sink),
  };
}

function rootPino(level: LogLevel, sink?: (line: string) => void): PinoLogger {
  const pino = loadPino();
  const dest: DestinationStream = sink
    ? { write: (s: string) => sink(s.endsWith('\n') ? s.slice(0, -1) : s) }
    : // Synchronous: the lines before a crash or process.exit are not lost.
      pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level,
      base: null, // no pid/hostname: the collector (docker, journald) knows where a line came from
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

function jsonLogger(root: PinoLogger, mod: string): Logger {
  const p = root.child({ module: mod });
  const fields = (ctx?: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    if (ctx) for (const [k, v] of Object.entries(ctx)) out[RESERVED.has(k) ? `ctx_${k}` : k] = typeof v === 'bigint' ? v.toString() : v;
    return out;
  };
  return {
    error: (m, c) => p.error(fields(c), m),
    warn: (m, c) => p.warn(fields(c), m),
    info: (m, c) => p.info(fields(c), m),
    debug: (m, c) => p.debug(fields(c), m),
    child: (m) => jsonLogger(root, `${mod}:${m}`),
  };
}
