/**
 * Pure parts of the HTTP API: tokens and who may call (auth.ts), Range requests (range.ts),
 * problem documents (problem.ts), and the worker's status line.
 */
import { describe, it, expect } from 'vitest';
import { parseTokens, authenticate, isLoopback, parseHttpAddress, checkExposure, localRequestRefusal, tokenHash } from '../../src/api/auth.ts';
import { parseRange } from '../../src/api/range.ts';
import { problem, problemOf, parseMessage, schemaProblem, statusOf, ApiErrorCode } from '../../src/api/problem.ts';
import { IntakeError, IntakeErrorCode } from '../../src/coordinator/intake/index.ts';
import { UserError } from '../../src/util/errors.ts';
import { formatWorkerStatus } from '../../src/cli/status-line.ts';
import { errCode } from '../helpers/errors.ts';

const T1 = 'a'.repeat(16);
const T2 = 'b0123456789abcdef0123';

describe('api tokens', () => {
  it('parses TOKEN PARTNER [operator] lines with comments', () => {
    const t = parseTokens(`# partners\n${T1} acme\n\n${T2}   12D3KooWabc operator  # the operator\n`, 'f');
    expect(t.size).toBe(2);
    expect(t.get(tokenHash(T1))).toEqual({ partner: 'acme', operator: false });
    expect(authenticate(t, `Bearer ${T2}`)).toEqual({ partner: '12D3KooWabc', operator: true });
    expect(authenticate(t, `bearer ${T1}`)?.partner).toBe('acme');
    expect(authenticate(t, 'Bearer nope-nope-nope-nope')).toBeNull();
    expect(authenticate(t, undefined)).toBeNull();
    expect(authenticate(t, `Basic ${T1}`)).toBeNull();
    // The query token counts only when no Authorization header is sent.
    expect(authenticate(t, undefined, T1)?.partner).toBe('acme');
    expect(authenticate(t, 'Bearer nope-nope-nope-nope', T1)).toBeNull();
  });

  it('refuses short tokens, bad partner names, unknown roles, duplicates and empty files, naming the line', () => {
    expect(() => parseTokens('short acme\n', 'f')).toThrow(/--api-tokens f:1: expected a token of 16\.\.512 characters/);
    expect(() => parseTokens(`${T1}\n`, 'f')).toThrow(/--api-tokens f:1: expected a partner name/);
    expect(() => parseTokens(`${T1} acme admin\n`, 'f')).toThrow(/f:1: expected nothing after the partner but an optional role/);
    expect(() => parseTokens(`${T1} acme\n${T1} other\n`, 'f')).toThrow(/f:2: expected each token once/);
    expect(() => parseTokens('# nothing\n', 'f')).toThrow(/expected at least one line/);
    expect(errCode(() => parseTokens('x y', 'f'))).toBe('USER_INPUT');
  });

  it('binds without tokens only to loopback unless told to', () => {
    expect(parseHttpAddress('127.0.0.1:9361')).toEqual({ host: '127.0.0.1', port: 9361 });
    expect(parseHttpAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHttpAddress('off')).toBeNull();
    expect(() => parseHttpAddress('9361')).toThrow(/--http: expected HOST:PORT/);
    expect(() => parseHttpAddress('0.0.0.0:70000')).toThrow(/--http/);
    for (const h of ['127.0.0.1', '127.8.9.1', '::1', 'localhost', '[::1]', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.5', '::', 'example.com', '128.0.0.1']) expect(isLoopback(h), h).toBe(false);
    expect(() => checkExposure('0.0.0.0', null, false)).toThrow(/--http: expected a loopback address .* received "0\.0\.0\.0" \(anyone who can reach it/);
    expect(() => checkExposure('0.0.0.0', null, true)).not.toThrow();
    expect(() => checkExposure('0.0.0.0', parseTokens(`${T1} a`, 'f'), false)).not.toThrow();
    expect(() => checkExposure('127.0.0.1', null, false)).not.toThrow();
  });

  it('a token-less API answers only loopback Host names and its own pages', () => {
    expect(localRequestRefusal('127.0.0.1:9361', undefined, false)).toBeNull();
    expect(localRequestRefusal('localhost:9361', 'http://localhost:9361', false)).toBeNull();
    expect(localRequestRefusal('[::1]:9361', undefined, false)).toBeNull();
    expect(localRequestRefusal('evil.example:9361', undefined, false)).toMatch(/Host "evil.example:9361" is not this machine/);
    expect(localRequestRefusal('10.0.0.5:9361', undefined, true)).toBeNull(); // --http-insecure
    expect(localRequestRefusal('127.0.0.1:9361', 'http://evil.example', false)).toMatch(/Origin http:\/\/evil.example is another site/);
    expect(localRequestRefusal('127.0.0.1:9361', 'http://127.0.0.1:8080', false)).toMatch(/another site/);
    expect(localRequestRefusal('127.0.0.1:9361', 'null', false)).toMatch(/Origin null/);
  });
});

describe('Range', () => {
  it('answers single byte ranges, suffixes, and past-the-end', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=90-1000', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-0', 0)).toEqual({ kind: 'unsatisfiable' });
    // Several ranges, other units, garbage and reversed ranges: the whole file.
    for (const h of ['bytes=0-1,5-6', 'items=0-1', 'bytes=abc', 'bytes=-', 'bytes=9-3']) expect(parseRange(h, 100), h).toEqual({ kind: 'full' });
  });
});

describe('problem documents', () => {
  it('map every intake code to its status', () => {
    const want: Record<string, number> = { PARTNER_REFUSED: 403, TOO_MANY_JOBS: 429, INTAKE_FULL: 503, UPLOAD_TOO_LARGE: 413, UPLOAD_BAD: 400, UPLOAD_UNKNOWN: 404, UNITS_REFUSED: 422, JOB_UNKNOWN: 404, NO_OUTPUT: 404 };
    for (const code of Object.values(IntakeErrorCode)) expect(statusOf(code), code).toBe(want[code]);
    for (const code of Object.values(ApiErrorCode)) expect(statusOf(code), code).toBeGreaterThanOrEqual(400);
  });

  it('name the field, what was expected and what was received', () => {
    expect(parseMessage('unitRows: expected at least 4 rows per unit (x), received 1 (64 units)')).toEqual({ field: 'unitRows', expected: 'at least 4 rows per unit (x)', received: '1' });
    const u = problemOf(new UserError('--input images', 'a .npy of float32', 'int64'));
    expect(u).toMatchObject({ status: 422, code: 'USER_INPUT', field: '--input images', expected: 'a .npy of float32', received: '"int64"' });
    expect(problemOf(new IntakeError(IntakeErrorCode.UPLOAD_TOO_LARGE, 'upload: expected at most 5 bytes, received more'))).toMatchObject({ status: 413, field: 'upload', type: 'urn:matrix-drill:problem:upload-too-large' });
    expect(problemOf(new Error('boom'))).toMatchObject({ status: 500, code: 'INTERNAL', detail: 'internal error: see the coordinator log' });
    expect(problem(ApiErrorCode.NOT_FOUND, 'no match here')).not.toHaveProperty('field');
  });

  it('turn schema violations into field / expected / received', () => {
    expect(schemaProblem('querystring', { instancePath: '/limit', keyword: 'maximum', params: { limit: 500 } }, { limit: 9999 })).toMatchObject({ status: 400, field: 'query.limit', expected: 'at most 500', received: '9999' });
    expect(schemaProblem('options', { instancePath: '', keyword: 'additionalProperties', params: { additionalProperty: 'replica' } }, { replica: 2 })).toMatchObject({ field: 'options.replica', expected: 'no such field', received: '2' });
    expect(schemaProblem('params', { instancePath: '/id', keyword: 'pattern', params: { pattern: '^x$' } }, { id: 'zz' })).toMatchObject({ field: 'params.id', expected: 'a string matching ^x$', received: '"zz"' });
    expect(schemaProblem('body', { instancePath: '', keyword: 'required', params: { missingProperty: 'model' } }, {})).toMatchObject({ field: 'body.model', expected: 'a value', received: 'nothing' });
    expect(schemaProblem('options', { instancePath: '/replicas', keyword: 'type', params: { type: 'integer' } }, { replicas: 'two' })).toMatchObject({ expected: 'an integer', received: '"two"' });
  });
});

describe('worker status line', () => {
  it('shows units, verified credit, faults, lottery weight and chain height', () => {
    expect(formatWorkerStatus({ units: 12, rows: 768, credit: 3.25e9, faults: 1, weightShare: 0.1234, height: 42, joined: 1 })).toBe('units 12 | rows 768 | verified credit 3.25 GFLOP | faults 1 | lottery weight 12.34% | chain height 42 | joined 1');
    expect(formatWorkerStatus({ units: 0, rows: 0, credit: null, faults: null, weightShare: null, height: null, joined: 0 })).toBe('units 0 | rows 0 | verified credit n/a (no --genesis) | not joined');
  });
});
