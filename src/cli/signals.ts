/**
 * Stop signals for long-running commands. The first SIGINT/SIGTERM asks for a clean shutdown. The
 * same Ctrl-C often arrives twice: the terminal sends it to the whole process group, and a
 * launcher in that group (npx, or bin/drill.js re-running itself under the pinned Node) forwards
 * it as well — so a repeat soon after the first is ignored. A repeat later than that means the
 * person wants out now: exit at once with 128 + the signal number.
 */
import { constants } from 'node:os';

/** How soon a repeat counts as the same signal delivered twice: forwarding takes milliseconds,
 * a person pressing Ctrl-C again takes longer than this. */
export const DUPLICATE_SIGNAL_MS = 1000;
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Call `onStop` once, on the first SIGINT or SIGTERM. Returns a function that removes the
 * handlers (a repeat after that gets Node's default: the process ends).
 */
export function onStopSignal(onStop: (sig: NodeJS.Signals) => void): () => void {
  let first = 0;
  const handler = (sig: NodeJS.Signals): void => {
    if (first === 0) {
      first = Date.now();
      onStop(sig);
      return;
    }
    if (Date.now() - first < DUPLICATE_SIGNAL_MS) return;
    process.stderr.write(`${sig} again: exiting without finishing the shutdown\n`);
    process.exit(128 + (constants.signals[sig] ?? 0));
  };
  for (const s of STOP_SIGNALS) process.on(s, handler);
  return () => {
    for (const s of STOP_SIGNALS) process.off(s, handler);
  };
}

/** Resolves with the name of the first SIGINT/SIGTERM (handlers stay: see onStopSignal). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => void onStopSignal(resolve));
}
