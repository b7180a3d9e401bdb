/**
 * Job intake: turn what a partner gave (CLI flags or a job manifest) into a validated JobSpec.
 * Every check happens here, before any unit is scheduled, and every failure is a UserError that
 * names the field, what was expected and what was received: an unreadable model or one ONNX
 * Runtime refuses (its own message), an input name the model does not have (or a missing one),
 * a dtype or shape that does not match, a malformed .npy, inputs with different row counts, an
 * output directory that cannot be written.
 *
 * ONNX Runtime is the judge of the model (model.ts); which inputs are split into rows and which
 * are sent whole is decided in batching.ts; the FLOPs a row costs come from the real input
 * shapes (src/onnx/inspect.ts rowCost).
 */
import { readFile, mkdir, access, writeFile, rm, stat } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { dirname, resolve, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError, isDrillError, DrillError } from '../util/errors.ts';
import type { Dtype, HostTensor } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, elementCount, halfToFloat } from '../util/tensor.ts';
import { readNpy, readNpyHeader } from '../util/npy.ts';
import { rowCost } from '../onnx/inspect.ts';
import type { JobInputShape } from '../onnx/inspect.ts';
import { costFromOutputs } from '../onnx/flops.ts';
import { MAX_CONST_VALUES } from '../onnx/decode.ts';
import type { Policy } from '../pod/policy.ts';
import { parsePolicy, DEFAULT_POLICY } from '../pod/policy.ts';
import { defaultMaxReplicas } from '../pod/quorum.ts';
import { MAX_UNIT_BYTES } from '../protocol/grid.ts';
import { openModel } from './model.ts';
import { checkFlags, planInputs, planOutputs, unitBytes } from './batching.ts';
import type { BatchFlags, InputData } from './batching.ts';

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
  /** Input/output name → the axis its rows are on, where the model does not say (`--batch-axis`). */
  batchAxes?: Record<string, number>;
  /** Inputs sent whole to every unit, outputs taken whole from the first unit (`--broadcast`). */
  broadcast?: string[];
  /** Where intake may write derived files (the self-contained copy of an external-data model); default `outDir`/.drill. */
  workDir?: string;
  /** Accept a model with external data files (default true; remote intake says false). */
  allowExternalData?: boolean;
}

export interface JobInput {
  path: string;
  dtype: Dtype;
  /** The whole input's dims. */
  dims: number[];
  /** The axis split into rows; null: sent whole to every unit (broadcast). Absent in specs stored before it existed: 0. */
  batchAxis?: number | null;
}

/** A model output as ONNX Runtime reports it, and where the units' results are stitched. */
export interface JobOutput {
  name: string;
  /** ORT's element type name. */
  dtype: string;
  /** Dims as ORT reports them: numbers where fixed, a name ('' unnamed) or null where dynamic. */
  dims: (number | string | null)[];
  /**
   * The axis the units' results are stitched on; null: no batch axis (taken from the first
   * unit, all must agree; or a one-unit job's output as it is). Absent in specs stored before
   * batch axes existed: 0.
   */
  batchAxis?: number | null;
  /**
   * The axis is a guess (nothing told it; the output's size may depend on the data): a result
   * that does not fit it fails the job (the output cannot be stitched), it is not a worker fault.
   */
  guessed?: boolean;
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
   * What the model says each output is (its element type and dims, as ORT reports them) and
   * where it is stitched. A revealed result is checked against it before PoD (reveal.ts).
   */
  outputs: JobOutput[];
  rows: number;
  unitRows: number;
  /**
   * The coordinator chose the unit size (the partner did not): the job's last rows run in
   * smaller units (scheduler.ts `planUnits`). Absent in jobs stored before it existed: equal units.
   */
  taper?: boolean;
  replicas: number;
  /** Spot-check probability in [0, 1]; 0 = no audits (replicas > 1 replicate every unit). */
  audit: number;
  maxReplicas: number;
  policy: Policy;
  /** FLOPs one row costs, from the real input shapes (see docs/POD.md, "Cost model"). */
  flopsPerRow: number;
  /**
   * Outputs whose shape the graph does not tell, and the FLOPs per element of them a unit's
   * revealed result adds to its credit (`unitFlops`). Empty for most models.
   */
  outputCost: Record<string, number>;
  /** The model runs one row per ORT call (its batch dim is fixed at 1). */
  rowByRow: boolean;
  /** What the cost model could not follow (shown in `drill run`'s report). */
  costNotes: string[];
  /** How the job was laid out where the model did not say (one unit for unsizeable outputs, ...). */
  planNotes?: string[];
  outDir: string;
}

/** The batch axis of a job input (specs stored before batch axes existed split on axis 0). */
export function inputAxis(i: JobInput): number | null {
  return i.batchAxis === undefined ? 0 : i.batchAxis;
}

/** Bytes of one row of a job's split inputs (inputs sent whole are not per row). */
export function splitRowBytes(spec: Pick<JobSpec, 'inputs'>): number {
  let n = 0;
  for (const i of Object.values(spec.inputs)) {
    const axis = inputAxis(i);
    if (axis !== null) n += elementCount(i.dims.filter((_, k) => k !== axis)) * BYTES_PER_ELEMENT[i.dtype];
  }
  return n;
}

/**
 * Where a unit's rows lie in each input and output, for the workers (LeaseInfo.rowAxes): only
 * when every output has a known axis (none sent whole, none guessed), else undefined.
 */
export function rowAxesOf(spec: Pick<JobSpec, 'inputs' | 'outputs' | 'outputNames'>): { inputs: Record<string, number | null>; outputs: Record<string, number> } | undefined {
  const outputs: Record<string, number> = {};
  for (const name of spec.outputNames) {
    const o = spec.outputs?.find((x) => x.name === name);
    const axis = outputAxis(spec, name);
    if (axis === null || o?.guessed) return undefined;
    outputs[name] = axis;
  }
  const inputs: Record<string, number | null> = {};
  for (const [name, i] of Object.entries(spec.inputs)) inputs[name] = inputAxis(i);
  return { inputs, outputs };
}

/** The stitch axis of a job output (axis 0 for specs stored before batch axes existed). */
export function outputAxis(spec: Pick<JobSpec, 'outputs'>, name: string): number | null {
  const o = spec.outputs?.find((x) => x.name === name);
  return o?.batchAxis === undefined ? 0 : o.batchAxis;
}

/**
 * The FLOPs a unit of `rows` rows is credited: the rows' cost from the graph, plus, for outputs
 * whose shape the graph does not tell, their per-element cost times the elements the agreed
 * result actually holds. Call it with the accepted result of the unit.
 */
export function unitFlops(spec: Pick<JobSpec, 'flopsPerRow' | 'outputCost'>, rows: number, result: Readonly<Record<string, HostTensor>>): number {
  const counts: Record<string, number> = {};
  for (const name of Object.keys(spec.outputCost ?? {})) {
    const t = result[name];
    if (t) counts[name] = elementCount(t.dims);
  }
  return spec.flopsPerRow * rows + costFromOutputs(spec.outputCost ?? {}, counts);
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
 * The default rows per unit for a job of `rows` rows of `rowBytes` bytes of split input each
 * and `flopsPerRow` FLOPs each: the FLOPs target, capped by the byte ceiling (less the
 * `broadcastBytes` every unit carries whole) and by rows / MIN_UNITS_PER_JOB; at least 1.
 */
export function defaultUnitRows(rows: number, rowBytes: number, flopsPerRow: number, broadcastBytes = 0): number {
  const byFlops = Math.ceil(TARGET_UNIT_FLOPS / Math.max(1, flopsPerRow));
  const room = Math.max(0, MAX_UNIT_INPUT_BYTES - broadcastBytes);
  const cap = Math.min(Math.floor(room / Math.max(1, rowBytes)), Math.ceil(rows / MIN_UNITS_PER_JOB));
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
  /** Input/output name → batch axis (`--batch-axis NAME=AXIS`). */
  batchAxes?: Record<string, number>;
  /** Inputs sent whole / outputs taken whole (`--broadcast NAME`). */
  broadcast?: string[];
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
  if (m.batchAxes !== undefined) {
    if (typeof m.batchAxes !== 'object' || m.batchAxes === null || Array.isArray(m.batchAxes)) throw new UserError(`${path}: batchAxes`, 'an object {input or output name: axis}', m.batchAxes);
    for (const [k, v] of Object.entries(m.batchAxes as Record<string, unknown>)) {
      if (!Number.isSafeInteger(v) || (v as number) < 0) throw new UserError(`${path}: batchAxes.${k}`, 'a non-negative integer axis', v);
    }
  }
  if (m.broadcast !== undefined && (!Array.isArray(m.broadcast) || !m.broadcast.every((x) => typeof x === 'string' && x !== ''))) {
    throw new UserError(`${path}: broadcast`, 'a list of input or output names', m.broadcast);
  }
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
    ...(m.batchAxes !== undefined ? { batchAxes: { ...(m.batchAxes as Record<string, number>) } } : {}),
    ...(m.broadcast !== undefined ? { broadcast: [...(m.broadcast as string[])] } : {}),
    baseDir,
  };
}

/**
 * Validate a request against the model and its inputs and build the JobSpec.
 * Creates the output directory and checks it is writable.
 * @throws UserError for anything the partner must fix.
 */
export async function prepareJob(req: JobRequest): Promise<JobSpec> {
  const outDir = resolve(req.outDir);
  const model = await openModel(req.model, { workDir: req.workDir ?? join(outDir, '.drill'), allowExternalData: req.allowExternalData ?? true });
  const info = model.info;

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
  const flags: BatchFlags = { batchAxes: req.batchAxes ?? {}, broadcast: req.broadcast ?? [] };
  checkFlags(flags, info.inputs, info.outputs);

  const data: Record<string, InputData & { path: string; dataOffset: number }> = {};
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
    data[vi.name] = { dtype: h.dtype, dims: h.dims, file: given[vi.name]!, path, dataOffset: h.dataOffset };
  }
  for (const o of info.outputs) {
    if (!isOutputDtype(o.dtype)) {
      throw new UserError('--model', 'outputs of a numeric or bool tensor type (float16/32/64, int8–64, uint8–64, bool)', `output ${o.name} of type ${o.dtype}`);
    }
  }
  const plan = planInputs(info.inputs, data, flags);
  const { rowBytes, broadcastBytes } = unitBytes(data, plan.axes);
  // A lease carries the broadcast inputs whole: they must leave room for rows in one message.
  if (broadcastBytes > MAX_UNIT_INPUT_BYTES) {
    const names = Object.keys(plan.axes).filter((n) => plan.axes[n] === null);
    throw new UserError(`--input ${names.join(', ')}`, `inputs sent whole to every unit of at most ${MAX_UNIT_INPUT_BYTES} bytes together (or split them with --batch-axis NAME=AXIS)`, `${broadcastBytes} bytes`);
  }

  // Cost from the real shapes; a small input sent whole also gives its values (an If on a sample rate).
  const shapes: Record<string, JobInputShape> = {};
  for (const [name, d] of Object.entries(data)) {
    const axis = plan.axes[name]!;
    shapes[name] = { dtype: d.dtype, dims: d.dims, batchAxis: axis };
    if (axis === null && elementCount(d.dims) <= MAX_CONST_VALUES) shapes[name].values = numericValues(await readNpy(d.path));
  }
  // Nothing split: the one "row" is the whole run.
  const cost = model.decoded ? rowCost(model.decoded, shapes, plan.rowByRow || plan.whole) : { flopsPerRow: 0, outputCost: {}, outputBatchAxes: {}, notes: [] };
  const outPlan = planOutputs(info.outputs, plan, flags, cost.outputBatchAxes);
  const outputAxes = outPlan.axes;
  const planNotes: string[] = [];
  if (plan.whole) planNotes.push('no input has a batch dimension: the job is one unit of one row, every input sent whole');

  const audit = req.audit ?? 0;
  if (typeof audit !== 'number' || !(audit >= 0 && audit <= 1)) throw new UserError('--audit', 'a spot-check probability from 0 to 1', req.audit);
  // Spot checks replace replication: with --audit each unit runs once (unless replicas says otherwise, which is refused).
  const replicas = req.replicas ?? (audit > 0 ? 1 : DEFAULT_REPLICAS);
  if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > 16) throw new UserError('--replicas', 'an integer from 1 to 16', req.replicas);
  if (audit > 0 && replicas !== 1) throw new UserError('--audit', 'spot checks with --replicas 1 (each unit runs once and a fraction is re-run by a second worker)', `--audit ${audit} with --replicas ${replicas}`);
  const policy = parsePolicy(req.policy ?? DEFAULT_POLICY, '--compare');
  const rows = plan.rows;
  // Outputs whose size may depend on the data cannot be stitched from several units: one unit,
  // unless the partner chose a unit size (then each output's guessed axis must hold).
  const oneUnit = req.unitRows === undefined && outPlan.guessed.length > 0 && rows > 1;
  if (oneUnit) planNotes.push(`the batch axis of output${outPlan.guessed.length > 1 ? 's' : ''} ${outPlan.guessed.join(', ')} is not known (its size may depend on the data): the job runs as one unit; give --batch-axis NAME=AXIS (or --unit-rows) to split it`);
  let unitRows = req.unitRows ?? (oneUnit ? rows : defaultUnitRows(rows, rowBytes, cost.flopsPerRow, broadcastBytes));
  // Nothing is stitched in a one-unit job: an output whose axis was only a guess is written as the unit gives it.
  if (oneUnit) for (const n of outPlan.guessed) outputAxes[n] = null;
  if (!Number.isSafeInteger(unitRows) || unitRows < 1) throw new UserError('--unit-rows', 'a positive integer', req.unitRows);
  unitRows = Math.min(unitRows, rows);
  if (broadcastBytes + unitRows * rowBytes > MAX_UNIT_BYTES - 1024 * 1024) {
    throw new UserError('--unit-rows', `at most ${Math.max(1, Math.floor((MAX_UNIT_BYTES - 1024 * 1024 - broadcastBytes) / Math.max(1, rowBytes)))} rows per unit (a unit's inputs travel in one message of at most ${MAX_UNIT_BYTES} bytes)`, unitRows);
  }

  await checkWritableDir(outDir);

  const inputs: Record<string, JobInput> = {};
  for (const vi of info.inputs) {
    const d = data[vi.name]!;
    inputs[vi.name] = { path: d.path, dtype: d.dtype, dims: d.dims, batchAxis: plan.axes[vi.name]! };
  }
  return {
    id: `job-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`,
    name: req.name ?? info.inputs.map((i) => i.name).join('+'),
    modelPath: model.path,
    modelHash: model.sha256,
    modelBytes: model.bytes,
    inputs,
    outputNames: info.outputs.map((o) => o.name),
    outputs: info.outputs.map((o) => ({
      name: o.name, dtype: o.dtype, dims: o.rankKnown ? o.dims : [], batchAxis: outputAxes[o.name]!,
      ...(outPlan.guessed.includes(o.name) && outputAxes[o.name] !== null ? { guessed: true } : {}),
    })),
    rows,
    unitRows,
    ...(req.unitRows === undefined && !oneUnit ? { taper: true } : {}),
    replicas,
    audit,
    maxReplicas: defaultMaxReplicas(replicas),
    policy,
    flopsPerRow: cost.flopsPerRow,
    outputCost: cost.outputCost,
    rowByRow: plan.rowByRow,
    costNotes: [...model.notes, ...cost.notes],
    planNotes,
    outDir,
  };
}

const OUTPUT_DTYPES = new Set(['float16', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']);
function isOutputDtype(d: string): boolean {
  return OUTPUT_DTYPES.has(d);
}

/** A small tensor's values as numbers (halves decoded), for shape inference. */
function numericValues(t: HostTensor): number[] {
  const out: number[] = [];
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i]!;
    out.push(t.dtype === 'float16' ? halfToFloat(v as number) : Number(v));
  }
  return out;
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
