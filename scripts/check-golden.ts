/**
 * Check a finished job's outputs against a sample workload's golden outputs (a direct ONNX
 * Runtime run, committed in workloads/<name>/golden/), independently of the grid that ran it.
 *
 *   node scripts/check-golden.ts OUT_DIR workloads/cnn
 *
 * OUT_DIR is a job's --out folder (report.json and <output>.npy files). Compares every golden
 * output value by value with the workload's policy when it is allclose or exact, else with the
 * default allclose policy (an argmax job's logits must still be close); report.json must say
 * done with every row. Prints a line per output; exit 0 when all match, 1 otherwise.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJobManifest } from '../src/coordinator/job.ts';
import { parsePolicy, tensorsAgree, DEFAULT_POLICY } from '../src/pod/policy.ts';
import { readNpy } from '../src/util/npy.ts';

const [outDir, workload] = process.argv.slice(2);
if (!outDir || !workload) {
  process.stderr.write('usage: node scripts/check-golden.ts OUT_DIR WORKLOAD_DIR\n');
  process.exit(2);
}
const m = await readJobManifest(join(workload, 'job.json'));
const policyText = m.policy?.startsWith('allclose') || m.policy === 'exact' ? m.policy : DEFAULT_POLICY;
const policy = parsePolicy(policyText);
const report = JSON.parse(readFileSync(join(outDir, 'report.json'), 'utf8')) as { status: string; rows: number; units: { failed: number } };
const rows = (await readNpy(Object.values(m.inputs)[0]!)).dims[0];
let ok = report.status === 'done' && report.rows === rows && report.units.failed === 0;
process.stdout.write(`report.json: status ${report.status}, ${report.rows} of ${rows} rows, ${report.units.failed} failed units\n`);
const goldens = readdirSync(join(m.baseDir, 'golden')).filter((f) => f.endsWith('.npy'));
if (goldens.length === 0) ok = false;
for (const f of goldens) {
  const got = join(outDir, f);
  const same = existsSync(got) && tensorsAgree(policy, await readNpy(got), await readNpy(join(m.baseDir, 'golden', f)));
  process.stdout.write(existsSync(got) ? `${f}: ${same ? 'matches' : 'DOES NOT MATCH'} the golden output (${policyText})\n` : `${f}: MISSING from ${outDir}\n`);
  ok &&= same;
}
process.exit(ok ? 0 : 1);
