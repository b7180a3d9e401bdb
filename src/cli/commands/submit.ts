/**
 * `drill submit --to MULTIADDR ...` (libp2p) or `drill submit --api URL [--token T] ...` (the
 * coordinator's HTTP API): hand a job to a running coordinator, follow its progress,
 * and download the outputs and report.json into --out. Same flags and the same input checks
 * as `drill run` (done locally first, so mistakes are reported before any upload). The files
 * are uploaded in chunks read from disk. The partner identity (an Ed25519 libp2p key, which the
 * coordinator's operator allows with `--allow-partner`) lives in `$DRILL_HOME/partner`;
 * `drill submit --show-id` prints it. A coordinator that refuses the partner or a limit gets
 * one clear line and exit 2.
 */
import { stat, mkdir } from 'node:fs/promises';
import { join, basename } from 'node:path';
import type { Command } from '../command.ts';
import { parseArgs, str, bool, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError, DrillError, isDrillError } from '../../util/errors.ts';
import { createDrillNode } from '../../net/node.ts';
import { loadOrCreateIdentity, defaultDataDir } from '../../worker/identity.ts';
import { prepareJob } from '../../coordinator/job.ts';
import { IntakeClient } from '../../coordinator/intake/index.ts';
import type { ClientFile, IntakeSubmitOptions } from '../../coordinator/intake/index.ts';
import type { Progress } from '../../coordinator/scheduler.ts';
import type { JobReport } from '../../coordinator/service.ts';
import { RUN_FLAGS, jobRequestFrom } from './run.ts';
import { ProgressBar, formatSummary } from '../progress.ts';

const FLAGS: Record<string, FlagSpec> = {
  to: { type: 'string', help: "the coordinator's multiaddr (printed by 'drill coordinator'): submit over libp2p as this partner identity" },
  api: { type: 'string', help: "the coordinator's HTTP API URL (printed by 'drill coordinator', e.g. http://127.0.0.1:9361): submit over HTTP" },
  token: { type: 'string', help: 'bearer token for --api (default $DRILL_API_TOKEN), from the coordinator operator\'s --api-tokens file' },
  model: RUN_FLAGS.model!,
  input: RUN_FLAGS.input!,
  job: RUN_FLAGS.job!,
  out: RUN_FLAGS.out!,
  replicas: RUN_FLAGS.replicas!,
  audit: RUN_FLAGS.audit!,
  'unit-rows': RUN_FLAGS['unit-rows']!,
  compare: RUN_FLAGS.compare!,
  'batch-axis': RUN_FLAGS['batch-axis']!,
  broadcast: RUN_FLAGS.broadcast!,
  json: RUN_FLAGS.json!,
  quiet: RUN_FLAGS.quiet!,
  'data-dir': { type: 'string', help: 'the partner identity key (default $DRILL_HOME/partner or ~/.matrix-drill/partner)' },
  'show-id': { type: 'boolean', help: "print this partner's peer id (creating its identity) and exit: what the coordinator's operator passes to --allow-partner" },
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
  return !isDrillError(e) || ['NET_DIAL_FAILED', 'NET_TIMEOUT', 'NET_BAD_FRAME', 'NET_ABORTED', 'HTTP_UNREACHABLE'].includes(e.code) || (e.code === 'HTTP_ERROR' && Number(e.meta.status) >= 502);
}

/** One way to reach a coordinator's intake (libp2p or HTTP). */
interface Remote {
  /** Upload the files and submit: the job id and its size. */
  submit(files: ClientFile[], opts: IntakeSubmitOptions): Promise<{ job: string; rows: number; units: number }>;
  /** Long poll: the status once more than `seen` units are done, the job ends, or ~10 s pass. */
  status(job: string, seen: number): Promise<{ status: 'running' | 'done' | 'failed'; progress?: Progress; report?: JobReport; error?: string }>;
  download(job: string, file: string, dest: string): Promise<void>;
  /** Outputs fetched: the coordinator may free the job's files. */
  release(job: string): Promise<void>;
  close(): Promise<void>;
}

async function libp2pRemote(to: string, dataDir: string, say: (s: string) => void): Promise<Remote> {
  const id = await loadOrCreateIdentity(dataDir);
  const node = await createDrillNode({ privateKey: id.privateKey });
  const client = new IntakeClient(node, to);
  say(`submitting to ${to} as partner ${id.peerId}`);
  return {
    async submit(files, opts) {
      const upload = await client.upload(files);
      return client.submit(upload, opts);
    },
    status: (job, seen) => client.status(job, seen),
    download: (job, file, dest) => client.download(job, file, dest),
    release: (job) => client.release(job),
    close: () => node.stop(),
  };
}

async function httpRemote(url: string, token: string | undefined, say: (s: string) => void): Promise<Remote> {
  const { ApiClient } = await import('../../api/client.ts');
  const client = new ApiClient(url, token);
  say(`submitting to ${client.base}${token ? ' with a token' : ''}`);
  return {
    async submit(files, opts) {
      const r = await client.submit(files, opts);
      return { job: r.id, rows: r.rows, units: r.units };
    },
    async status(job, seen) {
      const v = await client.job(job, seen);
      return { status: v.status, ...(v.progress ? { progress: v.progress } : {}), ...(v.report ? { report: v.report } : {}), ...(v.error ? { error: v.error } : {}) };
    },
    download: (job, file, dest) => client.download(job, file, dest),
    release: async (job) => void (await client.delete(job)),
    close: async () => undefined,
  };
}

export const command: Command = {
  name: 'submit',
  summary: 'submit a job to a running coordinator',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText('usage: drill submit --to MULTIADDR --model M.onnx --input NAME=X.npy [...] --out DIR [flags]\n       drill submit --api URL [--token T] --model M.onnx --input NAME=X.npy [...] --out DIR [flags]\n       drill submit --show-id [--data-dir DIR]', FLAGS));
      return 0;
    }
    const dataDir = str(p, 'data-dir') ?? join(defaultDataDir(), 'partner');
    if (bool(p, 'show-id')) {
      const id = await loadOrCreateIdentity(dataDir);
      process.stdout.write(`${id.peerId}\n`);
      if (id.created) process.stderr.write(`new partner identity in ${id.path}\n`);
      return 0;
    }
    const to = str(p, 'to');
    const api = str(p, 'api');
    if ((to === undefined) === (api === undefined)) throw new UserError('--to / --api', "exactly one coordinator: --to MULTIADDR (libp2p) or --api URL (HTTP), as 'drill coordinator' prints them", to ?? api ?? undefined);
    if (to !== undefined && (!to.startsWith('/') || !to.includes('/p2p/'))) throw new UserError('--to', 'a coordinator multiaddr ending in /p2p/<peer id>', to);
    if (api !== undefined && !/^https?:\/\//.test(api)) throw new UserError('--api', "the coordinator's HTTP URL, e.g. http://127.0.0.1:9361", api);
    const req = await jobRequestFrom(p);
    // Every input check, locally, before uploading. An external-data model is inlined into a
    // self-contained copy (in --out/.drill), which is what gets uploaded.
    const spec = await prepareJob(req);
    const say = (s: string): void => void (bool(p, 'json') ? process.stderr : process.stdout).write(s + '\n');

    const files: ClientFile[] = [{ role: 'model', name: basename(spec.modelPath), path: spec.modelPath, bytes: (await stat(spec.modelPath)).size }];
    for (const [name, inp] of Object.entries(spec.inputs)) files.push({ role: 'input', name, path: inp.path, bytes: (await stat(inp.path)).size });
    const total = files.reduce((a, f) => a + f.bytes, 0);

    const remote = api !== undefined ? await httpRemote(api, str(p, 'token') ?? process.env.DRILL_API_TOKEN, say) : await libp2pRemote(to!, dataDir, say);
    try {
      say(`uploading ${(total / 1e6).toFixed(1)} MB`);
      const reply = await remote.submit(files, { name: spec.name, replicas: spec.replicas, audit: spec.audit, unitRows: req.unitRows, policy: req.policy, batchAxes: req.batchAxes, broadcast: req.broadcast });
      say(`job ${reply.job}: ${reply.rows} rows in ${reply.units} units`);
      const bar = bool(p, 'quiet') ? null : new ProgressBar(reply.rows);
      let report: JobReport | undefined;
      let seen = 0;
      let unreachableSince = 0;
      while (!report) {
        let st;
        try {
          st = await remote.status(reply.job, seen);
        } catch (e) {
          // The coordinator may be restarting: it resumes the job from its store, so keep asking.
          const now = Date.now();
          unreachableSince ||= now;
          if (!isNetError(e) || now - unreachableSince > RECONNECT_FOR_MS) {
            if (isDrillError(e, 'NET_REMOTE_ERROR') && e.meta.remoteCode === 'JOB_UNKNOWN') throw new DrillError('JOB_LOST', `the coordinator no longer knows job ${reply.job}`);
            throw e;
          }
          bar?.log(`coordinator unreachable (${(e as Error).message}); retrying`);
          await new Promise((r) => setTimeout(r, RETRY_MS));
          continue;
        }
        unreachableSince = 0;
        if (st.progress) {
          seen = st.progress.done;
          bar?.update(st.progress);
        }
        if (st.status !== 'running') {
          if (!st.report) throw new DrillError('JOB_FAILED', `job ${reply.job} ${st.status}${st.error ? `: ${st.error}` : ''}`);
          report = st.report;
        }
      }
      bar?.done();
      if (report.status === 'done') {
        await mkdir(spec.outDir, { recursive: true });
        const local: Record<string, string> = {};
        for (const [name, remoteFile] of Object.entries(report.outputs)) {
          const file = basename(remoteFile);
          await remote.download(reply.job, file, join(spec.outDir, file));
          local[name] = join(spec.outDir, file);
        }
        report = { ...report, outputs: local };
        await remote.download(reply.job, 'report.json', join(spec.outDir, 'report.json')).catch(() => undefined);
        // Everything is here: the coordinator may free the job's files now.
        await remote.release(reply.job).catch(() => undefined);
      }
      if (bool(p, 'json')) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else say('\n' + formatSummary(report, spec.outDir));
      if (report.status !== 'done') {
        process.stderr.write(`drill submit: job failed: ${report.error}\n`);
        return 1;
      }
      return 0;
    } finally {
      await remote.close();
    }
  },
};
