/**
 * Model intake: read a partner's .onnx, make it one self-contained file, and let ONNX Runtime
 * judge it. ORT is the judge of what a model is — if a session opens, the model is accepted
 * and its inputs and outputs are what the session reports; if not, the job is refused with
 * ORT's own message. The graph is also decoded (protobuf.js, src/onnx/) for the cost model;
 * a model ORT opens but the decoder cannot read is still run (and credited nothing).
 *
 * External data (tensors whose bytes live in files beside the model): the files must be in the
 * model's folder or below it (ORT's own rule), and are inlined into the model when the result
 * fits the grid's model limit (MAX_JOB_MODEL_BYTES), so workers receive one blob addressed by
 * its sha256.
 *
 * onnxruntime-node and protobuf.js are imported on first use, not at start-up.
 */
import { readFile, stat, open, writeFile, rename, mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, basename } from 'node:path';
import { UserError, isDrillError } from '../util/errors.ts';
import { sha256Hex } from '../util/bytes.ts';
import { parseModelProto, describeModel, type DecodedModel, type ModelMessage } from '../onnx/decode.ts';
import { externalDataRefs, inlineExternalData, encodeModelProto, type ExternalDataRef } from '../onnx/external.ts';
import { modelInfo, type ModelInfo, type OrtValueMeta } from '../onnx/inspect.ts';
import { MAX_MODEL_BYTES } from '../protocol/grid.ts';

/**
 * The largest model a job may have: what a worker fetches as one blob (MAX_MODEL_BYTES of the
 * grid protocol, 256 MiB). Protobuf itself stops at 2 GiB (ONNX Runtime too, reading a model
 * from memory): a model whose inlined data would cross either cannot travel as one file.
 */
export const MAX_JOB_MODEL_BYTES = Math.min(MAX_MODEL_BYTES, 2 ** 31 - 1);

/** A model ready to run: its final bytes' location and hash, ORT's view of it and the decoded graph. */
export interface OpenedModel {
  /** The file the grid serves: the partner's own, or the self-contained copy with external data inlined. */
  path: string;
  sha256: string;
  bytes: number;
  info: ModelInfo;
  /** null when the bytes ORT accepted could not be decoded (then costed at 0, noted). */
  decoded: DecodedModel | null;
  /** External data that was inlined (tensors), 0 when the model was self-contained. */
  inlinedTensors: number;
  notes: string[];
}

export interface OpenModelOptions {
  /** The flag or field named in errors (`--model`). */
  field?: string;
  /** Where to write the self-contained copy of an external-data model (created if needed). */
  workDir: string;
  /**
   * Accept external data at all. Remote intake passes false: an uploaded model has no files
   * beside it, and a location must never make the coordinator read its own files into a job.
   */
  allowExternalData?: boolean;
}

/** ORT's message on one line (it may carry newlines and the temp path of a buffer). */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').replace(/\s{2,}/g, ' ').trim();
}

/**
 * Read, inline and ORT-check a model.
 * @throws UserError (`--model`) for an unreadable file, external data that cannot be inlined,
 *   a model ORT refuses (its message), or inputs/outputs the grid cannot carry (non-tensors)
 */
export async function openModel(path: string, opts: OpenModelOptions): Promise<OpenedModel> {
  const field = opts.field ?? '--model';
  const modelPath = resolve(path);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(modelPath));
  } catch (e) {
    throw new UserError(field, 'a readable .onnx file', path, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message);
  }
  const notes: string[] = [];
  let msg: ModelMessage | null = null;
  try {
    msg = await parseModelProto(bytes, path);
  } catch (e) {
    if (!isDrillError(e)) throw e;
    // Not protobuf we can read: ORT decides below (and will almost surely refuse it).
  }
  let finalPath = modelPath;
  let inlinedTensors = 0;
  if (msg) {
    let refs: ExternalDataRef[];
    try {
      refs = externalDataRefs(msg);
    } catch (e) {
      if (isDrillError(e)) throw new UserError(field, 'a model whose external data entries name a file, offset and length', path, e.message);
      throw e;
    }
    if (refs.length > 0) {
      if (opts.allowExternalData === false) {
        throw new UserError(field, 'a self-contained model (this coordinator takes no external data files)', path, `${refs.length} tensors keep their data in files beside the model; drill submit inlines them before uploading, or save the model with onnx.save(model, path, save_as_external_data=False)`);
      }
      bytes = await inline(msg, refs, modelPath, bytes.length, field);
      inlinedTensors = refs.length;
      await mkdir(opts.workDir, { recursive: true });
      finalPath = join(opts.workDir, `${basename(modelPath).replace(/\.onnx$/i, '')}.inlined.onnx`);
      const tmp = `${finalPath}.${process.pid}.partial`;
      await writeFile(tmp, bytes);
      await rename(tmp, finalPath);
      notes.push(`external data of ${refs.length} tensors inlined into ${finalPath}`);
    }
  }

  if (bytes.length > MAX_JOB_MODEL_BYTES) {
    throw new UserError(field, `a model of at most ${MAX_JOB_MODEL_BYTES} bytes (what a worker fetches as one file)`, path, `${bytes.length} bytes`);
  }
  const meta = await ortJudge(bytes, path, field);
  for (const m of [...meta.inputs, ...meta.outputs]) {
    if (!m.isTensor) throw new UserError(field, 'a model whose inputs and outputs are all tensors (the grid carries tensors)', path, `${m.name} is a sequence or map`);
  }
  let decoded: DecodedModel | null = null;
  if (msg) decoded = describeModel(msg);
  else notes.push('the model could not be decoded for costing: it is credited 0 FLOPs');
  return { path: finalPath, sha256: sha256Hex(bytes), bytes: bytes.length, info: modelInfo(decoded, meta.inputs, meta.outputs), decoded, inlinedTensors, notes };
}

/** Inline every external tensor, reading from the model's folder; returns the re-encoded model. */
async function inline(msg: ModelMessage, refs: ExternalDataRef[], modelPath: string, ownBytes: number, field: string): Promise<Uint8Array> {
  const dir = dirname(modelPath);
  const sizes = new Map<string, number>();
  let total = ownBytes;
  for (const r of refs) {
    const file = resolve(dir, r.location);
    const rel = relative(dir, file);
    if (isAbsolute(r.location) || rel.startsWith('..') || isAbsolute(rel)) {
      throw new UserError(field, "external data files in the model's folder or below it", modelPath, `tensor ${r.name} reads ${JSON.stringify(r.location)}`);
    }
    let size = sizes.get(file);
    if (size === undefined) {
      try {
        size = (await stat(file)).size;
      } catch (e) {
        throw new UserError(field, `its external data file ${r.location} next to the model`, modelPath, `${(e as NodeJS.ErrnoException).code ?? 'unreadable'} for tensor ${r.name}: copy the data file next to the .onnx`);
      }
      sizes.set(file, size);
    }
    const len = r.length ?? size - r.offset;
    if (r.offset + len > size || len < 0) {
      throw new UserError(field, `external data of tensor ${r.name} inside ${r.location} (${size} bytes)`, modelPath, `offset ${r.offset} + length ${len}`);
    }
    total += len;
  }
  if (total > MAX_JOB_MODEL_BYTES) {
    throw new UserError(field, `a model of at most ${MAX_JOB_MODEL_BYTES} bytes once its external data is inlined (the grid ships a model to workers as one file)`, modelPath, `${total} bytes`);
  }
  const handles = new Map<string, Awaited<ReturnType<typeof open>>>();
  try {
    await inlineExternalData(refs, async (r) => {
      const file = resolve(dir, r.location);
      let fh = handles.get(file);
      if (!fh) {
        fh = await open(file, 'r');
        handles.set(file, fh);
      }
      const len = r.length ?? sizes.get(file)! - r.offset;
      const buf = new Uint8Array(len);
      let off = 0;
      while (off < len) {
        const { bytesRead } = await fh.read(buf, off, len - off, r.offset + off);
        if (bytesRead === 0) throw new UserError(field, `external data of tensor ${r.name} inside ${r.location}`, modelPath, 'a file that ended early');
        off += bytesRead;
      }
      return buf;
    });
  } finally {
    for (const fh of handles.values()) await fh.close().catch(() => undefined);
  }
  return encodeModelProto(msg);
}

/**
 * Open a session on the bytes (what workers will load) and read its metadata; the session is
 * released at once. Graph optimisation is off: it changes nothing about what ORT accepts (graph
 * checks, type inference and kernel lookup all run) and the coordinator never runs the model.
 */
async function ortJudge(bytes: Uint8Array, path: string, field: string): Promise<{ inputs: OrtValueMeta[]; outputs: OrtValueMeta[] }> {
  const ort = await import('onnxruntime-node');
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3, intraOpNumThreads: 1, interOpNumThreads: 1 });
  } catch (e) {
    const msg = oneLine(e instanceof Error ? e.message : String(e));
    throw new UserError(field, 'a model ONNX Runtime can load', path, `ONNX Runtime: ${msg}`);
  }
  try {
    const io = (m: (typeof session.inputMetadata)[number]): OrtValueMeta => (m.isTensor ? { name: m.name, isTensor: true, type: m.type, shape: m.shape } : { name: m.name, isTensor: false });
    return { inputs: session.inputMetadata.map(io), outputs: session.outputMetadata.map(io) };
  } finally {
    await session.release().catch(() => undefined);
  }
}
