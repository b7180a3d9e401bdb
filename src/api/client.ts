/**
 * The HTTP API's client, for `drill submit --api` and `drill status --api`: uploads a job as one
 * streamed multipart request (files read from disk as they are sent, never whole), follows it
 * by long poll, downloads outputs (written as `.partial`, renamed when complete), and reads the
 * network views. A coordinator's refusal (a problem document) becomes a USER_INPUT error
 * carrying its detail (one clear line, exit 2); an unreachable coordinator is HTTP_UNREACHABLE.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DrillError, UserError } from '../util/errors.ts';
import type { IntakeSubmitOptions } from '../coordinator/intake/core.ts';
import type { JobView, WorkerView, CreditView, BlockSummaryView, ChainInfoView } from './views.ts';

export interface UploadFile {
  role: 'model' | 'input';
  /** The model input's name (inputs). */
  name: string;
  path: string;
  bytes: number;
}

/** Statuses whose problem a person can act on (exit 2), as the libp2p intake's refusals. */
const REFUSED = new Set([400, 401, 403, 404, 409, 413, 416, 422, 429]);

export class ApiClient {
  readonly #base: string;
  readonly #token: string | undefined;

  /** @throws UserError naming --api for a URL that is not http(s). */
  constructor(base: string, token?: string) {
    let u: URL;
    try {
      u = new URL(base);
    } catch {
      throw new UserError('--api', "the coordinator's HTTP URL, e.g. http://127.0.0.1:9361", base);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError('--api', 'an http:// or https:// URL', base);
    this.#base = u.origin + u.pathname.replace(/\/+$/, '');
    this.#token = token;
  }

  get base(): string {
    return this.#base;
  }

  /**
   * Upload `files` (model first) and `options` in one multipart request; resolves with the job.
   * @throws DrillError USER_INPUT when the coordinator refuses; HTTP_UNREACHABLE, HTTP_ERROR otherwise.
   */
  async submit(files: UploadFile[], options: IntakeSubmitOptions): Promise<{ id: string; rows: number; units: number; unitRows: number }> {
    const boundary = `----drill${randomBytes(12).toString('hex')}`;
    const head = (f: UploadFile): string => {
      const field = f.role === 'model' ? 'model' : f.name;
      if (/["\r\n]/.test(field)) throw new UserError(`input ${JSON.stringify(f.name)}`, 'a model input name without quotes or line breaks (to send it as a multipart part name; use --to instead)', f.name);
      return `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${basename(f.path).replace(/["\r\n]/g, '_')}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    };
    const opts = JSON.stringify(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)));
    const optsPart = `--${boundary}\r\nContent-Disposition: form-data; name="options"\r\nContent-Type: application/json\r\n\r\n${opts}\r\n`;
    const tail = `--${boundary}--\r\n`;
    const heads = files.map(head);
    const length = heads.reduce((a, h, i) => a + Buffer.byteLength(h) + files[i]!.bytes + 2, 0) + Buffer.byteLength(optsPart) + Buffer.byteLength(tail);
    async function* body(): AsyncGenerator<Uint8Array> {
      yield Buffer.from(optsPart);
      for (const [i, f] of files.entries()) {
        yield Buffer.from(heads[i]!);
        let n = 0;
        for await (const chunk of createReadStream(f.path) as AsyncIterable<Buffer>) {
          n += chunk.length;
          yield chunk;
        }
        if (n !== f.bytes) throw new DrillError('USER_INPUT', `${f.path}: the file changed size while it was being uploaded`);
        yield Buffer.from('\r\n');
      }
      yield Buffer.from(tail);
    }
    const res = await this.#fetch('/v1/jobs', {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(length) },
      body: Readable.toWeb(Readable.from(body())) as ReadableStream<Uint8Array>,
      duplex: 'half',
    });
    return (await this.#json(res)) as { id: string; rows: number; units: number; unitRows: number };
  }

  /** A job's status; with `seen`, a long poll (answers when more than `seen` units are done, the job ends, or ~10 s pass). */
  async job(id: string, seen?: number): Promise<JobView> {
    return (await this.get(`/v1/jobs/${encodeURIComponent(id)}${seen !== undefined ? `?seen=${seen}` : ''}`)) as JobView;
  }

  /** Cancel a running job, or free an ended job's files. */
  async delete(id: string): Promise<JobView> {
    return (await this.#json(await this.#fetch(`/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' }))) as JobView;
  }

  /** Download an output to `dest` (written as `dest.partial`, renamed when complete). */
  async download(id: string, file: string, dest: string): Promise<void> {
    const res = await this.#fetch(`/v1/jobs/${encodeURIComponent(id)}/outputs/${encodeURIComponent(file)}`, {});
    if (!res.ok || !res.body) await this.#json(res);
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(`${dest}.partial`));
    await rename(`${dest}.partial`, dest);
  }

  workers(): Promise<{ workers: WorkerView[] }> {
    return this.get('/v1/workers') as Promise<{ workers: WorkerView[] }>;
  }

  jobs(limit = 20): Promise<{ jobs: JobView[] }> {
    return this.get(`/v1/jobs?limit=${limit}`) as Promise<{ jobs: JobView[] }>;
  }

  credit(): Promise<CreditView> {
    return this.get('/v1/credit') as Promise<CreditView>;
  }

  blocks(limit = 10): Promise<{ chain: ChainInfoView | null; blocks: BlockSummaryView[] }> {
    return this.get(`/v1/blocks?limit=${limit}`) as Promise<{ chain: ChainInfoView | null; blocks: BlockSummaryView[] }>;
  }

  /** GET a JSON route. @throws as submit. */
  async get(path: string): Promise<unknown> {
    return this.#json(await this.#fetch(path, {}));
  }

  async #fetch(path: string, init: RequestInit & { duplex?: 'half' }): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#token) headers.set('authorization', `Bearer ${this.#token}`);
    try {
      return await fetch(this.#base + path, { ...init, headers });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      if (e instanceof DrillError) throw e;
      if ((cause as { code?: string } | undefined) && (cause as DrillError).code === 'USER_INPUT') throw cause;
      throw new DrillError('HTTP_UNREACHABLE', `${this.#base}: cannot reach the coordinator (${cause?.code ?? cause?.message ?? (e as Error).message})`);
    }
  }

  async #json(res: Response): Promise<unknown> {
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (res.ok) return body;
    const p = (body ?? {}) as { detail?: string; code?: string };
    const detail = p.detail ?? `HTTP ${res.status}`;
    if (res.status === 401) throw new DrillError('USER_INPUT', `the coordinator wants a valid API token: pass --token TOKEN (${detail})`, { status: 401, remoteCode: p.code });
    if (p.code === 'PARTNER_REFUSED') throw new DrillError('USER_INPUT', `the coordinator does not accept jobs from this partner: ${detail}`, { status: res.status, remoteCode: p.code });
    if (REFUSED.has(res.status)) throw new DrillError(res.status === 404 && p.code === 'JOB_UNKNOWN' ? 'JOB_LOST' : 'USER_INPUT', `the coordinator refused: ${detail}`, { status: res.status, remoteCode: p.code });
    throw new DrillError('HTTP_ERROR', `${this.#base}: HTTP ${res.status}: ${detail}`, { status: res.status, remoteCode: p.code });
  }
}
