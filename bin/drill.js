#!/usr/bin/env node
// The `drill` command. Node >= 22.18 runs the TypeScript sources directly (type stripping),
// so there is no build step: `npm ci` is all a fresh clone needs.
//
// Started by an older Node (a `drill` symlink on PATH, `npm install -g .`, `node bin/drill.js`
// with the system Node), it runs itself again under the Node that package.json pins (the `node`
// npm package's binary in node_modules), passing arguments, stdio, exit code and signals through:
// ~0.1 s instead of the ~2 s npm spends before `npx drill` starts. This file is plain JavaScript
// so that any Node >= 18 can parse it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module, { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** package.json engines.node */
const NEED = [22, 18];
/** Set in the re-run child (to the launching Node's version): never re-run twice. */
const REEXEC_ENV = 'DRILL_REEXEC_FROM';
/** Signals passed on to the child. Ctrl-C delivers SIGINT to both (same process group) and npm
 * forwards it too, so the child may see it twice: drill's shutdown absorbs a quick repeat. */
const FORWARD = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < NEED[0] || (major === NEED[0] && minor < NEED[1])) await runUnderPinnedNode();

// As a container's PID 1 a signal without a handler is ignored, not fatal: `docker stop` would
// wait 10 s and Ctrl-C on `docker run -it` would do nothing. Commands that shut down cleanly
// (coordinator, worker, settle) handle SIGINT/SIGTERM themselves; the others exit as they would
// elsewhere.
if (process.pid === 1) {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (process.listenerCount(sig) === 1) process.exit(128 + constants.signals[sig]);
    });
  }
}

// V8's compile cache on disk (Node >= 22.1; os.tmpdir()/node-compile-cache unless
// NODE_COMPILE_CACHE says otherwise): a later start skips compiling what an earlier one did.
module.enableCompileCache?.();

// node:sqlite is stable enough for us but still prints an ExperimentalWarning on Node 22:
// keep the CLI's output clean of it (every other warning still shows).
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning).includes('SQLite is an experimental feature')) return;
  return emitWarning(warning, ...rest);
};
// Our TypeScript sources, types already stripped, from a content-addressed cache (~0.3 s).
await import('../src/boot/ts-cache.js');
const { main } = await import('../src/cli/main.ts');
// A command's work is over when main() resolves (services stopped, files closed, output
// written: stdout/stderr and the logger write synchronously on Linux). Exit then, instead of
// waiting for timers that stopped libp2p nodes leave behind (an address-update debounce and a
// gossipsub heartbeat: ~1 s of nothing at the end of every `drill run`).
process.exit(await main(process.argv.slice(2)));

/** The pinned Node binary in node_modules (wherever npm put the `node` package), or null. */
function pinnedNode() {
  let dir;
  try {
    dir = dirname(createRequire(import.meta.url).resolve('node/package.json'));
  } catch {
    return null;
  }
  for (const f of ['bin/node', 'bin/node.exe']) if (existsSync(join(dir, f))) return join(dir, f);
  return null;
}

/** Re-run this file under the pinned Node; exits the way the child exits. Never returns. */
async function runUnderPinnedNode() {
  const bin = pinnedNode();
  if (!bin || process.env[REEXEC_ENV]) {
    process.stderr.write(
      `drill: Node >= ${NEED.join('.')} is required, this is ${process.version}` +
        (process.env[REEXEC_ENV] ? ` (re-run from ${process.env[REEXEC_ENV]}: the pinned Node is too old)` : '') +
        `.\nRun \`npm ci\` in the matrix-drill folder: it installs the pinned Node 22 into node_modules, which drill then uses.\n`,
    );
    process.exit(2);
  }
  // import.meta.url is the real path even when started through a symlink.
  const self = fileURLToPath(import.meta.url);
  const child = spawn(bin, [...process.execArgv, self, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC_ENV]: process.version },
  });
  const forward = (sig) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const sig of FORWARD) process.on(sig, forward);
  const [code, signal] = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, s) => resolve([c, s]));
  });
  for (const sig of FORWARD) process.off(sig, forward);
  if (signal) {
    // Die of the same signal, so a shell or supervisor sees what the child saw.
    process.kill(process.pid, signal);
    await new Promise((r) => setTimeout(r, 1000)); // the signal ends us; a stop/ignore does not
    process.exit(128 + (constants.signals[signal] ?? 0));
  }
  process.exit(code ?? 1);
}

