/**
 * The API's JSON Schemas: fastify validates requests with them (ajv) and @fastify/swagger
 * turns the same objects into the OpenAPI 3.1 document at /openapi.json. Responses are
 * documented here and serialised with JSON.stringify (never trimmed to the schema).
 */

/** Job options a partner chooses at submit (the `options` part of POST /v1/jobs); the intake checks them further, as `drill run` does. */
export const JobOptions = {
  $id: 'JobOptions',
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 256, description: 'a name for the job (default: the model file name)' },
    policy: { type: 'string', maxLength: 256, description: "comparison policy: 'allclose:RTOL,ATOL', 'exact' or 'argmax' (default allclose:1e-3,1e-4)" },
    replicas: { type: 'integer', minimum: 1, maximum: 16, description: 'workers per unit (default 2)' },
    audit: { type: 'number', minimum: 0, maximum: 1, description: 'spot-check probability with replicas 1 (default 0)' },
    unitRows: { type: 'integer', minimum: 1, description: 'rows per work unit (default: ~40 GFLOP of work)' },
    batchAxes: {
      type: 'object', maxProperties: 256, propertyNames: { minLength: 1, maxLength: 256 },
      additionalProperties: { type: 'integer', minimum: 0, maximum: 64 },
      description: 'input/output name → the axis rows are split along (as drill run --batch-axis NAME=AXIS)',
    },
    broadcast: { type: 'array', maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 256 }, description: 'inputs sent whole to every unit / outputs taken whole (as drill run --broadcast NAME)' },
  },
} as const;

export const Problem = {
  $id: 'Problem',
  type: 'object',
  description: 'RFC 9457 problem document (application/problem+json)',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', description: 'the project error code (match on it)' },
    field: { type: 'string', description: 'the field at fault' },
    expected: { type: 'string' },
    received: { type: 'string' },
    instance: { type: 'string' },
  },
} as const;

export const Progress = {
  $id: 'Progress',
  type: 'object',
  properties: Object.fromEntries(['total', 'done', 'agreed', 'disputed', 'failed', 'unverified', 'unaudited', 'audited', 'inflight', 'reissued', 'reopened', 'rowsDone', 'rowsUnchecked', 'quarantined'].map((k) => [k, { type: 'integer' }])),
} as const;

export const Job = {
  $id: 'Job',
  type: 'object',
  required: ['id', 'name', 'status', 'partner', 'createdAt', 'files', 'freed', 'cancelled'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    partner: { type: 'string', description: "who submitted it ('' for a job started on the coordinator itself)" },
    status: { type: 'string', enum: ['running', 'done', 'failed'] },
    error: { type: 'string' },
    cancelled: { type: 'boolean' },
    rows: { type: 'integer' },
    rowsDone: { type: 'integer' },
    units: { type: 'integer' },
    unitsDone: { type: 'integer' },
    rowsPerSecond: { type: 'number' },
    etaMs: { type: ['number', 'null'], description: 'estimated ms to completion (null when unknown)' },
    progress: { $ref: 'Progress#' },
    report: { type: 'object', description: 'the job report (report.json), once the job ended' },
    createdAt: { type: 'integer' },
    finishedAt: { type: 'integer' },
    files: { type: 'array', items: { type: 'string' }, description: 'output files that can be downloaded now' },
    freed: { type: 'boolean', description: "the job's files were deleted (fetched and released, or expired)" },
  },
} as const;

export const Submitted = {
  $id: 'Submitted',
  type: 'object',
  required: ['id', 'rows', 'units', 'unitRows'],
  properties: { id: { type: 'string' }, rows: { type: 'integer' }, units: { type: 'integer' }, unitRows: { type: 'integer' } },
} as const;

export const Worker = {
  $id: 'Worker',
  type: 'object',
  required: ['peer', 'connected'],
  properties: {
    peer: { type: 'string' },
    connected: { type: 'boolean' },
    lastSeen: { type: 'integer', description: 'ms since the epoch: now while connected, else when it left' },
    device: { type: 'string' },
    threads: { type: 'integer' },
    score: { type: 'number', description: 'Device Share benchmark (GFLOP/s; a scheduling hint, never credit)' },
    gossipScore: { type: 'number' },
    units: { type: 'integer', description: 'decided units whose accepted result it produced' },
    unitsCredited: { type: 'integer' },
    credit: { type: 'number', description: 'verified FLOPs credited by this coordinator (forfeits deducted)' },
    faults: { type: 'integer', description: 'fault records against it' },
    chainCredit: { type: ['number', 'null'], description: 'credit in the canonical chain window (null without a chain)' },
    weightShare: { type: ['number', 'null'], description: 'its share of the current lottery weights' },
    blockShare: { type: ['number', 'null'], description: 'its share of the canonical blocks' },
    banned: { type: 'boolean', description: 'its lottery weight is banned by a fault' },
  },
} as const;

export const Credit = {
  $id: 'Credit',
  type: 'object',
  required: ['source', 'workers'],
  properties: {
    source: { type: 'string', enum: ['chain', 'coordinator'], description: 'the chain ledger (a coordinator that follows a chain), or this coordinator\'s own credit records' },
    epoch: { type: ['integer', 'null'] },
    height: { type: ['integer', 'null'] },
    totalWeight: { type: ['number', 'null'] },
    workers: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          peer: { type: 'string' }, credit: { type: 'number' }, unitsAgreed: { type: 'integer' }, unitsFaulty: { type: 'integer' }, faults: { type: 'integer' },
          weight: { type: ['number', 'null'] }, weightShare: { type: ['number', 'null'] }, banned: { type: 'boolean' }, blocks: { type: ['integer', 'null'] }, blockShare: { type: ['number', 'null'] },
        },
      },
    },
  },
} as const;

export const BlockSummary = {
  $id: 'BlockSummary',
  type: 'object',
  properties: {
    height: { type: 'integer' }, hash: { type: 'string' }, parent: { type: ['string', 'null'] }, slot: { type: 'integer' }, epoch: { type: 'integer' },
    producer: { type: 'string' }, credits: { type: 'integer' }, faults: { type: 'integer' }, canonical: { type: 'boolean' },
    credited: { type: 'object', additionalProperties: { type: 'number' }, description: 'peer → FLOPs this block credits' },
  },
} as const;

export const ChainInfo = {
  $id: 'ChainInfo',
  type: ['object', 'null'],
  properties: {
    chainId: { type: 'string' }, genesis: { type: 'string' }, head: { type: 'string' }, height: { type: 'integer' }, slot: { type: 'integer' }, epoch: { type: 'integer' },
    reorgs: { type: 'integer' }, forks: { type: 'integer', description: 'known blocks off the canonical chain (competing blocks settled by fork choice)' },
  },
} as const;

export const Blocks = {
  $id: 'Blocks',
  type: 'object',
  required: ['chain', 'blocks'],
  properties: { chain: { $ref: 'ChainInfo#' }, blocks: { type: 'array', items: { $ref: 'BlockSummary#' } } },
} as const;

export const Block = {
  $id: 'Block',
  type: 'object',
  properties: {
    summary: { $ref: 'BlockSummary#' },
    block: { type: ['object', 'null'], description: 'the block: header, credit records, faults, signature (null for genesis)' },
  },
} as const;

export const Health = {
  $id: 'Health',
  type: 'object',
  required: ['ok'],
  properties: { ok: { type: 'boolean' }, peer: { type: 'string' }, workers: { type: 'integer' }, jobsRunning: { type: 'integer' }, chainHeight: { type: ['integer', 'null'] } },
} as const;

/** Schemas registered with fastify (addSchema) and listed under components.schemas. */
export const SHARED_SCHEMAS = [JobOptions, Problem, Progress, Job, Submitted, Worker, Credit, BlockSummary, ChainInfo, Blocks, Block, Health];

const problemResponses = (...codes: number[]): Record<number, unknown> =>
  Object.fromEntries(codes.map((c) => [c, { description: 'problem document', content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } } }]));

export const ID_PARAM = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } } as const;

/** Route schemas (request validation + documentation). */
export const ROUTES = {
  submit: {
    summary: 'Submit a job (multipart: model, one part per model input, optional options)',
    description: "multipart/form-data: a file part `model` (the .onnx), one file part per model input named by the input's name (a .npy), and an optional text part `options` holding JobOptions as JSON. Parts are streamed to disk as they arrive.",
    tags: ['jobs'],
    consumes: ['multipart/form-data'],
    body: {
      type: 'object',
      required: ['model'],
      properties: { model: { type: 'string', contentMediaType: 'application/octet-stream', description: 'the ONNX model' }, options: { $ref: 'JobOptions#' } },
      additionalProperties: { type: 'string', contentMediaType: 'application/octet-stream', description: 'a .npy file for the model input of this name' },
    },
    response: { 201: { description: 'job accepted', $ref: 'Submitted#' }, ...problemResponses(400, 401, 403, 413, 422, 429, 503) },
  },
  listJobs: {
    summary: 'Your jobs, newest first (an operator sees every job)',
    tags: ['jobs'],
    querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
    response: { 200: { type: 'object', properties: { jobs: { type: 'array', items: { $ref: 'Job#' } } } }, ...problemResponses(400, 401) },
  },
  getJob: {
    summary: 'A job: status, rows and units done, rows/s, ETA, the report once it ended',
    description: 'With `seen=N` the answer waits (up to 10 s) until more than N units are done or the job ends: a long poll.',
    tags: ['jobs'],
    params: ID_PARAM,
    querystring: { type: 'object', additionalProperties: false, properties: { seen: { type: 'integer', minimum: 0 } } },
    response: { 200: { $ref: 'Job#' }, ...problemResponses(400, 401, 404) },
  },
  deleteJob: {
    summary: 'Cancel a running job; for an ended job, free its files (status and report stay)',
    tags: ['jobs'],
    params: ID_PARAM,
    response: { 200: { $ref: 'Job#' }, ...problemResponses(400, 401, 404) },
  },
  output: {
    summary: 'Download an output (.npy) or report.json, with Range support',
    tags: ['jobs'],
    params: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 }, name: { type: 'string', minLength: 1, maxLength: 256 } } },
    produces: ['application/octet-stream', 'application/json'],
    response: {
      200: { description: 'the whole file', content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
      206: { description: 'the requested byte range', content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
      ...problemResponses(401, 404, 416),
    },
  },
  workers: {
    summary: 'Workers: device, threads, Device Share score, connected/last seen, units, verified credit, faults',
    tags: ['network'],
    response: { 200: { type: 'object', properties: { workers: { type: 'array', items: { $ref: 'Worker#' } } } }, ...problemResponses(401) },
  },
  credit: {
    summary: 'Credit ledger and current lottery weights (the chain\'s, or this coordinator\'s own records)',
    tags: ['network'],
    response: { 200: { $ref: 'Credit#' }, ...problemResponses(401) },
  },
  blocks: {
    summary: 'Canonical blocks from a height (default: the latest)',
    tags: ['chain'],
    querystring: { type: 'object', additionalProperties: false, properties: { from: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } } },
    response: { 200: { $ref: 'Blocks#' }, ...problemResponses(400, 401) },
  },
  block: {
    summary: 'One block by height (canonical) or hash (any known block)',
    tags: ['chain'],
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^([0-9]{1,12}|[0-9a-fA-F]{64})$' } } },
    response: { 200: { $ref: 'Block#' }, ...problemResponses(400, 401, 404) },
  },
  events: {
    summary: 'Server-Sent Events: job, progress, unit, fault, done, worker, block, head, reorg',
    description: 'text/event-stream. Each event has an id; reconnect with Last-Event-ID to receive what you missed (a `reset` event says to reload when it is too old). Heartbeat comments every 15 s. Filter one job with ?job=ID. Browsers may pass the token as ?access_token=.',
    tags: ['events'],
    querystring: { type: 'object', additionalProperties: false, properties: { job: { type: 'string', maxLength: 128 }, access_token: { type: 'string', maxLength: 512 } } },
    produces: ['text/event-stream'],
    response: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...problemResponses(400, 401, 503) },
  },
  metrics: {
    summary: 'Prometheus metrics (text exposition format)',
    tags: ['operations'],
    produces: ['text/plain'],
    response: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, ...problemResponses(401) },
  },
  health: {
    summary: 'Liveness: 200 while the coordinator runs',
    tags: ['operations'],
    security: [],
    response: { 200: { $ref: 'Health#' } },
  },
} as const;
