#!/usr/bin/env node
/**
 * Bundle the libp2p modules the project uses (src/vendor/libp2p.direct.ts) into one ES module,
 * node_modules/.cache/matrix-drill/libp2p.mjs, so `drill` imports one file instead of hundreds
 * (~1 s less start-up; see src/vendor/libp2p.ts). Run by `npm ci` / `npm install` (postinstall)
 * and by hand: `node scripts/bundle-libp2p.js`. Needs rolldown (a dev dependency, through
 * vitest); without it — an install with --omit=dev — it says so and the packages are loaded
 * directly, which is slower to start but the same code.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'node_modules', '.cache', 'matrix-drill', 'libp2p.mjs');
const SRC = join(ROOT, 'src', 'vendor', 'libp2p.direct.ts');
// The facade uses the bundle only while this stamp matches the source it was built from.
const STAMP = `${OUT}.sha256`;

let rolldown;
try {
  rolldown = await import('rolldown');
} catch {
  console.log('bundle-libp2p: rolldown is not installed (dev dependencies omitted); libp2p is loaded from its packages (slower start-up)');
  process.exit(0);
}

const t0 = Date.now();
await mkdir(dirname(OUT), { recursive: true });
await rm(STAMP, { force: true });
const tmp = `${OUT}.${process.pid}.tmp.mjs`;
try {
  await rolldown.build({
    input: SRC,
    platform: 'node',
    logLevel: 'silent',
    output: { file: tmp, format: 'esm', codeSplitting: false },
  });
  await rename(tmp, OUT);
  await writeFile(STAMP, createHash('sha256').update(await readFile(SRC)).digest('hex'));
  console.log(`bundle-libp2p: wrote ${OUT} in ${Date.now() - t0} ms`);
} catch (e) {
  await rm(tmp, { force: true });
  await rm(OUT, { force: true });
  await rm(STAMP, { force: true });
  console.log(`bundle-libp2p: could not bundle (${e instanceof Error ? e.message : String(e)}); libp2p is loaded from its packages (slower start-up)`);
}
