import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // e2e tests start real libp2p nodes, ONNX Runtime sessions and child processes on a
    // 2-core machine: give them room, but never rely on time to wait for an event.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    // The hostile-peer tests measure the heap after a full collection (global.gc).
    execArgv: ['--expose-gc'],
  },
});
