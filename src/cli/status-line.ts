/**
 * One status line at the bottom of a terminal: on a TTY it is redrawn in place and messages
 * print above it; otherwise (a log file, a pipe) it is printed as a plain line every
 * `lineMs`, so logs stay readable. `drill worker` shows its earnings with it.
 */
import { fmtNum } from './progress.ts';

export interface WorkerStatus {
  units: number;
  rows: number;
  /** Verified FLOPs credited to this worker in the canonical chain window; null without a chain. */
  credit: number | null;
  /** Fault records against it in the chain; null without a chain. */
  faults: number | null;
  /** Its share of the current lottery weights (0..1); null without a chain. */
  weightShare: number | null;
  /** Chain height; null without a chain. */
  height: number | null;
  /** Coordinators it is joined to. */
  joined: number;
}

/** The worker's status line (pure). */
export function formatWorkerStatus(s: WorkerStatus): string {
  const parts = [`units ${s.units}`, `rows ${s.rows}`];
  if (s.credit === null) parts.push('verified credit n/a (no --genesis)');
  else {
    parts.push(`verified credit ${fmtNum(s.credit)}${s.credit >= 1e4 ? '' : ' '}FLOP`, `faults ${s.faults ?? 0}`, `lottery weight ${((s.weightShare ?? 0) * 100).toFixed(2)}%`, `chain height ${s.height ?? 0}`);
  }
  parts.push(s.joined > 0 ? `joined ${s.joined}` : 'not joined');
  return parts.join(' | ');
}

export class StatusLine {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #lineMs: number;
  readonly #render: () => string;
  #timer: NodeJS.Timeout | null = null;
  #drawn = false;
  #lastLine = '';

  /** `render` is called at every redraw; on a TTY every `ttyMs` (1 s), else a line every `lineMs` (10 s). */
  constructor(render: () => string, opts: { stream?: NodeJS.WriteStream; ttyMs?: number; lineMs?: number } = {}) {
    this.#out = opts.stream ?? process.stdout;
    this.#tty = Boolean(this.#out.isTTY);
    // DRILL_STATUS_MS overrides the non-TTY line interval (tests read the line without waiting 10 s).
    this.#lineMs = opts.lineMs ?? (process.env.DRILL_STATUS_MS !== undefined ? Number(process.env.DRILL_STATUS_MS) : 10_000);
    this.#render = render;
    this.#timer = setInterval(() => this.draw(), this.#tty ? (opts.ttyMs ?? 1000) : this.#lineMs);
    this.#timer.unref();
  }

  get tty(): boolean {
    return this.#tty;
  }

  /** Redraw now (TTY), or print the line if it changed (not a TTY). */
  draw(): void {
    const line = this.#render();
    if (this.#tty) {
      this.#out.write(`\r\x1b[2K${line}`);
      this.#drawn = true;
    } else if (line !== this.#lastLine) this.#out.write(line + '\n');
    this.#lastLine = line;
  }

  /** Print a message above the status line. */
  log(msg: string): void {
    if (this.#tty && this.#drawn) this.#out.write('\r\x1b[2K');
    this.#out.write(msg + '\n');
    if (this.#tty && this.#drawn) this.#out.write(this.#lastLine);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#tty && this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }
}
