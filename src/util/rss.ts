/**
 * This process's peak resident set size, in bytes: /proc/self/status VmHWM on Linux, else
 * getrusage's ru_maxrss. VmHWM first because ru_maxrss survives exec: a child spawned by a big
 * parent (a benchmark holding a job's inputs) would report the parent's size.
 */
import { readFileSync } from 'node:fs';

export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}
