/**
 * A tiny structured logger. Modules take a Logger and derive a child; nothing logs through a
 * module-level singleton. Level from DRILL_LOG (error|warn|info|debug), default warn for
 * library use; the CLI raises it to info for long-running services.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent';
const ORDER: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

export interface Logger {
  error(msg: string, ctx?: Record<string, unknown>): void;
  warn(msg: string, ctx?: Record<string, unknown>): void;
  info(msg: string, ctx?: Record<string, unknown>): void;
  debug(msg: string, ctx?: Record<string, unknown>): void;
  child(module: string): Logger;
}

export function createLogger(opts: { level?: LogLevel; module?: string; sink?: (line: string) => void } = {}): Logger {
  const level = opts.level ?? ((process.env.DRILL_LOG as LogLevel | undefined) ?? 'warn');
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const mod = opts.module ?? 'drill';
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
    child: (m) => createLogger({ level, module: `${mod}:${m}`, sink }),
  };
}

export const silentLogger: Logger = createLogger({ level: 'silent' });
