/**
 * Request-path latency of the whole local stack (the `npm start` handlers on the embedded emulators),
 * per route, beside the engine time of the same query in the same run:
 * - warm: sequential requests after a warm-up — search (eventual and strong), upsert of one vector,
 *   get of one id — p50/p99 over HTTP and the sequential storage round trips each made
 *   (`X-Shoal-Round-Trips`, docs/architecture.md §7.6);
 * - engine: the same searches straight against the head version's shards in process (the shard
 *   cache, the hnsw engine, ef 64): what the request path adds is the difference;
 * - cold: the first search after the stack restarts (empty shard cache), probing 1, 4 and 16 shards
 *   of a 16-partition collection.
 *
 * Collections: `tiny` (4 vectors, 8-d) and `fashion-like 60k` (MNIST 60,000 × 784; `--quick` 10,000).
 *
 *   npm run bench:latency
 *   npm run bench:latency -- --quick
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalShoal, type LocalShoal } from '../infra/local/shoal.js';
import { loadDataset } from '../shared/io/datasets.js';
import type { Metric } from '../shared/types.js';
import { getRuntime } from '../shared/runtime.js';
import { makeAwsClients } from '../shared/storage/clients.js';
import { DynamoCatalog } from '../shared/storage/dynamo-catalog.js';
import { machineLine, parseCli } from './cli.js';
import { Progress } from './progress.js';

const cli = parseCli({
  name: 'latency',
  summary: 'Request path per route (search eventual/strong, upsert, get): p50/p99, storage round trips, engine time.',
  quick: '10,000 MNIST rows instead of 60,000, 100 requests per route instead of 300',
  options: [{ flag: '--requests', arg: 'n', help: 'timed requests per route (default 300; 100 with --quick)' }],
});
process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

const ROWS = cli.quick ? 10_000 : 60_000;
const REQUESTS = cli.int('--requests') ?? (cli.quick ? 100 : 300);
const WARMUP = 20;
const K = 10;
const EF = 64;
const BATCH = 1000;
const COLD_PARTITIONS = 16;
const COLD_ROWS = 16_000;
const API_KEY = 'bench-key';

type Route = 'search' | 'upsert' | 'get';
interface Row {
  route: Route;
  collection: string;
  consistency?: 'eventual' | 'strong';
  warm: boolean;
  requests: number;
  p50: number;
  p99: number;
  /** p50 of the time with a storage call in flight (`Server-Timing: storage`): the emulators' share. */
  storageMs: number;
  /** Median sequential storage round trips per request (max in `roundTripsMax`). */
  roundTrips: number;
  roundTripsMax: number;
  /** The same searches against the shards in process (p50), search rows only. */
  engineMs?: number;
  shards?: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

class Client {
  constructor(private readonly url: string) {}

  // Bodies are read field by field below; typing them would restate the API.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async call(method: string, route: string, body?: unknown): Promise<{ status: number; json: any } & Cost> {
    const res = await fetch(`${this.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (res.status >= 400) throw new Error(`${method} ${route}: ${res.status} ${text.slice(0, 300)}`);
    const timing = /storage;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
    return {
      status: res.status,
      json,
      trips: Number(res.headers.get('x-shoal-round-trips') ?? NaN),
      storageMs: timing ? Number(timing[1]) : NaN,
    };
  }
}

interface Vectors {
  dim: number;
  metric: Metric;
  base: Float32Array;
}

async function load(client: Client, name: string, ds: Vectors, rows: number, index?: object): Promise<void> {
  await client.call('POST', '/v1/collections', {
    name,
    dimension: ds.dim,
    metric: ds.metric,
    ...(index ? { index } : {}),
  });
  for (let start = 0; start < rows; start += BATCH) {
    const vectors = [];
    for (let i = start; i < Math.min(rows, start + BATCH); i++)
      vectors.push({ id: String(i), values: Array.from(ds.base.subarray(i * ds.dim, (i + 1) * ds.dim)) });
    for (;;) {
      try {
        await client.call('POST', `/v1/collections/${name}/vectors`, { vectors });
        break;
      } catch (err) {
        // The tail cap's 429: wait as a client would, the builder is catching up.
        if (!String(err).includes(' 429 ')) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  await indexed(client, name, rows);
}

/** Builds and waits until every row is in the head version (nothing pending). */
async function indexed(client: Client, name: string, rows: number): Promise<void> {
  await client.call('POST', `/v1/collections/${name}/index`);
  for (let waited = 0; waited < 1_800_000; waited += 500) {
    // Stats read the tail; before the build lands a large one may not fit the read budget (503): not yet.
    const stats = await client.call('GET', `/v1/collections/${name}`).then(
      (r) => r.json.stats,
      (err: unknown) => {
        if (String(err).includes('TAIL_BUDGET_EXCEEDED')) return undefined;
        throw err;
      },
    );
    if (stats?.pending === 0 && stats?.indexed >= rows) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${name}: not indexed after 30 min`);
}

/** What the server said a request cost in storage. */
interface Cost {
  trips: number;
  storageMs: number;
}

interface Timings {
  ms: number[];
  trips: number[];
  storageMs: number[];
}

async function timed(n: number, request: (i: number) => Promise<Cost>): Promise<Timings> {
  for (let i = 0; i < WARMUP; i++) await request(i);
  const ms: number[] = [];
  const trips: number[] = [];
  const storageMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const cost = await request(WARMUP + i);
    ms.push(performance.now() - t);
    trips.push(cost.trips);
    storageMs.push(cost.storageMs);
  }
  const sort = (xs: number[]) => xs.sort((a, b) => a - b);
  return { ms: sort(ms), trips: sort(trips), storageMs: sort(storageMs) };
}

function row(
  base: Omit<Row, 'p50' | 'p99' | 'roundTrips' | 'roundTripsMax' | 'requests' | 'storageMs'>,
  m: Timings,
): Row {
  return {
    ...base,
    requests: m.ms.length,
    p50: round(percentile(m.ms, 50)),
    p99: round(percentile(m.ms, 99)),
    storageMs: round(percentile(m.storageMs, 50)),
    roundTrips: percentile(m.trips, 50),
    roundTripsMax: m.trips[m.trips.length - 1],
  };
}

/** p50 of the same queries searched straight against the head version's shards, in this process. */
async function engineMs(name: string, queries: Float32Array[]): Promise<{ ms: number; shards: number }> {
  const runtime = await getRuntime();
  const catalog = new DynamoCatalog({ ddb: makeAwsClients(runtime.config).ddb, table: runtime.config.catalogTable });
  const head = await catalog.latestManifest(name);
  if (!head) throw new Error(`${name}: no index version`);
  const shards = await Promise.all(head.shards.map((ref) => runtime.cache.shard(ref)));
  const bitmaps = await Promise.all(head.shards.map((ref) => runtime.cache.bitmap(ref)));
  const search = (q: Float32Array) => shards.forEach((s, i) => s.search(q, { k: K, ef: EF, deleted: bitmaps[i] }));
  queries.slice(0, WARMUP).forEach(search);
  const ms: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t = performance.now();
    search(queries[i % queries.length]);
    ms.push(performance.now() - t);
  }
  return {
    ms: round(
      percentile(
        ms.sort((a, b) => a - b),
        50,
      ),
      3,
    ),
    shards: shards.length,
  };
}

async function routes(client: Client, name: string, label: string, queries: Float32Array[]): Promise<Row[]> {
  const q = (i: number) => Array.from(queries[i % queries.length]);
  const out: Row[] = [];
  const engine = await engineMs(name, queries);
  for (const consistency of ['eventual', 'strong'] as const) {
    const m = await timed(REQUESTS, async (i) => {
      return client.call('POST', `/v1/collections/${name}/search`, { vector: q(i), k: K, consistency });
    });
    out.push(
      row(
        { route: 'search', collection: label, consistency, warm: true, engineMs: engine.ms, shards: engine.shards },
        m,
      ),
    );
  }
  // Ten ids rewritten in turn with their own vectors: the data and the answers stay the same.
  const upsert = await timed(REQUESTS, async (i) => {
    const id = String(i % 10);
    const values = Array.from(queries[0]).map((_, j) => (j === 0 ? i % 10 : 0));
    return client.call('POST', `/v1/collections/${name}/vectors`, { vectors: [{ id: `lat-${id}`, values }] });
  });
  out.push(row({ route: 'upsert', collection: label, warm: true }, upsert));
  const get = await timed(REQUESTS, async (i) => {
    return client.call('POST', `/v1/collections/${name}/vectors/get`, { ids: [String(i % 4)] });
  });
  out.push(row({ route: 'get', collection: label, warm: true }, get));
  return out;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-latency-'));
  const start = (): Promise<LocalShoal> =>
    startLocalShoal({ dataDir, port: 0, silent: true, requestLog: false, tickMs: 3_600_000, apiKey: API_KEY });
  let shoal = await start();
  const progress = new Progress(6);
  const rows: Row[] = [];
  try {
    let client = new Client(shoal.url);
    const mnist = await loadDataset('mnist', { maxBase: Math.max(ROWS, COLD_ROWS), maxQueries: 500 });
    const mq = Array.from({ length: mnist.queryCount }, (_, i) =>
      mnist.queries.slice(i * mnist.dim, (i + 1) * mnist.dim),
    );

    progress.step('tiny: 4 vectors × 8-d, indexed');
    const tiny: Vectors = {
      dim: 8,
      metric: 'l2',
      base: Float32Array.from({ length: 32 }, (_, i) => ((i * 7919) % 17) / 17),
    };
    await load(client, 'tiny', tiny, 4);
    const tq = Array.from({ length: 16 }, (_, i) => Float32Array.from({ length: 8 }, (_, j) => ((i + j) % 5) / 5));
    progress.step('tiny: warm routes');
    rows.push(...(await routes(client, 'tiny', 'tiny', tq)));

    const label = `fashion-like ${ROWS / 1000}k`;
    progress.step(`${label}: MNIST ${ROWS.toLocaleString('en-US')} × 784 over HTTP, indexed`);
    await load(client, 'mnist', mnist, ROWS);
    progress.step(`${label}: warm routes`);
    rows.push(...(await routes(client, 'mnist', label, mq)));

    progress.step(
      `cold: ${COLD_PARTITIONS} partitions of MNIST ${COLD_ROWS.toLocaleString('en-US')}, first search after a restart`,
    );
    await load(client, 'cold', mnist, COLD_ROWS, { partitions: COLD_PARTITIONS });
    for (const nprobe of [1, 4, 16]) {
      await shoal.stop();
      shoal = await start();
      client = new Client(shoal.url);
      const t = performance.now();
      const vector = Array.from(mq[nprobe]);
      const r = await client.call('POST', '/v1/collections/cold/search', {
        vector,
        k: K,
        nprobe,
        consistency: 'eventual',
      });
      const ms = performance.now() - t;
      rows.push({
        route: 'search',
        collection: `cold ${COLD_PARTITIONS}-partition ${COLD_ROWS / 1000}k`,
        consistency: 'eventual',
        warm: false,
        requests: 1,
        p50: round(ms),
        p99: round(ms),
        storageMs: round(r.storageMs),
        roundTrips: r.trips,
        roundTripsMax: r.trips,
        shards: r.json.stats?.shardsSearched,
      });
    }
    progress.done();
  } finally {
    await shoal.stop();
    await rm(dataDir, { recursive: true, force: true });
  }

  const cell = (x: number | string | undefined) => (x === undefined ? '—' : String(x));
  const markdown = [
    `# Request-path latency — local stack, ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Machine: ${machineLine(cli.machine)}. Sequential requests over HTTP to the \`npm start\` stack (embedded ` +
      `emulators), ${WARMUP} warm-up requests per route not timed. k = ${K}, ef = ${EF}. Round trips: sequential ` +
      'storage round trips of the request (`X-Shoal-Round-Trips`; overlapping calls count once), median / max; ' +
      'storage ms: p50 of the time a storage call was in flight (`Server-Timing`), the emulators’ share. ' +
      'Engine: the same searches against the head version’s shards in this process (p50).',
    '',
    '| route | collection | consistency | warm | requests | p50 ms | p99 ms | round trips | storage ms | engine ms | ' +
      'path − engine (p50) | shards |',
    '|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${[
          r.route,
          r.collection,
          cell(r.consistency),
          r.warm ? 'warm' : 'cold',
          r.requests,
          r.p50,
          r.p99,
          `${r.roundTrips} / ${r.roundTripsMax}`,
          r.storageMs,
          cell(r.engineMs),
          r.engineMs === undefined ? '—' : round(r.p50 - r.engineMs),
          cell(r.shards),
        ].join(' | ')} |`,
    ),
    '',
    `Reproduce: \`${cli.command}\``,
  ].join('\n');
  cli.out({
    markdown,
    parameters: { rows: ROWS, requests: REQUESTS, warmup: WARMUP, k: K, ef: EF, coldPartitions: COLD_PARTITIONS },
    rows,
  });
}

await main();
