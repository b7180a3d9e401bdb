/**
 * The dashboard's files: the page and its script and style (src/api/dashboard/), plus the few
 * libraries it uses, served from the installed packages (preact, preact/hooks, htm, uPlot) —
 * nothing from a CDN, since grids run behind firewalls, and no build step: the page is plain
 * ES modules. Files are read once and kept in memory (~170 KB together).
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const HERE = import.meta.dirname;

/** The folder of an installed package, found by walking up from this file (exports maps hide package.json). */
function packageDir(name: string): string {
  for (let d = HERE; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (dirname(d) === d) throw new Error(`dashboard: package ${name} is not installed (npm ci)`);
  }
}

interface AssetSource {
  file: () => string;
  type: string;
  /** Rewrite bare imports to the served files (the page has no import map: CSP forbids inline scripts). */
  rewrite?: (s: string) => string;
}

const SOURCES: Record<string, AssetSource> = {
  'index.html': { file: () => join(HERE, 'dashboard', 'index.html'), type: 'text/html; charset=utf-8' },
  'app.js': { file: () => join(HERE, 'dashboard', 'app.js'), type: 'text/javascript; charset=utf-8' },
  'style.css': { file: () => join(HERE, 'dashboard', 'style.css'), type: 'text/css; charset=utf-8' },
  'preact.mjs': { file: () => join(packageDir('preact'), 'dist', 'preact.mjs'), type: 'text/javascript; charset=utf-8' },
  'hooks.mjs': { file: () => join(packageDir('preact'), 'hooks', 'dist', 'hooks.mjs'), type: 'text/javascript; charset=utf-8', rewrite: (s) => s.replace(/from\s*["']preact["']/g, 'from"./preact.mjs"') },
  'htm.mjs': { file: () => join(packageDir('htm'), 'dist', 'htm.module.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.mjs': { file: () => join(packageDir('uplot'), 'dist', 'uPlot.esm.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.css': { file: () => join(packageDir('uplot'), 'dist', 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

export interface Asset {
  type: string;
  body: Buffer;
}

/** A getter of dashboard files by name (undefined for names that are not ours). */
export function dashboardAssets(): { get(name: string): Promise<Asset | undefined> } {
  const cache = new Map<string, Promise<Asset>>();
  return {
    get(name) {
      const src = Object.hasOwn(SOURCES, name) ? SOURCES[name] : undefined;
      if (!src) return Promise.resolve(undefined);
      let a = cache.get(name);
      if (!a) {
        a = readFile(src.file()).then((b) => ({ type: src.type, body: src.rewrite ? Buffer.from(src.rewrite(b.toString('utf8'))) : b }));
        a.catch(() => cache.delete(name));
        cache.set(name, a);
      }
      return a;
    },
  };
}
