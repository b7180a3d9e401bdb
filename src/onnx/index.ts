/**
 * ONNX model tooling: a protobuf encoder for building models from standard ops (builder.ts),
 * a decoder for the parts the grid needs (decode.ts), and shape inference with the FLOPs
 * cost table that Proof of Drilling credits (flops.ts, inspect.ts).
 */
export { GraphBuilder, Prng, attr, OnnxDataType, defaultGraphBuilderOptions } from './builder.ts';
export type { AttrValue, Dim, GraphBuilderOptions, WeightInit } from './builder.ts';
export { inspectModel, batchDimOf, flopsPerRow, decodeModel, ModelErrorCode } from './inspect.ts';
export type { ModelInfo, BatchDim, ValueInfo } from './inspect.ts';
export type { DecodedModel, NodeInfo, TensorInfo, AttrInfo } from './decode.ts';
export { countFlops } from './flops.ts';
export type { FlopCount } from './flops.ts';
