// The dashboard in a real browser: `mtl run --http 127.0.0.1:0` with real worker processes,
// opened in headless Chromium (playwright-core drives the system's Chromium: $MTL_CHROMIUM, else /usr/bin/chromium). The
// curves and the worker table must fill with live data and keep moving; a screenshot is kept.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { requireTool } from '../helpers/system-tools.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** Screenshots go here (kept after the test): $MTL_TEST_OUTPUT, else <tmp>/mtl-test-output. */
const OUTPUT_DIR = process.env.MTL_TEST_OUTPUT ?? path.join(os.tmpdir(), 'mtl-test-output');

/** Two regression tasks, fast steps, long enough to watch it move. */
function dashboardJob(steps: number): object {
  const data = (target: number) => ({ dataset: 'synthetic', target, tasks: 3, dim: 20, samples: 2000 });
  return {
    name: 'dashboard-e2e',
    seed: 3,
    model: { trunk: [{ dense: { units: 16, activation: 'relu' } }], heads: { a: [{ dense: { units: 1 } }], b: [{ dense: { units: 1 } }], c: [{ dense: { units: 1 } }] } },
    tasks: {
      a: { loss: 'meanSquaredError', metrics: ['mae'], data: data(0) },
      b: { loss: 'meanSquaredError', metrics: ['mae'], data: data(1) },
      c: { loss: 'meanSquaredError', metrics: ['mae'], data: data(2) },
    },
    training: { steps, batchSize: 32, optimizer: { name: 'adam', learningRate: 0.01 }, aggregator: { name: 'mgda' }, evalEvery: 50 },
    checkpoint: { every: 100 },
  };
}

async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: requireTool('chromium'), headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

// The page's globals as far as the page-side functions below use them: the tests compile
// without the DOM library. (Functions, not strings: the page's CSP forbids eval.)
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
}
declare const document: { getElementById(id: string): PageElement; querySelectorAll(selector: string): ArrayLike<PageElement> };

const points = async (page: Page, chart: string) => Number(await page.getAttribute(`#${chart}`, 'data-points'));
const shownStep = async (page: Page) => Number(await page.textContent('#step'));
const pointsAbove = (page: Page, chart: string, n: number, timeout: number) =>
  page.waitForFunction(([id, min]) => Number(document.getElementById(id).dataset.points) > min, [chart, n] as const, { timeout });

void describe('dashboard in a browser', () => {
  let browser: Browser;
  before(async () => {
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });

  void it('shows live curves and the worker table of a real run, then the finished run directory (mtl dashboard)', async (t) => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const out = tempDir('mtl-dash-run-');
    const run = startCli(['run', writeJob(dashboardJob(20_000)), '--workers', '2', '--out', out, '--http', '127.0.0.1:0']);
    const [, url] = await run.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/);
    assert.ok(url);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);

    // Curves with points, a worker row that has done units.
    await pointsAbove(page, 'loss-chart', 10, 60_000);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#workers tbody td.units')).some((td) => Number(td.textContent) > 0), undefined, { timeout: 30_000 });
    assert.equal(await page.locator('#workers tbody tr').count(), 2, 'one row per worker');
    assert.deepEqual(await page.locator('#workers tbody td.backend').allTextContents(), ['wasm', 'wasm']);
    // evalEvery 50: an evaluation may be under way at this moment.
    assert.match((await page.textContent('#run-state')) ?? '', /^(training|evaluating)$/);
    assert.equal(await page.textContent('#live'), 'live');

    // Live: the step and the curves keep moving without a reload.
    const step1 = await shownStep(page);
    const loss1 = await points(page, 'loss-chart');
    await page.waitForFunction((s) => Number(document.getElementById('step').textContent) > s + 20, step1, { timeout: 30_000 });
    await pointsAbove(page, 'loss-chart', loss1, 30_000);
    await pointsAbove(page, 'eval-chart', 0, 60_000);
    for (const chart of ['weights-chart', 'throughput-chart', 'time-chart']) assert.ok((await points(page, chart)) > 0, `${chart} has points`);
    // MGDA weights per task, the 3 × 3 cosine heatmap, and the first events.
    assert.equal(await page.locator('#cosine-heatmap tr').count(), 4);
    assert.match((await page.textContent('#events')) ?? '', /run-started/);
    assert.match((await page.textContent('#throughput')) ?? '', /samples\/s/);

    const live = path.join(OUTPUT_DIR, 'dashboard.png');
    await page.screenshot({ path: live, fullPage: true });
    t.diagnostic(`screenshot of the live dashboard: ${live}`);
    assert.deepEqual(errors, [], 'no script errors on the page');

    // Stop the run (its dashboard goes with it), then open its run directory.
    run.child.kill('SIGINT');
    const r = await run.result;
    assert.equal(r.code, 130, r.stderr);
    const written = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').length;

    const viewer = startCli(['dashboard', out, '--http', '127.0.0.1:0']);
    const [, url2] = await viewer.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/);
    await page.goto(url2!);
    await page.waitForFunction((n) => Number(document.getElementById('loss-chart').dataset.points) === n, written, { timeout: 20_000 });
    await page.waitForFunction(() => document.getElementById('live').textContent === 'finished run', undefined, { timeout: 10_000 });
    assert.equal(await page.textContent('#run-state'), 'stopped');
    assert.equal(await shownStep(page), written);
    const finished = path.join(OUTPUT_DIR, 'dashboard-run-dir.png');
    await page.screenshot({ path: finished, fullPage: true });
    t.diagnostic(`screenshot of mtl dashboard RUN_DIR: ${finished}`);
    viewer.child.kill('SIGINT');
    assert.equal((await viewer.result).code, 0);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
