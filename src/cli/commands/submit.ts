/**
 * `drill submit --to MULTIADDR ...`: hand a job to a running coordinator, follow its progress,
 * and download the outputs and report.json into --out. Same flags and the same input checks
 * as `drill run` (done locally first, so mistakes are reported before any upload).
 */
import { readFile, open, rename, mkdir } from 'node:fs/promises';
import { join, basename } from 'node:path';
import type { Command } from '../command.ts';
import { parseArgs, str, bool, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError, DrillError, isDrillError } from '../../util/errors.ts';
import { createDrillNode } from '../../net/node.ts';
import { prepareJob } from '../../coordinator/job.ts';
import { INTAKE_PROTOCOL, MAX_SUBMIT_BYTES, submitHeadCodec, submitReplyCodec, jobQueryCodec, jobStatusCodec, outputQueryCodec, frameWithHead, POLL_MS } from '../../coordinator/intake.ts';
import type { SubmitFile } from '../../coordinator/intake.ts';
import type { JobReport } from '../../coordinator/service.ts';
import { RUN_FLAGS, jobRequestFrom } from './run.ts';
import { ProgressBar, formatSummary } from '../progress.ts';

const FLAGS: Record<string, FlagSpec> = {
  to: { type: 'string', help: "the coordinator's multiaddr (printed by 'drill coordinator')" },
  model: RUN_FLAGS.model!,
  input: RUN_FLAGS.input!,
  job: RUN_FLAGS.job!,
  out: RUN_FLAGS.out!,
  replicas: RUN_FLAGS.replicas!,
  'unit-rows': RUN_FLAGS['unit-rows']!,
  compare: RUN_FLAGS.compare!,
  'batch-axis': RUN_FLAGS['batch-axis']!,
  broadcast: RUN_FLAGS.broadcast!,
  json: RUN_FLAGS.json!,
  quiet: RUN_FLAGS.quiet!,
  help: RUN_FLAGS.help!,
};

/**
 * A coordinator that restarts resumes its jobs from its store; the client keeps polling for
 * this long (2 min covers a restart with a model reload) at RETRY_MS intervals before giving up.
 */
const RECONNECT_FOR_MS = 120_000;
const RETRY_MS = 1000;

/** A transport failure (the coordinator is down or restarting), not an answer from it. */
function isNetError(e: unknown): boolean {
  return !isDrillError(e) || ['NET_DIAL_FAILED', 'NET_TIMEOUT', 'NET_BAD_FRAME', 'NET_ABORTED'].includes(e.code);
}

export const command: Command = {
  name: 'submit',
  summary: 'submit a job to a running coordinator',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText('usage: drill submit --to MULTIADDR --model M.onnx --input NAME=X.npy [...] --out DIR [flags]', FLAGS));
      return 0;
    }
    const to = str(p, 'to');
    if (!to || !to.startsWith('/') || !to.includes('/p2p/')) throw new UserError('--to', 'a coordinator multiaddr ending in /p2p/<peer id>', to);
    const req = await jobRequestFrom(p);
    // Every input check, locally, before uploading. An external-data model is inlined into a
    // self-contained copy (in --out/.drill), which is what gets uploaded.
    const spec = await prepareJob(req);
    const say = (s: string): void => void (bool(p, 'json') ? process.stderr : process.stdout).write(s + '\n');

    const files: SubmitFile[] = [];
    const parts: Uint8Array[] = [];
    const model = await readFile(spec.modelPath);
    files.push({ role: 'model', name: basename(spec.modelPath), bytes: model.length });
    parts.push(model);
    for (const [name, inp] of Object.entries(spec.inputs)) {
      const b = await readFile(inp.path);
      files.push({ role: 'input', name, bytes: b.length });
      parts.push(b);
    }
    const total = parts.reduce((a, b) => a + b.length, 0);
    if (total > MAX_SUBMIT_BYTES) throw new UserError('--input', `model + inputs of at most ${MAX_SUBMIT_BYTES} bytes per submit`, `${total} bytes`);
    const head = submitHeadCodec.encode({ name: spec.name, replicas: spec.replicas, unitRows: spec.unitRows, policy: req.policy, batchAxes: req.batchAxes, broadcast: req.broadcast, files });

    const node = await createDrillNode({});
    try {
      say(`uploading ${(total / 1e6).toFixed(1)} MB to ${to}`);
      const reply = submitReplyCodec.decode(await node.request(to, INTAKE_PROTOCOL.submit, frameWithHead(head, parts), { timeoutMs: 600_000 }));
      if (!reply.ok) throw new DrillError('JOB_REJECTED', `the coordinator rejected the job: ${reply.error}`);
      say(`job ${reply.job}: ${reply.rows} rows in ${reply.units} units`);
      const bar = bool(p, 'quiet') ? null : new ProgressBar(reply.rows);
      let report: JobReport | undefined;
      let seen = 0;
      let unreachableSince = 0;
      while (!report) {
        let bytes: Uint8Array;
        try {
          bytes = await node.request(to, INTAKE_PROTOCOL.job, jobQueryCodec.encode({ job: reply.job, seen }), { timeoutMs: POLL_MS + 30_000 });
        } catch (e) {
          // The coordinator may be restarting: it resumes the job from its store, so keep asking.
          const now = Date.now();
          unreachableSince ||= now;
          if (!isNetError(e) || now - unreachableSince > RECONNECT_FOR_MS) throw e;
          bar?.log(`coordinator unreachable (${(e as Error).message}); retrying`);
          await new Promise((r) => setTimeout(r, RETRY_MS));
          continue;
        }
        unreachableSince = 0;
        const st = jobStatusCodec.decode(bytes);
        if (st.status === 'unknown') throw new DrillError('JOB_LOST', `the coordinator no longer knows job ${reply.job} (restarted?)`);
        if (st.progress) {
          seen = st.progress.done;
          bar?.update(st.progress);
        }
        report = st.report;
      }
      bar?.done();
      if (report.status === 'done') {
        await mkdir(spec.outDir, { recursive: true });
        const local: Record<string, string> = {};
        for (const [name, remote] of Object.entries(report.outputs)) {
          local[name] = await download(node, to, reply.job, basename(remote), spec.outDir);
        }
        report = { ...report, outputs: local };
      }
      await download(node, to, reply.job, 'report.json', spec.outDir).catch(() => undefined);
      if (bool(p, 'json')) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else say('\n' + formatSummary(report, spec.outDir));
      if (report.status !== 'done') {
        process.stderr.write(`drill submit: job failed: ${report.error}\n`);
        return 1;
      }
      return 0;
    } finally {
      await node.stop();
    }
  },
};

async function download(node: Awaited<ReturnType<typeof createDrillNode>>, to: string, job: string, file: string, dir: string): Promise<string> {
  const path = join(dir, file);
  const fh = await open(`${path}.partial`, 'w');
  try {
    let offset = 0;
    for (;;) {
      const chunk = await node.request(to, INTAKE_PROTOCOL.output, outputQueryCodec.encode({ job, file, offset }), { maxResponseBytes: 8 * 1024 * 1024 });
      const size = Number(new DataView(chunk.buffer, chunk.byteOffset, 8).getBigUint64(0, false));
      const data = chunk.subarray(8);
      await fh.write(data, 0, data.length, offset);
      offset += data.length;
      if (offset >= size || data.length === 0) break;
    }
  } finally {
    await fh.close();
  }
  await rename(`${path}.partial`, path);
  return path;
}
