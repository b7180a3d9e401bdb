/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core against a real
 * grid (libp2p, ONNX Runtime workers, the chain) with the HTTP server. A job submitted while
 * the page is open shows live and ends complete, the worker table lists every worker, and the
 * numbers on the page equal the API's. A screenshot is saved under test-artifacts/.
 * Skipped, with the reason printed, where /usr/bin/chromium is missing (`.ci/run` installs it).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/grid.ts';
import { startApiGrid, workloadForm } from '../helpers/api.ts';
import type { ApiGrid } from '../helpers/api.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`SKIPPED dashboard browser test: ${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does this)`);

describe.skipIf(!HAVE_CHROMIUM)('dashboard in chromium', () => {
  let g: ApiGrid;
  let profile: string;
  beforeAll(async () => {
    // Three honest workers and one that corrupts its results: the page shows disputes and faults too.
    g = await startApiGrid({ grid: { chain: { slotMs: 300 }, cheaters: 1 } });
    profile = await mkdtemp(join(tmpdir(), 'drill-chromium-'));
  });
  afterAll(async () => {
    await g?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('shows a job live to completion, every worker, and the same numbers as the API', async () => {
    const { chromium } = await import('playwright-core');
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1400, height: 1100 },
    });
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
      await page.goto(g.url);
      await page.waitForSelector('main[data-loaded="true"]');

      // Submitted while the page is open: it arrives over the event stream.
      const res = await fetch(`${g.url}/v1/jobs`, { method: 'POST', body: await workloadForm('mlp') });
      expect(res.status).toBe(201);
      const { id } = (await res.json()) as { id: string };
      await page.waitForSelector(`tr[data-job="${id}"][data-status="done"]`, { timeout: 60_000 });

      const job = (await (await fetch(`${g.url}/v1/jobs/${id}`)).json()) as { rowsDone: number; progress: { agreed: number; disputed: number } };
      const { workers } = (await (await fetch(`${g.url}/v1/workers`)).json()) as { workers: { peer: string; units: number; credit: number; faults: number }[] };
      expect(workers.length).toBe(4);
      const cheater = g.grid.workers.find((w) => w.cheater)!.node.peerId;
      expect(workers.find((w) => w.peer === cheater)!.faults).toBeGreaterThan(0);
      // The page reloads its views on 'done': wait until it shows what the API says.
      await page.waitForFunction((expected) => expected.every((w) => {
        type El = { querySelector(s: string): El | null; getAttribute(n: string): string | null };
        const document = (globalThis as unknown as { document: El }).document;
        const row = document.querySelector(`tr[data-peer="${w.peer}"]`);
        const v = (f: string): string | null | undefined => row?.querySelector(`[data-field="${f}"]`)?.getAttribute('data-value');
        return row && v('units') === String(w.units) && v('credit') === String(w.credit) && v('faults') === String(w.faults);
      }), workers, { timeout: 30_000 });
      expect(await page.locator('table[data-testid="workers"] tbody tr').count()).toBe(4);
      const jobRow = page.locator(`tr[data-job="${id}"]`);
      expect(await jobRow.locator('[data-field="rows"]').getAttribute('data-value')).toBe(String(job.rowsDone));
      expect(await jobRow.locator('[data-field="agreed"]').getAttribute('data-value')).toBe(String(job.progress.agreed));
      expect(await page.locator('[data-field="online"]').textContent()).toBe('4');
      const disputed = job.progress.disputed;
      expect(disputed).toBeGreaterThan(0);
      expect(await page.locator('[data-testid="pod"] [data-field="disputed"]').getAttribute('data-value')).toBe(String(disputed));
      expect(await page.locator('[data-testid="pod"] [data-field="faulty workers"]').getAttribute('data-value')).toBe('1');
      expect(await page.locator('[data-testid="pod"] [data-field="agreed"]').getAttribute('data-value')).toBe(String(job.progress.agreed));
      await page.waitForSelector('table[data-testid="blocks"] tbody tr');
      await mkdir(join(ROOT, 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await ctx.close();
    }
  });
});
