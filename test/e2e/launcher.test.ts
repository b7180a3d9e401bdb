/**
 * `bin/drill.js` started by a Node older than package.json's engines (a `drill` symlink on PATH,
 * `npm install -g .`) runs itself again under the pinned Node from node_modules, passing
 * arguments, stdout/stderr, the exit code and signals through. Run with a real older Node found
 * on PATH (the system Node 20 here).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ROOT, BIN } from '../helpers/grid.ts';

/** The first `node` on PATH (or in /usr/bin, /usr/local/bin) older than 22.18, with its version. */
function findOldNode(): { path: string; version: string } | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin'];
  for (const d of dirs) {
    const path = join(d, 'node');
    if (!d || !existsSync(path)) continue;
    try {
      const version = execFileSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
      const [maj, min] = version.split('.').map(Number) as [number, number];
      if (maj >= 18 && (maj < 22 || (maj === 22 && min < 18))) return { path, version };
    } catch {
      // not runnable: try the next one
    }
  }
  return null;
}

const OLD = findOldNode();
const PINNED = (JSON.parse(readFileSync(join(ROOT, 'node_modules/node/package.json'), 'utf8')) as { version: string }).version;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `NODE bin/drill.js ...args` (NODE: the older one by default), resolving when it exits. */
function launch(args: string[], node = OLD!.path): { pid: number; result: Promise<Result>; waitFor(re: RegExp): Promise<void> } {
  const child = spawn(node, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const check = (): void => {
    for (const w of [...waiters]) if (w.re.test(stdout)) waiters.splice(waiters.indexOf(w), 1) && w.resolve();
  };
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    check();
  });
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  const result = new Promise<Result>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return {
    pid: child.pid!,
    result,
    waitFor: (re) => (re.test(stdout) ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, resolve }))),
  };
}

/** Pids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-launcher-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!OLD)(`bin/drill.js under an older Node (${OLD ? `v${OLD.version} at ${OLD.path}` : 'none on PATH: skipped'})`, () => {
  it('runs drill under the pinned Node: --version reports it and exits 0', async () => {
    const r = await launch(['--version']).result;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`drill 0.1.0 (node v${PINNED})\n`);
  });

  it("passes drill's exit codes and stdout through: 0 valid, 1 not valid, 2 bad arguments", async () => {
    const key = JSON.parse((await launch(['vrf', 'keygen']).result).stdout) as { sk: string; pk: string };
    const prove = await launch(['vrf', 'prove', '--suite', 'tai', '--sk', key.sk, '--alpha', '00']).result;
    expect(prove.code).toBe(0);
    const { pi } = JSON.parse(prove.stdout) as { pi: string };
    const valid = await launch(['vrf', 'verify', '--suite', 'tai', '--pk', key.pk, '--alpha', '00', '--pi', pi]).result;
    expect([valid.code, JSON.parse(valid.stdout).valid]).toEqual([0, true]);
    const wrongAlpha = await launch(['vrf', 'verify', '--suite', 'tai', '--pk', key.pk, '--alpha', '01', '--pi', pi]).result;
    expect([wrongAlpha.code, JSON.parse(wrongAlpha.stdout).valid]).toEqual([1, false]);
    const bad = await launch(['vrf', 'verify', '--suite', 'tai', '--pk', 'zz']).result;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^drill vrf: --pk: expected .*received "zz"/);
  });

  it('forwards SIGTERM: a coordinator stops cleanly and the launcher exits 0', async () => {
    const p = launch(['coordinator', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'coord')]);
    await p.waitFor(/listening: /);
    process.kill(p.pid, 'SIGTERM');
    const r = await p.result;
    expect(r.stdout).toMatch(/SIGTERM: stopping/);
    expect([r.code, r.signal]).toEqual([0, null]);
  });

  it('dies of the signal that killed drill', async () => {
    const p = launch(['coordinator', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'coord2')]);
    await p.waitFor(/listening: /);
    const kids = childrenOf(p.pid);
    expect(kids).toHaveLength(1); // the pinned Node running drill
    process.kill(kids[0]!, 'SIGKILL');
    const r = await p.result;
    expect([r.code, r.signal]).toEqual([null, 'SIGKILL']);
  });
});

describe('stop signals', () => {
  it('the same SIGINT delivered twice (terminal + launcher) still stops a coordinator cleanly', async () => {
    const p = launch(['coordinator', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'coord3')], process.execPath);
    await p.waitFor(/listening: /);
    process.kill(p.pid, 'SIGINT');
    // The second copy arrives once the first was handled (two pending SIGINTs would merge into one).
    await p.waitFor(/SIGINT: stopping/);
    process.kill(p.pid, 'SIGINT');
    const r = await p.result;
    expect(r.stdout).toMatch(/SIGINT: stopping/);
    expect([r.code, r.signal]).toEqual([0, null]);
  });
});
