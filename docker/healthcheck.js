#!/usr/bin/env node
// The image's HEALTHCHECK. A coordinator is healthy when its HTTP API answers GET /healthz (on
// the port of its --http flag, default 9361); a container running anything else (a worker, the
// demo, a one-off command) has no HTTP side and is reported healthy while it runs. Plain
// JavaScript, no dependencies: `node docker/healthcheck.js`, exit 0 healthy, 1 not.
import { readFileSync } from 'node:fs';

/** PID 1's arguments after `drill` (the entrypoint): e.g. ['coordinator', '--http', '0.0.0.0:9361']. */
function commandLine() {
  try {
    const argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0').filter(Boolean);
    const i = argv.findIndex((a) => /(^|\/)drill(\.js)?$/.test(a));
    return i >= 0 ? argv.slice(i + 1) : [];
  } catch {
    return [];
  }
}

const args = commandLine();
if (args[0] !== 'coordinator') process.exit(0);
let http = '127.0.0.1:9361';
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--http') http = args[i + 1] ?? http;
  else if (args[i].startsWith('--http=')) http = args[i].slice('--http='.length);
}
if (http === 'off') process.exit(0);
const port = Number(http.slice(http.lastIndexOf(':') + 1));
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(4000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
