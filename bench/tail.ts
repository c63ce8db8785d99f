/**
 * The bounded tail on the whole local stack (docs/architecture.md §7.2): MNIST 60,000 × 784 upserted over
 * HTTP as fast as the API takes them — a 429 BACKPRESSURE is waited out for its Retry-After, as a
 * client would — then strong searches. Before the tail cap the same run ended in an HTTP 500 after
 * 30 s (the api function's timeout; the tail scan never ended). What counts: every strong search
 * answers within the budget, with results or a 503 carrying a code, never a bare 500.
 * Baseline in the same run: eventual searches (shards only, no tail read).
 *
 *   npm run bench:tail              # 60,000 rows
 *   npm run bench:tail -- --quick   # 20,000 rows
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadDataset } from '../shared/io/datasets.js';
import { startLocalShoal } from '../infra/local/shoal.js';
import { machineLine, parseCli } from './cli.js';
import { Progress } from './progress.js';

const cli = parseCli({
  name: 'tail',
  summary: 'MNIST upserted over HTTP with backpressure, then strong searches: answered within the budget?',
  quick: '20,000 rows',
});
const ROWS = cli.quick ? 20_000 : 60_000;
const SEARCHES = 50;
const BATCH = 500;

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

async function main(): Promise<void> {
  // The builder threads log each build to stdout, which carries the report alone (bench/cli.ts).
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-bench-tail-'));
  const shoal = await startLocalShoal({ dataDir, port: 0, silent: true, apiKey: 'bench-key' });
  const headers = { authorization: 'Bearer bench-key', 'content-type': 'application/json' };
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${shoal.url}${route}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      retryAfter: Number(res.headers.get('retry-after') ?? 0),
      json: (text ? JSON.parse(text) : undefined) as Record<string, unknown> & { error?: { code?: string } },
    };
  };
  const ds = loadDataset('mnist', { maxBase: ROWS, maxQueries: SEARCHES });
  const { dim } = ds;
  const progress = new Progress(ROWS / BATCH + SEARCHES * 2);
  try {
    await call('POST', '/v1/collections', { name: 'mnist', dimension: dim, metric: 'l2' });
    let refused = 0;
    let waitedS = 0;
    const t0 = performance.now();
    for (let start = 0; start < ROWS; start += BATCH) {
      const vectors = [];
      for (let i = start; i < Math.min(ROWS, start + BATCH); i++) {
        vectors.push({ id: i, values: Array.from(ds.base.subarray(i * dim, (i + 1) * dim)) });
      }
      for (;;) {
        const res = await call('POST', '/v1/collections/mnist/vectors', { vectors });
        if (res.status === 200) break;
        if (res.status !== 429) throw new Error(`upsert: HTTP ${res.status} ${JSON.stringify(res.json)}`);
        refused++;
        waitedS += res.retryAfter;
        await new Promise((r) => setTimeout(r, res.retryAfter * 1000));
      }
      progress.step(`upsert ${start + BATCH}/${ROWS}`);
    }
    const ingestS = (performance.now() - t0) / 1000;
    const info = await call('GET', '/v1/collections/mnist');
    const stats = info.json.stats as { pending?: number; indexed?: number } | undefined;

    const run = async (consistency: 'strong' | 'eventual') => {
      const times: number[] = [];
      const statuses = new Map<string, number>();
      for (let q = 0; q < SEARCHES; q++) {
        const vector = Array.from(ds.queries.subarray(q * dim, (q + 1) * dim));
        const t = performance.now();
        const res = await call('POST', '/v1/collections/mnist/search', { vector, k: 10, consistency });
        times.push(performance.now() - t);
        const key = res.status === 200 ? '200' : `${res.status} ${res.json.error?.code ?? '(no code)'}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        progress.step(`${consistency} search ${q + 1}/${SEARCHES}`);
      }
      times.sort((a, b) => a - b);
      return {
        consistency,
        searches: SEARCHES,
        answers: [...statuses].map(([s, n]) => `${s} × ${n}`).join(', '),
        bare500: statuses.get('500 (no code)') ?? 0,
        p50_ms: Math.round(percentile(times, 50)),
        p99_ms: Math.round(percentile(times, 99)),
        max_ms: Math.round(times[times.length - 1]),
      };
    };
    const rows = [await run('strong'), await run('eventual')];
    progress.done();
    const ingest = {
      rows: ROWS,
      dim,
      ingestSec: Math.round(ingestS * 10) / 10,
      refused429: refused,
      waitedRetryAfterSec: waitedS,
      pendingAfterIngest: stats?.pending,
      indexedAfterIngest: stats?.indexed,
    };
    const markdown = [
      `# Bounded tail: MNIST ${ROWS.toLocaleString('en-US')} × ${dim} upserted over HTTP, then searched`,
      '',
      `Machine: ${machineLine(cli.machine)}. Upserts of ${BATCH}; a 429 is retried after its Retry-After.`,
      '',
      `Ingest: ${ingest.ingestSec} s, ${refused} upserts refused with 429 BACKPRESSURE (${waitedS} s waited), ` +
        `then ${stats?.pending} pending / ${stats?.indexed} indexed.`,
      '',
      '| consistency | searches | answers | bare 500s | p50 (ms) | p99 (ms) | max (ms) |',
      '|---|---:|---|---:|---:|---:|---:|',
      ...rows.map(
        (r) => `| ${[r.consistency, r.searches, r.answers, r.bare500, r.p50_ms, r.p99_ms, r.max_ms].join(' | ')} |`,
      ),
      '',
      `Reproduce: \`${cli.command}\``,
    ].join('\n');
    cli.out({ markdown, parameters: { rows: ROWS, dim, batch: BATCH, searches: SEARCHES }, rows, tables: { ingest } });
  } finally {
    await shoal.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
