/**
 * The coordinator's HTTP server: the versioned JSON API for partners (jobs over multipart,
 * status, outputs with Range), the network and chain views (workers, credit, blocks), the
 * Server-Sent Events stream, Prometheus metrics, a health check, the OpenAPI 3.1 document and
 * the dashboard — all on one port (default 127.0.0.1:9361).
 *
 * Built on fastify: route schemas (schemas.ts) validate requests with ajv and @fastify/swagger
 * generates /openapi.json from the same objects; @fastify/multipart hands each part of a job
 * upload over as a stream, which goes straight into the intake core (written to disk, limits
 * enforced as bytes arrive). Errors are problem documents (problem.ts). Who may call what:
 * auth.ts. Loaded only when `drill coordinator --http` is on.
 */
import { createReadStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import multipart from '@fastify/multipart';
import { Ajv } from 'ajv';
import type { Registry } from 'prom-client';
import type { Coordinator } from '../coordinator/service.ts';
import type { IntakeCore, IntakeSubmitOptions } from '../coordinator/intake/index.ts';
import { IntakeError, IntakeErrorCode } from '../coordinator/intake/index.ts';
import type { ChainService } from '../chain/service.ts';
import type { DrillNode } from '../net/node.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { DrillError, isDrillError } from '../util/errors.ts';
import type { Caller, TokenTable } from './auth.ts';
import { LOCAL_CALLER, authenticate, localRequestRefusal } from './auth.ts';
import { ApiErrorCode, problem, problemOf, schemaProblem } from './problem.ts';
import type { Problem, SchemaViolation } from './problem.ts';
import { parseRange } from './range.ts';
import { JobOptions, ROUTES, SHARED_SCHEMAS } from './schemas.ts';
import { EventHub } from './events.ts';
import type { HubEvent } from './events.ts';
import { ApiMetrics } from './metrics.ts';
import { blocksView, creditView, findBlock, jobView, workersView } from './views.ts';
import { dashboardAssets } from './dashboard.ts';

export interface ApiServerDeps {
  coordinator: Coordinator;
  intake: IntakeCore;
  node: DrillNode;
  chain?: ChainService | null;
  /** A prom-client registry that may already hold libp2p's metrics; a fresh one when absent. */
  registry?: Registry;
  logger?: Logger;
}

export interface ApiServerOptions {
  host: string;
  port: number;
  /** Bearer tokens → callers; null: no tokens, every caller is the local operator (loopback only). */
  tokens: TokenTable | null;
  /** Serve without tokens on a non-loopback address (the operator said so). */
  insecure: boolean;
  /** Event streams open at once: 64 dashboards and clients; each holds a socket and a listener. */
  maxStreams: number;
  /** Heartbeat comment on idle streams: 15 s keeps proxies (60 s idle timeouts) from cutting them. */
  heartbeatMs: number;
  /** Long poll of GET /v1/jobs/{id}?seen=N: 10 s, as the libp2p intake's. */
  pollMs: number;
}

export const defaultApiServerOptions: ApiServerOptions = { host: '127.0.0.1', port: 9361, tokens: null, insecure: false, maxStreams: 64, heartbeatMs: 15_000, pollMs: 10_000 };

/** A stream client whose unsent bytes pass this is too slow: dropped (it reconnects with Last-Event-ID). */
const MAX_STREAM_BACKLOG = 4 * 1024 * 1024;
/** The `options` part of a job upload is small JSON. */
const MAX_OPTIONS_BYTES = 64 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
}

export class ApiServer {
  readonly #app: FastifyInstance;
  readonly #hub: EventHub;
  readonly #metrics: ApiMetrics;
  readonly #streams: Set<() => void>;
  #url = '';

  private constructor(app: FastifyInstance, hub: EventHub, metrics: ApiMetrics, streams: Set<() => void>) {
    this.#app = app;
    this.#streams = streams;
    this.#hub = hub;
    this.#metrics = metrics;
  }

  /** `http://host:port` it listens on. */
  get url(): string {
    return this.#url;
  }

  get hub(): EventHub {
    return this.#hub;
  }

  /**
   * Build and start listening.
   * @throws the listen error (EADDRINUSE, EACCES) as a DrillError HTTP_LISTEN.
   */
  static async start(deps: ApiServerDeps, options: Partial<ApiServerOptions> = {}): Promise<ApiServer> {
    const opts = { ...defaultApiServerOptions, ...options };
    const log = (deps.logger ?? silentLogger).child('api');
    const chain = deps.chain ?? null;
    const hub = new EventHub(deps.coordinator, chain);
    hub.start();
    // Token holders (or the local caller) are partners of the intake: add them to its policy.
    const p = deps.intake.policy;
    const names = opts.tokens ? [...opts.tokens.values()].map((c) => c.partner) : [LOCAL_CALLER.partner];
    deps.intake.setPolicy({ open: p.open, partners: new Set([...p.partners, ...names]) });

    const streams = new Set<() => void>();
    const metrics = new ApiMetrics({ coordinator: deps.coordinator, chain, node: deps.node, hub, streams: () => streams.size }, deps.registry);
    const app = Fastify({ logger: false, forceCloseConnections: true, routerOptions: { maxParamLength: 300 }, bodyLimit: MAX_OPTIONS_BYTES, exposeHeadRoutes: true });
    const server = new ApiServer(app, hub, metrics, streams);
    try {
      await server.#routes(deps, opts, log);
      await app.listen({ host: opts.host, port: opts.port });
    } catch (e) {
      hub.stop();
      metrics.stop();
      await app.close().catch(() => undefined);
      throw new DrillError('HTTP_LISTEN', `--http ${opts.host}:${opts.port}: cannot listen (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const a = app.server.address() as AddressInfo;
    server.#url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    log.info('http api listening', { url: server.#url, auth: opts.tokens ? 'tokens' : 'local' });
    return server;
  }

  async stop(): Promise<void> {
    for (const end of [...this.#streams]) end();
    this.#hub.stop();
    this.#metrics.stop();
    await this.#app.close();
  }

  async #routes(deps: ApiServerDeps, opts: ApiServerOptions, log: Logger): Promise<void> {
    const app = this.#app;
    const { coordinator: coord, intake, node } = deps;
    const chain = deps.chain ?? null;
    const hub = this.#hub;

    // Responses are serialised as they are (the schemas document them; they never trim them).
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    for (const s of SHARED_SCHEMAS) app.addSchema(s);
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'matrix-drill coordinator API', version: '1.0.0', description: 'Partners submit batch inference jobs and fetch their outputs; operators watch workers, PoD, credit and the chain. Errors are RFC 9457 problem documents.' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: "a token from the coordinator's --api-tokens file (none needed on a coordinator without tokens, which serves loopback only)" } } },
        security: [{ bearer: [] }],
        tags: [{ name: 'jobs' }, { name: 'network' }, { name: 'chain' }, { name: 'events' }, { name: 'operations' }],
      },
      refResolver: { buildLocalReference: (json, _base, _frag, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    });
    await app.register(multipart, {
      limits: {
        // The intake enforces the job's byte limits as it writes; busboy's own cap is set above them.
        fileSize: intake.limits.maxJobBytes + 1,
        files: 65,
        fields: 4,
        fieldSize: MAX_OPTIONS_BYTES,
        parts: 70,
        headerPairs: 64,
      },
    });

    const send = (req: FastifyRequest, reply: FastifyReply, p: Problem): FastifyReply => {
      if (p.status === 401) reply.header('www-authenticate', 'Bearer realm="matrix-drill"');
      if (p.status === 413) reply.header('connection', 'close');
      return reply.code(p.status).type('application/problem+json').send({ ...p, instance: req.url.split('?')[0] });
    };

    app.decorateRequest('caller', null);
    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0]!;
      if (!opts.tokens) {
        const why = localRequestRefusal(req.headers.host, req.headers.origin, opts.insecure);
        if (why) return send(req, reply, problem(ApiErrorCode.FORBIDDEN, why));
        req.caller = LOCAL_CALLER;
        return;
      }
      if (!path.startsWith('/v1/') && path !== '/metrics') return;
      const q = path === '/v1/events' ? (req.query as { access_token?: unknown }).access_token : undefined;
      const c = authenticate(opts.tokens, req.headers.authorization, typeof q === 'string' ? q : undefined);
      if (!c) return send(req, reply, problem(ApiErrorCode.UNAUTHORIZED, `authorization: expected "Bearer TOKEN" with a token this coordinator knows, received ${req.headers.authorization === undefined ? 'nothing' : 'an unknown token'}`, { field: 'authorization' }));
      req.caller = c;
    });

    app.setErrorHandler((err, req, reply) => {
      const e = err as Error & { validation?: SchemaViolation[]; validationContext?: string; statusCode?: number; code?: string };
      if (e.validation && e.validation.length > 0) {
        const ctx = e.validationContext ?? 'body';
        const data = ctx === 'params' ? req.params : ctx === 'querystring' ? req.query : ctx === 'headers' ? req.headers : req.body;
        return send(req, reply, schemaProblem(ctx, e.validation[0]!, data));
      }
      if (isDrillError(e)) {
        const p = problemOf(e);
        if (p.status >= 500 && e.code !== IntakeErrorCode.INTAKE_FULL) log.error('api request failed', { url: req.url, code: e.code, error: e.message });
        return send(req, reply, p);
      }
      if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
        // fastify's and @fastify/multipart's own refusals (body too large, bad content type, part limits).
        const code = e.statusCode === 413 ? IntakeErrorCode.UPLOAD_TOO_LARGE : ApiErrorCode.BAD_REQUEST;
        return send(req, reply, { ...problem(code, e.message), status: e.statusCode });
      }
      log.error('api request failed', { url: req.url, error: String(e.stack ?? e) });
      return send(req, reply, problem(ApiErrorCode.INTERNAL, 'internal error: see the coordinator log'));
    });
    app.setNotFoundHandler((req, reply) => send(req, reply, problem(ApiErrorCode.NOT_FOUND, `path: expected one of the routes in /openapi.json, received ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`, { field: 'path' })));

    const caller = (req: FastifyRequest): Caller => req.caller ?? LOCAL_CALLER;
    const now = (): number => Date.now();
    const checkOptions = new Ajv({ allErrors: false, strict: false }).compile(JobOptions);

    // ---------------------------------------------------------------- jobs
    app.post('/v1/jobs', { schema: ROUTES.submit, validatorCompiler: () => () => true }, async (req, reply) => {
      const { partner } = caller(req);
      if (!req.isMultipart()) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `content-type: expected multipart/form-data (parts model, one per input, options), received ${JSON.stringify(req.headers['content-type'] ?? '')}`);
      intake.authorize(partner);
      const up = await intake.beginUpload(partner);
      let options: unknown = {};
      try {
        for await (const part of req.parts()) {
          if (part.type === 'field') {
            if (part.fieldname !== 'options') throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `${part.fieldname.slice(0, 80)}: expected a file part (the model or a model input's .npy) or the text part options, received a text part`);
            // A part sent with Content-Type application/json arrives parsed (secure-json-parse).
            options = typeof part.value === 'string' ? parseOptions(part.value) : part.value;
            continue;
          }
          if (part.fieldname === 'options') {
            options = parseOptions((await part.toBuffer()).toString('utf8'));
            continue;
          }
          const decl = part.fieldname === 'model'
            ? { role: 'model' as const, name: part.filename || 'model.onnx' }
            : { role: 'input' as const, name: part.fieldname };
          try {
            await intake.writeStream(partner, up.upload, decl, part.file);
          } catch (e) {
            // Name the part that passed a limit, as the partner sent it.
            if (isDrillError(e, IntakeErrorCode.UPLOAD_TOO_LARGE)) throw new IntakeError(IntakeErrorCode.UPLOAD_TOO_LARGE, `${part.fieldname}: ${e.message.replace(/^upload: /, '')}`);
            throw e;
          }
          if (part.file.truncated) throw new IntakeError(IntakeErrorCode.UPLOAD_TOO_LARGE, `${part.fieldname}: expected at most ${intake.limits.maxJobBytes} bytes, received more`);
        }
        if (!checkOptions(options)) throw { validation: checkOptions.errors, validationContext: 'options', options };
      } catch (e) {
        await intake.abortUpload(partner, up.upload).catch(() => undefined);
        const v = e as { validation?: SchemaViolation[]; options?: unknown };
        if (v.validation) return send(req, reply, schemaProblem('options', v.validation[0]!, v.options));
        throw e;
      }
      const r = await intake.submit(partner, up.upload, options as IntakeSubmitOptions);
      return reply.code(201).header('location', `/v1/jobs/${r.job}`).send({ id: r.job, rows: r.rows, units: r.units, unitRows: r.unitRows });
    });

    app.get('/v1/jobs', { schema: ROUTES.listJobs }, async (req) => {
      const c = caller(req);
      const limit = (req.query as { limit?: number }).limit ?? 100;
      const list = c.operator ? intake.listAll({ limit }) : intake.list(c.partner, { limit });
      return { jobs: list.map((s) => jobView(s, s.rows ?? 0, now())) };
    });

    const statusFor = (c: Caller, id: string) => {
      try {
        return intake.status(c.partner, id);
      } catch (e) {
        if (c.operator && isDrillError(e, IntakeErrorCode.JOB_UNKNOWN)) return intake.statusAny(id);
        throw e;
      }
    };

    app.get('/v1/jobs/:id', { schema: ROUTES.getJob }, async (req, reply) => {
      const c = caller(req);
      const { id } = req.params as { id: string };
      const seen = (req.query as { seen?: number }).seen;
      let st = statusFor(c, id);
      if (seen !== undefined && st.status === 'running' && st.partner === c.partner) {
        const ac = new AbortController();
        // The client went away (the response closes before it was sent): stop waiting.
        reply.raw.once('close', () => ac.abort());
        st = await intake.waitForUpdate(c.partner, id, seen, opts.pollMs, ac.signal);
      }
      return jobView(st, st.rows ?? 0, now());
    });

    app.delete('/v1/jobs/:id', { schema: ROUTES.deleteJob }, async (req) => {
      const { partner } = caller(req);
      const { id } = req.params as { id: string };
      let st = intake.status(partner, id);
      if (st.status === 'running') st = await intake.cancel(partner, id);
      else if (!st.freed) {
        await intake.release(partner, id);
        st = intake.status(partner, id);
      }
      return jobView(st, st.rows ?? 0, now());
    });

    app.get('/v1/jobs/:id/outputs/:name', { schema: ROUTES.output }, async (req, reply) => {
      const { partner } = caller(req);
      const { id, name } = req.params as { id: string; name: string };
      const f = await intake.outputFile(partner, id, name);
      const range = parseRange(req.headers.range, f.size);
      reply.header('accept-ranges', 'bytes').header('content-disposition', `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, '_')}"`);
      reply.type(name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
      if (range.kind === 'unsatisfiable') {
        reply.header('content-range', `bytes */${f.size}`);
        return send(req, reply, problem(ApiErrorCode.RANGE_NOT_SATISFIABLE, `range: expected bytes within 0..${Math.max(0, f.size - 1)} of ${name}, received ${JSON.stringify(req.headers.range)}`, { field: 'range' }));
      }
      if (range.kind === 'partial') {
        reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${f.size}`).header('content-length', range.end - range.start + 1);
        return reply.send(createReadStream(f.path, { start: range.start, end: range.end }));
      }
      reply.header('content-length', f.size);
      return reply.send(createReadStream(f.path));
    });

    // ---------------------------------------------------------------- network and chain
    app.get('/v1/workers', { schema: ROUTES.workers }, async () => ({ workers: workersView(coord, chain, (p) => node.peerScore(p), now()) }));
    app.get('/v1/credit', { schema: ROUTES.credit }, async () => creditView(coord, chain, now()));
    app.get('/v1/blocks', { schema: ROUTES.blocks }, async (req) => {
      const q = req.query as { from?: number; limit?: number };
      return blocksView(chain, q.from, q.limit ?? 50, now());
    });
    app.get('/v1/blocks/:id', { schema: ROUTES.block }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const b = findBlock(chain, id);
      if (!b) return send(req, reply, problem(ApiErrorCode.NOT_FOUND, `block: expected a canonical height or a known block hash, received ${JSON.stringify(id)}${chain ? '' : ' (this coordinator follows no chain: start it with --genesis)'}`, { field: 'id' }));
      return b;
    });

    // ---------------------------------------------------------------- events
    app.get('/v1/events', { schema: ROUTES.events, exposeHeadRoute: false }, async (req, reply) => {
      const c = caller(req);
      const job = (req.query as { job?: string }).job;
      if (job !== undefined) statusFor(c, job); // 404 for a job the caller cannot see
      if (this.#streams.size >= opts.maxStreams) return send(req, reply, problem(ApiErrorCode.TOO_MANY_STREAMS, `event streams: expected at most ${opts.maxStreams} open at once, received one more: try again later`));
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      const accept = (e: HubEvent): boolean => {
        if (job !== undefined && e.job !== job) return false;
        return e.job === undefined || c.operator || e.partner === c.partner;
      };
      let unsub: () => void = () => undefined;
      const end = (): void => {
        clearInterval(beat);
        unsub();
        this.#streams.delete(end);
        if (!res.writableEnded) res.end();
      };
      const write = (s: string): void => {
        if (res.writableLength > MAX_STREAM_BACKLOG) return end();
        res.write(s);
      };
      const beat = setInterval(() => write(': heartbeat\n\n'), opts.heartbeatMs);
      this.#streams.add(end);
      res.once('close', end);
      write(`retry: 2000\nid: ${hub.lastId()}\nevent: ready\ndata: ${JSON.stringify({ time: now() })}\n\n`);
      const last = req.headers['last-event-id'];
      unsub = hub.subscribe(accept, (e) => write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`), typeof last === 'string' ? last : undefined);
    });

    // ---------------------------------------------------------------- operations
    app.get('/metrics', { schema: ROUTES.metrics }, async (_req, reply) => {
      const m = await this.#metrics.render();
      return reply.type(m.contentType).send(m.text);
    });
    app.get('/healthz', { schema: ROUTES.health }, async () => ({
      ok: true, peer: node.peerId, workers: coord.workers().filter((w) => w.connected).length, jobsRunning: coord.runningJobs().length, chainHeight: chain ? chain.state.head.height : null,
    }));
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

    // ---------------------------------------------------------------- dashboard
    const assets = dashboardAssets();
    const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";
    const serveAsset = async (name: string, reply: FastifyReply): Promise<FastifyReply> => {
      const a = await assets.get(name);
      if (!a) {
        reply.callNotFound();
        return reply;
      }
      return reply.type(a.type).header('cache-control', 'no-cache').header('content-security-policy', csp).header('x-content-type-options', 'nosniff').send(a.body);
    };
    app.get('/', { schema: { hide: true } }, async (_req, reply) => serveAsset('index.html', reply));
    app.get('/assets/:name', { schema: { hide: true } }, async (req, reply) => serveAsset((req.params as { name: string }).name, reply));
  }
}

/** @throws IntakeError UPLOAD_BAD naming `options`. */
function parseOptions(text: string): unknown {
  if (text.length > MAX_OPTIONS_BYTES) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `options: expected at most ${MAX_OPTIONS_BYTES} bytes of JSON, received ${text.length}`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, `options: expected JSON (e.g. {"replicas": 2}), received ${JSON.stringify(text.slice(0, 60))} (${(e as Error).message})`);
  }
}
