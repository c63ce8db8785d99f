/**
 * Scale benchmark of the whole local stack (the `npm start` handlers on the embedded emulators):
 * a seeded 128-d Gaussian mixture (1,000,000 rows by default) and MNIST 60k, each loaded through the
 * bulk-import path (`.npy` in the bucket, `POST …/imports`), then:
 * - ingest rows/s (job created → `succeeded`) and seconds until everything is indexed;
 * - build rows/s per builder worker, from the versions' `stats.buildMs`;
 * - recall@10 and p50/p99 over HTTP per `nprobe`, and the fraction of shards each query searched;
 * - the `nprobe` (and `ef`) tuning picks for recall 0.95, and recall at that setting;
 * - strong-search p50/p99 with an empty and with a full unindexed tail;
 * - baseline: the same collection searched with nprobe = partitions (every shard, as an
 *   unpartitioned collection fans out today).
 *
 *   npm run bench:scale                    # 1,000,000 synthetic rows + MNIST 60k
 *   npm run bench:scale -- --quick         # 200,000 synthetic rows + MNIST
 *   npm run bench:scale -- --rows 20000 --no-mnist
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { makeClientConfig } from '../infra/local/aws-clients.js';
import { startLocalShoal, type LocalShoal } from '../infra/local/shoal.js';
import { loadDataset } from '../shared/io/datasets.js';
import { TUNE_JOB_MAX_QUERY_FLOATS } from '../shared/lifecycle/service.js';
import { machineLine, parseCli } from './cli.js';
import { Progress } from './progress.js';
import { GaussianMixture, exactTopRows, npyFile } from './synthetic.js';

const cli = parseCli({
  name: 'scale',
  summary:
    'Whole local stack at scale: bulk import, time to indexed, recall/latency per nprobe, tuning, strong reads ' +
    'with a full tail (synthetic 128-d mixture and MNIST).',
  quick: '200,000 synthetic rows instead of 1,000,000',
  options: [
    { flag: '--rows', arg: 'n', help: 'synthetic rows (default 1,000,000; 200,000 with --quick)' },
    { flag: '--partitions', arg: 'P', help: 'force P partitions on the synthetic collection (default: automatic)' },
    { flag: '--sigma', arg: 'x', help: 'per-coordinate σ of the synthetic clusters (default 0.9)' },
    { flag: '--tail', arg: 'n', help: 'rows in the unindexed tail for the strong-search test (default 20,000)' },
    { flag: '--mnist-rows', arg: 'n', help: 'MNIST base rows (default all 60,000)' },
    { flag: '--no-mnist', help: 'skip the MNIST part' },
  ],
});

// The local stack's logger and its builder thread write INFO lines to stdout, which would break --json's one
// document: stray writes go to stderr; cli.out keeps the real stdout writer it bound at load.
process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

const ROWS = cli.int('--rows') ?? (cli.quick ? 200_000 : 1_000_000);
const FORCED_PARTITIONS = cli.int('--partitions');
const SIGMA = positiveNumber('--sigma') ?? 0.9;
const TAIL_ROWS = Math.min(cli.int('--tail') ?? 20_000, ROWS);
const MNIST = !cli.has('--no-mnist');
const MNIST_ROWS = cli.int('--mnist-rows');
const DIM = 128;
const CLUSTERS = 256;
const SEED = 20_261_130;
const QUERIES = 200;
const K = 10;
const NPROBES = [1, 2, 4, 8, 16, 32];
/**
 * The sweep sends this ef (the index's default efSearch): tuning changes the line's default, and the rows
 * measured after it (the tuned nprobe, when the sweep lacks it) must stay comparable with those before.
 */
const SWEEP_EF = 64;
const TARGET_RECALL = 0.95;
/**
 * Fresh queries the tune job is given (not the measured ones, not rows of the collection: rows overstate
 * recall), capped by the job's TUNE_JOB_MAX_QUERY_FLOATS (104 at MNIST's 784-d).
 */
const TUNE_QUERIES = 500;
const API_KEY = 'bench-key';
const UPSERT_BATCH = 1000;
/** Not timed: the first searches after a build load the shards into the searchers' caches. */
const WARMUP = 20;
/** Rows written by the import are sampled this often: a slowing import shows where its time went. */
const CURVE_EVERY_S = 30;

function positiveNumber(flag: `--${string}`): number | undefined {
  const v = cli.value(flag);
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : cli.fail(`${flag} must be a positive number, not ${v}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  /** The parsed body; `as<T>()` names the shape a route answers with. */
  json: unknown;
  text: string;
  retryAfter: number | undefined;
}

/** The fields of the answers this bench reads (docs/api.md). */
interface ErrorBody {
  error?: { code?: string; message?: string };
}
interface ImportJobBody {
  jobId: string;
  state: string;
  rowsWritten?: number;
  percent?: number;
  createdAt: string;
  startedAt?: string | null;
  finishedAt?: string | null;
  error?: string | null;
  reason?: string | null;
}
interface SearchBody {
  results: Array<{ id: string }>;
  stats?: { shardsSearched?: number; shardsTotal?: number; partitionsProbed?: number };
}
interface TuneBody {
  tuning?: { chosenEf?: number; chosenNprobe?: number };
}

const as = <T>(r: Reply): T => r.json as T;

let baseUrl = '';

async function call(method: string, route: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  const ra = Number(res.headers.get('retry-after'));
  return { status: res.status, json, text, retryAfter: Number.isFinite(ra) && ra > 0 ? ra : undefined };
}

async function must(method: string, route: string, body?: unknown, ok: number[] = [200]): Promise<Reply> {
  const r = await call(method, route, body);
  if (!ok.includes(r.status)) throw new Error(`${method} ${route} → ${r.status} ${r.text.slice(0, 500)}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

interface Workload {
  name: string;
  dim: number;
  vectors: number;
  queries: Float32Array;
  nq: number;
  /** nq × K exact neighbour rows; the import gives row i the id "i". */
  truth: Int32Array;
  /** Queries for the tune job (row-major), drawn like `queries` but disjoint from them. */
  tuneQueries: Float32Array;
}

interface SearchPass {
  recall: number;
  p50: number;
  p99: number;
  /** Mean of response.stats.shardsSearched; null when the server does not report it. */
  shardsSearched: number | null;
  shardsProbedFraction: number | null;
  partitionsProbed: number | null;
}

interface NprobeRow extends SearchPass {
  dataset: string;
  /** null: the request sent no nprobe (the server's default). */
  nprobe: number | null;
  /** nprobe = partitions: every shard, i.e. the fan-out of an unpartitioned collection. */
  baseline: boolean;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

function queryBody(w: Workload, q: number, opts: SearchOpts): Record<string, unknown> {
  const body: Record<string, unknown> = {
    vector: Array.from(w.queries.subarray(q * w.dim, (q + 1) * w.dim)),
    k: K,
    consistency: opts.consistency,
  };
  if (opts.nprobe !== undefined) body.nprobe = opts.nprobe;
  if (opts.ef !== undefined) body.ef = opts.ef;
  return body;
}

interface SearchOpts {
  nprobe?: number;
  ef?: number;
  consistency: 'strong' | 'eventual';
}

/** One query at a time over HTTP: recall@K against the exact top-K, client-side latency. */
async function searchPass(w: Workload, opts: SearchOpts): Promise<SearchPass> {
  return (await searchPasses(w, [opts]))[0];
}

/**
 * Several settings measured query by query in turn (query q with each setting, then q + 1), so a burst of
 * background work in the stack (a build, the write log's trim) slows them alike instead of landing on
 * whichever pass happened to run then.
 */
async function searchPasses(w: Workload, settings: SearchOpts[]): Promise<SearchPass[]> {
  const route = `/v1/collections/${w.name}/search`;
  const acc = settings.map(() => ({
    ms: [] as number[],
    fractions: [] as number[],
    searched: [] as number[],
    probed: [] as number[],
    found: 0,
  }));
  for (let q = 0; q < w.nq; q++) {
    const truth = new Set<string>();
    for (let i = 0; i < K; i++) truth.add(String(w.truth[q * K + i]));
    for (const [s, opts] of settings.entries()) {
      const a = acc[s];
      const t = performance.now();
      const r = await must('POST', route, queryBody(w, q, opts));
      a.ms.push(performance.now() - t);
      const { results, stats } = as<SearchBody>(r);
      for (const hit of results) if (truth.has(String(hit.id))) a.found++;
      if (typeof stats?.shardsSearched === 'number') {
        a.searched.push(stats.shardsSearched);
        if (typeof stats.shardsTotal === 'number' && stats.shardsTotal > 0)
          a.fractions.push(stats.shardsSearched / stats.shardsTotal);
      }
      if (typeof stats?.partitionsProbed === 'number') a.probed.push(stats.partitionsProbed);
    }
  }
  return acc.map((a) => {
    const sorted = [...a.ms].sort((x, y) => x - y);
    return {
      recall: a.found / (w.nq * K),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      shardsSearched: mean(a.searched),
      shardsProbedFraction: mean(a.fractions),
      partitionsProbed: mean(a.probed),
    };
  });
}

async function warmUp(w: Workload, opts: SearchOpts): Promise<void> {
  for (let q = 0; q < Math.min(WARMUP, w.nq); q++) {
    // A cold strong read of a large tail may run past its budget once (503): the retry finds it cached.
    for (let attempt = 0; ; attempt++) {
      const r = await call('POST', `/v1/collections/${w.name}/search`, queryBody(w, q, opts));
      if (r.status === 200) break;
      if (r.status !== 503 || attempt >= 5) throw new Error(`warm-up search → ${r.status} ${r.text.slice(0, 300)}`);
      await sleep(1000);
    }
  }
}

/** Whether the server takes `nprobe` in a search body (it refuses unknown fields with a 400 naming them). */
async function nprobeAccepted(w: Workload): Promise<boolean> {
  const r = await call(
    'POST',
    `/v1/collections/${w.name}/search`,
    queryBody(w, 0, { nprobe: 1, consistency: 'eventual' }),
  );
  if (r.status === 200) return true;
  if (r.status === 400 && r.text.includes('nprobe')) return false;
  throw new Error(`search with nprobe → ${r.status} ${r.text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------
// Loading and indexing
// ---------------------------------------------------------------------------------------------

interface CollectionStats {
  count: number;
  indexed: number;
  pending: number;
  shards: number;
  version: number;
  partitions?: number;
}

/** How long a poll may keep failing with 5xx before the bench gives up. */
const POLL_GIVE_UP_MS = 10 * 60_000;

/**
 * A GET that is polled: while the stack is loaded (an import writing, a build reading the same emulated
 * DynamoDB) a strong read can run past its budget (503) or the api function's timeout (500); the next
 * poll asks again. Undefined = no answer this time.
 */
function poller<T>(route: string): () => Promise<T | undefined> {
  let lastOk = Date.now();
  return async () => {
    const r = await call('GET', route);
    if (r.status === 200) {
      lastOk = Date.now();
      return as<T>(r);
    }
    if (r.status < 500 || Date.now() - lastOk > POLL_GIVE_UP_MS)
      throw new Error(`GET ${route} → ${r.status} ${r.text.slice(0, 300)}`);
    return undefined;
  };
}

async function collectionStats(name: string): Promise<CollectionStats | undefined> {
  return (await poller<{ stats: CollectionStats }>(`/v1/collections/${name}`)())?.stats;
}

/** Creates the collection; a server without partitions support refuses the field, so it is retried without. */
async function createCollection(name: string, dim: number, partitions: number | undefined, notes: string[]) {
  const index: Record<string, unknown> = { engine: 'hnsw' };
  if (partitions !== undefined) index.partitions = partitions;
  const r = await call('POST', '/v1/collections', { name, dimension: dim, metric: 'l2', index });
  if (r.status === 201) return;
  if (r.status === 400 && partitions !== undefined && r.text.includes('partitions')) {
    notes.push(
      `${name}: the server refused index.partitions (${as<ErrorBody>(r)?.error?.message ?? r.status}); created without`,
    );
    await must('POST', '/v1/collections', { name, dimension: dim, metric: 'l2', index: { engine: 'hnsw' } }, [201]);
    return;
  }
  throw new Error(`create ${name} → ${r.status} ${r.text.slice(0, 300)}`);
}

interface LoadResult {
  uploadSec: number;
  importSec: number;
  queueSec: number | null;
  ingestRowsPerSec: number;
  indexedAfterSec: number;
  importCreatedAt: number;
  importCurve: Array<{ sec: number; rows: number }>;
  stats: CollectionStats;
}

/** A progress bar that follows a fraction (0..1) in `ticks` steps. */
function fractionBar(ticks: number): { to(fraction: number, label: string): void; done(): void } {
  const bar = new Progress(ticks);
  let at = 0;
  return {
    to(fraction, label) {
      const target = Math.min(ticks, Math.floor(fraction * ticks));
      while (at < target) {
        at++;
        bar.step(label);
      }
    },
    done: () => bar.done(),
  };
}

async function load(shoal: LocalShoal, name: string, npy: Uint8Array, rows: number): Promise<LoadResult> {
  const s3 = new S3Client(makeClientConfig(shoal.endpoints, 's3'));
  // Outside imports/ on purpose: no S3 event, so the job starts with the POST below and the upload is timed apart.
  const key = `bench/${name}.npy`;
  const tUp = performance.now();
  try {
    await s3.send(new PutObjectCommand({ Bucket: shoal.resources.bucket, Key: key, Body: npy }));
  } finally {
    s3.destroy();
  }
  const uploadSec = (performance.now() - tUp) / 1000;

  const started = await must(
    'POST',
    `/v1/collections/${name}/imports`,
    { uri: `s3://${shoal.resources.bucket}/${key}` },
    [202],
  );
  const jobId = as<ImportJobBody>(started).jobId;
  const importBar = fractionBar(10);
  const tImport = performance.now();
  const curve: Array<{ sec: number; rows: number }> = [];
  let job = as<ImportJobBody>(started);
  const pollJob = poller<ImportJobBody>(`/v1/collections/${name}/imports/${jobId}`);
  for (;;) {
    const sec = (performance.now() - tImport) / 1000;
    if (sec >= (curve.length + 1) * CURVE_EVERY_S) curve.push({ sec: Math.round(sec), rows: job.rowsWritten ?? 0 });
    if (job.state === 'succeeded') break;
    if (['partial', 'failed', 'cancelled'].includes(job.state))
      throw new Error(`import of ${name} ended ${job.state}: ${job.error ?? ''} ${job.reason ?? ''}`);
    importBar.to((job.percent ?? 0) / 100, `${name}: import ${job.rowsWritten ?? 0}/${rows} rows`);
    await sleep(1000);
    job = (await pollJob()) ?? job;
  }
  importBar.to(1, `${name}: imported ${rows} rows`);
  importBar.done();
  if (job.rowsWritten !== rows) throw new Error(`import of ${name} wrote ${job.rowsWritten} rows, not ${rows}`);
  const createdAt = Date.parse(job.createdAt);
  // A finished job carries its own end time; the poll that saw it is up to a second later.
  const finishedAt = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
  const importSec = (finishedAt - createdAt) / 1000;
  const queueSec = job.startedAt ? (Date.parse(job.startedAt) - createdAt) / 1000 : null;

  // The builder builds by itself while rows arrive; the rest (under its minimum delta) is asked for now,
  // and again while rows stay pending (a request made during a running build may find nothing new).
  const indexBar = fractionBar(10);
  let lastAsk = 0;
  let stats: CollectionStats | undefined;
  const pollStats = poller<{ stats: CollectionStats }>(`/v1/collections/${name}`);
  for (;;) {
    stats = (await pollStats())?.stats;
    if (stats && stats.pending === 0 && stats.indexed === rows) break;
    if (stats) indexBar.to(stats.indexed / rows, `${name}: indexed ${stats.indexed}/${rows}, pending ${stats.pending}`);
    if (Date.now() - lastAsk > 30_000) {
      // A nudge: one lost to a timeout is sent again next round.
      const asked = await call('POST', `/v1/collections/${name}/index`);
      if (asked.status !== 202 && asked.status < 500)
        throw new Error(`POST /v1/collections/${name}/index → ${asked.status} ${asked.text.slice(0, 300)}`);
      lastAsk = Date.now();
    }
    await sleep(1000);
  }
  const indexedAfterSec = (Date.now() - finishedAt) / 1000;
  indexBar.to(1, `${name}: indexed ${rows} rows`);
  indexBar.done();
  return {
    uploadSec,
    importSec,
    queueSec,
    ingestRowsPerSec: rows / importSec,
    indexedAfterSec,
    importCreatedAt: createdAt,
    importCurve: curve,
    stats,
  };
}

interface BuildStats {
  versions: number;
  rowsBuilt: number;
  buildSec: number;
  rowsPerSecPerWorker: number | null;
  /** Versions older than the API's listing (newest 100) are not counted. */
  truncated: boolean;
  perVersion: Array<{ version: number; kind: string | null; newRows: number; rows: number; buildMs: number }>;
}

interface ManifestView {
  version: number;
  parent: number;
  line?: string;
  createdAt: string;
  shards: Array<{ id: string; count: number }>;
  stats?: { buildMs?: number; kind?: string; rows?: number };
}

/**
 * Rows in shards new to each version (not in its parent) over the versions' summed build time: the rate of
 * one builder, as each version is one builder run. Compactions rebuild rows again, which is the point.
 */
async function buildStats(name: string, since: number): Promise<BuildStats | null> {
  const { versions } = as<{ versions: ManifestView[] }>(await must('GET', `/v1/collections/${name}/versions`));
  const byVersion = new Map(versions.map((v) => [v.version, v]));
  let rowsBuilt = 0;
  let ms = 0;
  let counted = 0;
  let truncated = false;
  const perVersion: BuildStats['perVersion'] = [];
  for (const v of [...versions].reverse()) {
    if (v.line !== undefined || Date.parse(v.createdAt) < since || typeof v.stats?.buildMs !== 'number') continue;
    const parent = v.parent ? byVersion.get(v.parent) : undefined;
    if (v.parent && !parent) {
      truncated = true;
      continue;
    }
    const old = new Set(parent?.shards.map((s) => s.id) ?? []);
    const newRows = v.shards.filter((s) => !old.has(s.id)).reduce((sum, s) => sum + s.count, 0);
    perVersion.push({
      version: v.version,
      kind: v.stats.kind ?? null,
      newRows,
      rows: v.stats.rows ?? 0,
      buildMs: v.stats.buildMs,
    });
    rowsBuilt += newRows;
    ms += v.stats.buildMs;
    counted++;
  }
  if (!counted) return null;
  return {
    versions: counted,
    rowsBuilt,
    buildSec: ms / 1000,
    rowsPerSecPerWorker: ms > 0 ? rowsBuilt / (ms / 1000) : null,
    truncated,
    perVersion,
  };
}

// ---------------------------------------------------------------------------------------------
// One dataset: load, sweep nprobe, tune
// ---------------------------------------------------------------------------------------------

interface Tuned {
  nprobe: number | null;
  ef: number | null;
  sec: number;
  error: string | null;
}

interface DatasetResult {
  dataset: string;
  vectors: number;
  dim: number;
  partitions: number | null;
  shards: number;
  uploadSec: number;
  importSec: number;
  importQueueSec: number | null;
  ingestRowsPerSec: number;
  indexedAfterSec: number;
  importCurve: Array<{ sec: number; rows: number }>;
  buildRowsPerSecPerWorker: number | null;
  build: BuildStats | null;
  nprobeSupported: boolean;
  perNprobe: NprobeRow[];
  tunedNprobe: number | null;
  tunedEf: number | null;
  tuneSec: number;
  tuneError: string | null;
  /** Recall at the tuned nprobe in the sweep (ef = SWEEP_EF, as every sweep row). */
  recallAtTunedNprobe: number | null;
  /** Searched after tuning at the tuned nprobe (explicit), with the line's tuned default ef. */
  tuned: NprobeRow | null;
  /** Searched after tuning with no nprobe in the request: what clients get by default. */
  afterTuneDefault: NprobeRow;
  baseline: NprobeRow | null;
  strongEmptyTail: { p50: number; p99: number; recall: number } | null;
}

function row(dataset: string, nprobe: number | null, partitions: number | null, p: SearchPass): NprobeRow {
  return {
    dataset,
    nprobe,
    baseline: nprobe !== null && nprobe === partitions,
    recall: p.recall,
    p50: p.p50,
    p99: p.p99,
    shardsSearched: p.shardsSearched,
    shardsProbedFraction: p.shardsProbedFraction,
    partitionsProbed: p.partitionsProbed,
  };
}

/**
 * Tunes as a tune job on the builder (the API's 30 s cannot hold a 1M-row sweep), polled until it ends.
 * Up to TUNE_QUERIES fresh queries: a recall estimate tight enough that the bench's own queries see the target.
 */
async function tune(w: Workload, version: number): Promise<Tuned> {
  const name = w.name;
  const n = Math.min(w.tuneQueries.length / w.dim, Math.floor(TUNE_JOB_MAX_QUERY_FLOATS / w.dim));
  const t = performance.now();
  const failed = (error: string): Tuned => ({
    nprobe: null,
    ef: null,
    sec: (performance.now() - t) / 1000,
    error,
  });
  const started = await call('POST', `/v1/collections/${name}/versions/${version}/tune`, {
    targetRecall: TARGET_RECALL,
    k: K,
    queries: Array.from({ length: n }, (_, q) => Array.from(w.tuneQueries.subarray(q * w.dim, (q + 1) * w.dim))),
    async: true,
  });
  if (started.status !== 202) return failed(`${started.status} ${started.text.slice(0, 300)}`);
  const jobId = as<{ id: string }>(started).id;
  for (;;) {
    await sleep(2_000);
    const r = await call('GET', `/v1/collections/${name}/tune-jobs/${encodeURIComponent(jobId)}`);
    if (r.status !== 200) return failed(`${r.status} ${r.text.slice(0, 300)}`);
    const job = as<{ status: string; evaluation?: TuneBody; error?: { code: string; message: string } }>(r);
    if (job.status === 'failed') return failed(`${job.error?.code}: ${job.error?.message}`);
    if (job.status !== 'succeeded') continue;
    const tuning = job.evaluation?.tuning ?? {};
    return {
      nprobe: typeof tuning.chosenNprobe === 'number' ? tuning.chosenNprobe : null,
      ef: typeof tuning.chosenEf === 'number' ? tuning.chosenEf : null,
      sec: (performance.now() - t) / 1000,
      error: null,
    };
  }
}

async function runDataset(
  shoal: LocalShoal,
  w: Workload,
  npy: Uint8Array,
  partitions: number | undefined,
  notes: string[],
  step: (label: string) => void,
): Promise<DatasetResult> {
  step(`${w.name}: create, upload, import, index`);
  await createCollection(w.name, w.dim, partitions, notes);
  const loaded = await load(shoal, w.name, npy, w.vectors);
  const build = await buildStats(w.name, loaded.importCreatedAt);
  if (build?.truncated) notes.push(`${w.name}: versions older than the newest 100 were left out of build rows/s`);
  const P = loaded.stats.partitions ?? null;

  step(`${w.name}: search sweep`);
  const nprobeSupported = await nprobeAccepted(w);
  if (!nprobeSupported) notes.push(`${w.name}: the server refused nprobe in a search; one pass at its default`);
  else if (P === null) notes.push(`${w.name}: not partitioned (no stats.partitions); one pass at the default`);
  const sweep: Array<number | undefined> =
    nprobeSupported && P !== null ? [...NPROBES.filter((n) => n < P), P] : [undefined];
  await warmUp(w, { nprobe: sweep[sweep.length - 1], consistency: 'eventual' });
  const perNprobe: NprobeRow[] = [];
  for (const nprobe of sweep) {
    const pass = await searchPass(w, { nprobe, ef: SWEEP_EF, consistency: 'eventual' });
    perNprobe.push(row(w.name, nprobe ?? null, P, pass));
  }

  step(`${w.name}: tune (target recall ${TARGET_RECALL})`);
  const tuned = await tune(w, loaded.stats.version);
  if (tuned.error) notes.push(`${w.name}: tune failed: ${tuned.error}`);
  const tunedN = tuned.nprobe;
  if (tunedN !== null && !perNprobe.some((r) => r.nprobe === tunedN)) {
    const pass = await searchPass(w, { nprobe: tunedN, ef: SWEEP_EF, consistency: 'eventual' });
    perNprobe.push(row(w.name, tunedN, P, pass));
    perNprobe.sort((a, b) => (a.nprobe ?? 0) - (b.nprobe ?? 0));
  }
  const tunedOpts: SearchOpts = { consistency: 'eventual', ...(tuned.nprobe !== null ? { nprobe: tuned.nprobe } : {}) };
  // The tuned nprobe sent, and none sent (the line's tuned default): interleaved, so the two compare like for like.
  const [tunedPass, defaultPass] =
    tuned.nprobe !== null
      ? await searchPasses(w, [tunedOpts, { consistency: 'eventual' }])
      : [null, await searchPass(w, { consistency: 'eventual' })];
  const tunedRow = tunedPass && tuned.nprobe !== null ? row(w.name, tuned.nprobe, P, tunedPass) : null;
  const afterTuneDefault = row(w.name, null, P, defaultPass);
  const strong = await searchPass(w, { ...tunedOpts, consistency: 'strong' });

  return {
    dataset: w.name,
    vectors: w.vectors,
    dim: w.dim,
    partitions: P,
    shards: loaded.stats.shards,
    uploadSec: loaded.uploadSec,
    importSec: loaded.importSec,
    importQueueSec: loaded.queueSec,
    ingestRowsPerSec: loaded.ingestRowsPerSec,
    indexedAfterSec: loaded.indexedAfterSec,
    importCurve: loaded.importCurve,
    buildRowsPerSecPerWorker: build?.rowsPerSecPerWorker ?? null,
    build,
    nprobeSupported,
    perNprobe,
    tunedNprobe: tuned.nprobe,
    tunedEf: tuned.ef,
    tuneSec: tuned.sec,
    tuneError: tuned.error,
    recallAtTunedNprobe: perNprobe.find((r) => r.nprobe !== null && r.nprobe === tuned.nprobe)?.recall ?? null,
    tuned: tunedRow,
    afterTuneDefault,
    baseline: perNprobe.find((r) => r.baseline) ?? null,
    strongEmptyTail: { p50: strong.p50, p99: strong.p99, recall: strong.recall },
  };
}

// ---------------------------------------------------------------------------------------------
// Strong search with a full tail
// ---------------------------------------------------------------------------------------------

interface FullTail {
  tailRows: number;
  pending: number | null;
  /** The tail cap refused more rows before the target (429 BACKPRESSURE). */
  capReached: boolean;
  upsertRowsPerSec: number;
  /** The first strong search reads the whole tail from DynamoDB; later ones reuse the tail cache. */
  firstSearchMs: number;
  nprobe: number | null;
  p50: number;
  p99: number;
  recall: number;
}

/**
 * Rewrites rows 0..n-1 with their own vectors, so the exact top-K stays the truth while every rewritten id
 * sits in the tail (and is excluded from shard results). Builds are off in this stack, so BACKPRESSURE
 * means the tail is at its cap: waiting would not drain it.
 */
async function fillTail(name: string, base: Float32Array, dim: number, n: number) {
  const t = performance.now();
  let written = 0;
  let capReached = false;
  while (written < n && !capReached) {
    const vectors = [];
    for (let i = written; i < Math.min(n, written + UPSERT_BATCH); i++)
      vectors.push({ id: String(i), values: Array.from(base.subarray(i * dim, (i + 1) * dim)) });
    for (;;) {
      const r = await call('POST', `/v1/collections/${name}/vectors`, { vectors });
      if (r.status === 200) {
        written += vectors.length;
        break;
      }
      if (r.status === 429 && as<ErrorBody>(r)?.error?.code === 'BACKPRESSURE') {
        capReached = true;
        break;
      }
      if (r.status === 429 || r.status === 503) {
        await sleep((r.retryAfter ?? 1) * 1000);
        continue;
      }
      throw new Error(`upsert → ${r.status} ${r.text.slice(0, 300)}`);
    }
  }
  return { written, capReached, rowsPerSec: written / ((performance.now() - t) / 1000) };
}

async function strongWithFullTail(
  w: Workload,
  base: Float32Array,
  tailRows: number,
  nprobe: number | null,
): Promise<FullTail> {
  const filled = await fillTail(w.name, base, w.dim, tailRows);
  const stats = await collectionStats(w.name);
  const opts: SearchOpts = { consistency: 'strong', ...(nprobe !== null ? { nprobe } : {}) };
  const t = performance.now();
  await warmUp(w, opts);
  const firstSearchMs = performance.now() - t;
  const pass = await searchPass(w, opts);
  return {
    tailRows: filled.written,
    pending: stats?.pending ?? null,
    capReached: filled.capReached,
    upsertRowsPerSec: filled.rowsPerSec,
    firstSearchMs,
    nprobe,
    p50: pass.p50,
    p99: pass.p99,
    recall: pass.recall,
  };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await dirBytes(p);
    else if (entry.isFile()) total += (await stat(p)).size;
  }
  return total;
}

/** Builds only when forced: the builder would otherwise index the tail the strong test needs full. */
const NO_AUTO_BUILDS = { SHOAL_BUILD_DELTA_MIN_ROWS: '10000000', SHOAL_BUILD_DELTA_MAX_AGE_S: '86400' };

async function start(
  dataDir: string,
  env: Record<string, string> = {},
): Promise<{ shoal: LocalShoal; restore(): void }> {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  const shoal = await startLocalShoal({ dataDir, port: 0, silent: true, apiKey: API_KEY });
  baseUrl = shoal.url;
  return {
    shoal,
    restore: () => {
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    },
  };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const notes: string[] = [];
  let peakRss = process.memoryUsage().rss;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 1000);
  rssTimer.unref();
  const progress = new Progress(4 + (MNIST ? 3 : 0) + 1);
  // Seconds per phase, for estimating other sizes from a small run.
  const phases: Array<{ phase: string; sec: number }> = [];
  let phaseStart = performance.now();
  const endPhase = () => {
    const now = performance.now();
    const last = phases.at(-1);
    if (last) last.sec = (now - phaseStart) / 1000;
    phaseStart = now;
  };
  const step = (label: string) => {
    endPhase();
    phases.push({ phase: label, sec: 0 });
    progress.step(label);
  };

  step(`synthetic: ${ROWS.toLocaleString('en-US')} × ${DIM} mixture, exact top-${K} of ${QUERIES} queries`);
  const tGen = performance.now();
  const mixture = new GaussianMixture({ dim: DIM, clusters: CLUSTERS, centreScale: 1, sigma: SIGMA, seed: SEED });
  const synthNpy = npyFile(ROWS, DIM);
  const baseLabels = mixture.sample(synthNpy.data, ROWS, 0);
  const queries = new Float32Array(QUERIES * DIM);
  const queryLabels = mixture.sample(queries, QUERIES, 1);
  const generateSec = (performance.now() - tGen) / 1000;
  const tGt = performance.now();
  const truth = exactTopRows(synthNpy.data, ROWS, DIM, queries, QUERIES, K);
  const groundTruthSec = (performance.now() - tGt) / 1000;
  let own = 0;
  for (let q = 0; q < QUERIES; q++)
    for (let i = 0; i < K; i++) if (baseLabels[truth[q * K + i]] === queryLabels[q]) own++;
  const ownClusterFraction = own / (QUERIES * K);
  const tuneQueries = new Float32Array(TUNE_QUERIES * DIM);
  mixture.sample(tuneQueries, TUNE_QUERIES, 2);
  const synthetic: Workload = { name: 'synthetic', dim: DIM, vectors: ROWS, queries, nq: QUERIES, truth, tuneQueries };

  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-bench-scale-'));
  // The data dir reaches gigabytes (every version's shards stay within the collector's 1 h grace): an
  // interrupted run must not leave it behind.
  const interrupted = (signal: NodeJS.Signals) => {
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  let stack = await start(dataDir);
  let result: DatasetResult;
  let mnist: DatasetResult | null = null;
  let fullTail: FullTail;
  let dataDirBytes = 0;
  try {
    result = await runDataset(stack.shoal, synthetic, synthNpy.bytes, FORCED_PARTITIONS, notes, step);

    if (MNIST) {
      // The test images after the measured ones are the tune job's queries.
      const ds = loadDataset('mnist', { maxBase: MNIST_ROWS, maxQueries: QUERIES + TUNE_QUERIES });
      const measured = ds.queries.subarray(0, QUERIES * ds.dim);
      const tuneQ = ds.queries.subarray(QUERIES * ds.dim);
      const npy = npyFile(ds.baseCount, ds.dim);
      npy.data.set(ds.base);
      let mnistTruth: Int32Array;
      if (ds.groundTruth && ds.gtK) {
        mnistTruth = new Int32Array(QUERIES * K);
        for (let q = 0; q < QUERIES; q++) mnistTruth.set(ds.groundTruth.subarray(q * ds.gtK, q * ds.gtK + K), q * K);
      } else {
        // A cut base voids the shipped ground truth (it ranks all 60k rows).
        mnistTruth = exactTopRows(ds.base, ds.baseCount, ds.dim, measured, QUERIES, K);
      }
      const w: Workload = {
        name: 'mnist',
        dim: ds.dim,
        vectors: ds.baseCount,
        queries: measured,
        nq: QUERIES,
        truth: mnistTruth,
        tuneQueries: tuneQ,
      };
      mnist = await runDataset(stack.shoal, w, npy.bytes, 32, notes, step);
    }

    // A restart on the same data, with automatic builds off, so the tail stays as full as it is made.
    step(`synthetic: restart without automatic builds, ${TAIL_ROWS.toLocaleString('en-US')} rows into the tail`);
    await stack.shoal.stop();
    stack.restore();
    stack = await start(dataDir, NO_AUTO_BUILDS);
    fullTail = await strongWithFullTail(synthetic, synthNpy.data, TAIL_ROWS, result.tunedNprobe);
    if (fullTail.capReached) notes.push(`synthetic: the tail cap refused rows at ${fullTail.tailRows} (BACKPRESSURE)`);
    dataDirBytes = await dirBytes(dataDir);
  } finally {
    await stack.shoal.stop();
    stack.restore();
    await rm(dataDir, { recursive: true, force: true });
  }
  endPhase();
  progress.done();
  clearInterval(rssTimer);
  const totalSec = (performance.now() - t0) / 1000;

  report({
    result,
    mnist,
    fullTail,
    notes,
    generateSec,
    groundTruthSec,
    ownClusterFraction,
    peakRssBytes: peakRss,
    dataDirBytes,
    totalSec,
    phases,
  });
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

interface Outcome {
  result: DatasetResult;
  mnist: DatasetResult | null;
  fullTail: FullTail;
  notes: string[];
  generateSec: number;
  groundTruthSec: number;
  ownClusterFraction: number;
  peakRssBytes: number;
  dataDirBytes: number;
  totalSec: number;
  phases: Array<{ phase: string; sec: number }>;
}

const num = (x: number | null | undefined, d = 0): string =>
  x === null || x === undefined
    ? '—'
    : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

function datasetLine(r: DatasetResult): string {
  // Without a tuned nprobe the server-default row is the tuned setting, unless tuning failed.
  const tunedRecall = r.tuned?.recall ?? (r.tuneError ? null : r.afterTuneDefault.recall);
  return (
    `| ${r.dataset} | ${num(r.vectors)} | ${r.dim} | ${num(r.partitions)} | ${r.shards} |` +
    ` ${num(r.ingestRowsPerSec)} |` +
    ` ${num(r.importSec, 1)} | ${num(r.indexedAfterSec, 1)} | ${num(r.buildRowsPerSecPerWorker)} |` +
    ` ${num(r.tunedNprobe)} | ${num(r.tunedEf)} | ${num(tunedRecall, 4)} |`
  );
}

function nprobeTable(r: DatasetResult): string[] {
  const label = (x: NprobeRow) =>
    x.nprobe === null
      ? 'server default'
      : `${x.nprobe}${x.baseline ? ' (baseline: every partition)' : ''}` +
        `${x.nprobe === r.tunedNprobe ? ' (tuned nprobe)' : ''}`;
  const line = (x: NprobeRow, what = label(x)) =>
    `| ${what} | ${num(x.recall, 4)} | ${num(x.p50, 2)} | ${num(x.p99, 2)} | ${num(x.shardsSearched, 1)} |` +
    ` ${num(x.shardsProbedFraction, 3)} | ${num(x.partitionsProbed, 1)} |`;
  return [
    '| nprobe | recall@10 | p50 ms | p99 ms | shards searched | shards probed fraction | partitions probed |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.perNprobe.map((x) => line(x)),
    ...(r.tuned ? [line(r.tuned, `${r.tuned.nprobe} (tuned, after tuning)`)] : []),
    line(r.afterTuneDefault, 'no nprobe sent, after tuning'),
  ];
}

function report(o: Outcome): void {
  const { result: r, mnist: m, fullTail: ft } = o;
  const mib = (n: number) => num(n / 2 ** 20);
  const loadNote = (d: DatasetResult) => {
    const b = d.build;
    const built = b
      ? `${b.versions} versions built ${num(b.rowsBuilt)} rows (${num(b.rowsBuilt / d.vectors, 2)}× the rows) in` +
        ` ${num(b.buildSec, 1)} s of builder time`
      : 'no build stats';
    const curve = d.importCurve.map((c) => `${c.sec} s ${num(c.rows)}`).join(', ');
    return (
      `- ${d.dataset}: upload ${num(d.uploadSec, 1)} s, import queue wait ${num(d.importQueueSec, 1)} s; ${built};` +
      ` tune ${num(d.tuneSec, 1)} s.${curve ? ` Rows imported after: ${curve}.` : ''}`
    );
  };
  const lines = [
    `# Scale benchmark — ${cli.started.toISOString()}`,
    '',
    `Machine: ${machineLine(cli.machine)}. Command: \`${cli.command}\`. Total ${num(o.totalSec)} s.`,
    'Whole local Shoal (embedded S3/DynamoDB/SQS, HTTP gateway, the `npm start` handlers, builder thread) in one' +
      ' process; client in the same process. Data loaded through the bulk-import path (`.npy` → `POST …/imports`).',
    '',
    `Synthetic: ${num(r.vectors)} × ${DIM} Gaussian mixture, ${CLUSTERS} centres uniform in [-1, 1]^${DIM},` +
      ` σ = ${SIGMA} per coordinate, seed ${SEED}; ${QUERIES} queries from the same mixture (not in the base set);` +
      ` ${num(o.ownClusterFraction * 100, 1)} % of their exact top-${K} lie in the query's own cluster.` +
      ` Generated in ${num(o.generateSec, 1)} s, exact top-${K} in ${num(o.groundTruthSec, 1)} s.`,
    '',
    '## Load and index',
    '',
    'Ingest = rows / (import job created → `succeeded`); indexed after = import done → `pending` 0 and `indexed` =' +
      ' rows. Build rows/s per worker = rows in shards new to each version / Σ `stats.buildMs` (one builder run per' +
      ' version; compactions count again). Tuned = a tune job (`async: true`) for recall@10 ' +
      `${TARGET_RECALL} on fresh queries sent with it (synthetic: ${TUNE_QUERIES} new draws from the mixture; MNIST:` +
      ` the ${Math.floor(TUNE_JOB_MAX_QUERY_FLOATS / 784)} test images after the measured ones, the job's cap` +
      ' at 784-d);' +
      " recall@10 tuned is measured on the bench's own queries.",
    '',
    '| dataset | rows | dim | partitions | shards | ingest rows/s | import s | indexed after s |' +
      ' build rows/s per worker | tuned nprobe | tuned ef | recall@10 tuned |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    datasetLine(r),
    ...(m ? [datasetLine(m)] : []),
    '',
    loadNote(r),
    ...(m ? [loadNote(m)] : []),
    `- Peak RSS of the process (stack, builder thread, bench data): ${mib(o.peakRssBytes)} MiB;` +
      ` data dir at the end: ${mib(o.dataDirBytes)} MiB.`,
    `- Seconds per phase: ${o.phases.map((p) => `${p.phase} ${num(p.sec)}`).join('; ')}.`,
    '',
    `## Synthetic: recall and latency per nprobe (k=${K}, ${QUERIES} sequential queries over HTTP, eventual)`,
    '',
    'The sweep row nprobe = partitions is the baseline: every shard searched, the fan-out an unpartitioned' +
      ` collection has today. Sweep rows send ef = ${SWEEP_EF} (the default efSearch), the tuned nprobe included;` +
      " the last two rows were measured after tuning, with the line's tuned defaults, interleaved query by query.",
    '',
    ...nprobeTable(r),
    '',
    `Recall at the tuned nprobe with ef ${SWEEP_EF}: ${num(r.recallAtTunedNprobe, 4)}.`,
    '',
    `## Synthetic: strong search at the tuned nprobe (${QUERIES} queries)`,
    '',
    'Full tail: rows 0…n−1 rewritten with their own vectors after a restart with automatic builds off, so every one' +
      ' of them is in the unindexed tail and the exact top-10 is unchanged.',
    '',
    '| tail | rows in tail | p50 ms | p99 ms | recall@10 |',
    '|---|---:|---:|---:|---:|',
    `| empty | 0 | ${num(r.strongEmptyTail?.p50, 2)} | ${num(r.strongEmptyTail?.p99, 2)} |` +
      ` ${num(r.strongEmptyTail?.recall, 4)} |`,
    `| full | ${num(ft.pending ?? ft.tailRows)} | ${num(ft.p50, 2)} | ${num(ft.p99, 2)} | ${num(ft.recall, 4)} |`,
    '',
    `Tail written over HTTP at ${num(ft.upsertRowsPerSec)} rows/s (batches of ${UPSERT_BATCH});` +
      ` the first ${WARMUP} strong searches (the first reads the whole tail) took ${num(ft.firstSearchMs)} ms.`,
    '',
    ...(m
      ? [
          `## MNIST: recall and latency per nprobe (k=${K}, ${m.perNprobe.length ? QUERIES : 0} test queries,` +
            ` forced 32 partitions)`,
          '',
          ...nprobeTable(m),
          '',
          `Recall at the tuned nprobe with ef ${SWEEP_EF}: ${num(m.recallAtTunedNprobe, 4)}.`,
          '',
        ]
      : []),
    ...(o.notes.length ? ['## Notes', '', ...o.notes.map((n) => `- ${n}`), ''] : []),
  ];

  const { dataset: _d, ...summary } = r;
  cli.out({
    markdown: lines.join('\n'),
    parameters: {
      rows: ROWS,
      dim: DIM,
      clusters: CLUSTERS,
      sigma: SIGMA,
      seed: SEED,
      queries: QUERIES,
      k: K,
      nprobes: NPROBES,
      targetRecall: TARGET_RECALL,
      forcedPartitions: FORCED_PARTITIONS ?? null,
      tailRows: TAIL_ROWS,
      mnist: MNIST ? { rows: m?.vectors ?? null, partitions: 32 } : null,
      sweepConsistency: 'eventual',
    },
    rows: r.perNprobe,
    tables: {
      ...summary,
      ownClusterFraction: o.ownClusterFraction,
      strongFullTail: ft,
      mnist: m,
      peakRssBytes: o.peakRssBytes,
      dataDirBytes: o.dataDirBytes,
      totalSec: o.totalSec,
      phases: o.phases,
      notes: o.notes,
    },
    variant: [
      cli.value('--rows') === undefined ? '' : String(ROWS),
      FORCED_PARTITIONS === undefined ? '' : `p${FORCED_PARTITIONS}`,
    ]
      .filter(Boolean)
      .join('-'),
  });
}

await main();
