/**
 * End-to-end benchmark of a whole local Shoal (the `npm start` stack, embedded emulators):
 * - ingest vectors/s through the HTTP API;
 * - search latency p50/p95/p99 through HTTP beside the same query in process
 *   (ShoalService called directly — the HTTP + JSON overhead is the difference);
 * - shard cold-load time against shard size (S3 GET + checksum + decode + WASM load).
 *
 *   npm run bench:e2e             # MNIST 20k × 784 and SIFT 4.5k × 128
 *   npm run bench:e2e -- --quick  # SIFT only
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadDataset } from '../shared/io/datasets.js';
import { getRuntime } from '../shared/runtime.js';
import { ShardCache, sha256 } from '../shared/search/shard-cache.js';
import { Shard, buildShard } from '../shared/shard/shard.js';
import { startLocalShoal } from '../infra/local/shoal.js';
import { machineLine, parseCli } from './cli.js';
import { Progress } from './progress.js';

const cli = parseCli({
  name: 'e2e',
  summary: 'Whole local stack: HTTP ingest rate, search latency (HTTP vs in process), shard cold loads.',
  quick: 'SIFT only, 200 searches per pass',
});
const QUICK = cli.quick;
const SEARCHES = QUICK ? 200 : 500;

interface LatencyRow {
  dataset: string;
  path: 'http' | 'in-process';
  consistency: 'strong' | 'eventual';
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  qps: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summarize(samples: number[]): { p50: number; p95: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-bench-'));
  // Index only when asked, so ingest measures the write path alone.
  process.env.SHOAL_BUILD_DELTA_MIN_ROWS = '10000000';
  process.env.SHOAL_BUILD_DELTA_MAX_AGE_S = '86400';
  const shoal = await startLocalShoal({ dataDir, port: 0, silent: true, tickMs: 3_600_000, apiKey: 'bench-key' });
  const headers = { authorization: 'Bearer bench-key', 'content-type': 'application/json' };
  const call = async (method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${shoal.url}${route}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const plan: Array<['sift5k' | 'mnist', number | undefined]> = QUICK
    ? [['sift5k', undefined]]
    : [
        ['sift5k', undefined],
        ['mnist', 20_000],
      ];
  const progress = new Progress(plan.length * 4 + 1);
  const ingestRows: Array<{
    dataset: string;
    vectors: number;
    dim: number;
    batch: number;
    vectors_per_s: number;
    mb_per_s: number;
  }> = [];
  const latency: LatencyRow[] = [];
  const { service } = await getRuntime();

  try {
    for (const [name, maxBase] of plan) {
      const ds = await loadDataset(name, { maxBase, maxQueries: SEARCHES });
      const { dim, baseCount: n, metric } = ds;
      progress.step(`${name}: ingest over HTTP`);
      await call('POST', '/v1/collections', { name, dimension: dim, metric });
      const batch = 500;
      let bytes = 0;
      const t0 = performance.now();
      for (let start = 0; start < n; start += batch) {
        const vectors = [];
        for (let i = start; i < Math.min(n, start + batch); i++)
          vectors.push({ id: i, values: Array.from(ds.base.subarray(i * dim, (i + 1) * dim)), metadata: { i } });
        const body = JSON.stringify({ vectors });
        bytes += body.length;
        const res = await fetch(`${shoal.url}/v1/collections/${name}/vectors`, { method: 'POST', headers, body });
        if (res.status !== 200) throw new Error(`ingest failed: ${res.status} ${await res.text()}`);
      }
      const secs = (performance.now() - t0) / 1000;
      ingestRows.push({
        dataset: name,
        vectors: n,
        dim,
        batch,
        vectors_per_s: n / secs,
        mb_per_s: bytes / 2 ** 20 / secs,
      });

      const runLatency = async (consistency: 'strong' | 'eventual') => {
        // Warm-up (not timed): the first query after a build loads the shard (see the cold-load table).
        for (let q = 0; q < 10; q++) {
          const vector = Array.from(ds.queries.subarray(q * dim, (q + 1) * dim));
          await call('POST', `/v1/collections/${name}/search`, { vector, k: 10, consistency });
        }
        for (const pathKind of ['http', 'in-process'] as const) {
          const samples: number[] = [];
          const tStart = performance.now();
          for (let q = 0; q < SEARCHES; q++) {
            const vector = Array.from(ds.queries.subarray((q % ds.queryCount) * dim, ((q % ds.queryCount) + 1) * dim));
            const t = performance.now();
            if (pathKind === 'http') {
              const res = await call('POST', `/v1/collections/${name}/search`, { vector, k: 10, consistency });
              if (res.status !== 200) throw new Error(`search failed: ${res.status}`);
            } else {
              await service.search(name, {
                queries: [Float32Array.from(vector)],
                k: 10,
                consistency,
                includeMetadata: false,
                includeValues: false,
              });
            }
            samples.push(performance.now() - t);
          }
          const s = summarize(samples);
          latency.push({
            dataset: name,
            path: pathKind,
            consistency,
            p50_ms: s.p50,
            p95_ms: s.p95,
            p99_ms: s.p99,
            qps: (SEARCHES * 1000) / (performance.now() - tStart),
          });
        }
      };
      progress.step(`${name}: search latency (shards + tail, ${n} vectors unindexed)`);
      // Before any build every row is in the tail: the strong path scans it exactly.
      await runLatency('strong');
      progress.step(`${name}: build`);
      await call('POST', `/v1/collections/${name}/index`);
      for (let waited = 0; waited < 600_000; waited += 500) {
        const v = (await call('GET', `/v1/collections/${name}/versions`)).json as { versions: unknown[] };
        if (v.versions.length) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      progress.step(`${name}: search latency (indexed)`);
      await runLatency('strong');
      await runLatency('eventual');
    }

    // Shard cold load against size: a fresh cache each time = a cold searcher container.
    progress.step('shard cold loads');
    const sift = await loadDataset('sift5k', {});
    const mnist = await loadDataset('mnist', { maxBase: 20_000 });
    const coldRows: Array<{
      shard: string;
      rows: number;
      dim: number;
      bytes: number;
      s3_get_ms: number;
      open_ms: number;
      total_ms: number;
    }> = [];
    const runtime = await getRuntime();
    for (const [label, ds, rows] of [
      ['sift', sift, 1000],
      ['sift', sift, 4500],
      ['mnist', mnist, 5000],
      ['mnist', mnist, 20_000],
    ] as const) {
      const bytes = await buildShard({
        engine: 'hnsw',
        dim: ds.dim,
        metric: ds.metric,
        ids: Array.from({ length: rows }, (_, i) => String(i)),
        vectors: ds.base.subarray(0, rows * ds.dim),
        seqs: Array.from({ length: rows }, (_, i) => i + 1),
        params: { efConstruction: 100 },
      });
      const hash = sha256(bytes);
      const key = `bench/${hash}.shard`;
      const { objects } = runtime;
      await objects.putImmutable(key, bytes);
      const ref = {
        id: hash.slice(0, 32),
        key,
        bytes: bytes.byteLength,
        count: rows,
        live: rows,
        engine: 'hnsw' as const,
        sha256: hash,
        minSeq: 1,
        maxSeq: rows,
      };
      // The parts are timed on their own (a GET, then verify + open of those bytes) and the whole
      // through a fresh cache: subtracting one from the other mixes two GETs' variance.
      const tGet = performance.now();
      const fetched = await objects.get(key);
      const getMs = performance.now() - tGet;
      const tOpen = performance.now();
      if (sha256(fetched) !== hash) throw new Error(`bench shard ${key} changed in S3`);
      (await Shard.open(fetched)).dispose();
      const openMs = performance.now() - tOpen;
      const cache = new ShardCache({ objects, memoryBytes: 2 ** 30 });
      const t = performance.now();
      const shard = await cache.shard(ref);
      const total = performance.now() - t;
      coldRows.push({
        shard: `${label} ${rows}×${ds.dim}`,
        rows,
        dim: ds.dim,
        bytes: bytes.byteLength,
        s3_get_ms: getMs,
        open_ms: openMs,
        total_ms: total,
      });
      shard.dispose();
    }
    progress.done();

    const f = (x: number, d = 1) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
    const lines = [
      `# End-to-end benchmark — ${cli.started.toISOString()}`,
      '',
      `Machine: ${machineLine(cli.machine)}. Command: \`${cli.command}\`.`,
      'Whole local Shoal (embedded S3/DynamoDB/SQS, HTTP gateway, real handlers) in one process;' +
        ' client in the same process.',
      '',
      '## Ingest through HTTP',
      '',
      '| dataset | vectors | dim | batch | vectors/s | request MB/s |',
      '|---|---:|---:|---:|---:|---:|',
      ...ingestRows.map(
        (r) => `| ${r.dataset} | ${r.vectors} | ${r.dim} | ${r.batch} | ${f(r.vectors_per_s, 0)} | ${f(r.mb_per_s)} |`,
      ),
      '',
      `## Search latency, k=10, ${SEARCHES} sequential single-vector queries`,
      '',
      'Rows are in order: strong search before any build (every vector in the unindexed tail, exact scan),' +
        ' then after the build (strong: shards + empty tail; eventual: shards only).',
      '',
      '| dataset | phase | consistency | path | p50 ms | p95 ms | p99 ms | QPS |',
      '|---|---|---|---|---:|---:|---:|---:|',
      ...latency.map((r) => {
        const phase = latency.filter((x) => x.dataset === r.dataset).indexOf(r) < 2 ? 'tail only' : 'indexed';
        return (
          `| ${r.dataset} | ${phase} | ${r.consistency} | ${r.path} |` +
          ` ${f(r.p50_ms, 2)} | ${f(r.p95_ms, 2)} | ${f(r.p99_ms, 2)} | ${f(r.qps, 0)} |`
        );
      }),
      '',
      '## Shard cold load (fresh cache = cold searcher container)',
      '',
      '| shard | bytes | S3 GET ms | sha256 + decode + WASM load ms | total ms (fresh cache) |',
      '|---|---:|---:|---:|---:|',
      ...coldRows.map(
        (r) =>
          `| ${r.shard} | ${r.bytes.toLocaleString('en-US')} |` +
          ` ${f(r.s3_get_ms)} | ${f(r.open_ms)} | ${f(r.total_ms)} |`,
      ),
      '',
    ];
    cli.out({
      markdown: lines.join('\n'),
      parameters: {
        searches: SEARCHES,
        k: 10,
        ingestBatch: 500,
        datasets: plan.map(([name, maxBase]) => ({ name, maxBase: maxBase ?? null })),
      },
      rows: latency,
      tables: { ingest: ingestRows, coldLoads: coldRows },
    });
  } finally {
    await shoal.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
