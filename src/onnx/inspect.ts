/**
 * What the grid knows about a partner's model before running it, and what one row of it costs.
 *
 * ONNX Runtime is the judge of what a model is: its inputs and outputs (names, element types,
 * dims with their symbolic names) come from an ORT session's metadata, passed in here as data
 * (`IoInfo`), so this module stays pure. The decoded graph (decode.ts) is only read for the
 * cost model and the opsets/ops a report shows.
 *
 * FLOPs per row (`rowCost`) come from the REAL input shapes (flops.ts): the graph is costed with
 * every split input's batch axis at 1 and at 2 rows, and a row costs the difference (work that
 * does not grow with the rows — weight preprocessing, a broadcast input's own processing — is
 * not charged per row). A model run row by row (its batch dim fixed at 1) costs one whole run
 * per row.
 */
import type { DecodedModel } from './decode.ts';
import { countFlops, type InputShape } from './flops.ts';

/** A model input or output as ONNX Runtime's session metadata describes it. */
export interface IoInfo {
  name: string;
  /** ORT's element type name ('float32', 'int64', 'float16', 'string', ...); 'non-tensor' for sequences and maps. */
  dtype: string;
  /**
   * Dims as ORT reports them: a number is fixed, a string is symbolic ('' for an unnamed dynamic
   * dim). [] is a scalar — or a shape nobody declared: see `rankKnown`.
   */
  dims: (number | string)[];
  /** False when the model declares no shape at all (ORT then also reports []). */
  rankKnown: boolean;
}

/** A model's interface and structure. */
export interface ModelInfo {
  inputs: IoInfo[];
  outputs: IoInfo[];
  /** Default-domain opset; 0 when the graph could not be decoded for costing. */
  opset: number;
  irVersion: number;
  producer: string;
  /** Nodes in the main graph. */
  nodes: number;
  /** Op types in the graph and its subgraphs (domain-qualified outside ai.onnx), sorted, each once. */
  ops: string[];
}

/** ORT session metadata of one value (what `InferenceSession.inputMetadata` holds). */
export interface OrtValueMeta {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

/**
 * Combine ORT's metadata (names, types, dims) with the declaration (is a shape declared at all)
 * into a ModelInfo. `decoded` may be null when the bytes ORT loaded could not be decoded.
 */
export function modelInfo(decoded: DecodedModel | null, inputs: readonly OrtValueMeta[], outputs: readonly OrtValueMeta[]): ModelInfo {
  const declared = new Map<string, boolean>();
  for (const v of [...(decoded?.inputs ?? []), ...(decoded?.outputs ?? [])]) declared.set(v.name, v.dims !== null);
  const io = (m: OrtValueMeta): IoInfo => {
    const dims = m.isTensor ? [...(m.shape ?? [])] : [];
    return { name: m.name, dtype: m.isTensor ? (m.type ?? 'undefined') : 'non-tensor', dims, rankKnown: dims.length > 0 || (declared.get(m.name) ?? false) };
  };
  const ops = new Set<string>();
  const walk = (g: DecodedModel['graph']): void => {
    for (const n of g.nodes) {
      ops.add(n.domain ? `${n.domain}.${n.op}` : n.op);
      for (const a of Object.values(n.attrs)) {
        if (a.g) walk(a.g);
        for (const sg of a.graphs ?? []) walk(sg);
      }
    }
  };
  if (decoded) walk(decoded.graph);
  return {
    inputs: inputs.map(io),
    outputs: outputs.map(io),
    opset: decoded?.opset ?? 0,
    irVersion: decoded?.irVersion ?? 0,
    producer: decoded?.producer ?? '',
    nodes: decoded?.graph.nodes.length ?? 0,
    ops: [...ops].sort(),
  };
}

/** An input as a job feeds it: its real dims (the whole job's), and where its rows are. */
export interface JobInputShape {
  dtype: string;
  /** The whole input's dims (all rows). */
  dims: number[];
  /** The axis split into rows; null: sent whole to every unit (broadcast). */
  batchAxis: number | null;
  /** Values of a small broadcast input (at most MAX_CONST_VALUES elements), which shape inference may use. */
  values?: number[];
}

/** What one row of a job costs. */
export interface RowCost {
  /** FLOPs per row, from the real input shapes (an exact integer; 0 when it is not one). */
  flopsPerRow: number;
  /** Graph outputs whose shape the graph does not tell: FLOPs per revealed element (see costFromOutputs). */
  outputCost: Record<string, number>;
  /**
   * Each output's batch axis as shape inference sees it: the axis that grows with the rows;
   * null when no axis does (the output does not depend on the rows); undefined when the shape
   * could not be inferred.
   */
  outputBatchAxes: Record<string, number | null | undefined>;
  notes: string[];
}

/**
 * The cost of one row, from the real input shapes.
 * @param rowByRow the model runs one row per ORT call (its batch dim fixed at 1): a row costs a whole run
 */
export function rowCost(model: DecodedModel, inputs: Readonly<Record<string, JobInputShape>>, rowByRow = false): RowCost {
  const at = (rows: number): Record<string, InputShape> =>
    Object.fromEntries(
      Object.entries(inputs).map(([name, i]) => {
        const dims = [...i.dims];
        if (i.batchAxis !== null) dims[i.batchAxis] = rows;
        return [name, { dtype: i.dtype, dims, ...(i.batchAxis === null && i.values ? { values: i.values } : {}) }];
      }),
    );
  const one = countFlops(model, at(1));
  const two = countFlops(model, at(2));
  const notes = [...one.notes, ...two.notes.filter((n) => !one.notes.includes(n))];
  let flops: number;
  if (rowByRow) flops = one.flops;
  else {
    flops = two.flops - one.flops;
    if (flops < 0) {
      notes.push('FLOPs fell as the rows grew; charged the 1-row total per row');
      flops = one.flops;
    }
  }
  if (!Number.isSafeInteger(flops) || flops < 0) {
    notes.push(`FLOPs per row ${flops} is not an integer below 2^53: not credited`);
    flops = 0;
  }
  const outputBatchAxes: Record<string, number | null | undefined> = {};
  for (const [name, d1] of Object.entries(one.outputs)) {
    const d2 = two.outputs[name];
    if (!d1 || !d2 || d1.length !== d2.length) {
      outputBatchAxes[name] = undefined;
      continue;
    }
    const grown = d1.flatMap((d, i) => (d2[i] !== d ? [i] : []));
    outputBatchAxes[name] = grown.length === 0 ? null : grown.length === 1 ? grown[0]! : undefined;
  }
  const outputCost: Record<string, number> = { ...one.outputCost };
  for (const [k, v] of Object.entries(two.outputCost)) outputCost[k] = Math.min(outputCost[k] ?? v, v);
  return { flopsPerRow: flops, outputCost, outputBatchAxes, notes };
}
