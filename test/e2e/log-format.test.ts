/**
 * `--log-format json` for log collectors, as an operator runs it (real child processes): every
 * line a command writes on stderr is one JSON object with level, time, module and msg, the
 * command's own lines included (with their figures as fields); stdout is left to results. And
 * an unknown DRILL_LOG / DRILL_LOG_FORMAT / --log-format is a clear error, exit 2.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drill } from '../helpers/grid.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/drill.js ...args` with `env`, stdout and stderr kept apart. */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const p = drill(args, env);
  let stdout = '';
  let stderr = '';
  p.child.stdout!.on('data', (d: Buffer) => void (stdout += d.toString()));
  p.child.stderr!.on('data', (d: Buffer) => void (stderr += d.toString()));
  const code = await p.exited;
  await new Promise((r) => setImmediate(r));
  return { code, stdout, stderr };
}

interface Rec {
  level: string;
  time: string;
  module: string;
  msg: string;
  [k: string]: unknown;
}

/** Every line as a log record; fails on any line that is not one. */
function records(text: string): Rec[] {
  const lines = text.split('\n').filter((l) => l !== '');
  return lines.map((l) => {
    let r: Rec;
    try {
      r = JSON.parse(l) as Rec;
    } catch {
      throw new Error(`not a JSON line: ${l}`);
    }
    expect(['debug', 'info', 'warn', 'error'], l).toContain(r.level);
    expect(new Date(r.time).toISOString(), l).toBe(r.time);
    expect(r.module, l).toMatch(/^drill(:[\w-]+)*$/);
    expect(typeof r.msg, l).toBe('string');
    return r;
  });
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-log-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('--log-format json', () => {
  it('drill run: every stderr line is a JSON record (library logs, progress, summary); nothing on stdout', async () => {
    const out = join(tmp, 'mlp');
    const r = await run(['run', '--job', 'workloads/mlp/job.json', '--workers', '2', '--out', out, '--log-format', 'json'], { DRILL_LOG: 'info', DRILL_PROGRESS_MS: '0' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    const recs = records(r.stderr);
    // the libraries' logs, through child loggers
    expect(recs.find((x) => x.module === 'drill:coordinator' && x.msg === 'job accepted')).toMatchObject({ rows: 2048 });
    expect(recs.some((x) => x.module === 'drill:net')).toBe(true);
    // the command's own lines, with their figures as fields
    const progress = recs.filter((x) => x.module === 'drill:cli:run' && x.msg.startsWith('progress'));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ rowsDone: 2048, rows: 2048, units: 8, unitsDone: 8 });
    const done = recs.find((x) => x.module === 'drill:cli:run' && x.status !== undefined);
    expect(done).toMatchObject({ status: 'done', rows: 2048, units: { total: 8, failed: 0 }, outputs: { probs: join(out, 'probs.npy') } });
    expect((done!.workers as unknown[]).length).toBe(2);
    expect(existsSync(join(out, 'probs.npy'))).toBe(true);
  });

  it('DRILL_LOG_FORMAT=json does the same for drill devnet; --json still prints its result on stdout', async () => {
    const r = await run(['devnet', '--nodes', '2', '--slots', '3', '--slot-ms', '100', '--json'], { DRILL_LOG_FORMAT: 'json', DRILL_LOG: 'info' });
    expect(r.code, r.stderr).toBe(0);
    const recs = records(r.stderr);
    expect(recs.some((x) => x.module === 'drill:devnet' && x.msg === 'devnet ready')).toBe(true);
    expect((JSON.parse(r.stdout) as { nodes: unknown[] }).nodes).toHaveLength(2);
  });

  it("a mistake is reported as one JSON error record, exit 2", async () => {
    const r = await run(['run', '--model', join(tmp, 'nope.onnx'), '--input', 'x.npy', '--out', join(tmp, 'o'), '--log-format=json']);
    expect(r.code).toBe(2);
    const recs = records(r.stderr);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ level: 'error', module: 'drill:cli:run', code: 'USER_INPUT', field: '--model', exitCode: 2 });
    expect(recs[0]!.msg).toMatch(/^--model: expected a readable \.onnx file/);
  });
});

describe('bad log settings are errors, not defaults', () => {
  it('an unknown DRILL_LOG names the variable, the expected values and the value; exit 2', async () => {
    const r = await run(['vrf', 'keygen'], { DRILL_LOG: 'verbose' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('drill vrf: DRILL_LOG: expected one of error, warn, info, debug, silent, received "verbose"\n');
  });

  it('an unknown DRILL_LOG_FORMAT or --log-format likewise', async () => {
    const env = await run(['vrf', 'keygen'], { DRILL_LOG_FORMAT: 'xml' });
    expect([env.code, env.stderr]).toEqual([2, 'drill vrf: DRILL_LOG_FORMAT: expected one of human, json, received "xml"\n']);
    const flag = await run(['devnet', '--log-format', 'yaml']);
    expect([flag.code, flag.stderr]).toEqual([2, 'drill devnet: --log-format: expected one of human, json, received "yaml"\n']);
  });
});
