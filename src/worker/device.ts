/**
 * Execution-provider selection for the worker's ONNX Runtime sessions.
 *
 * A worker asks for a device ('cpu' or 'cuda'); this module checks, before any thread or
 * session exists, whether ONNX Runtime on this machine can serve it, and answers with the
 * session options to use or a DEVICE_UNAVAILABLE error that names what is missing and how to
 * fix it. It never falls back to the CPU silently: a GPU owner who asked for CUDA and got CPU
 * would earn a fraction of the credit without knowing why. Falling back is the caller's explicit
 * choice (`fallbackToCpu`).
 *
 * The check is split into a probe of the machine (`probeMachine`, I/O) and a pure decision
 * (`checkDevice`), so the decision is unit-testable with made-up probes.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, arch as osArch, platform as osPlatform } from 'node:os';
import { dirname, join } from 'node:path';
import { DrillError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

/** The devices a worker can run on. */
export type Device = 'cpu' | 'cuda';

export const DEVICES: readonly Device[] = ['cpu', 'cuda'];

/**
 * How a result was produced, recorded with every result so PoD can explain float differences
 * between replicas (thread counts, CPU models and execution providers all change rounding).
 */
export interface ExecutionProfile {
  device: Device;
  /** ONNX Runtime's execution provider name, e.g. 'CPUExecutionProvider'. */
  ep: string;
  intraOpThreads: number;
  /** onnxruntime-node version. */
  ortVersion: string;
  /** process.arch, e.g. 'x64'. */
  arch: string;
  /** os.cpus()[0].model, or 'unknown'. */
  cpuModel: string;
  /** For 'cuda': the GPU model from the NVIDIA driver (/proc/driver/nvidia/gpus), when readable. */
  gpuModel?: string;
}

/** What the machine offers, as far as ONNX Runtime's CUDA execution provider is concerned. */
export interface MachineProbe {
  platform: string;
  arch: string;
  /** Folder holding onnxruntime-node's native binaries (where the CUDA EP libraries must be). */
  ortBinDir: string;
  /** Names of the EP libraries present there (libonnxruntime_providers_*.so). */
  providerLibs: string[];
  /** Whether an NVIDIA kernel driver is loaded (/proc/driver/nvidia/version exists on Linux). */
  nvidiaDriver: boolean;
}

/** The result of selecting a device: what the sessions will be created with. */
export interface DeviceSelection {
  device: Device;
  /** ORT's execution provider name for the profile. */
  ep: string;
  /** `executionProviders` for InferenceSession.create, in priority order. */
  executionProviders: string[];
}

/** Platforms for which onnxruntime-node publishes CUDA EP binaries (see its install-metadata.js). */
const CUDA_PLATFORMS = new Set(['linux/x64']);
/** The EP libraries the CUDA EP needs beside the core library. */
const CUDA_LIBS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
/** The fix we print: the onnxruntime-node install script downloads the CUDA 12 EP binaries. */
export const CUDA_INSTALL_HINT =
  'onnxruntime-node was installed without CUDA binaries: reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci';

const require = createRequire(import.meta.url);

/** Folder of onnxruntime-node's native binaries for this platform. */
export function ortBinDir(platform: string = osPlatform(), arch: string = osArch()): string {
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', platform, arch);
}

/** onnxruntime-node's version, read from its package.json (no native library is loaded). */
export function ortVersion(): string {
  const pkg = JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** Look at this machine: platform, EP libraries shipped with onnxruntime-node, NVIDIA driver. */
export function probeMachine(): MachineProbe {
  const dir = ortBinDir();
  const providerLibs = CUDA_LIBS.concat('libonnxruntime_providers_tensorrt.so').filter((f) => existsSync(join(dir, f)));
  return {
    platform: osPlatform(),
    arch: osArch(),
    ortBinDir: dir,
    providerLibs,
    nvidiaDriver: osPlatform() === 'linux' ? existsSync('/proc/driver/nvidia/version') : false,
  };
}

/**
 * Decide whether `device` can run on the probed machine. Pure.
 * @returns `{ ok: true }` or `{ ok: false, missing, hint }` naming what is missing and the fix.
 */
export function checkDevice(device: Device, probe: MachineProbe): { ok: true } | { ok: false; missing: string; hint: string } {
  if (device === 'cpu') return { ok: true };
  const plat = `${probe.platform}/${probe.arch}`;
  if (!CUDA_PLATFORMS.has(plat)) {
    return { ok: false, missing: `CUDA build of onnxruntime-node for ${plat}`, hint: `onnxruntime-node ships the CUDA execution provider for ${[...CUDA_PLATFORMS].join(', ')} only; run with --device cpu` };
  }
  const absent = CUDA_LIBS.filter((f) => !probe.providerLibs.includes(f));
  if (absent.length > 0) {
    return { ok: false, missing: `${absent.join(', ')} in ${probe.ortBinDir}`, hint: CUDA_INSTALL_HINT };
  }
  if (!probe.nvidiaDriver) {
    return { ok: false, missing: 'an NVIDIA GPU driver (/proc/driver/nvidia/version not found)', hint: 'install the NVIDIA driver and CUDA 12 + cuDNN 9 runtime libraries, or run with --device cpu' };
  }
  return { ok: true };
}

/** The session options for a device that passed `checkDevice`. */
export function selectionFor(device: Device): DeviceSelection {
  return device === 'cuda'
    ? // CPU stays listed second so the few operators the CUDA EP lacks still run (ORT assigns per
      // node); the device itself was checked, so this is not a silent whole-model fallback.
      { device, ep: 'CUDAExecutionProvider', executionProviders: ['cuda', 'cpu'] }
    : { device, ep: 'CPUExecutionProvider', executionProviders: ['cpu'] };
}

/** The DEVICE_UNAVAILABLE error for `device`, naming what is missing. */
export function deviceUnavailable(device: Device, missing: string, hint: string, cause?: unknown): DrillError {
  return new DrillError(
    'DEVICE_UNAVAILABLE',
    `device: expected a usable '${device}' execution provider, received none: missing ${missing} (${hint})`,
    { field: 'device', device, missing, hint },
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Select the execution provider for `requested`.
 * @throws DrillError USER_INPUT when `requested` is not a known device.
 * @throws DrillError DEVICE_UNAVAILABLE when the device cannot be used and `fallbackToCpu` is not set.
 */
export function selectDevice(
  requested: Device,
  opts: { fallbackToCpu?: boolean; logger?: Logger; probe?: MachineProbe } = {},
): DeviceSelection {
  if (!DEVICES.includes(requested)) {
    throw new DrillError('USER_INPUT', `device: expected one of ${DEVICES.join(', ')}, received ${JSON.stringify(requested)}`, { field: 'device' });
  }
  const verdict = checkDevice(requested, opts.probe ?? probeMachine());
  if (verdict.ok) return selectionFor(requested);
  if (opts.fallbackToCpu) {
    opts.logger?.warn('device unavailable, falling back to CPU as asked', { requested, missing: verdict.missing, hint: verdict.hint });
    return selectionFor('cpu');
  }
  throw deviceUnavailable(requested, verdict.missing, verdict.hint);
}

/** The first GPU's model name as the NVIDIA driver reports it (Linux), or undefined. */
export function nvidiaGpuModel(root = '/proc/driver/nvidia/gpus'): string | undefined {
  try {
    for (const bus of readdirSync(root).sort()) {
      const m = /^Model:\s*(.+)$/m.exec(readFileSync(join(root, bus, 'information'), 'utf8'));
      if (m) return m[1]!.trim();
    }
  } catch {
    // no driver or not Linux: the profile just lacks the GPU name
  }
  return undefined;
}

/** The execution profile for a selection on this machine. */
export function executionProfile(sel: DeviceSelection, intraOpThreads: number, version: string = ortVersion()): ExecutionProfile {
  const p: ExecutionProfile = {
    device: sel.device,
    ep: sel.ep,
    intraOpThreads,
    ortVersion: version,
    arch: osArch(),
    cpuModel: cpus()[0]?.model.trim() || 'unknown',
  };
  if (sel.device === 'cuda') {
    const gpu = nvidiaGpuModel();
    if (gpu !== undefined) p.gpuModel = gpu;
  }
  return p;
}
