/**
 * Terminal progress for long jobs and the end-of-job summary table. On a TTY the bar redraws
 * in place (stderr, at most ~10 times a second); otherwise a plain line every few seconds, so
 * CI logs and pipes stay readable.
 */
import type { Progress } from '../coordinator/scheduler.ts';
import type { JobReport } from '../coordinator/service.ts';

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Minimum ms between redraws on a TTY. */
  ttyMs?: number;
  /** Minimum ms between lines when not a TTY. */
  lineMs?: number;
}

export class ProgressBar {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #start = Date.now();
  readonly #totalRows: number;
  readonly #ttyMs: number;
  readonly #lineMs: number;
  #last = 0;
  #drawn = false;
  extra = '';

  constructor(totalRows: number, opts: ProgressOptions = {}) {
    this.#out = opts.stream ?? process.stderr;
    this.#tty = Boolean(this.#out.isTTY);
    this.#totalRows = totalRows;
    this.#ttyMs = opts.ttyMs ?? 100;
    // DRILL_PROGRESS_MS overrides the non-TTY line interval (tests follow progress line by line).
    this.#lineMs = opts.lineMs ?? (process.env.DRILL_PROGRESS_MS !== undefined ? Number(process.env.DRILL_PROGRESS_MS) : 2000);
  }

  update(p: Progress, force = false): void {
    const now = Date.now();
    if (!force && now - this.#last < (this.#tty ? this.#ttyMs : this.#lineMs)) return;
    this.#last = now;
    const line = formatProgress(p, this.#totalRows, now - this.#start) + (this.extra ? `  ${this.extra}` : '');
    if (this.#tty) {
      this.#out.write(`\r\x1b[2K${line}`);
      this.#drawn = true;
    } else this.#out.write(line + '\n');
  }

  /** Print a message above the bar. */
  log(msg: string): void {
    if (this.#tty && this.#drawn) this.#out.write('\r\x1b[2K');
    this.#out.write(msg + '\n');
    this.#drawn = false;
  }

  done(): void {
    if (this.#tty && this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }
}

export function formatProgress(p: Progress, totalRows: number, elapsedMs: number): string {
  const frac = p.total ? p.done / p.total : 1;
  const width = 28;
  const fill = Math.round(frac * width);
  const rate = elapsedMs > 0 ? (p.rowsDone * 1000) / elapsedMs : 0;
  const left = totalRows - p.rowsDone;
  const eta = rate > 0 ? formatMs((left / rate) * 1000) : '?';
  const disputes = p.disputed ? `  disputed ${p.disputed}` : '';
  const re = p.reissued ? `  re-issued ${p.reissued}` : '';
  const q = p.quarantined ? `  quarantined ${p.quarantined}` : '';
  const ro = p.reopened ? `  reopened ${p.reopened}` : '';
  return `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}%  units ${p.done}/${p.total}  rows ${p.rowsDone}/${totalRows}  ${fmtNum(rate)} rows/s  ETA ${eta}${disputes}${q}${ro}${re}`;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 90) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function fmtNum(x: number): string {
  if (x >= 1e12) return `${(x / 1e12).toFixed(2)} T`;
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)} k`;
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r, ri) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ') + (ri === 0 ? '\n' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n');
}

/** The end-of-job summary a person reads. */
export function formatSummary(r: JobReport, outDir: string): string {
  const lines: string[] = [];
  lines.push(`job ${r.name} (${r.job}): ${r.status === 'done' ? 'DONE' : 'FAILED'}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  const checking = r.audit > 0 ? `1 replica each, ${+(r.audit * 100).toFixed(1)}% audited by a second worker` : `${r.replicas} replicas each`;
  lines.push(`  rows ${r.rows} in ${r.units.total} units of ≤${r.unitRows} rows, ${checking}, policy ${r.policy}`);
  const extra = [
    r.units.unverified ? `${r.units.unverified} unverified (replicas = 1)` : '',
    r.audit > 0 ? `${r.units.audited} audits, ${r.units.unaudited} accepted unaudited (${r.rowsUnchecked} rows checked by no second worker)` : '',
    r.units.reopened ? `${r.units.reopened} reopened (a worker they rested on was found faulty)` : '',
    r.units.reissued ? `${r.units.reissued} re-issued` : '',
  ].filter((x) => x);
  lines.push(`  units: ${r.units.agreed} agreed, ${r.units.disputed} disputed (settled by a jury), ${r.units.failed} failed${extra.map((x) => `, ${x}`).join('')}`);
  lines.push(`  throughput: ${fmtNum(r.rowsPerSecond)} rows/s over ${formatMs(r.elapsedMs)}; verified compute credited: ${fmtNum(r.totalCredit)}FLOP`);
  lines.push('');
  const rows = [['worker', 'cheater', 'units run', 'agreed', 'faulty', 'quarantined', 'credit (FLOP)']];
  for (const w of r.workers) rows.push([shortPeer(w.peer), w.cheater ? 'yes' : 'no', String(w.unitsRun), String(w.unitsAgreed), String(w.unitsFaulty), w.quarantined ? `yes (${w.faultReasons.length > 2 ? `${w.faultReasons.slice(0, 2).join(', ')}, …` : w.faultReasons.join(', ')})` : 'no', w.quarantined ? '0 (forfeited)' : fmtNum(w.credit)]);
  lines.push(table(rows).split('\n').map((l) => '  ' + l).join('\n'));
  lines.push('');
  if (r.status === 'done') {
    for (const [name, path] of Object.entries(r.outputs)) lines.push(`  output ${name}: ${path}`);
  }
  lines.push(`  report: ${outDir}/report.json`);
  return lines.join('\n');
}

export function shortPeer(p: string): string {
  return p.length > 16 ? `${p.slice(0, 8)}…${p.slice(-6)}` : p;
}
