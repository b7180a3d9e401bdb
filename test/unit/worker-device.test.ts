/** Device selection decisions on made-up machine probes (no GPU needed). */
import { describe, expect, it } from 'vitest';
import { DrillError } from '../../src/util/errors.ts';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CUDA_INSTALL_HINT, checkDevice, executionProfile, nvidiaGpuModel, selectDevice, selectionFor } from '../../src/worker/device.ts';
import type { Device, MachineProbe } from '../../src/worker/device.ts';

const probe = (p: Partial<MachineProbe> = {}): MachineProbe => ({
  platform: 'linux',
  arch: 'x64',
  ortBinDir: '/ort/bin',
  providerLibs: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'],
  nvidiaDriver: true,
  ...p,
});

describe('checkDevice / selectDevice', () => {
  it('cpu is always available', () => {
    expect(checkDevice('cpu', probe({ providerLibs: [], nvidiaDriver: false }))).toEqual({ ok: true });
    expect(selectDevice('cpu', { probe: probe() })).toEqual({ device: 'cpu', ep: 'CPUExecutionProvider', executionProviders: ['cpu'] });
  });

  it('cuda with binaries and a driver selects the CUDA EP (CPU second for unsupported nodes)', () => {
    expect(selectDevice('cuda', { probe: probe() })).toEqual({ device: 'cuda', ep: 'CUDAExecutionProvider', executionProviders: ['cuda', 'cpu'] });
  });

  it('cuda without the CUDA EP binaries: DEVICE_UNAVAILABLE with the reinstall hint', () => {
    let e: unknown;
    try {
      selectDevice('cuda', { probe: probe({ providerLibs: [] }) });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(DrillError);
    expect((e as DrillError).code).toBe('DEVICE_UNAVAILABLE');
    expect((e as DrillError).message).toContain('libonnxruntime_providers_cuda.so');
    expect((e as DrillError).message).toContain(CUDA_INSTALL_HINT);
    expect((e as DrillError).message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
  });

  it('cuda without an NVIDIA driver, or on a platform without CUDA builds', () => {
    const noDriver = checkDevice('cuda', probe({ nvidiaDriver: false }));
    expect(noDriver.ok).toBe(false);
    expect(!noDriver.ok && noDriver.missing).toContain('NVIDIA');
    const mac = checkDevice('cuda', probe({ platform: 'darwin', arch: 'arm64' }));
    expect(!mac.ok && mac.missing).toContain('darwin/arm64');
  });

  it('fallbackToCpu selects the CPU instead of throwing, and says so', () => {
    const warnings: string[] = [];
    const logger = { error() {}, warn: (m: string) => warnings.push(m), info() {}, debug() {}, child: () => logger };
    expect(selectDevice('cuda', { probe: probe({ providerLibs: [] }), fallbackToCpu: true, logger }).device).toBe('cpu');
    expect(warnings).toHaveLength(1);
  });

  it('an unknown device is a USER_INPUT error', () => {
    expect(() => selectDevice('tpu' as Device, { probe: probe() })).toThrow(/device: expected one of cpu, cuda, received "tpu"/);
  });

  it('execution profile records device, EP, threads, ORT version, arch and CPU', () => {
    const p = executionProfile(selectionFor('cpu'), 3, '9.9.9');
    expect(p).toMatchObject({ device: 'cpu', ep: 'CPUExecutionProvider', intraOpThreads: 3, ortVersion: '9.9.9', arch: process.arch });
    expect(p.cpuModel.length).toBeGreaterThan(0);
  });

  it('reads the GPU model from the NVIDIA driver files', () => {
    const root = mkdtempSync(join(tmpdir(), 'drill-gpus-'));
    try {
      expect(nvidiaGpuModel(root)).toBeUndefined();
      mkdirSync(join(root, '0000:01:00.0'));
      writeFileSync(join(root, '0000:01:00.0', 'information'), 'Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   42\n');
      expect(nvidiaGpuModel(root)).toBe('NVIDIA H100 80GB HBM3');
      expect(nvidiaGpuModel(join(root, 'missing'))).toBeUndefined();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
