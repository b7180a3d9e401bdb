/**
 * Errors as RFC 9457 problem documents (`application/problem+json`): every refusal names the
 * field, what was expected and what was received, as `drill run` prints them. The intake's
 * codes map to HTTP statuses here and nowhere else (one table); a person's mistake in a job
 * (UserError from the same checks `drill run` makes) is 422; schema violations are 400.
 */
import { isDrillError } from '../util/errors.ts';
import { describe } from '../util/errors.ts';
import { IntakeErrorCode } from '../coordinator/intake/errors.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The project's error code (match on it, not on the text). */
  code: string;
  field?: string;
  expected?: string;
  received?: string;
  instance?: string;
}

/** Codes of the API itself (the intake's are in coordinator/intake/errors.ts). */
export const ApiErrorCode = {
  /** No valid bearer token, while tokens are configured. 401. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** A request the local (token-less) API refuses: foreign Host or Origin. 403. */
  FORBIDDEN: 'FORBIDDEN',
  /** A parameter, query or body that does not match the route's schema. 400. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** No such route, block or job. 404. */
  NOT_FOUND: 'NOT_FOUND',
  /** The requested byte range is outside the file. 416. */
  RANGE_NOT_SATISFIABLE: 'RANGE_NOT_SATISFIABLE',
  /** Too many event-stream clients at once. 503. */
  TOO_MANY_STREAMS: 'TOO_MANY_STREAMS',
  /** A job refused by the same checks `drill run` makes (model, inputs, options). 422. */
  USER_INPUT: 'USER_INPUT',
  /** A bug or an environment failure. 500. */
  INTERNAL: 'INTERNAL',
} as const;

/** HTTP status and title per code: the only place intake codes meet HTTP. */
const STATUS: Record<string, [number, string]> = {
  [IntakeErrorCode.PARTNER_REFUSED]: [403, 'Partner not allowed'],
  [IntakeErrorCode.TOO_MANY_JOBS]: [429, 'Too many jobs for this partner'],
  [IntakeErrorCode.INTAKE_FULL]: [503, 'Coordinator full'],
  [IntakeErrorCode.UPLOAD_TOO_LARGE]: [413, 'Upload too large'],
  [IntakeErrorCode.UPLOAD_BAD]: [400, 'Malformed upload'],
  [IntakeErrorCode.UPLOAD_UNKNOWN]: [404, 'No such upload'],
  [IntakeErrorCode.UNITS_REFUSED]: [422, 'Unit size refused'],
  [IntakeErrorCode.JOB_UNKNOWN]: [404, 'No such job'],
  [IntakeErrorCode.NO_OUTPUT]: [404, 'No such output'],
  [ApiErrorCode.UNAUTHORIZED]: [401, 'Unauthorized'],
  [ApiErrorCode.FORBIDDEN]: [403, 'Forbidden'],
  [ApiErrorCode.BAD_REQUEST]: [400, 'Bad request'],
  [ApiErrorCode.NOT_FOUND]: [404, 'Not found'],
  [ApiErrorCode.RANGE_NOT_SATISFIABLE]: [416, 'Range not satisfiable'],
  [ApiErrorCode.TOO_MANY_STREAMS]: [503, 'Too many event streams'],
  [ApiErrorCode.USER_INPUT]: [422, 'Job refused'],
  [ApiErrorCode.INTERNAL]: [500, 'Internal error'],
};

export function statusOf(code: string): number {
  return STATUS[code]?.[0] ?? 500;
}

/** Build a problem; `field`/`expected`/`received` are taken from the message when it has the project's "FIELD: expected X, received Y" shape. */
export function problem(code: string, detail: string, extra: Partial<Problem> = {}): Problem {
  const [status, title] = STATUS[code] ?? [500, 'Internal error'];
  const parsed = parseMessage(detail);
  return {
    type: `urn:matrix-drill:problem:${code.toLowerCase().replace(/_/g, '-')}`,
    title,
    status,
    detail,
    code,
    ...parsed,
    ...extra,
  };
}

/** "FIELD: expected X, received Y (hint)" → its parts (the shape of UserError and intake messages). */
export function parseMessage(m: string): Pick<Problem, 'field' | 'expected' | 'received'> {
  const r = m.match(/^([^:]{1,200}): expected (.+?), received (.+?)(?: \((.*)\))?$/s);
  if (!r) return {};
  return { field: r[1]!, expected: r[2]!, received: r[3]! };
}

/** One ajv error as fastify reports a schema violation. */
export interface SchemaViolation {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/**
 * A schema violation of part `where` (params, querystring, body, or a multipart field) as a
 * problem naming the field, what the schema expects and what was received (`data`: the part as
 * the client sent it).
 */
export function schemaProblem(where: string, v: SchemaViolation, data: unknown): Problem {
  const path = v.instancePath.split('/').filter(Boolean).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let field = [where === 'querystring' ? 'query' : where, ...path].join('.');
  let received: unknown = path.reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), data);
  const p = v.params;
  let expected: string;
  switch (v.keyword) {
    case 'required':
      field = `${field}.${String(p.missingProperty)}`;
      expected = 'a value';
      received = undefined;
      break;
    case 'additionalProperties':
      field = `${field}.${String(p.additionalProperty)}`;
      expected = 'no such field';
      received = (received as Record<string, unknown> | undefined)?.[String(p.additionalProperty)];
      break;
    case 'type':
      expected = `${/^[aeiou]/.test(String(p.type)) ? 'an' : 'a'} ${String(p.type)}`;
      break;
    case 'minimum':
    case 'exclusiveMinimum':
      expected = `${v.keyword === 'minimum' ? 'at least' : 'more than'} ${String(p.limit)}`;
      break;
    case 'maximum':
    case 'exclusiveMaximum':
      expected = `${v.keyword === 'maximum' ? 'at most' : 'less than'} ${String(p.limit)}`;
      break;
    case 'maxLength':
      expected = `at most ${String(p.limit)} characters`;
      break;
    case 'minLength':
      expected = `at least ${String(p.limit)} characters`;
      break;
    case 'pattern':
      expected = `a string matching ${String(p.pattern)}`;
      break;
    case 'enum':
      expected = `one of ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`;
      break;
    default:
      expected = `a value that ${v.message ?? `satisfies ${v.keyword}`}`;
  }
  const got = describe(received);
  return problem(ApiErrorCode.BAD_REQUEST, `${field}: expected ${expected}, received ${got}`, { field, expected, received: got });
}

/** Any thrown error as a problem (a DrillError keeps its code; anything else is INTERNAL). */
export function problemOf(e: unknown): Problem {
  if (isDrillError(e, 'USER_INPUT')) {
    const m = e.meta as { field?: string; expected?: string; received?: string };
    return problem(ApiErrorCode.USER_INPUT, e.message, { ...(m.field ? { field: m.field } : {}), ...(m.expected ? { expected: m.expected } : {}), ...(m.received ? { received: m.received } : {}) });
  }
  if (isDrillError(e) && STATUS[e.code]) return problem(e.code, e.message);
  return problem(ApiErrorCode.INTERNAL, 'internal error: see the coordinator log');
}
