/**
 * Pure run planning for the worker: check a request's tensors against a model's input metadata
 * BEFORE anything runs, and decide how the rows are fed.
 *
 * - batch mode: the model's first input dim is symbolic (dynamic) or already equals the request's
 *   row count, so the whole batch goes through ONNX Runtime in one call.
 * - rows mode: some input's first dim is FIXED at 1 and the request carries B > 1 rows, so the
 *   rows are run one by one and the outputs concatenated along axis 0, in order (inputs of other
 *   shapes — a scalar, a parameter sent whole — go whole to every run).
 *
 * Every mismatch is a DrillError with code INPUT_MISMATCH whose message names the input, what
 * the model expects and what was received. No ONNX Runtime import here: unit-testable.
 */
import { DrillError } from '../util/errors.ts';
import { ARRAY_OF, DTYPES, elementCount } from '../util/tensor.ts';
import type { HostTensor, TensorData } from '../util/tensor.ts';

/** A model input as ONNX Runtime describes it (tensor inputs only). */
export interface InputSpec {
  name: string;
  /** ORT tensor type name ('float32', 'int64', 'bool', 'float16', ...). */
  type: string;
  /** Dims: a number is fixed, a string is symbolic; [] when ORT does not know the shape. */
  shape: ReadonlyArray<number | string>;
}

/** How a request will be run. */
export interface RunPlan {
  mode: 'batch' | 'rows';
  /** Rows along axis 0 (for rows mode, the number of separate ORT runs). */
  rows: number;
  /** Rows mode: the inputs sliced per row; the others are fed whole to every run. */
  split: string[];
  /** The outputs to fetch, in the model's order unless the request named them. */
  outputNames: string[];
}

function mismatch(field: string, expected: string, received: string, meta: Record<string, unknown> = {}): DrillError {
  return new DrillError('INPUT_MISMATCH', `${field}: expected ${expected}, received ${received}`, { field, expected, received, ...meta });
}

const fmtShape = (s: ReadonlyArray<number | string>): string => `[${s.map((d) => (typeof d === 'string' ? JSON.stringify(d) : String(d))).join(', ')}]`;

/**
 * Check that `t` is a well-formed HostTensor (known dtype, integer dims, matching typed array
 * and length).
 * @throws DrillError INPUT_MISMATCH naming `field`.
 */
export function checkHostTensor(field: string, t: HostTensor): void {
  if (t === null || typeof t !== 'object') throw mismatch(field, 'a tensor {dtype, dims, data}', String(t));
  if (!DTYPES.includes(t.dtype)) throw mismatch(`${field}.dtype`, `one of ${DTYPES.join(', ')}`, JSON.stringify(t.dtype));
  if (!Array.isArray(t.dims) || !t.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw mismatch(`${field}.dims`, 'an array of non-negative integers', JSON.stringify(t.dims));
  }
  const want = ARRAY_OF[t.dtype];
  // Symbol.toStringTag names the typed array kind, also for subclasses (a Node Buffer is a
  // 'Uint8Array') and arrays from another realm, where instanceof would fail.
  const got = ArrayBuffer.isView(t.data) ? (t.data as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : t.data === undefined ? 'nothing' : typeof t.data;
  if (got !== want) throw mismatch(`${field}.data`, `a ${want} for dtype ${t.dtype}`, `a ${got}`);
  const n = elementCount(t.dims);
  if (t.data.length !== n) throw mismatch(`${field}.data`, `${n} elements for dims ${fmtShape(t.dims)}`, `${t.data.length} elements`);
}

/**
 * Check a request against the model and plan its run.
 * @param specs the model's tensor inputs (session.inputMetadata).
 * @param modelOutputs the model's output names.
 * @param inputs the request's tensors by input name (rows along axis 0).
 * @param wanted the outputs the request asks for (default: all, in model order).
 * @throws DrillError INPUT_MISMATCH for unknown or missing inputs, wrong dtype, wrong rank, wrong
 *   non-batch dims, a batch size the model cannot take, inconsistent row counts or unknown outputs.
 */
export function planRun(
  specs: readonly InputSpec[],
  modelOutputs: readonly string[],
  inputs: Readonly<Record<string, HostTensor>>,
  wanted?: readonly string[],
): RunPlan {
  const known = new Map(specs.map((s) => [s.name, s]));
  const names = Object.keys(inputs);
  // Cheapest checks first: names, then each tensor on its own, then tensors against the model.
  for (const name of names) {
    if (!known.has(name)) {
      throw mismatch(`inputs.${name}`, `an input of the model (${[...known.keys()].join(', ') || 'none'})`, `unknown input ${JSON.stringify(name)}`, { input: name });
    }
  }
  for (const s of specs) {
    if (!(s.name in inputs)) throw mismatch(`inputs.${s.name}`, `a tensor for model input ${JSON.stringify(s.name)}`, 'nothing', { input: s.name });
  }
  for (const name of names) checkHostTensor(`inputs.${name}`, inputs[name]!);

  let rowsB: number | undefined; // the row count when some input's first dim is fixed at 1
  for (const s of specs) {
    const t = inputs[s.name]!;
    const field = `inputs.${s.name}`;
    if (t.dtype !== s.type) throw mismatch(`${field}.dtype`, s.type, t.dtype, { input: s.name });
    if (s.shape.length === 0) continue; // ORT does not know the shape: let it decide
    if (t.dims.length !== s.shape.length) {
      throw mismatch(`${field}.dims`, `rank ${s.shape.length} ${fmtShape(s.shape)}`, `rank ${t.dims.length} ${fmtShape(t.dims)}`, { input: s.name });
    }
    for (let i = 1; i < s.shape.length; i++) {
      const d = s.shape[i]!;
      if (typeof d === 'number' && t.dims[i] !== d) {
        throw mismatch(`${field}.dims[${i}]`, `${d} (model shape ${fmtShape(s.shape)})`, `${t.dims[i]} (dims ${fmtShape(t.dims)})`, { input: s.name, axis: i });
      }
    }
    const d0 = s.shape[0]!;
    if (typeof d0 === 'number' && t.dims[0] !== d0) {
      if (d0 === 1 && t.dims[0]! > 1) {
        if (rowsB !== undefined && rowsB !== t.dims[0]) {
          throw mismatch(`${field}.dims[0]`, `${rowsB} rows like the other inputs`, `${t.dims[0]}`, { input: s.name, axis: 0 });
        }
        rowsB = t.dims[0];
      } else {
        throw mismatch(`${field}.dims[0]`, `${d0} (model shape ${fmtShape(s.shape)})`, `${t.dims[0]} (dims ${fmtShape(t.dims)})`, { input: s.name, axis: 0 });
      }
    }
  }

  const outs = wanted === undefined || wanted.length === 0 ? [...modelOutputs] : [...wanted];
  for (const o of outs) {
    if (!modelOutputs.includes(o)) throw mismatch('outputNames', `outputs of the model (${modelOutputs.join(', ')})`, JSON.stringify(o), { output: o });
  }

  if (rowsB === undefined) {
    const first = specs[0] ? inputs[specs[0].name] : undefined;
    return { mode: 'batch', rows: first?.dims[0] ?? 1, split: [], outputNames: outs };
  }
  // Rows mode: inputs whose first dim the model fixes at 1 and that carry B rows are sliced per
  // row; everything else (one row shared by every row, scalars, inputs of other fixed shapes)
  // is fed whole to every run.
  const split: string[] = [];
  for (const s of specs) {
    const t = inputs[s.name]!;
    if (s.shape[0] === 1 && t.dims.length > 0 && t.dims[0] === rowsB) split.push(s.name);
  }
  return { mode: 'rows', rows: rowsB, split, outputNames: outs };
}

/** Row `i` of `t` as a [1, ...rest] view over the same buffer (no copy). */
export function sliceRow(t: HostTensor, i: number): HostTensor {
  const rest = t.dims.slice(1);
  const per = elementCount(rest);
  return { dtype: t.dtype, dims: [1, ...rest], data: t.data.subarray(i * per, (i + 1) * per) as TensorData };
}

/**
 * Concatenate tensors along axis 0, in order.
 * @throws DrillError OUTPUT_MISMATCH when dtypes or trailing dims differ between parts.
 */
export function concatRows(name: string, parts: readonly HostTensor[]): HostTensor {
  if (parts.length === 0) throw new RangeError('concatRows: no parts');
  const first = parts[0]!;
  if (parts.length === 1) return first;
  const rest = first.dims.slice(1);
  let rows = 0;
  let total = 0;
  for (const [k, p] of parts.entries()) {
    if (p.dtype !== first.dtype || p.dims.length !== first.dims.length || p.dims.slice(1).some((d, i) => d !== rest[i])) {
      throw new DrillError('OUTPUT_MISMATCH', `outputs.${name}: expected every row to give ${first.dtype} ${fmtShape(['rows', ...rest])}, received ${p.dtype} ${fmtShape(p.dims)} for row ${k}`, { output: name, row: k });
    }
    rows += p.dims[0] ?? 1;
    total += p.data.length;
  }
  const Ctor = first.data.constructor as new (n: number) => TensorData;
  const data = new Ctor(total);
  let off = 0;
  for (const p of parts) {
    (data as Float32Array).set(p.data as Float32Array, off);
    off += p.data.length;
  }
  return { dtype: first.dtype, dims: [rows, ...rest], data };
}

/**
 * Rows [start, end) of a tensor along `axis` (its batch axis). A view when the axis has nothing
 * before it (axis 0, or leading dims of 1); otherwise one copy of the selected rows.
 */
export function sliceAxis(t: HostTensor, axis: number, start: number, end: number): HostTensor {
  const n = t.dims[axis]!;
  const outer = elementCount(t.dims.slice(0, axis));
  const inner = elementCount(t.dims.slice(axis + 1));
  const dims = [...t.dims.slice(0, axis), end - start, ...t.dims.slice(axis + 1)];
  if (outer === 1) return { dtype: t.dtype, dims, data: t.data.subarray(start * inner, end * inner) as TensorData };
  const rows = end - start;
  const data = new (t.data.constructor as new (n: number) => TensorData)(outer * rows * inner);
  for (let o = 0; o < outer; o++) (data as Float32Array).set(t.data.subarray((o * n + start) * inner, (o * n + end) * inner) as Float32Array, o * rows * inner);
  return { dtype: t.dtype, dims, data };
}

/**
 * Concatenate tensors along `axis`, in order (the chunks of one unit's rows).
 * @throws DrillError OUTPUT_MISMATCH when dtypes, ranks or the other dims differ between parts.
 */
export function concatAxis(name: string, parts: readonly HostTensor[], axis: number): HostTensor {
  if (parts.length === 0) throw new RangeError('concatAxis: no parts');
  const first = parts[0]!;
  if (parts.length === 1) return first;
  let rows = 0;
  for (const [k, p] of parts.entries()) {
    if (p.dtype !== first.dtype || p.dims.length !== first.dims.length || p.dims.length <= axis || p.dims.some((d, i) => i !== axis && d !== first.dims[i])) {
      throw new DrillError('OUTPUT_MISMATCH', `outputs.${name}: expected every chunk of rows to give ${first.dtype} ${fmtShape(first.dims.map((d, i) => (i === axis ? 'rows' : d)))}, received ${p.dtype} ${fmtShape(p.dims)} for chunk ${k}`, { output: name, chunk: k });
    }
    rows += p.dims[axis]!;
  }
  const outer = elementCount(first.dims.slice(0, axis));
  const inner = elementCount(first.dims.slice(axis + 1));
  const data = new (first.data.constructor as new (n: number) => TensorData)(outer * rows * inner);
  let r = 0;
  for (const p of parts) {
    const pr = p.dims[axis]!;
    for (let o = 0; o < outer; o++) (data as Float32Array).set(p.data.subarray(o * pr * inner, (o + 1) * pr * inner) as Float32Array, (o * rows + r) * inner);
    r += pr;
  }
  return { dtype: first.dtype, dims: first.dims.map((d, i) => (i === axis ? rows : d)), data };
}

/** Where a unit's rows lie: each input's batch axis (null: sent whole) and each output's. */
export interface RowAxes {
  inputs: Record<string, number | null>;
  outputs: Record<string, number>;
}

/**
 * How to run a batch in chunks of rows, so ONNX Runtime's intermediate tensors (and its arena,
 * which keeps its peak) stay bounded whatever the unit's size: chunks of split input of at most
 * `maxInputBytes`. Null when the batch is one chunk, or when `axes` does not account for every
 * input and every wanted output (then it runs whole, as before). Pure.
 */
export function chunkPlan(inputs: Readonly<Record<string, HostTensor>>, outputNames: readonly string[], axes: RowAxes, maxInputBytes: number): { rows: number; chunkRows: number } | null {
  let rows = -1;
  let rowBytes = 0;
  for (const [name, t] of Object.entries(inputs)) {
    const axis = axes.inputs[name];
    if (axis === undefined) return null;
    if (axis === null) continue;
    if (!Number.isInteger(axis) || axis < 0 || axis >= t.dims.length) return null;
    const n = t.dims[axis]!;
    if (rows >= 0 && n !== rows) return null;
    rows = n;
    rowBytes += n > 0 ? t.data.byteLength / n : 0;
  }
  if (rows <= 1 || rowBytes === 0) return null;
  for (const o of outputNames) if (!Number.isInteger(axes.outputs[o])) return null;
  const chunkRows = Math.max(1, Math.floor(maxInputBytes / rowBytes));
  return chunkRows >= rows ? null : { rows, chunkRows };
}
