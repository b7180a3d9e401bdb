/**
 * Unit tests of the pure parts of src/net/topics.ts: the versioned JSON codec and the single
 * error → gossip verdict mapping.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { jsonCodec, verdictFor, registerVerdicts, checkTopicSpec } from '../../src/net/topics.ts';
import { NetError, NetErrorCode } from '../../src/net/errors.ts';
import { DrillError, UserError } from '../../src/util/errors.ts';

interface Unit {
  id: string;
  flops: bigint;
  rows: number[];
  meta?: { note: string | null };
}

function checkUnit(raw: unknown): Unit {
  const r = raw as Record<string, unknown>;
  if (typeof r.id !== 'string') throw new UserError('id', 'a string', r.id);
  if (typeof r.flops !== 'bigint') throw new UserError('flops', 'a bigint', r.flops);
  if (!Array.isArray(r.rows) || !r.rows.every((x) => Number.isInteger(x))) throw new UserError('rows', 'an array of integers', r.rows);
  return r as unknown as Unit;
}

const codec = jsonCodec<Unit>({ version: 3, check: checkUnit, maxBytes: 4096 });
const enc = new TextEncoder();

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as DrillError).code;
  }
  return undefined;
}

describe('jsonCodec', () => {
  it('round-trips bodies with bigints of any size and sign', () => {
    fc.assert(
      fc.property(
        fc.record({
          id: fc.string({ maxLength: 40 }),
          flops: fc.bigInt({ min: -(1n << 255n), max: 1n << 255n }),
          rows: fc.array(fc.integer(), { maxLength: 20 }),
        }),
        (u) => {
          expect(codec.decode(codec.encode(u))).toEqual(u);
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });

  it('writes the version as field v of the envelope', () => {
    const text = new TextDecoder().decode(codec.encode({ id: 'a', flops: 5n, rows: [] }));
    expect(JSON.parse(text)).toEqual({ v: 3, id: 'a', flops: { $bigint: '5' }, rows: [] });
  });

  it('rejects another version with CODEC_VERSION', () => {
    const other = jsonCodec<Unit>({ version: 2, check: checkUnit });
    const bytes = other.encode({ id: 'a', flops: 1n, rows: [1] });
    expect(codeOf(() => codec.decode(bytes))).toBe(NetErrorCode.CODEC_VERSION);
    expect(codeOf(() => codec.decode(enc.encode('{"id":"a"}')))).toBe(NetErrorCode.CODEC_VERSION);
  });

  it('rejects non-UTF-8, non-JSON and non-object envelopes with CODEC_MALFORMED', () => {
    expect(codeOf(() => codec.decode(new Uint8Array([0xff, 0xfe, 0x7b])))).toBe(NetErrorCode.CODEC_MALFORMED);
    expect(codeOf(() => codec.decode(enc.encode('{"v":3,')))).toBe(NetErrorCode.CODEC_MALFORMED);
    expect(codeOf(() => codec.decode(enc.encode('[3]')))).toBe(NetErrorCode.CODEC_MALFORMED);
    expect(codeOf(() => codec.decode(enc.encode('null')))).toBe(NetErrorCode.CODEC_MALFORMED);
    expect(codeOf(() => codec.decode(enc.encode('"x"')))).toBe(NetErrorCode.CODEC_MALFORMED);
  });

  it('rejects a malformed or huge $bigint tag with CODEC_MALFORMED', () => {
    expect(codeOf(() => codec.decode(enc.encode('{"v":3,"id":"a","rows":[],"flops":{"$bigint":"12x"}}')))).toBe(NetErrorCode.CODEC_MALFORMED);
    expect(codeOf(() => codec.decode(enc.encode('{"v":3,"id":"a","rows":[],"flops":{"$bigint":"01"}}')))).toBe(NetErrorCode.CODEC_MALFORMED);
    expect(codeOf(() => codec.decode(enc.encode(`{"v":3,"id":"a","rows":[],"flops":{"$bigint":"${'9'.repeat(101)}"}}`)))).toBe(NetErrorCode.CODEC_MALFORMED);
  });

  it('turns a failed schema check into CODEC_SCHEMA keeping the field in the message', () => {
    let err: unknown;
    try {
      codec.decode(enc.encode('{"v":3,"id":7,"flops":{"$bigint":"1"},"rows":[]}'));
    } catch (e) {
      err = e;
    }
    expect((err as DrillError).code).toBe(NetErrorCode.CODEC_SCHEMA);
    expect((err as Error).message).toMatch(/id: expected a string, received 7/);
  });

  it('enforces maxBytes on decode before parsing, and on encode', () => {
    const big = enc.encode(`{"v":3,"id":"${'x'.repeat(5000)}"}`);
    expect(codeOf(() => codec.decode(big))).toBe(NetErrorCode.CODEC_TOO_LARGE);
    expect(codeOf(() => codec.encode({ id: 'x'.repeat(5000), flops: 1n, rows: [] }))).toBe(NetErrorCode.CODEC_TOO_LARGE);
  });

  it('refuses to encode a body with a v field, a non-object or raw bytes', () => {
    const loose = jsonCodec<Record<string, unknown>>({ version: 1, check: (r) => r as Record<string, unknown> });
    expect(codeOf(() => loose.encode({ v: 2 }))).toBe(NetErrorCode.CODEC_ENCODE);
    expect(codeOf(() => loose.encode([] as unknown as Record<string, unknown>))).toBe(NetErrorCode.CODEC_ENCODE);
    expect(codeOf(() => loose.encode({ b: new Uint8Array(2) }))).toBe(NetErrorCode.CODEC_ENCODE);
  });

  it('rejects a bad version option', () => {
    expect(codeOf(() => jsonCodec({ version: -1, check: (r) => r }))).toBe(NetErrorCode.NET_BAD_ARGUMENT);
    expect(codeOf(() => jsonCodec({ version: 1.5, check: (r) => r }))).toBe(NetErrorCode.NET_BAD_ARGUMENT);
  });

  it('never throws anything but a CODEC_* DrillError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          codec.decode(bytes);
        } catch (e) {
          expect((e as DrillError).code).toMatch(/^CODEC_/);
        }
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe('verdictFor', () => {
  it('rejects codec failures', () => {
    for (const code of [NetErrorCode.CODEC_MALFORMED, NetErrorCode.CODEC_SCHEMA, NetErrorCode.CODEC_VERSION, NetErrorCode.CODEC_TOO_LARGE, 'CODEC_FUTURE_THING']) {
      expect(verdictFor(new DrillError(code, 'x'))).toBe('reject');
    }
    expect(verdictFor(new UserError('f', 'y', 'z'))).toBe('reject');
  });

  it('ignores errors it cannot attribute to the sender, unless told to fall back to reject', () => {
    expect(verdictFor(new TypeError('bug'))).toBe('ignore');
    expect(verdictFor('a string')).toBe('ignore');
    expect(verdictFor(new DrillError('SOMETHING_UNREGISTERED', 'x'))).toBe('ignore');
    expect(verdictFor(new DrillError(NetErrorCode.NET_STOPPED, 'x'), { fallback: 'reject' })).toBe('ignore');
    expect(verdictFor(new TypeError('bug'), { fallback: 'reject' })).toBe('reject');
  });

  it('uses registered domain codes', () => {
    expect(verdictFor(new DrillError('NETTEST_BLOCK_FUTURE', 'x'), { fallback: 'reject' })).toBe('reject');
    registerVerdicts({ NETTEST_BLOCK_FUTURE: 'ignore', NETTEST_BLOCK_BAD_SIG: 'reject' });
    expect(verdictFor(new DrillError('NETTEST_BLOCK_FUTURE', 'x'), { fallback: 'reject' })).toBe('ignore');
    expect(verdictFor(new DrillError('NETTEST_BLOCK_BAD_SIG', 'x'))).toBe('reject');
    // Idempotent for the same mapping, refuses a conflicting one.
    registerVerdicts({ NETTEST_BLOCK_FUTURE: 'ignore' });
    expect(codeOf(() => registerVerdicts({ NETTEST_BLOCK_FUTURE: 'reject' }))).toBe(NetErrorCode.NET_BAD_ARGUMENT);
    expect(codeOf(() => registerVerdicts({ CODEC_MALFORMED: 'ignore' }))).toBe(NetErrorCode.NET_BAD_ARGUMENT);
    expect(codeOf(() => registerVerdicts({ NETTEST_X: 'drop' as 'ignore' }))).toBe(NetErrorCode.NET_BAD_ARGUMENT);
  });

  it('prefers an explicit table (pure use)', () => {
    const table = { NETTEST_TABLE_ONLY: 'accept', CODEC_MALFORMED: 'ignore' } as const;
    expect(verdictFor(new DrillError('NETTEST_TABLE_ONLY', 'x'), { table })).toBe('accept');
    expect(verdictFor(new DrillError('CODEC_MALFORMED', 'x'), { table })).toBe('ignore');
    expect(verdictFor(new NetError(NetErrorCode.CODEC_MALFORMED, 'x'))).toBe('reject');
  });
});

describe('checkTopicSpec', () => {
  const ok = { name: 'matrix-drill/t/1', maxBytes: 100, ...codec };
  it('accepts a sane spec and names the bad field otherwise', () => {
    expect(() => checkTopicSpec(ok as never, 1000)).not.toThrow();
    expect(() => checkTopicSpec({ ...ok, name: '' } as never, 1000)).toThrow(/topic.name/);
    expect(() => checkTopicSpec({ ...ok, maxBytes: 5000 } as never, 1000)).toThrow(/maxBytes: expected an integer in 1..1000, received 5000/);
    expect(() => checkTopicSpec({ ...ok, maxBytes: 0 } as never, 1000)).toThrow(/maxBytes/);
  });
});
