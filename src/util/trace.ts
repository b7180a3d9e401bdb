/**
 * Start-up tracing: with DRILL_TRACE=1, `trace(label)` prints the milliseconds since the process
 * started and the label to stderr — where `drill run`'s fixed cost goes (docs/BENCHMARKS.md).
 * Free when off.
 */
import { performance } from 'node:perf_hooks';

const enabled = process.env.DRILL_TRACE === '1';

export function trace(label: string): void {
  if (enabled) process.stderr.write(`[drill +${Math.round(performance.now())} ms] ${label}\n`);
}
