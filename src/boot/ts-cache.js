// A cache of the project's TypeScript sources with their types stripped, for start-up.
//
// Node 22 runs our .ts files by stripping their types (amaro, a WebAssembly build of swc) each
// time a process or thread loads them: ~0.3 s of a `drill run`'s main thread and ~0.1 s of
// every ONNX Runtime thread, on every start (Node's compile cache keeps the bytecode, not the
// stripped source). This module installs a synchronous load hook (module.registerHooks, Node
// >= 22.15) that serves each of our .ts files from a cache of stripped sources keyed by the
// sha256 of the file's content and the Node version: an edited file is simply a new key, so
// the cache is never stale. Stripping replaces types with spaces, so line and column numbers in
// stack traces stay those of the .ts file. Without registerHooks, or when the cache folder
// cannot be written, Node strips as usual.
//
// Cache folder: $DRILL_TS_CACHE, else <os.tmpdir()>/matrix-drill-ts-cache (like Node's own
// compile cache). DRILL_TS_CACHE=off disables it. Imported first by bin/drill.js and by the
// ONNX Runtime thread entry (src/worker/thread-entry.js): hooks belong to the thread that
// registers them. Plain JavaScript: it runs before any TypeScript can.
import module from 'node:module';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const setting = process.env.DRILL_TS_CACHE;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function install() {
  if (setting === 'off' || typeof module.registerHooks !== 'function' || typeof module.stripTypeScriptTypes !== 'function') return false;
  const dir = join(setting || join(tmpdir(), 'matrix-drill-ts-cache'), process.version);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return false;
  }
  let writable = true;
  // Stripping warns that the API is experimental, once per thread that misses the cache: the
  // warning says nothing to a drill user, so it is dropped (every other warning still shows).
  const emitWarning = process.emitWarning.bind(process);
  process.emitWarning = (warning, ...rest) => (String(warning).includes('stripTypeScriptTypes') ? undefined : emitWarning(warning, ...rest));
  module.registerHooks({
    load(url, context, nextLoad) {
      if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
      const path = fileURLToPath(url);
      // Our sources only (not a dependency's, not a test's .ts files run some other way).
      if (!path.startsWith(ROOT) || path.includes('/node_modules/')) return nextLoad(url, context);
      const source = readFileSync(path, 'utf8');
      const file = join(dir, `${createHash('sha256').update(source).digest('hex').slice(0, 40)}.js`);
      let js;
      try {
        js = readFileSync(file, 'utf8');
      } catch {
        js = module.stripTypeScriptTypes(source, { mode: 'strip' });
        if (writable) {
          try {
            const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
            writeFileSync(tmp, js, { mode: 0o600 });
            renameSync(tmp, file);
          } catch {
            writable = false;
          }
        }
      }
      return { format: 'module', source: js, shortCircuit: true };
    },
  });
  return true;
}

/** Whether the hook is installed in this thread. */
export const tsCacheInstalled = install();
