/**
 * Plain in-process ONNX Runtime, no pool: the reference the pool's outputs are tested against,
 * and the baseline the grid benchmark compares with (best of intra-op threads, or one session
 * per core). One `session.run` per call with the inputs exactly as given: no input planning, no
 * row splitting, so a test comparing it with the pool checks the pool's own logic.
 */
import type { InferenceSession } from 'onnxruntime-node';
import type { HostTensor } from '../util/tensor.ts';
import { fromOrt, openSession, toOrt } from './session.ts';

/** Options for a direct session. */
export interface DirectOptions {
  /** ORT intra-op threads (default 1). */
  intraOpThreads?: number;
  /** Let ORT's threads spin while idle (default true: a direct session owns the machine). */
  allowSpinning?: boolean;
}

/** A loaded in-process session. Call release() when done. */
export class DirectSession {
  readonly session: InferenceSession;
  private constructor(session: InferenceSession) {
    this.session = session;
  }

  /** Load `modelPath` on the CPU. @throws Error from ONNX Runtime when the model cannot be loaded. */
  static async open(modelPath: string, opts: DirectOptions = {}): Promise<DirectSession> {
    const s = await openSession(modelPath, { executionProviders: ['cpu'], intraOpThreads: opts.intraOpThreads ?? 1, allowSpinning: opts.allowSpinning ?? true });
    return new DirectSession(s);
  }

  /** One ORT run over `inputs` (typed arrays are wrapped, not copied). @throws Error from ONNX Runtime. */
  async run(inputs: Record<string, HostTensor>, outputNames?: string[]): Promise<Record<string, HostTensor>> {
    const feeds: Record<string, ReturnType<typeof toOrt>> = {};
    for (const [k, t] of Object.entries(inputs)) feeds[k] = toOrt(t);
    const names = outputNames ?? [...this.session.outputNames];
    const res = await this.session.run(feeds, names);
    const out: Record<string, HostTensor> = {};
    for (const n of names) out[n] = fromOrt(n, res[n]);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Load `modelPath`, run `inputs` once in this thread, release the session.
 * @throws Error from ONNX Runtime when the model cannot be loaded or the inputs do not fit.
 */
export async function runDirect(
  modelPath: string,
  inputs: Record<string, HostTensor>,
  opts: DirectOptions = {},
): Promise<Record<string, HostTensor>> {
  const s = await DirectSession.open(modelPath, opts);
  try {
    return await s.run(inputs);
  } finally {
    await s.release();
  }
}
