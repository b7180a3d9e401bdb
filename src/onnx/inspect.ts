/**
 * What the grid needs to know about a partner's ONNX model before running it: its inputs and
 * outputs (names, element types, dims), opset, node count, how the batch dimension behaves,
 * and the FLOPs one row costs — the unit cost Proof of Drilling credits.
 *
 * `flopsPerRow` is computed from the graph (see flops.ts for the cost table):
 * - batchDim 'dynamic' (every input's first dim is symbolic): FLOPs at batch 2 minus FLOPs at
 *   batch 1, i.e. the cost of one more row; work on constants only (weight preprocessing) is
 *   not charged per row.
 * - batchDim 'fixed1' (every input's first dim is 1): the whole graph at its fixed shape.
 * - batchDim 'none' (anything else: scalars, mixed or fixed first dims > 1): the whole graph,
 *   one call being one "row".
 */
import { DrillError } from '../util/errors.ts';
import { decodeModel, type DecodedModel, type ValueInfo } from './decode.ts';
import { countFlops } from './flops.ts';

export type { ValueInfo } from './decode.ts';
export { decodeModel, ModelErrorCode } from './decode.ts';

/** How a model's first input dimension behaves. */
export type BatchDim = 'dynamic' | 'fixed1' | 'none';

/** A model's interface and cost. */
export interface ModelInfo {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Default-domain opset. */
  opset: number;
  irVersion: number;
  producer: string;
  /** Number of nodes in the main graph. */
  nodes: number;
  /** FLOPs per row of the batch dimension, from the graph (deterministic). */
  flopsPerRow: number;
  batchDim: BatchDim;
  /** Op types in the graph, sorted, each once. */
  ops: string[];
  /** Approximations the FLOP count made (unknown ops, symbolic non-batch dims). Empty when exact to the table. */
  notes: string[];
}

/** Classify the batch dimension from the declared inputs. */
export function batchDimOf(inputs: readonly ValueInfo[]): BatchDim {
  if (inputs.length === 0 || inputs.some((v) => v.dims.length === 0)) return 'none';
  if (inputs.every((v) => typeof v.dims[0] !== 'number')) return 'dynamic';
  if (inputs.every((v) => v.dims[0] === 1)) return 'fixed1';
  return 'none';
}

/**
 * FLOPs per row of a decoded model (see the module header for what a "row" is).
 * @throws DrillError MODEL_GRAPH for graphs referencing undefined values
 */
export function flopsPerRow(model: DecodedModel, batchDim: BatchDim = batchDimOf(model.inputs)): { flops: number; notes: string[] } {
  if (batchDim !== 'dynamic') {
    const c = countFlops(model, 1, false);
    return { flops: c.flops, notes: c.notes };
  }
  const one = countFlops(model, 1, true);
  const two = countFlops(model, 2, true);
  const notes = [...one.notes, ...two.notes.filter((n) => !one.notes.includes(n))];
  const d = two.flops - one.flops;
  if (d < 0) {
    notes.push('FLOPs fell as the batch grew; charged the batch-1 total per row');
    return { flops: one.flops, notes };
  }
  return { flops: d, notes };
}

/**
 * Read an ONNX model's inputs, outputs, opset, batch behaviour and FLOPs per row.
 * @param field the file or API field named in errors
 * @throws DrillError MODEL_NOT_ONNX for bytes that are not an ONNX model (garbage, truncated,
 *   other formats); MODEL_GRAPH for a graph that references values nothing defines;
 *   MODEL_FLOPS when the cost is negative (negative dims) or not exactly representable
 */
export function inspectModel(bytes: Uint8Array, field = 'model'): ModelInfo {
  const m = decodeModel(bytes, field);
  const batchDim = batchDimOf(m.inputs);
  let cost: { flops: number; notes: string[] };
  try {
    cost = flopsPerRow(m, batchDim);
  } catch (e) {
    if (e instanceof DrillError) {
      throw new DrillError(e.code, `${field}: ${e.message}`, { ...e.meta, field }, { cause: e });
    }
    throw e;
  }
  if (!Number.isSafeInteger(cost.flops) || cost.flops < 0) {
    // Negative dims or sizes beyond 2^53 FLOPs/row: no honest model looks like this, and the cost must be an exact integer.
    throw new DrillError('MODEL_FLOPS', `${field}: expected a model whose FLOPs per row is a non-negative integer below 2^53, received ${cost.flops}`, { field, flops: cost.flops });
  }
  return {
    inputs: m.inputs,
    outputs: m.outputs,
    opset: m.opset,
    irVersion: m.irVersion,
    producer: m.producer,
    nodes: m.nodes.length,
    flopsPerRow: cost.flops,
    batchDim,
    ops: [...new Set(m.nodes.map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op}` : n.op)))].sort(),
    notes: cost.notes,
  };
}
