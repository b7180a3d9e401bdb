/**
 * Which inputs are split into rows (and on which axis), which are sent whole to every unit
 * (broadcast), and on which axis each output is stitched back. Pure: it reads the model's
 * inputs and outputs as ONNX Runtime reports them, the real shapes of the partner's `.npy`
 * files and the partner's flags, and answers with a plan or a UserError naming the input.
 *
 * The rule, in order, for each input:
 * 1. `--broadcast NAME` (manifest `broadcast`) → sent whole; `--batch-axis NAME=AXIS`
 *    (manifest `batchAxes`) → split on AXIS.
 * 2. The model's batch dimension is the symbolic dim name its inputs share: among the names
 *    that lead some input, appear in two or more or contain "batch", the one found in the most
 *    inputs (ties: a name containing "batch", then the one nearest the front). An input that has it is split
 *    where it stands — axis 0 for [batch, seq], axis 1 for a recurrent state [2, batch, 128].
 *    A name only some input's inner axis carries ([3, height, width]) is not a batch.
 * 3. With no such name: an unnamed dynamic first dim is the batch, and another input's unnamed
 *    dim whose real size equals those rows is its batch axis (a state [2, ?, 128]); a first dim
 *    fixed at 1 makes the model run row by row (inputs with as many rows as the data are split
 *    on axis 0, inputs of one row are sent whole).
 * 4. Anything else (a scalar sample rate, a `[1]` beam-search setting, an input of fixed shape)
 *    is sent whole. A model none of whose inputs splits (one image for a detector that takes no
 *    batch) runs as a single unit of one row, every input whole.
 * Outputs are stitched on the axis where the batch name stands in their ORT shape; else on the
 * axis shape inference sees grow with the rows; an output that does not grow with the rows (or
 * whose dims are all fixed) has no batch axis: it is taken from the first unit and every other
 * unit must agree with it under the job's policy. An output nothing tells about (its size
 * depends on the data, as a detector's boxes do) makes the job default to one unit — which is
 * written whole — unless the partner gives its axis or a unit size.
 */
import { UserError } from '../util/errors.ts';
import { BYTES_PER_ELEMENT, elementCount, type Dtype } from '../util/tensor.ts';
import type { IoInfo } from '../onnx/inspect.ts';

/** The partner's say: `--batch-axis NAME=AXIS` and `--broadcast NAME` (or the manifest's fields). */
export interface BatchFlags {
  batchAxes?: Record<string, number>;
  broadcast?: readonly string[];
}

/** A job input's real shape (from its .npy header). */
export interface InputData {
  dtype: Dtype;
  dims: number[];
  /** The file, for messages. */
  file: string;
}

/** How a job's inputs are fed. */
export interface InputPlan {
  /** Input → its batch axis; null: sent whole to every unit. */
  axes: Record<string, number | null>;
  /** Rows along the batch axis (the same for every split input); 1 when nothing is split. */
  rows: number;
  /** The model's batch dimension name, when it has one. */
  symbol: string | null;
  /** The model fixes its batch dim at 1: workers run one row per ORT call. */
  rowByRow: boolean;
  /** No input splits: the job is one unit of one row, every input sent whole. */
  whole: boolean;
}

const fmt = (d: readonly (number | string | null)[]): string => `[${d.map((x) => (x === null || x === '' ? '?' : String(x))).join(', ')}]`;

/**
 * Check the flags name what the model has and do not contradict each other.
 * @throws UserError (--batch-axis / --broadcast)
 */
export function checkFlags(flags: BatchFlags, inputs: readonly IoInfo[], outputs: readonly IoInfo[]): void {
  const names = new Set([...inputs, ...outputs].map((v) => v.name));
  const known = [...names].join(', ');
  for (const [name, axis] of Object.entries(flags.batchAxes ?? {})) {
    if (!names.has(name)) throw new UserError(`--batch-axis ${name}`, `an input or output the model has (${known})`, name);
    if (!Number.isSafeInteger(axis) || axis < 0) throw new UserError(`--batch-axis ${name}`, 'NAME=AXIS with AXIS a non-negative integer', axis);
  }
  for (const name of flags.broadcast ?? []) {
    if (!names.has(name)) throw new UserError(`--broadcast ${name}`, `an input or output the model has (${known})`, name);
    if (flags.batchAxes && name in flags.batchAxes) throw new UserError(`--broadcast ${name}`, 'an input either split (--batch-axis) or sent whole (--broadcast), not both', name);
  }
}

/**
 * The symbolic name standing for the batch: a name that leads some input, appears in two or
 * more, or contains "batch"; of those, the one in the most inputs; ties → contains "batch",
 * then nearest the front.
 */
export function batchSymbol(inputs: readonly IoInfo[]): string | null {
  const stats = new Map<string, { count: number; pos: number; order: number; leads: boolean }>();
  inputs.forEach((v) => {
    const seen = new Set<string>();
    v.dims.forEach((d, i) => {
      if (typeof d !== 'string' || d === '' || seen.has(d)) return;
      seen.add(d);
      const s = stats.get(d) ?? { count: 0, pos: 0, order: stats.size, leads: false };
      s.count++;
      s.pos += i;
      s.leads ||= i === 0;
      stats.set(d, s);
    });
  });
  let best: [string, { count: number; pos: number; order: number }] | null = null;
  for (const e of stats) {
    if (!e[1].leads && e[1].count < 2 && !/batch/i.test(e[0])) continue;
    if (!best) {
      best = e;
      continue;
    }
    const [n, s] = e;
    const [bn, b] = best;
    const key = (name: string, x: { count: number; pos: number; order: number }): number[] => [-x.count, /batch/i.test(name) ? 0 : 1, x.pos / x.count, x.order];
    const k1 = key(n, s);
    const k2 = key(bn, b);
    for (let i = 0; i < k1.length; i++) {
      if (k1[i]! < k2[i]!) {
        best = e;
        break;
      }
      if (k1[i]! > k2[i]!) break;
    }
  }
  return best ? best[0] : null;
}

/**
 * Decide each input's batch axis and the row count, and check every input's real shape fits
 * the model (rank, fixed dims) around it.
 * @throws UserError naming the input for a shape that does not fit, rows that disagree, or a job with nothing to split
 */
export function planInputs(inputs: readonly IoInfo[], data: Readonly<Record<string, InputData>>, flags: BatchFlags): InputPlan {
  const axes: Record<string, number | null> = {};
  const explicit = flags.batchAxes ?? {};
  const bcast = new Set(flags.broadcast ?? []);
  // The batch name: from an explicit --batch-axis that lands on a symbolic dim, else the shared one.
  let symbol: string | null = null;
  for (const v of inputs) {
    const a = explicit[v.name];
    if (a !== undefined && typeof v.dims[a] === 'string' && v.dims[a] !== '') {
      symbol = v.dims[a] as string;
      break;
    }
  }
  symbol ??= batchSymbol(inputs.filter((v) => !bcast.has(v.name) && explicit[v.name] === undefined));
  const fixedOne = new Set<string>();
  for (const v of inputs) {
    const d = data[v.name]!;
    if (bcast.has(v.name)) axes[v.name] = null;
    else if (explicit[v.name] !== undefined) {
      const a = explicit[v.name]!;
      if (a >= d.dims.length) throw new UserError(`--batch-axis ${v.name}`, `an axis of its data (rank ${d.dims.length}, shape [${d.dims.join(', ')}] in ${d.file})`, a);
      const md = v.dims[a];
      if (v.rankKnown && typeof md === 'number' && md !== 1) {
        throw new UserError(`--batch-axis ${v.name}`, `an axis the model leaves dynamic (model input ${fmt(v.dims)})`, `axis ${a}, fixed at ${md}`);
      }
      axes[v.name] = a;
      if (md === 1) fixedOne.add(v.name);
    } else if (symbol !== null && v.dims.includes(symbol)) axes[v.name] = v.dims.indexOf(symbol);
    else if (symbol === null && v.dims[0] === '') axes[v.name] = 0;
    else if (symbol === null && v.dims[0] === 1 && d.dims.length === v.dims.length) {
      axes[v.name] = 0;
      fixedOne.add(v.name);
    } else axes[v.name] = null;
  }
  // Unnamed batch: another input's unnamed dim of the same real size is its batch axis
  // (a state [2, ?, 128] beside an audio [?, samples]).
  if (symbol === null) {
    const led = inputs.filter((v) => explicit[v.name] === undefined && axes[v.name] === 0 && v.dims[0] === '');
    const n = led.length > 0 ? data[led[0]!.name]!.dims[0] : undefined;
    if (n !== undefined && led.every((v) => data[v.name]!.dims[0] === n)) {
      for (const v of inputs) {
        if (axes[v.name] !== null || bcast.has(v.name) || explicit[v.name] !== undefined || !v.rankKnown || v.dims.length !== data[v.name]!.dims.length) continue;
        const k = v.dims.findIndex((dd, i) => dd === '' && data[v.name]!.dims[i] === n);
        if (k >= 0) axes[v.name] = k;
      }
    }
  }
  // Row-by-row models: an input of one row while others have more is shared by every row.
  const splitFixed = [...fixedOne].filter((n) => axes[n] !== null);
  const most = Math.max(0, ...splitFixed.map((n) => data[n]!.dims[axes[n]!]!));
  if (most > 1) for (const n of splitFixed) if (explicit[n] === undefined && data[n]!.dims[0] === 1) axes[n] = null;

  const split = inputs.filter((v) => axes[v.name] !== null);
  if (split.length === 0) {
    // Nothing to split (a model that takes one sample): one unit of one row, every input whole.
    for (const v of inputs) checkShape(v, data[v.name]!, null);
    return { axes, rows: 1, symbol, rowByRow: false, whole: true };
  }
  let rows = -1;
  let rowsFrom = '';
  for (const v of inputs) {
    const d = data[v.name]!;
    const axis = axes[v.name]!;
    checkShape(v, d, axis);
    if (axis === null) continue;
    const n = d.dims[axis]!;
    if (rows === -1) {
      rows = n;
      rowsFrom = v.name;
    } else if (n !== rows) {
      throw new UserError(`--input ${v.name}`, `${rows} rows (as input ${rowsFrom})${axis ? ` along its batch axis ${axis}` : ''}`, `${n} rows`);
    }
  }
  if (rows <= 0) throw new UserError('--input', 'at least one row', '0 rows');
  return { axes, rows, symbol, rowByRow: splitFixed.some((n) => axes[n] !== null), whole: false };
}

/** The data must have the model's rank and its fixed dims, except along the batch axis. */
function checkShape(v: IoInfo, d: InputData, axis: number | null): void {
  if (!v.rankKnown) {
    if (axis !== null && d.dims.length === 0) throw new UserError(`--input ${v.name}`, 'an array with rows along its batch axis', 'a scalar');
    return;
  }
  const expected = v.dims.map((x, i) => (i === axis ? 'rows' : x));
  const ok = d.dims.length === v.dims.length && v.dims.every((md, i) => i === axis || typeof md !== 'number' || md <= 0 || md === d.dims[i]);
  if (!ok) {
    const what = axis === null ? `shape ${fmt(v.dims)} (sent whole to every unit: it has no batch dimension)` : `shape ${fmt(expected)} (model input ${fmt(v.dims)})`;
    throw new UserError(`--input ${v.name}`, what, `shape [${d.dims.join(', ')}] in ${d.file}`);
  }
}

/** Where each output is stitched, and which outputs nothing tells about. */
export interface OutputPlan {
  /** Output → its stitch axis; null: no batch axis (taken from the first unit, all must agree). */
  axes: Record<string, number | null>;
  /**
   * Outputs whose axis is a guess: neither the flags, the batch name in their ORT shape nor
   * shape inference tells it (their size may depend on the data, like a detector's boxes).
   * The job then defaults to one unit.
   */
  guessed: string[];
}

/**
 * Each output's stitch axis. `inferred`: the axis shape inference sees grow with the rows
 * (rowCost), null for an output that does not grow, undefined where the shape is unknown.
 */
export function planOutputs(outputs: readonly IoInfo[], plan: InputPlan, flags: BatchFlags, inferred: Readonly<Record<string, number | null | undefined>>): OutputPlan {
  const axes: Record<string, number | null> = {};
  const guessed: string[] = [];
  const bcast = new Set(flags.broadcast ?? []);
  for (const o of outputs) {
    const explicit = flags.batchAxes?.[o.name];
    if (bcast.has(o.name) || plan.whole) axes[o.name] = null;
    else if (explicit !== undefined) axes[o.name] = explicit;
    else if (plan.rowByRow) {
      axes[o.name] = 0; // the worker concatenates each row's run along axis 0
      if (inferred[o.name] === undefined) guessed.push(o.name); // a row's size may vary
    } else if (plan.symbol !== null && o.dims.includes(plan.symbol)) axes[o.name] = o.dims.indexOf(plan.symbol);
    else if (typeof inferred[o.name] === 'number' || inferred[o.name] === null) axes[o.name] = inferred[o.name] as number | null;
    else {
      // A guess: the first dynamic axis, else axis 0 (or none, for an all-fixed shape).
      const dyn = o.dims.findIndex((d) => typeof d === 'string');
      axes[o.name] = dyn >= 0 ? dyn : o.rankKnown && o.dims.length > 0 && o.dims.every((d) => typeof d === 'number') ? null : 0;
      guessed.push(o.name);
    }
  }
  return { axes, guessed };
}

/** Bytes of one row of the split inputs, and of the broadcast inputs every unit carries. */
export function unitBytes(data: Readonly<Record<string, InputData>>, axes: Readonly<Record<string, number | null>>): { rowBytes: number; broadcastBytes: number } {
  let rowBytes = 0;
  let broadcastBytes = 0;
  for (const [name, d] of Object.entries(data)) {
    const axis = axes[name];
    const bpe = BYTES_PER_ELEMENT[d.dtype];
    if (axis === null || axis === undefined) broadcastBytes += elementCount(d.dims) * bpe;
    else rowBytes += elementCount(d.dims.filter((_, i) => i !== axis)) * bpe;
  }
  return { rowBytes, broadcastBytes };
}
