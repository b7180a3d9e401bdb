#!/usr/bin/env node
// The `drill` command. Node >= 22.18 runs the TypeScript sources directly (type stripping),
// so there is no build step: `npm ci` is all a fresh clone needs.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `drill: Node >= 22.18 is required, this is ${process.version}.\n` +
      `Run it through npm (npx drill / npm start), which uses the Node 22 pinned in node_modules/.bin.\n`,
  );
  process.exit(2);
}
// node:sqlite is stable enough for us but still prints an ExperimentalWarning on Node 22:
// keep the CLI's output clean of it (every other warning still shows).
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning).includes('SQLite is an experimental feature')) return;
  return emitWarning(warning, ...rest);
};
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
