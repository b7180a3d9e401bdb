/**
 * The ONNX protobuf schema, loaded lazily: the official `onnx.proto` (vendored in `proto/`,
 * see proto/SOURCE.md) compiled by protobuf.js's `pbjs` into a static module. Nothing imports
 * the module at start-up: `loadOnnxProto()` imports it (and protobufjs) the first time a model
 * is decoded or encoded, so a process that never reads a model never pays for it.
 *
 * int64 fields (dims, attribute ints, int64_data, ...) come back as JS numbers: the generated
 * code asks protobufjs for them, and protobufjs answers with `Long` objects whenever the
 * `long` package is installed — it is, as protobufjs's own dependency. `util.Long = null;
 * configure()` is protobufjs's documented switch back to numbers. Values beyond 2^53 lose
 * their last bits, which no dimension, axis or trip count has (INT64_MAX as a Slice end
 * rounds to 2^63 and still clamps the same way).
 */
import type { onnx } from './proto/onnx.js';

/** The generated `onnx` namespace: ModelProto, GraphProto, TensorProto, ... with encode/decode. */
export type OnnxProto = typeof onnx;

let loading: Promise<OnnxProto> | null = null;

/** Import protobufjs and the generated ONNX schema once; later calls share the same promise. */
export function loadOnnxProto(): Promise<OnnxProto> {
  loading ??= (async () => {
    const pb = (await import('protobufjs/minimal.js')).default;
    (pb.util as { Long: unknown }).Long = null;
    pb.configure();
    return (await import('./proto/onnx.js')).onnx;
  })();
  return loading;
}
