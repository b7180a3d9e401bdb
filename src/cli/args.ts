/**
 * A small, strict flag parser shared by every `drill` command. Unknown flags and missing
 * values are UserErrors that name the flag; repeatable flags collect into arrays.
 */
import { UserError } from '../util/errors.ts';

export interface FlagSpec {
  /** 'string' takes a value, 'boolean' takes none. */
  type: 'string' | 'boolean';
  /** May be given more than once (values collected in order). */
  multiple?: boolean;
  /** One-line help, shown by `drill <cmd> --help` with the default. */
  help: string;
  default?: string;
  /** Left out of --help (test-only flags). */
  hidden?: boolean;
}

export interface ParsedArgs {
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseArgs(argv: string[], spec: Record<string, FlagSpec>): ParsedArgs {
  const flags: ParsedArgs['flags'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const s = spec[name];
    if (!s) throw new UserError(`--${name}`, `one of ${Object.keys(spec).map((k) => '--' + k).join(', ')}`, a, 'unknown flag');
    if (s.type === 'boolean') {
      if (value !== undefined) throw new UserError(`--${name}`, 'no value (it is a switch)', value);
      flags[name] = true;
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) {
        throw new UserError(`--${name}`, 'a value', value);
      }
    }
    if (s.multiple) {
      const prev = flags[name];
      flags[name] = Array.isArray(prev) ? [...prev, value] : [value];
    } else {
      if (flags[name] !== undefined) throw new UserError(`--${name}`, 'to be given once', 'it twice');
      flags[name] = value;
    }
  }
  for (const [k, s] of Object.entries(spec)) if (flags[k] === undefined && s.default !== undefined) flags[k] = s.default;
  return { flags, positionals };
}

export function str(p: ParsedArgs, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function list(p: ParsedArgs, name: string): string[] {
  const v = p.flags[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function bool(p: ParsedArgs, name: string): boolean {
  return p.flags[name] === true;
}

/** An integer flag in [min, max]; UserError names the flag otherwise. */
export function int(p: ParsedArgs, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UserError(`--${name}`, `an integer from ${min} to ${max}`, v);
  }
  return n;
}

/** A number flag in [min, max]. */
export function num(p: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UserError(`--${name}`, `a number from ${min} to ${max}`, v);
  }
  return n;
}

export function helpText(usage: string, spec: Record<string, FlagSpec>): string {
  const rows = Object.entries(spec).filter(([, s]) => !s.hidden).map(([k, s]) => {
    const left = `  --${k}${s.type === 'string' ? ' VALUE' : ''}`;
    return `${left.padEnd(28)} ${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''}`;
  });
  return `${usage}\n\n${rows.join('\n')}\n`;
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, KB: 1024, KIB: 1024, M: 1024 ** 2, MB: 1024 ** 2, MIB: 1024 ** 2, G: 1024 ** 3, GB: 1024 ** 3, GIB: 1024 ** 3, T: 1024 ** 4, TB: 1024 ** 4, TIB: 1024 ** 4 };

/** Parse a byte size like `512`, `64K`, `256MiB`, `1.5G` (binary units). @throws UserError naming `field`. */
export function parseSize(v: string, field: string, min = 0): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const mult = m ? SIZE_UNITS[m[2]!.toUpperCase()] : undefined;
  const n = m && mult !== undefined ? Math.round(Number(m[1]) * mult) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UserError(field, `a size like 512M or 1G (bytes, K, M, G, T; at least ${min} bytes)`, v);
  return n;
}

/** A size flag (see parseSize). */
export function size(p: ParsedArgs, name: string, min = 0): number | undefined {
  const v = str(p, name);
  return v === undefined ? undefined : parseSize(v, `--${name}`, min);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse a duration like `500ms`, `90s`, `10m`, `24h`, `7d`. @throws UserError naming `field`. */
export function parseDuration(v: string, field: string, min = 1): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(v);
  const n = m ? Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > 366 * DURATION_UNITS.d!) throw new UserError(field, `a duration like 90s, 10m, 24h or 7d (${min} ms to 366 days)`, v);
  return n;
}

/** A duration flag (see parseDuration). */
export function duration(p: ParsedArgs, name: string, min = 1): number | undefined {
  const v = str(p, name);
  return v === undefined ? undefined : parseDuration(v, `--${name}`, min);
}
