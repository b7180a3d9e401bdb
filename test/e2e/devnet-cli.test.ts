/** `drill devnet --json` as a user runs it: a child process, JSON on stdout, all heads equal. */
import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

describe('drill devnet CLI', () => {
  it('prints the report as JSON and all nodes agree on the head', async () => {
    const { stdout } = await run(process.execPath, ['bin/drill.js', 'devnet', '--nodes', '3', '--slots', '10', '--slot-ms', '200', '--json'], { timeout: 60_000 });
    const r = JSON.parse(stdout) as { nodes: Array<{ peer: string; head: string; height: number; blocksProduced: number; weightShare: number }>; emptySlots: number; forksResolved: number; agreed: boolean };
    expect(r.nodes).toHaveLength(3);
    for (const n of r.nodes) expect(Object.keys(n).sort()).toEqual(['blocksProduced', 'head', 'height', 'peer', 'weightShare']);
    expect(new Set(r.nodes.map((n) => n.head)).size).toBe(1);
    expect(r.agreed).toBe(true);
    expect(typeof r.emptySlots).toBe('number');
    expect(typeof r.forksResolved).toBe('number');
  });

  it('names the flag on a bad value', async () => {
    const err = await run(process.execPath, ['bin/drill.js', 'devnet', '--nodes', 'x'], { timeout: 30_000 }).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toContain('--nodes: expected an integer from 1 to 32, received "x"');
  });
});
