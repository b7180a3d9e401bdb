/**
 * `drill demo` (what `npm start` runs): the sample CNN job from workloads/cnn on an embedded
 * grid of one coordinator and three workers with 2 replicas per unit, a live progress bar and
 * a summary; then the outputs are checked against the workload's golden outputs.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Command } from '../command.ts';
import { parseArgs, str, int, num, bool, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { createLogger } from '../../util/log.ts';
import { readNpy } from '../../util/npy.ts';
import { readJobManifest } from '../../coordinator/job.ts';
import { outputFileName } from '../../coordinator/job.ts';
import { parsePolicy, tensorsAgree, DEFAULT_POLICY } from '../../pod/policy.ts';
import { runOnLocalGrid, cheatFlag } from './run.ts';
import { shortPeer } from '../progress.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const FLAGS: Record<string, FlagSpec> = {
  workload: { type: 'string', help: 'sample workload in workloads/ (cnn, mlp, encoder, upscale, rowwise)', default: 'cnn' },
  out: { type: 'string', help: 'output directory', default: 'drill-out/demo' },
  workers: { type: 'string', help: 'honest workers', default: '3' },
  cheaters: { type: 'string', help: 'cheating workers to add (PoD catches them)', default: '0' },
  cheat: { type: 'string', help: 'how the cheaters cheat: corrupt | noise | lazy | error | stale', default: 'corrupt' },
  replicas: { type: 'string', help: 'replicas per unit (default 2, or 1 with --audit)' },
  audit: { type: 'string', help: 'spot checks: one replica per unit, this fraction re-run by a second random worker' },
  'fault-epochs': { type: 'string', help: "epochs a fault record bans a faulty worker's lottery weight", default: '2' },
  json: { type: 'boolean', help: 'print report.json to stdout' },
  'no-chain': { type: 'boolean', help: 'do not run the hashrate lottery chain on the workers' },
  help: { type: 'boolean', help: 'show this help' },
};

export const command: Command = {
  name: 'demo',
  summary: 'the sample job on an embedded local grid',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText('usage: drill demo [flags]   (npm start)', FLAGS));
      return 0;
    }
    const name = str(p, 'workload')!;
    const manifest = join(ROOT, 'workloads', name, 'job.json');
    if (!existsSync(manifest)) throw new UserError('--workload', 'one of cnn, mlp, encoder, upscale, rowwise', name);
    const m = await readJobManifest(manifest);
    const outDir = str(p, 'out')!;
    const withChain = !bool(p, 'no-chain');
    const blocks = new Map<string, number>();
    let height = 0;
    let records = 0;
    const report = await runOnLocalGrid(
      { model: m.model, inputs: m.inputs, outDir, replicas: int(p, 'replicas', 1, 16), audit: num(p, 'audit', 0, 1), unitRows: m.unitRows, policy: m.policy, name: m.name, flopsPerRow: m.flopsPerRow },
      { workers: int(p, 'workers', 1, 64), cheaters: int(p, 'cheaters', 0, 64), cheat: cheatFlag(p), logger: createLogger(), chain: withChain ? { faultEpochs: int(p, 'fault-epochs', 0, 1_000_000)! } : false },
      {
        json: bool(p, 'json'),
        quiet: false,
        status: () => (withChain ? `chain height ${height}` : ''),
        onGrid: (grid, bar) => {
          // The workers produce blocks by the VRF lottery; show each block the coordinator imports.
          grid.chain?.on('block', (b) => {
            height = Math.max(height, b.height);
            records += b.credits;
            blocks.set(b.producer, (blocks.get(b.producer) ?? 0) + 1);
            const line = `  block #${b.height} slot ${b.slot} by ${shortPeer(b.producer)}: ${b.credits} PoD credit record(s)`;
            if (bar) bar.log(line);
            else if (!bool(p, 'json')) process.stdout.write(line + '\n');
          });
        },
      },
    );
    if (report.status !== 'done') {
      process.stderr.write(`drill demo: job failed: ${report.error}\n`);
      return 1;
    }
    const say0 = (s: string): void => void (bool(p, 'json') ? process.stderr : process.stdout).write(s + '\n');
    if (withChain) {
      const seen = [...blocks.values()].reduce((a, b) => a + b, 0);
      say0(`\nhashrate chain: head at height ${height}; ${seen} blocks seen (${seen - height > 0 ? `${seen - height} competing ones settled by fork choice, ` : ''}${records} PoD credit records carried); blocks by producer: ${[...blocks].map(([k, v]) => `${shortPeer(k)} ${v}`).join(', ') || 'none yet'}`);
    }
    // Check against the golden outputs computed by a direct ONNX Runtime run, value by value
    // (the default allclose tolerance even when the job's own policy is argmax).
    const checkPolicy = m.policy?.startsWith('allclose') || m.policy === 'exact' ? m.policy : DEFAULT_POLICY;
    const policy = parsePolicy(checkPolicy);
    const say = (s: string): void => void (bool(p, 'json') ? process.stderr : process.stdout).write(s + '\n');
    for (const out of Object.keys(report.outputs)) {
      const golden = join(m.baseDir, 'golden', outputFileName(out));
      if (!existsSync(golden)) continue;
      const ok = tensorsAgree(policy, await readNpy(report.outputs[out]!), await readNpy(golden));
      say(`  ${out}: ${ok ? 'matches' : 'DOES NOT MATCH'} the golden output of a direct ONNX Runtime run (${checkPolicy})`);
      if (!ok) return 1;
    }
    if (!Number(str(p, 'cheaters'))) say('\nNext: watch Proof of Drilling catch a cheater:  npx drill run --job workloads/cnn/job.json --cheaters 1 --out drill-out/cheat');
    return 0;
  },
};
