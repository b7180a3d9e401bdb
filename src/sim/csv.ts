/**
 * A buffered, synchronous CSV file writer (the simulator's I/O shell). Rows are appended to a
 * string buffer and flushed to disk every FLUSH_BYTES, so a 100,000-slot CSV streams to disk
 * in constant memory and the simulation loop never awaits.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

/** 64 KiB: large enough to amortise the write syscall, small enough to keep memory flat. */
const FLUSH_BYTES = 64 * 1024;

export class CsvFileWriter {
  readonly #fd: number;
  #buf = '';
  #closed = false;

  /** Create (truncate) `path` and write the header line. */
  constructor(path: string, header: string) {
    this.#fd = openSync(path, 'w');
    this.row(header);
  }

  /** Append one line (without its newline). */
  row(line: string): void {
    this.#buf += line + '\n';
    if (this.#buf.length >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.#buf.length) writeSync(this.#fd, this.#buf);
    this.#buf = '';
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    closeSync(this.#fd);
    this.#closed = true;
  }
}
