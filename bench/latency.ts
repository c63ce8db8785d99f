/**
 * Request-path latency of the whole local stack (the `npm start` handlers on the embedded emulators),
 * per route, beside the engine time of the same query in the same run:
 * - warm: sequential requests after a warm-up — search (eventual and strong), upsert of one vector,
 *   get of one id — p50/p99 over HTTP and the sequential storage round trips each made
 *   (`X-Shoal-Round-Trips`, docs/architecture.md §7.6). The client is node:http with a keep-alive
 *   agent (what the AWS SDK and most servers use); the same requests through `fetch` (undici) are
 *   timed too and reported beside (`p50Fetch`). Warm means warm: V8 optimises the request path
 *   over the first thousand or so requests (compare `--warmup 20` with the default), so each route
 *   first runs `--warmup` untimed requests (default 2,000). Request
 *   bodies are serialised before the clock starts (encoding them is the client's work);
 * - engine: the same search straight against the head version's shards in process (the shard
 *   cache, the hnsw engine, ef 64), timed right after each timed request: what the request path adds
 *   is the difference. Timed beside the requests, not in a loop of its own, because a loop of searches
 *   keeps the shards' hot graph nodes in the CPU caches, where a request's HTTP, SDK and emulator work
 *   evicts them; the loop's figure is reported too (`engineLoopMs`);
 * - cold: the first search after the stack restarts (empty shard cache), probing 1, 4 and 16 shards
 *   of a 16-partition collection.
 *
 * Collections: `tiny` (4 vectors, 8-d) and `fashion-like 60k` (MNIST 60,000 × 784; `--quick` 10,000),
 * each built once, after all its rows are in (the 60k collection is one shard). To build them as the
 * rows arrive instead, as the builder's default policy does (a timing-dependent shard count), run
 * with the defaults set: `SHOAL_BUILD_DELTA_MIN_ROWS=1000 SHOAL_BUILD_DELTA_MAX_AGE_S=60
 * SHOAL_TAIL_CAP_MB=64`.
 * - scattered: the 60k collection's eventual search again, forced through a searcher slot
 *   (`SHOAL_SCATTER_MIN_MB=0`): once through the slot's Lambda (the local Lambda Invoke API), once through
 *   a resident search node (`SHOAL_LOCAL_SEARCH_NODES=1`, docs/architecture.md §7.7), so the two hops'
 *   local cost stands beside the in-process row (`via`).
 *
 *   npm run bench:latency
 *   npm run bench:latency -- --quick
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
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
  options: [
    { flag: '--requests', arg: 'n', help: 'timed requests per route (default 300; 100 with --quick)' },
    { flag: '--warmup', arg: 'n', help: 'untimed requests per route first (default 2000; 1000 with --quick)' },
  ],
});
process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

const ROWS = cli.quick ? 10_000 : 60_000;
const REQUESTS = cli.int('--requests') ?? (cli.quick ? 100 : 300);
const WARMUP = cli.int('--warmup') ?? (cli.quick ? 1000 : 2000);
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
  /** p50 of the same requests sent with `fetch` (undici) instead of node:http (warm rows only). */
  p50Fetch?: number;
  /** p50 of the time with a storage call in flight (`Server-Timing: storage`): the emulators' share. */
  storageMs: number;
  /** Median sequential storage round trips per request (max in `roundTripsMax`). */
  roundTrips: number;
  roundTripsMax: number;
  /**
   * The same search against the head version's shards in this process (p50), timed right after each timed
   * request (so under the same machine state: caches, the emulators' thread), search rows only.
   */
  engineMs?: number;
  /** The same searches back to back in a loop of their own (p50): the engine with its caches warm. */
  engineLoopMs?: number;
  shards?: number;
  /** How the shards were searched: in the api's process (default), or scattered to a slot's Lambda or node. */
  via?: 'in process' | 'slot Lambda' | 'search node';
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

type Via = 'http' | 'fetch';

class Client {
  /** One kept-alive connection: sequential requests, as a client holding a pool would send them. */
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly base: URL;

  constructor(private readonly url: string) {
    this.base = new URL(url);
  }

  // Bodies are read field by field below; typing them would restate the API.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async call(method: string, route: string, body?: unknown, via: Via = 'http'): Promise<{ json: any } & Cost> {
    // A Prepared body was serialised before the clock started: encoding the request is the client's work.
    const data = body === undefined ? undefined : body instanceof Prepared ? body.json : JSON.stringify(body);
    const res = via === 'http' ? await this.viaHttp(method, route, data) : await this.viaFetch(method, route, data);
    const json = res.text ? JSON.parse(res.text) : undefined;
    if (res.status >= 400) throw new Error(`${method} ${route}: ${res.status} ${res.text.slice(0, 300)}`);
    const timing = /storage;dur=([\d.]+)/.exec(res.header('server-timing') ?? '');
    return {
      json,
      trips: Number(res.header('x-shoal-round-trips') ?? NaN),
      storageMs: timing ? Number(timing[1]) : NaN,
    };
  }

  private viaHttp(method: string, route: string, data?: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${API_KEY}` };
      if (data !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(data);
      }
      const req = http.request(
        { host: this.base.hostname, port: this.base.port, path: route, method, agent: this.agent, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const h = res.headers;
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString('utf8'),
              header: (name) => {
                const v = h[name];
                return Array.isArray(v) ? v.join(', ') : v;
              },
            });
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  private async viaFetch(method: string, route: string, data?: string): Promise<Reply> {
    const res = await fetch(`${this.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: data,
    });
    return { status: res.status, text: await res.text(), header: (name) => res.headers.get(name) ?? undefined };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A request body serialised ahead of the timed requests. */
class Prepared {
  readonly json: string;
  constructor(body: unknown) {
    this.json = JSON.stringify(body);
  }
}

interface Reply {
  status: number;
  text: string;
  header(name: string): string | undefined;
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
  fetchMs: number[];
  trips: number[];
  storageMs: number[];
  /** The engine's time for each timed request's query, measured right after it (search routes). */
  engineMs: number[];
}

/** Untimed `fetch` requests before its timed pass (the server side is warm already by then). */
const FETCH_WARMUP = 50;

async function timed(
  n: number,
  request: (i: number, via: Via) => Promise<Cost>,
  engine?: (i: number) => void,
): Promise<Timings> {
  for (let i = 0; i < WARMUP; i++) await request(i, 'http');
  const ms: number[] = [];
  const trips: number[] = [];
  const storageMs: number[] = [];
  const engineMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const cost = await request(WARMUP + i, 'http');
    ms.push(performance.now() - t);
    trips.push(cost.trips);
    storageMs.push(cost.storageMs);
    if (engine) {
      const e = performance.now();
      engine(WARMUP + i);
      engineMs.push(performance.now() - e);
    }
  }
  // The same requests through fetch: what a client on undici sees (its own overhead included).
  for (let i = 0; i < FETCH_WARMUP; i++) await request(i, 'fetch');
  const fetchMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await request(WARMUP + i, 'fetch');
    fetchMs.push(performance.now() - t);
  }
  return {
    ms: sort(ms),
    fetchMs: sort(fetchMs),
    trips: sort(trips),
    storageMs: sort(storageMs),
    engineMs: sort(engineMs),
  };
}

function row(
  base: Omit<Row, 'p50' | 'p99' | 'p50Fetch' | 'roundTrips' | 'roundTripsMax' | 'requests' | 'storageMs'>,
  m: Timings,
): Row {
  return {
    ...base,
    requests: m.ms.length,
    p50: round(percentile(m.ms, 50)),
    p99: round(percentile(m.ms, 99)),
    p50Fetch: round(percentile(m.fetchMs, 50)),
    storageMs: round(percentile(m.storageMs, 50)),
    roundTrips: percentile(m.trips, 50),
    roundTripsMax: m.trips[m.trips.length - 1],
  };
}

/** The head version's shards searched straight, in this process: what the request path wraps. */
interface Engine {
  search(q: Float32Array): void;
  shards: number;
  /** p50 of the queries searched back to back in a loop of their own. */
  loopMs: number;
}

async function engineOf(name: string, queries: Float32Array[]): Promise<Engine> {
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
  return { search, shards: shards.length, loopMs: round(percentile(sort(ms), 50), 3) };
}

const sort = (xs: number[]) => xs.sort((a, b) => a - b);

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** Warm searches of one consistency, each followed by the same search straight on the engine. */
async function searches(
  client: Client,
  name: string,
  label: string,
  queries: Float32Array[],
  consistency: 'eventual' | 'strong',
  via: NonNullable<Row['via']>,
  engine: Engine,
): Promise<Row> {
  const bodies = queries.map((v) => new Prepared({ vector: Array.from(v), k: K, consistency }));
  const m = await timed(
    REQUESTS,
    async (i, how) => client.call('POST', `/v1/collections/${name}/search`, bodies[i % bodies.length], how),
    (i) => engine.search(queries[i % queries.length]),
  );
  const base = { route: 'search', collection: label, consistency, warm: true, shards: engine.shards, via } as const;
  return { ...row(base, m), engineMs: round(percentile(m.engineMs, 50), 3), engineLoopMs: engine.loopMs };
}

async function routes(client: Client, name: string, label: string, queries: Float32Array[]): Promise<Row[]> {
  const out: Row[] = [];
  const engine = await engineOf(name, queries);
  for (const consistency of ['eventual', 'strong'] as const) {
    out.push(await searches(client, name, label, queries, consistency, 'in process', engine));
  }
  // Ten ids rewritten in turn with their own vectors: the data and the answers stay the same.
  const writes = Array.from(
    { length: 10 },
    (_, id) => new Prepared({ vectors: [{ id: `lat-${id}`, values: Array.from(queries[0], (_, j) => (j ? 0 : id)) }] }),
  );
  const upsert = await timed(REQUESTS, async (i, via) => {
    return client.call('POST', `/v1/collections/${name}/vectors`, writes[i % writes.length], via);
  });
  out.push(row({ route: 'upsert', collection: label, warm: true }, upsert));
  const gets = Array.from({ length: 4 }, (_, id) => new Prepared({ ids: [String(id)] }));
  const get = await timed(REQUESTS, async (i, via) => {
    return client.call('POST', `/v1/collections/${name}/vectors/get`, gets[i % gets.length], via);
  });
  out.push(row({ route: 'get', collection: label, warm: true }, get));
  return out;
}

async function main(): Promise<void> {
  // One build per collection, when its rows are all in (`indexed`), not one per batch as they arrive: the
  // builder's policy would cut them into shards by timing (7–12 shards for the 60k collection over five
  // runs on one machine), and the shard count moves both the engine time and the request path's. Values
  // set in the environment win (the header says how to get the policy's layout back).
  process.env.SHOAL_BUILD_DELTA_MIN_ROWS ??= '10000000';
  process.env.SHOAL_BUILD_DELTA_MAX_AGE_S ??= '86400';
  process.env.SHOAL_TAIL_CAP_MB ??= '0';
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-latency-'));
  const start = (): Promise<LocalShoal> =>
    startLocalShoal({ dataDir, port: 0, silent: true, requestLog: false, tickMs: 3_600_000, apiKey: API_KEY });
  let shoal = await start();
  const progress = new Progress(7);
  const rows: Row[] = [];
  let client: Client | undefined;
  try {
    client = new Client(shoal.url);
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

    // The same collection forced through a slot: its Lambda, then a resident node (restarts on the same data).
    for (const via of ['slot Lambda', 'search node'] as const) {
      progress.step(`${label}: eventual search scattered to a ${via}`);
      await shoal.stop();
      const saved = { scatter: process.env.SHOAL_SCATTER_MIN_MB, nodes: process.env.SHOAL_LOCAL_SEARCH_NODES };
      process.env.SHOAL_SCATTER_MIN_MB = '0';
      process.env.SHOAL_LOCAL_SEARCH_NODES = via === 'search node' ? '1' : '0';
      try {
        shoal = await start();
      } finally {
        restoreEnv('SHOAL_SCATTER_MIN_MB', saved.scatter);
        restoreEnv('SHOAL_LOCAL_SEARCH_NODES', saved.nodes);
      }
      client.close();
      client = new Client(shoal.url);
      rows.push(await searches(client, 'mnist', label, mq, 'eventual', via, await engineOf('mnist', mq)));
    }

    progress.step(
      `cold: ${COLD_PARTITIONS} partitions of MNIST ${COLD_ROWS.toLocaleString('en-US')}, first search after a restart`,
    );
    await load(client, 'cold', mnist, COLD_ROWS, { partitions: COLD_PARTITIONS });
    for (const nprobe of [1, 4, 16]) {
      await shoal.stop();
      shoal = await start();
      client.close();
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
        via: 'in process',
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
    client?.close();
    await shoal.stop();
    await rm(dataDir, { recursive: true, force: true });
  }

  const cell = (x: number | string | undefined) => (x === undefined ? '—' : String(x));
  const budget = (r: Row) => {
    if (r.engineMs === undefined || !r.warm) return '—';
    const limit = round(r.engineMs + (r.consistency === 'strong' ? 3 : 2));
    return `${r.p50 <= limit ? 'within' : 'over'} ${limit}`;
  };
  const markdown = [
    `# Request-path latency — local stack, ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Machine: ${machineLine(cli.machine)}. Sequential requests over HTTP to the \`npm start\` stack (embedded ` +
      `emulators) from node:http with a keep-alive agent, after ${WARMUP} untimed requests per route; ` +
      `p50 fetch: the same requests through \`fetch\` (undici). k = ${K}, ef = ${EF}. ` +
      'Budget: the issue-17 target for a warm search, engine + 2 ms (eventual) or + 3 ms (strong). ' +
      'Round trips: sequential ' +
      'storage round trips of the request (`X-Shoal-Round-Trips`; overlapping calls count once), median / max; ' +
      'storage ms: p50 of the time a storage call was in flight (`Server-Timing`), the emulators’ share. ' +
      'Engine: the same query against the head version’s shards in this process, timed right after each ' +
      'timed request, so under the same machine state (p50); engine loop: the same queries back to back in a ' +
      'loop of their own, caches warm (p50). Via: where the shards were searched — in the api’s process, or ' +
      'scattered (`SHOAL_SCATTER_MIN_MB=0`) to the slot’s Lambda through the local Invoke API or to a resident ' +
      'search node over HTTP (its own thread, docs/architecture.md §7.7).',
    '',
    '| route | collection | consistency | via | warm | requests | p50 ms | p99 ms | p50 fetch | round trips | ' +
      'storage ms | engine ms | engine loop ms | path − engine (p50) | budget | shards |',
    '|---|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|',
    ...rows.map(
      (r) =>
        `| ${[
          r.route,
          r.collection,
          cell(r.consistency),
          cell(r.via),
          r.warm ? 'warm' : 'cold',
          r.requests,
          r.p50,
          r.p99,
          cell(r.p50Fetch),
          `${r.roundTrips} / ${r.roundTripsMax}`,
          r.storageMs,
          cell(r.engineMs),
          cell(r.engineLoopMs),
          r.engineMs === undefined ? '—' : round(r.p50 - r.engineMs),
          budget(r),
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
