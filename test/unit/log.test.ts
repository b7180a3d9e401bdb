/** The logger's two formats over the same calls: levels, child module names, context fields. */
import { describe, it, expect } from 'vitest';
import { createLogger, parseLogFormat, parseLogLevel } from '../../src/util/log.ts';
import { errCode } from '../helpers/errors.ts';

function capture(format: 'human' | 'json', level: 'warn' | 'debug' = 'debug'): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ format, level, sink: (l) => lines.push(l) }) };
}

describe('json format', () => {
  it('writes one JSON object per line: level name, ISO time, module, fields, msg', () => {
    const { lines, log } = capture('json');
    log.child('net').child('blobs').info('model fetched', { hash: 'ab12', bytes: 51345, credit: 2n ** 70n });
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(r).toEqual({ level: 'info', time: expect.any(String), module: 'drill:net:blobs', hash: 'ab12', bytes: 51345, credit: (2n ** 70n).toString(), msg: 'model fetched' });
    expect(new Date(r.time as string).toISOString()).toBe(r.time);
  });

  it('keeps its own keys when a context field has the same name', () => {
    const { lines, log } = capture('json');
    log.warn('odd', { level: 'x', msg: 'y', module: 'z', time: 1 });
    const r = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect([r.level, r.msg, r.module]).toEqual(['warn', 'odd', 'drill']);
    expect([r.ctx_level, r.ctx_msg, r.ctx_module, r.ctx_time]).toEqual(['x', 'y', 'z', 1]);
  });

  it('drops records below the level, in children too', () => {
    const { lines, log } = capture('json', 'warn');
    log.info('no');
    log.child('c').debug('no');
    log.child('c').error('yes');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string; level: string }).level)).toEqual(['error']);
  });
});

describe('human format', () => {
  it('writes time, level, [module], msg and the fields as JSON', () => {
    const { lines, log } = capture('human');
    log.child('coordinator').info('job accepted', { rows: 2048 });
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  \[drill:coordinator\] job accepted \{"rows":2048\}$/);
  });
});

describe('level and format names', () => {
  it('accept the documented values and nothing else, naming the variable', () => {
    expect(parseLogLevel('debug')).toBe('debug');
    expect(parseLogLevel(undefined)).toBeUndefined();
    expect(parseLogFormat('json', '--log-format')).toBe('json');
    expect(errCode(() => parseLogLevel('verbose'))).toBe('USER_INPUT');
    expect(() => parseLogLevel('verbose')).toThrow('DRILL_LOG: expected one of error, warn, info, debug, silent, received "verbose"');
    expect(() => parseLogFormat('xml', '--log-format')).toThrow('--log-format: expected one of human, json, received "xml"');
  });
});
