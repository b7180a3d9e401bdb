/**
 * One job's upload, written to disk as it arrives (never buffered whole): a model and its
 * input files under `<dir>/`, with byte accounting enforced on every write.
 *
 * Files are declared with their size (`declare`) and then written in chunks at their offset
 * (`writeChunk`: resumable, no gaps), or streamed from the start without a declared size
 * (`writeStream`: an HTTP multipart part) — either way the upload's total may never pass the
 * job's byte limit and the model never the model limit; a write that would is refused before
 * any of its bytes reach the disk (a stream is cut off at the limit).
 */
import { mkdir, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IntakeError, IntakeErrorCode } from './errors.ts';

/** A file of an upload: the model, or the input for a model input name. */
export interface UploadFileDecl {
  role: 'model' | 'input';
  /** The model input's name (inputs); informational for the model. */
  name: string;
  /** Declared size in bytes; absent for a streamed file whose size is not known in advance. */
  bytes?: number;
}

export interface UploadFileState {
  index: number;
  role: 'model' | 'input';
  name: string;
  /** Declared size, or undefined while a streamed file is still arriving. */
  bytes: number | undefined;
  /** Bytes written from offset 0 without gaps. */
  received: number;
  /** Where it is written. */
  path: string;
}

/** At most one model and this many inputs (the grid protocol's limit on inputs per lease). */
export const MAX_UPLOAD_INPUTS = 64;

export class Upload {
  readonly id: string;
  readonly partner: string;
  readonly dir: string;
  readonly #maxBytes: number;
  readonly #maxModelBytes: number;
  readonly #files: UploadFileState[] = [];
  readonly #handles = new Map<number, Promise<FileHandle>>();
  /** Bytes accounted to the upload: declared sizes plus what streamed files wrote so far. */
  #bytes = 0;
  lastActivity: number;
  #closed = false;

  constructor(id: string, partner: string, dir: string, limits: { maxBytes: number; maxModelBytes: number }, now: number) {
    this.id = id;
    this.partner = partner;
    this.dir = dir;
    this.#maxBytes = limits.maxBytes;
    this.#maxModelBytes = limits.maxModelBytes;
    this.lastActivity = now;
  }

  /** Bytes accounted so far (declared or streamed). */
  get bytes(): number {
    return this.#bytes;
  }

  files(): readonly Readonly<UploadFileState>[] {
    return this.#files;
  }

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'inputs'), { recursive: true, mode: 0o700 });
  }

  /**
   * Add a file; returns its index.
   * @throws IntakeError UPLOAD_BAD (second model, too many inputs, duplicate input name, bad
   *   size), UPLOAD_TOO_LARGE (the declared bytes pass a limit).
   */
  declare(f: UploadFileDecl): number {
    this.#open();
    if (f.role !== 'model' && f.role !== 'input') throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file role: expected model or input, received ${JSON.stringify(f.role)}`);
    if (typeof f.name !== 'string' || f.name.length === 0 || f.name.length > 256) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file name: expected 1..256 characters, received ${JSON.stringify(String(f.name).slice(0, 40))}`);
    if (f.bytes !== undefined && (!Number.isSafeInteger(f.bytes) || f.bytes < 0)) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file ${f.name}: bytes: expected a non-negative integer, received ${String(f.bytes)}`);
    if (f.role === 'model' && this.#files.some((x) => x.role === 'model')) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, 'files: expected one model, received a second');
    if (f.role === 'input') {
      if (this.#files.filter((x) => x.role === 'input').length >= MAX_UPLOAD_INPUTS) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `files: expected at most ${MAX_UPLOAD_INPUTS} inputs`);
      if (this.#files.some((x) => x.role === 'input' && x.name === f.name)) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `input ${JSON.stringify(f.name)}: expected each input once, received it twice`);
    }
    const bytes = f.bytes ?? 0;
    if (f.role === 'model' && bytes > this.#maxModelBytes) throw this.#tooLarge(`model of at most ${this.#maxModelBytes} bytes`, `${bytes} bytes`);
    if (this.#bytes + bytes > this.#maxBytes) throw this.#tooLarge(`model + inputs of at most ${this.#maxBytes} bytes per job`, `${this.#bytes + bytes} bytes`);
    this.#bytes += bytes;
    const index = this.#files.length;
    // Index-based names: input names are the partner's and may hold any character.
    const path = f.role === 'model' ? join(this.dir, 'model.onnx') : join(this.dir, 'inputs', `${index}.npy`);
    this.#files.push({ index, role: f.role, name: f.name, bytes: f.bytes, received: 0, path });
    return index;
  }

  /**
   * Write `chunk` at `offset` of a declared file. Offsets may repeat bytes already received (a
   * resent chunk) but never leave a gap; nothing past the declared size is accepted.
   * @returns bytes of the file received so far.
   * @throws IntakeError UPLOAD_BAD (unknown file, undeclared size, gap, past the end); fs errors.
   */
  async writeChunk(file: number, offset: number, chunk: Uint8Array, now: number): Promise<number> {
    this.#open();
    const f = this.#file(file);
    if (f.bytes === undefined) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file ${file}: chunks need a declared size; stream it instead`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > f.received) {
      throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file ${file} offset: expected 0..${f.received} (no gaps), received ${String(offset)}`, { received: f.received });
    }
    if (offset + chunk.length > f.bytes) {
      throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file ${file}: expected at most ${f.bytes} bytes (as declared), received a chunk ending at ${offset + chunk.length}`);
    }
    await this.#write(f, chunk, offset);
    f.received = Math.max(f.received, offset + chunk.length);
    this.lastActivity = now;
    return f.received;
  }

  /**
   * Stream a whole file from its start (e.g. one multipart part). A declared size must be met
   * exactly; an undeclared file counts against the limits as it arrives and is cut off (error,
   * file deleted) as soon as a limit would be passed.
   * @returns bytes written.
   * @throws IntakeError UPLOAD_TOO_LARGE, UPLOAD_BAD (size differs from the declared one); the
   *   source's own errors; fs errors.
   */
  async writeStream(file: number, source: AsyncIterable<Uint8Array>, now: () => number): Promise<number> {
    this.#open();
    const f = this.#file(file);
    if (f.received !== 0) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file ${file}: already has ${f.received} bytes; a stream writes a file from its start`);
    let off = 0;
    try {
      for await (const chunk of source) {
        const end = off + chunk.length;
        if (f.bytes !== undefined) {
          if (end > f.bytes) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file ${file}: expected ${f.bytes} bytes (as declared), received more`);
        } else {
          if (f.role === 'model' && end > this.#maxModelBytes) throw this.#tooLarge(`model of at most ${this.#maxModelBytes} bytes`, `more than ${this.#maxModelBytes} bytes`);
          if (this.#bytes + chunk.length > this.#maxBytes) throw this.#tooLarge(`model + inputs of at most ${this.#maxBytes} bytes per job`, `more than ${this.#maxBytes} bytes`);
        }
        await this.#write(f, chunk, off);
        if (f.bytes === undefined) this.#bytes += chunk.length;
        off = end;
        f.received = off;
        this.lastActivity = now();
      }
    } catch (e) {
      await this.#discard(f);
      throw e;
    }
    if (f.bytes === undefined) f.bytes = off;
    else if (off !== f.bytes) {
      await this.#discard(f);
      throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file ${file}: expected ${f.bytes} bytes (as declared), received ${off}`);
    }
    return off;
  }

  /**
   * The files, checked complete: the model path and input name → path.
   * @throws IntakeError UPLOAD_BAD (no model, no input, a file not fully received).
   */
  complete(): { model: string; inputs: Record<string, string> } {
    this.#open();
    const model = this.#files.find((f) => f.role === 'model');
    if (!model) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, 'files: expected a model, received none');
    const inputs = this.#files.filter((f) => f.role === 'input');
    if (inputs.length === 0) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, 'files: expected at least one input, received none');
    for (const f of this.#files) {
      if (f.bytes === undefined || f.received !== f.bytes) {
        throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file ${f.index} (${f.role} ${f.name}): expected ${f.bytes ?? '?'} bytes, received ${f.received}: the upload is not complete`);
      }
    }
    return { model: model.path, inputs: Object.fromEntries(inputs.map((f) => [f.name, f.path])) };
  }

  /** Close the open files (the folder stays: the job runs from it). */
  async close(): Promise<void> {
    this.#closed = true;
    const hs = [...this.#handles.values()];
    this.#handles.clear();
    for (const h of hs) await h.then((x) => x.close()).catch(() => undefined);
  }

  /** Close and delete everything (an abandoned or refused upload). */
  async destroy(): Promise<void> {
    await this.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  #open(): void {
    if (this.#closed) throw new IntakeError(IntakeErrorCode.UPLOAD_UNKNOWN, `upload ${this.id} is closed`);
  }

  #file(i: number): UploadFileState {
    const f = Number.isSafeInteger(i) ? this.#files[i] : undefined;
    if (!f) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `file: expected an index in 0..${this.#files.length - 1}, received ${String(i)}`);
    return f;
  }

  async #write(f: UploadFileState, chunk: Uint8Array, offset: number): Promise<void> {
    let h = this.#handles.get(f.index);
    if (!h) {
      h = open(f.path, 'w', 0o600);
      this.#handles.set(f.index, h);
      h.catch(() => this.#handles.delete(f.index));
    }
    const fh = await h;
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async #discard(f: UploadFileState): Promise<void> {
    if (f.bytes === undefined) this.#bytes -= f.received;
    f.received = 0;
    const h = this.#handles.get(f.index);
    this.#handles.delete(f.index);
    await h?.then((x) => x.close()).catch(() => undefined);
    await rm(f.path, { force: true });
  }

  #tooLarge(expected: string, received: string): IntakeError {
    return new IntakeError(IntakeErrorCode.UPLOAD_TOO_LARGE, `upload: expected ${expected}, received ${received}`, { limit: this.#maxBytes });
  }
}
