/**
 * The web console in a real browser: Debian's chromium driven by playwright-core against a whole local
 * Shoal (as `npm start`). Data is seeded through the SDK (collections, vectors, an index version, an
 * alias moved twice, a split experiment with feedback on both arms, a model, an import with bad rows);
 * then each page is driven the way a person would, asserting on visible text and ARIA roles.
 *
 * `SHOAL_CONSOLE_SCREENSHOTS=1` (npm run console:screenshots) also writes docs/console/<page>.png.
 * The file is skipped only when no chromium binary exists (`SHOAL_CHROMIUM`, else /usr/bin/chromium);
 * CI installs it (.ci/run).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Shoal } from '../../clients/typescript/src/node.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';
import { mulberry32, randomVectors } from '../helpers/random.js';
import { ROOT } from '../helpers/repo.js';

const CHROMIUM = process.env.SHOAL_CHROMIUM || '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SCREENSHOTS = process.env.SHOAL_CONSOLE_SCREENSHOTS === '1';
const SHOTS_DIR = path.join(ROOT, 'docs/console');
const DIM = 8;
const N = 200;
const TIMEOUT = 30_000;
// Runs in the page; the root program has no DOM types, hence the lookup through globalThis.
type Doc = { document: { activeElement: { textContent: string | null; id: string } | null } };
const ACTIVE_TEXT = () => (globalThis as unknown as Doc).document.activeElement?.textContent?.trim();
const ACTIVE_ID = () => (globalThis as unknown as Doc).document.activeElement?.id;
const CLS = () => (globalThis as unknown as { __cls: number }).__cls;
const KEY_IN_STORAGE = () =>
  (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem(
    'shoal.console.apiKey',
  );

if (!HAVE_CHROMIUM) {
  process.stderr.write(
    `console e2e: skipped, no chromium at ${CHROMIUM} (set SHOAL_CHROMIUM or apt install chromium)\n`,
  );
}

let server: HttpShoal;
let sdk: Shoal;
let browser: Browser;
let page: Page;
let tmp: string;
const pageErrors: string[] = [];
const foreignRequests: string[] = [];
let importJobId = '';

const rows = (seed: number, n = N) => {
  const data = randomVectors(mulberry32(seed), n, DIM);
  const langs = ['en', 'de', 'fr'];
  return Array.from({ length: n }, (_, i) => ({
    id: `doc-${i}`,
    values: Array.from(data.subarray(i * DIM, (i + 1) * DIM)),
    metadata: { lang: langs[i % 3], year: 2000 + (i % 25) },
  }));
};

async function shot(name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SHOTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS_DIR, `${name}.png`), fullPage: true });
}

async function open(hash: string): Promise<void> {
  await page.goto(`${server.shoal.url}/console/${hash}`);
}

async function seed(): Promise<void> {
  const docs = sdk.collection('docs');
  await sdk.collections.create({ name: 'docs', dimension: DIM, metric: 'cosine', index: { m: 4, efConstruction: 16 } });
  await docs.upsert(rows(1));
  await docs.index();
  await docs.waitForIndex({ timeoutMs: 60_000, pollMs: 200 });

  // Two catalogs behind one alias for the experiment, and an alias moved twice for the rollback.
  for (const [name, s] of [
    ['cat-a', 2],
    ['cat-b', 3],
  ] as const) {
    await sdk.collections.create({ name, dimension: DIM, metric: 'l2' });
    await sdk.collection(name).upsert(rows(s, 120));
  }
  await sdk.aliases.set('live', { collection: 'cat-a', reason: 'launch' });
  await sdk.aliases.set('live', { collection: 'cat-b', reason: 'new catalog' });
  await sdk.aliases.set('live', { collection: 'docs', reason: 'docs take over' });

  await sdk.aliases.set('products', { collection: 'cat-a', reason: 'launch' });
  await sdk.experiments.start('products', {
    challenger: { collection: 'cat-b' },
    mode: 'split',
    weight: 50,
    guardrails: { maxP95Ratio: 50 },
  });
  const rng = mulberry32(7);
  const queries = randomVectors(mulberry32(99), 160, DIM);
  const products = sdk.collection('products');
  for (let i = 0; i < 160; i++) {
    const out = await products.search({ vector: queries.subarray(i * DIM, (i + 1) * DIM), k: 5, stickyKey: `u-${i}` });
    const p = out.servedBy.arm === 'challenger' ? 0.45 : 0.15;
    if (out.queryId && out.results[0] && rng() < p) {
      await sdk.feedback({ queryId: out.queryId, id: out.results[0].id, event: 'click' });
      if (rng() < 0.4) await sdk.feedback({ queryId: out.queryId, id: out.results[0].id, event: 'convert' });
    }
  }

  // A model version with its artifact, an alias and a collection bound to it.
  const artifact = Buffer.from('shoal console test model weights\n'.repeat(64));
  const { createHash } = await import('node:crypto');
  const sha256 = createHash('sha256').update(artifact).digest('hex');
  const reg = await sdk.models.register('encoder', {
    dimension: DIM,
    metric: 'cosine',
    framework: 'onnx',
    artifact: artifact.toString('base64'),
  });
  await sdk.models.commit('encoder', reg.model.version, { sha256 });
  await sdk.models.setAlias('encoder', 'prod', { version: reg.model.version });
  await sdk.collections.create({
    name: 'encoded',
    dimension: DIM,
    metric: 'cosine',
    model: { name: 'encoder', version: reg.model.version },
  });
}

describe.skipIf(!HAVE_CHROMIUM)('web console in chromium', () => {
  beforeAll(async () => {
    server = await startHttpShoal('console');
    sdk = new Shoal({ url: server.shoal.url, apiKey: server.shoal.apiKey });
    tmp = await mkdtemp(path.join(tmpdir(), 'shoal-console-'));
    await seed();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    // Cumulative layout shift of each document, as Chrome measures it (shifts right after input excluded).
    await context.addInitScript(() => {
      const w = globalThis as unknown as { __cls: number; PerformanceObserver: typeof PerformanceObserver };
      w.__cls = 0;
      new w.PerformanceObserver((list) => {
        for (const e of list.getEntries() as unknown as Array<{ value: number; hadRecentInput: boolean }>) {
          if (!e.hadRecentInput) w.__cls += e.value;
        }
      }).observe({ type: 'layout-shift' as 'mark', buffered: true });
    });
    page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('request', (req) => {
      if (new URL(req.url()).origin !== new URL(server.shoal.url).origin) foreignRequests.push(req.url());
    });
    page.on('response', (res) => {
      if (res.status() >= 400) pageErrors.push(`${res.status()} ${res.request().method()} ${res.url()}`);
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('serves the page with its CSP, and asks for the key once (sessionStorage, not the URL)', async () => {
    const res = await fetch(`${server.shoal.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    await open('');
    await page.getByLabel('API key').fill(server.shoal.apiKey);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await page.getByRole('heading', { name: 'Collections', level: 1 }).waitFor();
    expect(page.url()).not.toContain(server.shoal.apiKey);
    const stored = await page.evaluate(KEY_IN_STORAGE);
    expect(stored).toBe(server.shoal.apiKey);
    // A reload keeps the key for the tab.
    await page.reload();
    await page.getByRole('heading', { name: 'Collections', level: 1 }).waitFor();
    // Keyboard: the first Tab lands on the skip link, which moves focus to the page's content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(ACTIVE_TEXT)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(ACTIVE_ID)).toBe('main');
  });

  it('lists collections with stats, creates one, upserts into it, deletes one after a typed confirmation', async () => {
    const docsRow = page.getByRole('row', { name: /^docs / });
    await docsRow.waitFor();
    await expect.poll(() => docsRow.textContent()).toMatch(/8 \/ cosine200200/);

    await page.getByLabel('Name').fill('scratch');
    await page.getByLabel('Dimension').fill('3');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('row', { name: /^scratch / }).waitFor();

    // Upsert in the collection's page (a wrong dimension is refused, naming the row), then search the rows.
    await page.getByRole('link', { name: 'scratch', exact: true }).click();
    const vectors = page.getByLabel(/^Vectors/);
    await vectors.fill('{"id": "bad", "values": [1, 0]}');
    await page.getByRole('button', { name: 'Upsert', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'vectors[0].values' }).waitFor();
    await vectors.fill(
      '{"id": "x", "values": [1, 0, 0], "metadata": {"tag": "first"}}\n' +
        '{"id": "y", "values": [0, 1, 0], "metadata": {"tag": "second"}}\n' +
        '{"id": "z", "values": [0.9, 0.1, 0], "metadata": {"tag": "third"}}',
    );
    await page.getByRole('button', { name: 'Upsert', exact: true }).click();
    await page.getByRole('status').getByText('upserted 3 vectors in 1 request').waitFor();
    await page.getByRole('main').getByRole('link', { name: 'Search', exact: true }).click();
    await page.getByRole('radio', { name: 'pasted values' }).check();
    await page.getByLabel(/^Values/).fill('0.95, 0.05, 0');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const hits = page.getByRole('table').filter({ hasText: 'score' });
    await hits.getByText('3 results').waitFor();
    const ids = await hits.locator('tbody th').allTextContents();
    expect(ids).toEqual(['x', 'z', 'y']);

    await open('#/collections');
    await expect.poll(() => page.getByRole('row', { name: /^scratch / }).textContent()).toMatch(/3 \/ cosine303/);
    await shot('collections');

    await page.getByRole('button', { name: 'Delete scratch' }).click();
    const confirm = page.getByRole('alertdialog');
    const go = confirm.getByRole('button', { name: 'Delete for good' });
    expect(await go.isDisabled()).toBe(true);
    await confirm.getByLabel('Collection name').fill('scratc');
    expect(await go.isDisabled()).toBe(true);
    await confirm.getByLabel('Collection name').fill('scratch');
    await go.click();
    await page.getByRole('row', { name: /^scratch / }).waitFor({ state: 'detached' });
  });

  it('searches in the playground by id, with a filter, and shows a filter syntax error at its position', async () => {
    await open('#/search/docs');
    await page.getByLabel('Vector id').fill('doc-3');
    await page.getByLabel('Filter').fill('lang == "en"');
    await page.getByLabel('k', { exact: true }).fill('5');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const results = page.getByRole('table').filter({ hasText: 'score' });
    await results.getByText('5 results').waitFor();
    // doc-3 is itself an "en" row: it comes first, with cosine 1.
    const first = results.getByRole('row').nth(1);
    expect(await first.textContent()).toMatch(/^1doc-31\.0000\{"lang":"en","year":2003\}$/);
    expect(await results.textContent()).not.toContain('"de"');
    expect(await page.locator('.latency').textContent()).toMatch(/^\d+\.\d ms$/);
    await shot('search');

    await page.getByLabel('Filter').fill('lang == "en" and and year > 3');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.getByText('FILTER_SYNTAX_ERROR').waitFor();
    expect(await page.getByLabel('Filter').getAttribute('aria-invalid')).toBe('true');
    const caret = await alert.locator('pre.caret').textContent();
    const [line, marks] = (caret ?? '').split('\n');
    expect(line).toBe('lang == "en" and and year > 3');
    expect(marks.indexOf('^')).toBe(17);
  });

  it('shows the version lineage, the index lines, and the quality gate numbers when it refuses', async () => {
    await sdk.collections.update('docs', { minRecall: 0.999 });
    await sdk.collection('docs').index({ index: { m: 16, efConstruction: 100 }, candidate: 'wide' });
    await sdk.collection('docs').upsert(rows(11, 20).map((r) => ({ ...r, id: `late-${r.id}` })));
    await sdk.collection('docs').index();
    await expect
      .poll(async () => (await sdk.collection('docs').candidates.get('wide')).head !== null, { timeout: 60_000 })
      .toBe(true);
    // Both lines take in the late rows too (a delta on main, a second version of wide): a four-node lineage.
    await sdk.collection('docs').index();
    await sdk.collection('docs').waitForIndex({ timeoutMs: 60_000, pollMs: 200 });
    await expect
      .poll(async () => (await sdk.collection('docs').candidates.get('wide')).lagSeq, { timeout: 60_000 })
      .toBe(0);
    await open('#/collections/docs');
    const graph = page.getByRole('group', { name: /Lineage of \d+ index versions on 2 lines/ });
    await graph.waitFor();
    // Lineage nodes work from the keyboard: focus one, press Enter, its details open.
    await graph.getByRole('button', { name: /^version 1, initial/ }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Version 1', exact: true }).waitFor();
    await graph
      .getByRole('button', { name: /candidate/ })
      .first()
      .click();
    await page.getByRole('heading', { name: /^Version \d+$/ }).waitFor();
    expect(await page.getByText('wide', { exact: true }).count()).toBeGreaterThan(0);
    const lines = page.getByRole('table').filter({ hasText: 'lag (writes)' });
    await lines.getByRole('row', { name: /^wide / }).waitFor();
    await page.getByRole('button', { name: 'Promote wide' }).click();
    const refusal = page.getByRole('alert').filter({ hasText: 'Quality gate refused' });
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('0.999');
    await shot('collection');
    await sdk.collections.update('docs', { minRecall: null });
  });

  it('shows embedding drift and resets its reference', async () => {
    await open('#/collections/docs');
    const card = page.locator('[aria-label="Embedding drift"]');
    await card.getByText('Embedding drift', { exact: false }).first().waitFor();
    await card.getByRole('button', { name: 'Reset reference to the current rows' }).click();
    const rowsNow = (await sdk.collection('docs').stats()).count;
    await card.getByText(new RegExp(`^${rowsNow.toLocaleString('en-US')} rows, `)).waitFor();
    // Searches fill the current hour's query window, which the card lists on its next load.
    for (let i = 0; i < 3; i++) await sdk.collection('docs').search({ vector: rows(31, 3)[i]!.values, k: 3 });
    // Away and back: the card loads again (it polls every 30 s otherwise).
    await open('#/collections');
    await open('#/collections/docs');
    await card.getByRole('row', { name: /query/ }).first().waitFor();
  });

  it('rolls an alias back from its timeline, with the revision check', async () => {
    await open('#/aliases/live');
    const timeline = page.getByRole('list', { name: 'History of live' });
    await timeline.getByRole('listitem').nth(2).waitFor();
    expect(await timeline.getByRole('listitem').count()).toBe(3);
    const button = page.getByRole('button', { name: /Roll back to the previous target \(revision 3\)/ });
    // Someone else moves the alias after the page loaded: the stale revision is refused, nothing rolls back.
    await sdk.aliases.set('live', { collection: 'cat-a', reason: 'moved elsewhere' });
    await button.click();
    await page.getByRole('alert').filter({ hasText: 'CONFLICT' }).waitFor();
    await page.getByRole('button', { name: /revision 4\)/ }).waitFor();
    await page.getByLabel('Reason').fill('bad results');
    await page.getByRole('button', { name: /revision 4\)/ }).click();
    await timeline.getByText('r5 rollback').waitFor();
    const top = await timeline.getByRole('listitem').first().textContent();
    expect(top).toContain('cat-a (latest) → docs (latest)');
    expect(top).toContain('“bad results”');
    await shot('aliases');
  });

  it('watches an import reach 100 % and pages its reject report', async () => {
    const lines = rows(21, 300).map((r, i) =>
      i % 50 === 7 ? JSON.stringify({ id: `bad-${i}`, values: [1, 2] }) : JSON.stringify({ ...r, id: `imp-${i}` }),
    );
    const file = path.join(tmp, 'rows.jsonl');
    await writeFile(file, lines.join('\n') + '\n');
    await open('#/imports/docs');
    await page.getByRole('table').filter({ hasText: 'rejected' }).waitFor();
    const job = await sdk.collection('docs').importFile(file, { follow: false, maxRejectRatio: 1 });
    importJobId = job.jobId;
    const bar = page.getByRole('progressbar', { name: 'import rows.jsonl' });
    await bar.waitFor();
    await expect.poll(() => bar.getAttribute('aria-valuenow'), { timeout: 60_000 }).toBe('100');
    const row = page.getByRole('row').filter({ has: bar });
    await expect.poll(() => row.textContent()).toMatch(/partial.*100 %300294 ?6/);
    await row.getByRole('link').click();
    const rejects = page.getByRole('heading', { name: `Rejects of ${importJobId.slice(0, 12)}` });
    await rejects.waitFor();
    await page.getByText('6 rejected, 6 in the report').waitFor();
    expect(await page.getByRole('cell', { name: 'line 8', exact: true }).count()).toBe(1);
    await page.getByLabel('Per page').selectOption('5');
    await expect.poll(() => page.getByRole('cell', { name: /^line \d+$/ }).count()).toBe(5);
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByRole('cell', { name: 'line 258', exact: true }).waitFor();
    expect(await page.getByRole('cell', { name: /^line \d+$/ }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await page.getByRole('cell', { name: 'line 8', exact: true }).waitFor();
    await shot('imports');
  });

  it('renders the experiment chart with both arms, the verdict and the per-arm numbers', async () => {
    await open('#/experiments/products');
    await page.getByRole('heading', { name: 'Experiment on products' }).waitFor();
    const chart = page.getByRole('img', { name: /Click-through and conversion rates/ });
    await chart.locator('canvas').waitFor();
    // The alias list is a column, one alias a line (not run together like the section links at the top).
    const [live, products] = await page
      .getByRole('navigation', { name: 'Aliases with experiments' })
      .getByRole('listitem')
      .evaluateAll((els) => els.map((e) => (e as unknown as { offsetTop: number }).offsetTop));
    expect(products).toBeGreaterThan(live);

    // The p-value history: one look, then looks seconds apart; the time axis spans minutes, not years.
    const pChart = page.getByRole('img', { name: /Sequential test p-value/ });
    const scale = async (key: 'x' | 'y') => {
      const [min, max] = [await pChart.getAttribute(`data-${key}-min`), await pChart.getAttribute(`data-${key}-max`)];
      return [Number(min), Number(max)];
    };
    await expect.poll(() => pChart.getAttribute('data-x-max')).not.toBeNull();
    const now = Date.now() / 1000;
    const [x0, x1] = await scale('x');
    // A minute either side of the look, which was taken moments ago.
    expect(x1 - x0).toBeGreaterThanOrEqual(120);
    expect(x1 - x0).toBeLessThan(3600);
    expect(x0).toBeLessThan(now - 30);
    expect(x1).toBeGreaterThan(now);
    expect(await scale('y')).toEqual([0, 1]);
    const { experiment } = await sdk.experiments.results('products');
    const earlier = [
      { t: now - 40, click: 0.5, convert: 0.7 },
      { t: now - 25, click: 0.3, convert: 0.65 },
    ];
    await page.evaluate(
      ([item, looks]) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem(
          item,
          looks,
        ),
      [`shoal.console.looks.${experiment.id}`, JSON.stringify(earlier)],
    );
    await page.reload();
    await page.getByRole('img', { name: /p-value at each of 3 looks/ }).waitFor();
    await expect.poll(async () => (await scale('x'))[0]).toBeLessThanOrEqual(now - 40 - 60);
    const [from, to] = await scale('x');
    expect(to - from).toBeLessThan(3600);
    expect(to).toBeGreaterThan(Date.now() / 1000);
    await shot('experiments');
    // uPlot's legend names both arms.
    expect(await chart.locator('.u-legend').textContent()).toMatch(/champion.*challenger/);
    const arms = page.getByRole('table', { name: 'Arms' });
    const cells = arms.getByRole('row', { name: /^requests/ }).getByRole('cell');
    const [champ, chall] = (await cells.allTextContents()).map(Number);
    // Overlap sampling may query the other arm too; every one of the 160 searches counts once at least.
    expect(champ + chall).toBeGreaterThanOrEqual(160);
    expect(champ).toBeGreaterThan(0);
    expect(chall).toBeGreaterThan(0);
    await page.getByText(/Clicks: .*sequential p = 0\.\d{4}/).waitFor();
  });

  it('tunes a version and charts recall against ef with the chosen point', async () => {
    await open('#/tuning/docs/1');
    await page.getByLabel('Target recall').fill('0.999');
    await page.getByRole('button', { name: 'Run tune' }).click();
    const table = page.getByRole('table', { name: /Tuning table/ });
    await table.or(page.getByRole('alert')).waitFor({ timeout: 50_000 });
    expect(await page.getByRole('alert').count(), await page.getByRole('alert').allTextContents().then(String)).toBe(0);
    await table.getByText('✓ chosen').waitFor();
    // The ladder climbs ef until the target is met: several rungs (m = 4 is a weak graph), the last one chosen.
    const body = table.locator('tbody tr');
    expect(await body.count()).toBeGreaterThan(2);
    const last = await body.last().getByRole('cell').allTextContents();
    expect(last[0]).toMatch(/^\d+ ✓ chosen$/);
    expect(Number(last[1])).toBeGreaterThanOrEqual(0.999);
    await page
      .getByRole('img', { name: /Recall against ef; chosen ef \d+/ })
      .locator('canvas')
      .waitFor();
    await shot('tuning');
  });

  it('lists models with artifact size and sha256, aliases and bound collections', async () => {
    await open('#/models');
    const row = page.getByRole('row', { name: /^v1 ready/ });
    await row.waitFor();
    const text = await row.textContent();
    expect(text).toContain('2.1 KB');
    expect(text).toMatch(/[0-9a-f]{64}/);
    expect(text).toContain('prod');
    expect(text).toContain('encoded');
    await shot('models');
  });

  it('forgets the key on request, and raised no error in the page throughout', async () => {
    // No layout shift worth the name while the pages filled in (0.1 is Chrome's "good" CLS bound).
    expect(await page.evaluate(CLS)).toBeLessThan(0.1);
    await page.getByRole('button', { name: 'Forget key' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(KEY_IN_STORAGE)).toBeNull();
    // Nothing but this origin: no CDN font, script or stylesheet.
    expect(foreignRequests).toEqual([]);
    // Only the refusals the tests provoked on purpose.
    expect(pageErrors.map((e) => e.replace(server.shoal.url, ''))).toEqual([
      '400 POST /v1/collections/scratch/vectors',
      '400 POST /v1/collections/docs/search',
      '409 POST /v1/collections/docs/candidates/wide/promote',
      '409 POST /v1/aliases/live/rollback',
    ]);
  });
});
