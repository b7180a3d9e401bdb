/**
 * `drill sim` end to end through the real CLI entry point: JSON on stdout, CSV and SVG files
 * with --out, sweeps with their charts, scenario files in YAML, and user errors (exit 2).
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');

function drill(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin/drill.js'), 'sim', ...args], { cwd: ROOT, maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('drill sim', () => {
  it('--json prints the summary; --out writes CSVs and the block-share chart; the same seed repeats exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drill-sim-'));
    const args = ['--trainers', '120', '--slots', '800', '--cheaters', '0.1', '--cheat-rate', '0.5', '--sample-p', '0.3', '--seed', '77', '--json'];
    const a = await drill([...args, '--out', dir]);
    expect(a.code).toBe(0);
    const s = JSON.parse(a.stdout);
    expect(s.scenario.pod.mode).toBe('spot-check');
    expect(s.slots).toBe(800);
    expect(s.pod.detectionRate).toBeGreaterThan(0);
    const slots = readFileSync(join(dir, 'slots.csv'), 'utf8').trim().split('\n');
    expect(slots[0]).toBe('slot,epoch,leaders,produced,producer,units,total_weight');
    expect(slots).toHaveLength(801);
    expect(readFileSync(join(dir, 'trainers.csv'), 'utf8').trim().split('\n')).toHaveLength(121);
    expect(readFileSync(join(dir, 'block-share.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>$/);
    const b = await drill(args);
    const strip = (x: string): string => x.replace(/"elapsedMs":[0-9.e+-]+/, '');
    expect(strip(b.stdout)).toBe(strip(a.stdout));
  }, 60_000);

  it('a YAML scenario and sweeps write sweep.csv and the detection/overhead and Sybil charts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drill-sim-'));
    const file = join(dir, 's.yaml');
    writeFileSync(file, 'trainers: 80\nslots: 400\nbehaviours:\n  - { kind: cheater, fraction: 0.2, cheatRate: 0.5 }\n  - { kind: sybil, count: 1, identities: 4, hashrateShare: 0.1 }\n');
    const r = await drill(['--scenario', file, '--sweep', 'sample-p=0.1,0.5', '--sweep', 'replicas=2', '--sweep', 'identities=1,8', '--out', dir, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.sweep.map((x: { param: string; value: number }) => `${x.param}=${x.value}`)).toEqual(['sample-p=0.1', 'sample-p=0.5', 'replicas=2', 'identities=1', 'identities=8']);
    expect(readFileSync(join(dir, 'sweep.csv'), 'utf8').trim().split('\n')).toHaveLength(6);
    for (const f of ['detection-overhead.svg', 'sybil.svg']) expect(existsSync(join(dir, f))).toBe(true);
  }, 60_000);

  it('--colluders, --no-quarantine and --cross quarantine=0,1: catch rate in the JSON, the defences chart', async () => {
    const base = ['--trainers', '60', '--slots', '300', '--replicas', '2', '--cheaters', '0.2', '--colluders', '1', '--job-units', '200', '--seed', '4', '--json'];
    const on = JSON.parse((await drill(base)).stdout);
    const off = JSON.parse((await drill([...base, '--no-quarantine'])).stdout);
    expect(on.scenario.behaviours).toEqual([{ kind: 'colluder', fraction: 0.2, groups: 1, cheatRate: 1 }]);
    expect([on.pod.quarantine, off.pod.quarantine]).toEqual([true, false]);
    expect(typeof on.pod.catchRate).toBe('number');
    expect(on.pod.catchRateSamples).toBeGreaterThan(0);
    expect(on.pod.wrongAccepted).toBeLessThan(off.pod.wrongAccepted);
    const dir = mkdtempSync(join(tmpdir(), 'drill-sim-'));
    const r = await drill([...base.slice(0, -1), '--sweep', 'replicas=2,3', '--sweep', 'sample-p=0.5', '--cross', 'quarantine=0,1', '--out', dir, '--json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout).sweep as Array<{ cross: string; crossValue: number; param: string; value: number; quarantine: boolean }>;
    expect(rows.map((x) => `${x.crossValue}:${x.param}=${x.value}:${x.quarantine}`)).toEqual(['0:replicas=2:false', '0:replicas=3:false', '0:sample-p=0.5:false', '1:replicas=2:true', '1:replicas=3:true', '1:sample-p=0.5:true']);
    for (const f of ['defences.svg', 'detection-overhead.svg']) expect(readFileSync(join(dir, f), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>$/);
    expect(readFileSync(join(dir, 'sweep.csv'), 'utf8').split('\n')[0]).toMatch(/^cross,crossValue,param,value,mode,c,quarantine,catchRate,/);
    const bad = await drill(['--quarantine', 'maybe']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--quarantine: expected on or off/);
    const bad2 = await drill(['--cross', 'quarantine=0,1']);
    expect(bad2.code).toBe(2);
    expect(bad2.stderr).toMatch(/--cross/);
  }, 60_000);

  it('--lottery ecvrf runs real proofs through the CLI', async () => {
    const r = await drill(['--trainers', '4', '--slots', '16', '--c', '0.9', '--lottery', 'ecvrf', '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.scenario.lottery.mode).toBe('ecvrf');
    expect(s.slots).toBe(16);
  }, 60_000);

  it('user mistakes exit 2 and name the flag or field', async () => {
    const bad = await drill(['--replicas', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--replicas: expected an integer from 1/);
    const dir = mkdtempSync(join(tmpdir(), 'drill-sim-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ pod: { policy: 'roughly' } }));
    const bad2 = await drill(['--scenario', file]);
    expect(bad2.code).toBe(2);
    expect(bad2.stderr).toMatch(/scenario\.pod\.policy/);
    const bad3 = await drill(['--scenario', join(dir, 'missing.yaml')]);
    expect(bad3.code).toBe(2);
  }, 60_000);
});
