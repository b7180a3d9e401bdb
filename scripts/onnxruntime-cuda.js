// The project's `postinstall`: fetch ONNX Runtime's CUDA 12 binaries when asked to.
//
// onnxruntime-node bundles the CPU binaries; its own install script downloads the CUDA
// execution-provider binaries from api.nuget.org (hundreds of MB, and the install fails where
// that host is unreachable). package.json's `allowScripts` ("onnxruntime-node": false, npm >= 11.16)
// keeps npm from running it, so a plain `npm ci` is CPU-only, offline-safe and warning-free.
// A GPU worker asks for the binaries the way onnxruntime-node documents it:
//
//   ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci
//
// and this script then runs onnxruntime-node's installer with that environment (on an existing
// install: `ONNXRUNTIME_NODE_INSTALL=cuda12 node scripts/onnxruntime-cuda.js`). Plain JavaScript
// that any Node >= 18 runs: it may run under whatever Node started npm.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const flag = process.env.ONNXRUNTIME_NODE_INSTALL || process.env.ONNXRUNTIME_NODE_INSTALL_CUDA;
if (!flag || flag === 'skip') process.exit(0);

const pkgDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
// What the installer fetches on linux/x64 (onnxruntime-node's script/install-metadata.js). An npm
// older than 11.16 ignores allowScripts and has run the installer already: do not fetch twice.
const want = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
const binDir = join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch);
if (want.every((f) => existsSync(join(binDir, f)))) {
  console.log(`onnxruntime-node: CUDA binaries present in ${binDir}`);
  process.exit(0);
}
console.log(`onnxruntime-node: ONNXRUNTIME_NODE_INSTALL${process.env.ONNXRUNTIME_NODE_INSTALL ? '' : '_CUDA'}=${flag}: running its installer (downloads from api.nuget.org)`);
const r = spawnSync(process.execPath, [join(pkgDir, 'script', 'install.js')], { cwd: pkgDir, stdio: 'inherit', env: process.env });
if (r.error) throw r.error;
process.exit(r.status ?? 1);
