/**
 * Prometheus metrics of a coordinator (prom-client, one registry per API server — no globals):
 * jobs by state, PoD decisions by outcome, rows, rows/s, lease latency, disputes, audits,
 * quarantines, credit, workers, the chain (height, blocks, reorgs, forks), gossip verdicts per
 * topic and request counts (from DrillNode), and the API's own stream clients. Counters that
 * follow events start at 0 with the process (Prometheus' rate() handles restarts); gauges and
 * counters read from the coordinator are computed at scrape time. libp2p's own metrics
 * (@libp2p/prometheus-metrics) land in the same registry when the node was created with it.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Coordinator } from '../coordinator/service.ts';
import type { ChainService } from '../chain/service.ts';
import type { DrillNode } from '../net/node.ts';
import type { EventHub, HubEvent, EventMap } from './events.ts';

/** Lease latency buckets (s): units take ~0.4 s by default, a first model download seconds, the deadline 120 s. */
const LEASE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface ApiMetricsDeps {
  coordinator: Coordinator;
  chain: ChainService | null;
  node: DrillNode;
  hub: EventHub;
  /** Open event streams right now. */
  streams: () => number;
}

export class ApiMetrics {
  readonly registry: Registry;
  readonly #offs: (() => void)[] = [];

  constructor(deps: ApiMetricsDeps, registry: Registry = new Registry()) {
    this.registry = registry;
    const r = [registry];
    const { coordinator: coord, chain, node, hub } = deps;

    new Gauge({ name: 'drill_jobs', help: 'Jobs in the job store by state', labelNames: ['state'], registers: r, collect() {
      const c = coord.store().countByStatus();
      for (const [state, n] of Object.entries(c)) this.set({ state }, n);
    } });
    const units = new Counter({ name: 'drill_units_decided_total', help: 'PoD decisions by outcome (agreed, resolved, unaudited, unverified)', labelNames: ['outcome'], registers: r });
    const disputed = new Counter({ name: 'drill_units_disputed_total', help: 'Units whose replicas disagreed (settled by a majority)', registers: r });
    const audited = new Counter({ name: 'drill_units_audited_total', help: 'Spot-check units re-run by a second worker', registers: r });
    const redecided = new Counter({ name: 'drill_units_redecided_total', help: 'Units decided again after a worker they rested on was found faulty', registers: r });
    const rows = new Counter({ name: 'drill_rows_decided_total', help: 'Rows of decided units', registers: r });
    const credit = new Counter({ name: 'drill_credit_flops_total', help: 'Verified FLOPs credited to workers', registers: r });
    const faults = new Counter({ name: 'drill_worker_faults_total', help: 'Workers quarantined in a job (kind=quarantined) or released (kind=released)', labelNames: ['kind'], registers: r });
    const jobsEnded = new Counter({ name: 'drill_jobs_ended_total', help: 'Jobs that ended, by status', labelNames: ['status'], registers: r });
    const lease = new Histogram({ name: 'drill_lease_commit_seconds', help: 'Time from issuing a lease to the worker committing its result', buckets: LEASE_BUCKETS, registers: r });
    const rates = new Map<string, number>();
    new Gauge({ name: 'drill_rows_per_second', help: 'Rows per second over the running jobs (each since it started)', registers: r, collect() {
      let s = 0;
      for (const v of rates.values()) s += v;
      this.set(s);
    } });
    new Gauge({ name: 'drill_workers', help: 'Registered workers by state', labelNames: ['state'], registers: r, collect() {
      let on = 0;
      let off = 0;
      for (const w of coord.workers()) if (w.connected) on++;
      else off++;
      this.set({ state: 'connected' }, on);
      this.set({ state: 'disconnected' }, off);
    } });
    const blocks = new Counter({ name: 'drill_chain_blocks_total', help: 'Valid blocks imported (any branch)', registers: r });
    if (chain) {
      new Gauge({ name: 'drill_chain_height', help: 'Height of the canonical head', registers: r, collect() {
        this.set(chain.state.head.height);
      } });
      new Counter({ name: 'drill_chain_reorgs_total', help: 'Chain reorganisations (the head moved to another branch)', registers: r, collect() {
        this.reset();
        this.inc(chain.state.reorgCount);
      } });
      new Gauge({ name: 'drill_chain_forks', help: 'Known blocks off the canonical chain (competing blocks settled by fork choice)', registers: r, collect() {
        this.set(chain.state.orphanCount());
      } });
    }
    const verdicts = new Counter({ name: 'drill_gossip_verdicts_total', help: 'Gossip validator verdicts by topic (accept, ignore, reject)', labelNames: ['topic', 'verdict'], registers: r });
    new Counter({ name: 'drill_gossip_published_total', help: 'Gossip messages this node published, by topic', labelNames: ['topic'], registers: r, collect() {
      this.reset();
      for (const [topic, c] of Object.entries(node.metrics().topics)) this.inc({ topic }, c.published);
    } });
    new Counter({ name: 'drill_requests_total', help: 'Request/response streams by kind (sent, failed, served, serve_failed)', labelNames: ['kind'], registers: r, collect() {
      this.reset();
      const q = node.metrics().requests;
      this.inc({ kind: 'sent' }, q.sent);
      this.inc({ kind: 'failed' }, q.failed);
      this.inc({ kind: 'served' }, q.served);
      this.inc({ kind: 'serve_failed' }, q.serveFailed);
    } });
    new Gauge({ name: 'drill_api_event_streams', help: 'Open Server-Sent Events streams', registers: r, collect() {
      this.set(deps.streams());
    } });
    // Start every labelled counter at 0 so a scrape before the first event shows the series.
    for (const o of ['agreed', 'resolved', 'unaudited', 'unverified']) units.inc({ outcome: o }, 0);
    for (const k of ['quarantined', 'released']) faults.inc({ kind: k }, 0);
    for (const s of ['done', 'failed']) jobsEnded.inc({ status: s }, 0);

    this.#offs.push(node.onVerdict((v) => verdicts.inc({ topic: v.topic, verdict: v.verdict })));
    this.#offs.push(hub.onEvent((e: HubEvent) => {
      switch (e.type) {
        case 'unit': {
          const u = e.data as EventMap['unit'];
          units.inc({ outcome: u.outcome });
          if (u.disputed) disputed.inc();
          if (u.audited) audited.inc();
          if (u.redecided) redecided.inc();
          else rows.inc(u.rows);
          credit.inc(u.flops * u.credited.length);
          break;
        }
        case 'fault':
          faults.inc({ kind: (e.data as EventMap['fault']).kind });
          break;
        case 'progress': {
          const p = e.data as EventMap['progress'];
          rates.set(p.job, p.rowsPerSecond);
          break;
        }
        case 'done': {
          const d = e.data as EventMap['done'];
          rates.delete(d.job);
          jobsEnded.inc({ status: d.status });
          break;
        }
        case 'lease':
          lease.observe((e.data as EventMap['lease']).ms / 1000);
          break;
        case 'block':
          blocks.inc();
          break;
        default:
      }
    }));
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
