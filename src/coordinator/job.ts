/**
 * Job intake: turn what a partner gave (CLI flags or a job manifest) into a validated JobSpec.
 * Every check happens here, before any unit is scheduled, and every failure is a UserError that
 * names the field, what was expected and what was received: an unreadable or non-ONNX model,
 * an input name the model does not have (or a missing one), a dtype or shape that does not
 * match, a malformed .npy, inputs with different row counts, an output directory that cannot
 * be written.
 */
import { readFile, mkdir, access, writeFile, rm, stat } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { dirname, resolve, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError, isDrillError, DrillError } from '../util/errors.ts';
import { sha256Hex } from '../util/bytes.ts';
import type { Dtype } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, elementCount } from '../util/tensor.ts';
import { readNpyHeader } from '../util/npy.ts';
import { inspectModel } from '../onnx/inspect.ts';
import type { ModelInfo } from '../onnx/inspect.ts';
import type { Policy } from '../pod/policy.ts';
import { parsePolicy, DEFAULT_POLICY } from '../pod/policy.ts';
import { defaultMaxReplicas } from '../pod/quorum.ts';

export interface JobRequest {
  /** Path to the .onnx model. */
  model: string;
  /** Input name → .npy path. A single-input model may use the name '' (resolved from the model). */
  inputs: Record<string, string>;
  outDir: string;
  replicas?: number;
  /** Spot-check probability (replicas 1): each unit is re-run by a second random worker with this probability. */
  audit?: number;
  unitRows?: number;
  policy?: string;
  name?: string;
  /**
   * FLOPs per row as a manifest states it — informational only: credit is always the cost
   * computed from the model graph, never a number someone typed (a partner colluding with a
   * worker could otherwise inflate the worker's credit).
   */
  flopsPerRow?: number;
}

export interface JobInput {
  path: string;
  dtype: Dtype;
  dims: number[];
}

export interface JobSpec {
  id: string;
  name: string;
  modelPath: string;
  modelHash: string;
  modelBytes: number;
  inputs: Record<string, JobInput>;
  outputNames: string[];
  /**
   * What the model says each output is: its element type and dims (numbers where fixed, a
   * name or null where symbolic). A revealed result is checked against it before PoD.
   */
  outputs: { name: string; dtype: string; dims: (number | string | null)[] }[];
  rows: number;
  unitRows: number;
  replicas: number;
  /** Spot-check probability in [0, 1]; 0 = no audits (replicas > 1 replicate every unit). */
  audit: number;
  maxReplicas: number;
  policy: Policy;
  flopsPerRow: number;
  outDir: string;
  batchDim: ModelInfo['batchDim'];
}

/**
 * Default unit size, when the partner does not choose `unitRows`. A unit costs a fixed ~10 ms of
 * coordinator + worker main-thread CPU on loopback whatever its size (two libp2p requests of
 * ~2 ms each — commit with the next claim, reveal — each a stream with protocol negotiation;
 * hashing, a store row, an output write), so units must carry enough work to bury that, yet stay
 * small enough that a lost worker costs little, the last units of a job do not leave threads
 * idle for long, and work spreads over every worker. Measured with `npm run bench`
 * (docs/BENCHMARKS.md):
 *
 * - TARGET_UNIT_FLOPS = 40 GFLOP: ~0.4 s on one core of the development machine (the cnn runs
 *   at ~100 GFLOP/s a core there), a few seconds on an older CPU; cnn: 174 rows. FLOPs from the
 *   graph predict CPU time well for the compute-heavy cnn and the tiny mlp alike. 0.4 s units
 *   keep the fixed cost near 2%, while the job's last unit idles a thread for ~0.2 s on
 *   average. At 2.5e8 (the first guess) a cnn unit was 2 rows / ~5 ms and an mlp unit ~1 ms,
 *   and the grid ran at under half (cnn) and a seventh (mlp) of raw ORT.
 * - MAX_UNIT_INPUT_BYTES = 16 MiB: a quarter of the 64 MiB lease message limit, and what a
 *   worker holds per queued unit.
 * - MIN_UNITS_PER_JOB = 32: a job is split into at least this many units (when it has the rows),
 *   so a job on several workers keeps all of them busy and the tail stays short.
 */
export const TARGET_UNIT_FLOPS = 4e10;
export const MAX_UNIT_INPUT_BYTES = 16 * 1024 * 1024;
export const MIN_UNITS_PER_JOB = 32;

/**
 * The default rows per unit for a job of `rows` rows of `rowBytes` input bytes and
 * `flopsPerRow` FLOPs each: the FLOPs target, capped by the byte ceiling and by
 * rows / MIN_UNITS_PER_JOB; at least 1.
 */
export function defaultUnitRows(rows: number, rowBytes: number, flopsPerRow: number): number {
  const byFlops = Math.ceil(TARGET_UNIT_FLOPS / Math.max(1, flopsPerRow));
  const cap = Math.min(Math.floor(MAX_UNIT_INPUT_BYTES / Math.max(1, rowBytes)), Math.ceil(rows / MIN_UNITS_PER_JOB));
  return Math.max(1, Math.min(byFlops, cap));
}
/** Default replicas per unit: the smallest number that can detect a wrong result. */
export const DEFAULT_REPLICAS = 2;

export interface JobManifest {
  name?: string;
  model: string;
  inputs: Record<string, string>;
  policy?: string;
  replicas?: number;
  audit?: number;
  unitRows?: number;
  flopsPerRow?: number;
}

/** Parse a job manifest (JSON). Paths are resolved against the manifest's folder. */
export async function readJobManifest(path: string): Promise<JobManifest & { baseDir: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UserError('--job', 'a readable job manifest (JSON)', path, (e as NodeJS.ErrnoException).code ?? 'unreadable');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError('--job', 'a JSON job manifest', path, `not JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${path}`, 'a JSON object', raw);
  const m = raw as Record<string, unknown>;
  if (typeof m.model !== 'string' || m.model === '') throw new UserError(`${path}: model`, 'a path to an .onnx file', m.model);
  if (typeof m.inputs !== 'object' || m.inputs === null || Array.isArray(m.inputs) || Object.keys(m.inputs).length === 0) {
    throw new UserError(`${path}: inputs`, 'an object {input name: path to .npy}', m.inputs);
  }
  for (const [k, v] of Object.entries(m.inputs as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new UserError(`${path}: inputs.${k}`, 'a path to a .npy file', v);
  }
  for (const k of ['replicas', 'unitRows', 'flopsPerRow'] as const) {
    if (m[k] !== undefined && (!Number.isSafeInteger(m[k]) || (m[k] as number) < (k === 'flopsPerRow' ? 0 : 1))) {
      throw new UserError(`${path}: ${k}`, k === 'flopsPerRow' ? 'a non-negative integer' : 'a positive integer', m[k]);
    }
  }
  if (m.policy !== undefined && typeof m.policy !== 'string') throw new UserError(`${path}: policy`, 'a policy string', m.policy);
  if (m.audit !== undefined && (typeof m.audit !== 'number' || !(m.audit >= 0 && m.audit <= 1))) throw new UserError(`${path}: audit`, 'a spot-check probability from 0 to 1', m.audit);
  const baseDir = dirname(resolve(path));
  return {
    name: typeof m.name === 'string' ? m.name : undefined,
    model: resolve(baseDir, m.model),
    inputs: Object.fromEntries(Object.entries(m.inputs as Record<string, string>).map(([k, v]) => [k, resolve(baseDir, v)])),
    policy: m.policy as string | undefined,
    replicas: m.replicas as number | undefined,
    audit: m.audit as number | undefined,
    unitRows: m.unitRows as number | undefined,
    flopsPerRow: m.flopsPerRow as number | undefined,
    baseDir,
  };
}

function sameDims(model: (number | string | null)[], data: number[]): boolean {
  if (model.length !== data.length) return false;
  // The batch (first) dimension is split by us; the others must match where the model fixes them.
  for (let i = 1; i < model.length; i++) {
    const d = model[i];
    if (typeof d === 'number' && d > 0 && d !== data[i]) return false;
  }
  return true;
}

function fmtDims(d: (number | string | null)[]): string {
  return `[${d.map((x) => (x === null ? '?' : String(x))).join(', ')}]`;
}

/**
 * Validate a request against the model and its inputs and build the JobSpec.
 * Creates the output directory and checks it is writable.
 * @throws UserError for anything the partner must fix.
 */
export async function prepareJob(req: JobRequest): Promise<JobSpec> {
  const modelPath = resolve(req.model);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(modelPath);
  } catch (e) {
    throw new UserError('--model', 'a readable .onnx file', req.model, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message);
  }
  let info: ModelInfo;
  try {
    info = inspectModel(bytes, req.model);
  } catch (e) {
    if (isDrillError(e)) throw new UserError('--model', 'an ONNX model (ModelProto protobuf)', req.model, e.message);
    throw e;
  }

  // Inputs: names must match the model's inputs exactly.
  const given = { ...req.inputs };
  if (Object.keys(given).length === 1 && '' in given) {
    if (info.inputs.length !== 1) {
      throw new UserError('--input', `NAME=FILE.npy for each of the model's ${info.inputs.length} inputs (${info.inputs.map((i) => i.name).join(', ')})`, `one unnamed input ${given['']}`);
    }
    given[info.inputs[0]!.name] = given['']!;
    delete given[''];
  }
  const modelNames = info.inputs.map((i) => i.name);
  for (const name of Object.keys(given)) {
    if (!modelNames.includes(name)) throw new UserError(`--input ${name}`, `an input the model has (${modelNames.join(', ')})`, name);
  }
  for (const name of modelNames) {
    if (!(name in given)) throw new UserError(`--input ${name}`, `a .npy file for model input ${JSON.stringify(name)}`, undefined);
  }

  const inputs: Record<string, JobInput> = {};
  let rows = -1;
  let rowsFrom = '';
  for (const vi of info.inputs) {
    const path = resolve(given[vi.name]!);
    let h;
    try {
      h = await readNpyHeader(path);
    } catch (e) {
      if (isDrillError(e)) throw new UserError(`--input ${vi.name}`, 'a readable .npy file', given[vi.name], e.message);
      throw e;
    }
    if (h.dtype !== vi.dtype) throw new UserError(`--input ${vi.name}`, `dtype ${vi.dtype} (the model's input type)`, `${h.dtype} in ${given[vi.name]}`);
    if (h.dims.length === 0) throw new UserError(`--input ${vi.name}`, 'an array with rows along axis 0', 'a scalar');
    const expectDims = info.batchDim === 'fixed1' ? vi.dims : vi.dims;
    if (!sameDims(expectDims, h.dims)) {
      throw new UserError(`--input ${vi.name}`, `shape ${fmtDims(['rows', ...vi.dims.slice(1)])} (model input ${fmtDims(vi.dims)})`, `shape [${h.dims.join(', ')}] in ${given[vi.name]}`);
    }
    if (rows === -1) {
      rows = h.dims[0]!;
      rowsFrom = vi.name;
    } else if (h.dims[0] !== rows) {
      throw new UserError(`--input ${vi.name}`, `${rows} rows (as input ${rowsFrom})`, `${h.dims[0]} rows`);
    }
    inputs[vi.name] = { path, dtype: h.dtype, dims: h.dims };
  }
  if (rows <= 0) throw new UserError('--input', 'at least one row', '0 rows');
  for (const o of info.outputs) {
    if (typeof o.dtype !== 'string' || !['float32', 'float64', 'int32', 'int64', 'uint8', 'bool'].includes(o.dtype)) {
      throw new UserError('--model', 'outputs of dtype float32, float64, int32, int64, uint8 or bool', `output ${o.name} of type ${o.dtype}`);
    }
  }

  const audit = req.audit ?? 0;
  if (typeof audit !== 'number' || !(audit >= 0 && audit <= 1)) throw new UserError('--audit', 'a spot-check probability from 0 to 1', req.audit);
  // Spot checks replace replication: with --audit each unit runs once (unless replicas says otherwise, which is refused).
  const replicas = req.replicas ?? (audit > 0 ? 1 : DEFAULT_REPLICAS);
  if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > 16) throw new UserError('--replicas', 'an integer from 1 to 16', req.replicas);
  if (audit > 0 && replicas !== 1) throw new UserError('--audit', 'spot checks with --replicas 1 (each unit runs once and a fraction is re-run by a second worker)', `--audit ${audit} with --replicas ${replicas}`);
  const policy = parsePolicy(req.policy ?? DEFAULT_POLICY, '--compare');
  const flopsPerRow = info.flopsPerRow;
  const rowBytes = Object.values(inputs).reduce((a, i) => a + elementCount(i.dims.slice(1)) * BYTES_PER_ELEMENT[i.dtype], 0);
  let unitRows = req.unitRows ?? defaultUnitRows(rows, rowBytes, flopsPerRow);
  if (!Number.isSafeInteger(unitRows) || unitRows < 1) throw new UserError('--unit-rows', 'a positive integer', req.unitRows);
  unitRows = Math.min(unitRows, rows);

  const outDir = resolve(req.outDir);
  await checkWritableDir(outDir);

  return {
    id: `job-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`,
    name: req.name ?? info.inputs.map((i) => i.name).join('+'),
    modelPath,
    modelHash: sha256Hex(bytes),
    modelBytes: bytes.length,
    inputs,
    outputNames: info.outputs.map((o) => o.name),
    outputs: info.outputs.map((o) => ({ name: o.name, dtype: o.dtype, dims: o.dims })),
    rows,
    unitRows,
    replicas,
    audit,
    maxReplicas: defaultMaxReplicas(replicas),
    policy,
    flopsPerRow,
    outDir,
    batchDim: info.batchDim,
  };
}

/** @throws UserError when `dir` cannot be created or written. */
export async function checkWritableDir(dir: string): Promise<void> {
  try {
    const s = await stat(dir).catch(() => null);
    if (s && !s.isDirectory()) throw new DrillError('NOT_DIR', 'exists and is not a directory');
    await mkdir(dir, { recursive: true });
    await access(dir, fsc.W_OK);
    const probe = join(dir, `.drill-write-test-${process.pid}`);
    await writeFile(probe, '');
    await rm(probe);
  } catch (e) {
    throw new UserError('--out', 'a directory that can be created and written', dir, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
}

/** A file name for an output tensor: ONNX names may hold '/', ':' and other characters. */
export function outputFileName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return `${safe || 'output'}.npy`;
}
