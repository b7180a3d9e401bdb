/**
 * Shared helpers for HTTP API tests: a real embedded grid (libp2p, ONNX Runtime workers, the
 * hashrate chain) with the intake core and the HTTP server attached; multipart bodies from
 * workload files; a Server-Sent Events reader (eventsource-parser) that waits on events; a
 * strict Prometheus text parser.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { LocalGrid } from '../../src/node/local-grid.ts';
import type { LocalGridOptions } from '../../src/node/local-grid.ts';
import { IntakeCore } from '../../src/coordinator/intake/index.ts';
import type { IntakeLimits } from '../../src/coordinator/intake/index.ts';
import { ApiServer } from '../../src/api/index.ts';
import type { ApiServerOptions } from '../../src/api/index.ts';
import { readJobManifest } from '../../src/coordinator/job.ts';
import { ROOT } from './grid.ts';

export interface ApiGrid {
  grid: LocalGrid;
  intake: IntakeCore;
  api: ApiServer;
  url: string;
  tmp: string;
  stop(): Promise<void>;
}

export async function startApiGrid(opts: { grid?: LocalGridOptions; limits?: Partial<IntakeLimits>; api?: Partial<ApiServerOptions> } = {}): Promise<ApiGrid> {
  const tmp = await mkdtemp(join(tmpdir(), 'drill-api-'));
  // The coordinator's view of the chain is kept in a block store file (drill chain blocks reads it).
  const chain = opts.grid?.chain ? { ...(opts.grid.chain === true ? {} : opts.grid.chain), storePath: join(tmp, 'chain.sqlite') } : undefined;
  const grid = new LocalGrid({ workers: 3, threadsPerWorker: 1, dataDir: join(tmp, 'grid'), ...opts.grid, ...(chain ? { chain } : {}) });
  await grid.start();
  const intake = new IntakeCore(grid.coordinator, { dataDir: join(tmp, 'grid', 'coordinator'), limits: opts.limits ?? {} });
  await intake.start();
  const api = await ApiServer.start({ coordinator: grid.coordinator, intake, node: grid.coordinatorNode, chain: grid.chain }, { port: 0, ...opts.api });
  return {
    grid, intake, api, url: api.url, tmp,
    async stop() {
      await api.stop();
      await intake.stop();
      await grid.stop();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** A multipart body for a workload: its model, each input under its name, and options. */
export async function workloadForm(workload: string, options: Record<string, unknown> = {}): Promise<FormData> {
  const m = await readJobManifest(join(ROOT, 'workloads', workload, 'job.json'));
  const fd = new FormData();
  fd.append('options', JSON.stringify({ name: m.name, policy: m.policy, replicas: m.replicas, unitRows: m.unitRows, ...options }));
  fd.append('model', new Blob([await readFile(m.model)]), 'model.onnx');
  for (const [name, path] of Object.entries(m.inputs)) fd.append(name, new Blob([await readFile(path)]), `${name}.npy`);
  return fd;
}

export interface SseEvent {
  id?: string;
  event: string;
  data: unknown;
}

/** An open event stream: every event received so far, and a wait for the first matching one. */
export interface SseStream {
  events: SseEvent[];
  waitFor(pred: (e: SseEvent) => boolean, what?: string): Promise<SseEvent>;
  status: number;
  close(): void;
}

export async function openEvents(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ac.signal });
  const events: SseEvent[] = [];
  const waiters: { pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  let ended: Error | null = null;
  const failWaiters: ((e: Error) => void)[] = [];
  const parser = createParser({
    onEvent(ev) {
      const e: SseEvent = { ...(ev.id !== undefined ? { id: ev.id } : {}), event: ev.event ?? 'message', data: JSON.parse(ev.data) };
      events.push(e);
      for (const w of [...waiters]) if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    },
  });
  if (res.ok && res.body) {
    void (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parser.feed(dec.decode(chunk, { stream: true }));
        ended = new Error('event stream ended');
      } catch (e) {
        ended = e as Error;
      }
      for (const f of failWaiters.splice(0)) f(ended);
    })();
  }
  return {
    events,
    status: res.status,
    waitFor(pred, what = 'event') {
      const hit = events.find(pred);
      if (hit) return Promise.resolve(hit);
      if (ended) return Promise.reject(new Error(`${what}: ${ended.message}`));
      return new Promise((resolve, reject) => {
        waiters.push({ pred, resolve });
        failWaiters.push((e) => reject(new Error(`${what}: ${e.message}`)));
      });
    },
    close: () => ac.abort(),
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parse Prometheus text exposition format 0.0.4 strictly: every line is a comment (# HELP /
 * # TYPE with a known type), or `name{labels} value [timestamp]` with a valid metric name,
 * properly quoted and escaped label values, and a float value. Throws on anything else.
 */
export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(line)) throw new Error(`line ${i + 1}: malformed ${line}`);
        continue;
      }
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3] ?? '')) throw new Error(`line ${i + 1}: unknown type in ${line}`);
        types.set(m[2]!, m[3]!);
      }
      continue;
    }
    const nm = line.match(NAME);
    if (!nm) throw new Error(`line ${i + 1}: no metric name: ${line}`);
    let rest = line.slice(nm[0].length);
    const labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      rest = rest.slice(1);
      while (!rest.startsWith('}')) {
        const lm = rest.match(/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,?)/);
        if (!lm) throw new Error(`line ${i + 1}: bad label in ${line}`);
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        rest = rest.slice(lm[0].length);
        if (!lm[3] && !rest.startsWith('}')) throw new Error(`line ${i + 1}: expected , or } in ${line}`);
      }
      rest = rest.slice(1);
    }
    const vm = rest.match(/^ ((?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))|[-+]?Inf|NaN)(?: -?\d+)?$/);
    if (!vm) throw new Error(`line ${i + 1}: bad value in ${line}`);
    samples.push({ name: nm[0], labels, value: vm[1]!.endsWith('Inf') ? (vm[1]!.startsWith('-') ? -Infinity : Infinity) : Number(vm[1]) });
  }
  return { samples, types };
}

/** The value of one sample (0 when absent). */
export function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}
