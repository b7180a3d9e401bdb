/**
 * `drill vrf` as a user runs it: a real child process (`node bin/drill.js vrf ...`), checked
 * against the RFC 9381 vectors — stdout JSON and exit codes 0 (valid), 1 (not valid) and
 * 2 (malformed arguments).
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const vectors = (JSON.parse(readFileSync(new URL('../vectors/ecvrf-rfc9381.json', import.meta.url), 'utf8')) as {
  vectors: Array<{ suite_string: string; example: number; sk: string; pk: string; alpha: string; pi: string; beta: string }>;
}).vectors;
const suiteOf = (v: { suite_string: string }): string => (v.suite_string === '03' ? 'tai' : 'ell2');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function drill(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/drill.js', 'vrf', ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('drill vrf (child process)', () => {
  it('proves and verifies every RFC 9381 vector', async () => {
    for (const v of vectors) {
      const suite = suiteOf(v);
      const prove = await drill('prove', '--suite', suite, '--sk', v.sk, '--alpha', v.alpha);
      expect(prove.code, prove.stderr).toBe(0);
      expect(JSON.parse(prove.stdout)).toEqual({ pk: v.pk, pi: v.pi, beta: v.beta });
      const verify = await drill('verify', '--suite', suite, '--pk', v.pk, '--alpha', v.alpha, '--pi', v.pi);
      expect(verify.code, verify.stderr).toBe(0);
      expect(JSON.parse(verify.stdout)).toEqual({ valid: true, beta: v.beta });
    }
  });

  it('exits 1 with {"valid":false} for a tampered proof, a wrong suite or a short pi', async () => {
    const v = vectors[0]!;
    const tampered = v.pi.slice(0, 100) + (v.pi[100] === '0' ? '1' : '0') + v.pi.slice(101);
    const runs = await Promise.all(
      [
        ['--suite', 'tai', '--pk', v.pk, '--alpha', v.alpha, '--pi', tampered],
        ['--suite', 'ell2', '--pk', v.pk, '--alpha', v.alpha, '--pi', v.pi],
        ['--suite', 'tai', '--pk', v.pk, '--alpha', v.alpha, '--pi', v.pi.slice(0, 158)],
      ].map((args) => drill('verify', ...args)),
    );
    for (const r of runs) {
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toEqual({ valid: false, beta: null });
    }
  });

  it('exits 2 naming the flag for malformed arguments', async () => {
    const v = vectors[0]!;
    const cases: Array<[string[], string]> = [
      [['verify', '--suite', 'tai', '--pk', 'xyz', '--alpha', '', '--pi', v.pi], '--pk'],
      [['verify', '--suite', 'tai', '--pk', v.pk, '--pi', v.pi], '--alpha'],
      [['prove', '--suite', 'ecvrf', '--sk', v.sk, '--alpha', ''], '--suite'],
      [['prove', '--suite', 'tai', '--sk', v.sk.slice(2), '--alpha', ''], '--sk'],
      [['sign'], 'sub-command'],
    ];
    const runs = await Promise.all(cases.map(([args]) => drill(...args)));
    cases.forEach(([args, field], i) => {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(field);
    });
  });

  it('keygen makes a key that proves and verifies', async () => {
    const seeded = await drill('keygen', '--seed', vectors[0]!.sk);
    expect(JSON.parse(seeded.stdout)).toEqual({ sk: vectors[0]!.sk, pk: vectors[0]!.pk });
    const fresh = await drill('keygen');
    const { sk, pk } = JSON.parse(fresh.stdout) as { sk: string; pk: string };
    expect(sk).toMatch(/^[0-9a-f]{64}$/);
    const proved = JSON.parse((await drill('prove', '--suite', 'ell2', '--sk', sk, '--alpha', 'c0ffee')).stdout) as { pk: string; pi: string; beta: string };
    expect(proved.pk).toBe(pk);
    const verified = await drill('verify', '--suite', 'ell2', '--pk', pk, '--alpha', 'c0ffee', '--pi', proved.pi);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toEqual({ valid: true, beta: proved.beta });
  });
});
