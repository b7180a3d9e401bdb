/**
 * One base error for the whole project: a string `code` plus typed metadata, serialisable
 * across worker threads and process boundaries. Match on `code`, never on the message.
 */
export class DrillError<M extends object = Record<string, unknown>> extends Error {
  readonly code: string;
  readonly meta: M;
  constructor(code: string, message: string, meta?: M, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DrillError';
    this.code = code;
    this.meta = (meta ?? {}) as M;
  }
  toJSON(): { name: string; code: string; message: string; meta: M } {
    return { name: this.name, code: this.code, message: this.message, meta: this.meta };
  }
}

/**
 * A mistake in what a person gave us (CLI flag, job manifest, input file). The CLI prints
 * its message without a stack trace and exits non-zero. The message always says which
 * field, what was expected and what was received.
 */
export class UserError extends DrillError<{ field: string; expected?: string; received?: string }> {
  constructor(field: string, expected: string, received: unknown, hint?: string) {
    const got = describe(received);
    super(
      'USER_INPUT',
      `${field}: expected ${expected}, received ${got}${hint ? ` (${hint})` : ''}`,
      { field, expected, received: got },
    );
    this.name = 'UserError';
  }
}

/** A short, safe description of a received value for error messages. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length > 80 ? JSON.stringify(v.slice(0, 77) + '...') : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v;
}

export function isDrillError(e: unknown, code?: string): e is DrillError {
  return e instanceof Error && typeof (e as DrillError).code === 'string' && (code === undefined || (e as DrillError).code === code);
}
