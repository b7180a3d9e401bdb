/**
 * ONNX model tooling: the official onnx.proto compiled by protobuf.js (proto.ts, loaded
 * lazily), a builder that encodes models from standard ops (builder.ts), a decoder for the parts
 * the grid needs (decode.ts), external-data inlining (external.ts), and shape inference with
 * the FLOPs cost table that Proof of Drilling credits (flops.ts, inspect.ts).
 */
export { GraphBuilder, Prng, attr, OnnxDataType, defaultGraphBuilderOptions } from './builder.ts';
export type { AttrValue, Dim, GraphBuilderOptions, WeightInit } from './builder.ts';
export { modelInfo, rowCost } from './inspect.ts';
export type { ModelInfo, IoInfo, OrtValueMeta, JobInputShape, RowCost } from './inspect.ts';
export { decodeModel, parseModelProto, describeModel, ModelErrorCode, MAX_CONST_VALUES } from './decode.ts';
export type { DecodedModel, GraphInfo, NodeInfo, TensorInfo, AttrInfo, ValueInfo, FunctionInfo, ModelMessage } from './decode.ts';
export { countFlops, costFromOutputs } from './flops.ts';
export type { FlopCount, InputShape } from './flops.ts';
export { externalDataRefs, inlineExternalData, encodeModelProto, ExternalDataErrorCode } from './external.ts';
export type { ExternalDataRef } from './external.ts';
export { loadOnnxProto } from './proto.ts';
