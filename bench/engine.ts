/**
 * Engine benchmark: Shoal's `hnsw` shard engine (its own WASM build of hnswlib, engine/) beside
 * the `hnswlib-wasm` npm package it replaced (called directly), native `hnswlib-node` (optional,
 * see NATIVE below) and the exact `flat` engine, on the real datasets in ../shared/datasets.
 * The filtered-graph table compares the graph plan's old filter (hnswlib-wasm calling a JS
 * closure per candidate) with the new one (an allowed-rows bitmap read inside the WASM).
 *
 *   npm run bench:engine             # sift5k, glove50, mnist (60k × 784)
 *   npm run bench:engine -- --quick  # sift5k + a 5k MNIST subset, < 1 minute
 *   npm run -s bench:engine -- --quick --json --datasets sift5k --base 1000 --queries 50
 *
 * Engines are the entries of RUNNERS: to compare another one, add a runner (build, load, search).
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { createRequire } from 'node:module';
import { exactTopK, exactTopKBatch } from '../shared/engine/distance.js';
import { HNSW_DEFAULTS, hnswEngine } from '../shared/engine/hnsw.js';
import { loadShoalWasm } from '../shared/engine/shoal-wasm.js';
import type { RowHit } from '../shared/types.js';
import { decodeShard } from '../shared/shard/format.js';
import { DATASET_NAMES, loadDataset, type DatasetName } from '../shared/io/datasets.js';
import { Shard, buildShard } from '../shared/shard/shard.js';
import type { Metric } from '../shared/types.js';
import { machineLine, parseCli } from './cli.js';
import { filterAttribute } from './datasets.js';
import { exportIndex, importIndex, loadRawHnswlib, type RawHnswIndex } from './hnswlib-wasm-baseline.js';
import { Progress } from './progress.js';

const EFS = [16, 32, 64, 128, 256];
const K = 10;
/** Interleaved timing rounds per ef; the best of each engine is kept (a 2-vCPU box is noisy). */
const ROUNDS = 5;
const SELECTIVITIES = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1];
/** The engine the others' QPS is compared with (the "Shoal / raw" column). */
const BASELINE = 'hnswlib-wasm';

interface Data {
  name: string;
  metric: Metric;
  dim: number;
  base: Float32Array;
  n: number;
  queries: Float32Array;
  nq: number;
  /** nq × K exact neighbours (row numbers). */
  truth: Int32Array;
}

/** One engine, built over one dataset. */
interface Built {
  buildMs: number | null;
  /** Size of the serialized index (or shard), bytes. */
  bytes: number;
  /** Loads the serialized bytes once more and returns the milliseconds it took (absent: not measured). */
  loadOnce?: () => Promise<number>;
  /** Searches queries 0..nq-1 at `ef` (null for exact engines), keeping the hits: the timed part. */
  pass(ef: number | null): void;
  /** Row numbers found for query q by the last pass. */
  found(q: number): ArrayLike<number>;
  /** The Shoal shard behind it, for the filtered-search section, and its bytes. */
  shard?: Shard;
  shardBytes?: Uint8Array;
  dispose(): void;
}

interface EngineRunner {
  /** `engine` in the JSON rows. */
  engine: string;
  /** Names in the markdown tables: search table, QPS column, build/size/load table. */
  label: string;
  short: string;
  column: string;
  /** Exact engines are searched once (no ef sweep). */
  exact: boolean;
  build(d: Data): Promise<Built>;
}

const HNSW_PARAMS = {
  m: HNSW_DEFAULTS.m,
  efConstruction: HNSW_DEFAULTS.efConstruction,
  efSearch: 64,
  seed: HNSW_DEFAULTS.seed,
};

function row(data: Float32Array, dim: number, i: number): Float32Array {
  return data.subarray(i * dim, (i + 1) * dim);
}

/** Ids, seqs and the uniform attribute `r` the filtered benchmark selects on (`r < s·100000`). */
function shardInput(d: Data) {
  return {
    dim: d.dim,
    metric: d.metric,
    ids: Array.from({ length: d.n }, (_, i) => String(i)),
    vectors: d.base,
    seqs: Float64Array.from({ length: d.n }, (_, i) => i + 1),
    metadata: filterAttribute(d.n),
  };
}

/** A Shoal shard as the searcher serves it (`engine: 'hnsw'` or `'flat'`). */
async function shoalShard(d: Data, engine: 'hnsw' | 'flat'): Promise<Built> {
  // The module is compiled and instantiated once per process, before timing, as the raw package's is
  // (loadRawHnswlib): otherwise the first dataset's build would also time the WASM compile.
  if (engine === 'hnsw') await loadShoalWasm();
  const t0 = performance.now();
  const params = engine === 'hnsw' ? HNSW_PARAMS : {};
  const bytes = await buildShard({ engine, ...shardInput(d), params });
  const buildMs = performance.now() - t0;
  const shard = await Shard.open(bytes);
  const found: { id: string }[][] = new Array(d.nq);
  return {
    buildMs: engine === 'hnsw' ? buildMs : null,
    bytes: bytes.byteLength,
    loadOnce:
      engine === 'hnsw'
        ? async () => {
            const t = performance.now();
            const s = await Shard.open(bytes);
            const ms = performance.now() - t;
            s.dispose();
            return ms;
          }
        : undefined,
    pass: (ef) => {
      const opts = ef === null ? { k: K } : { k: K, ef };
      for (let q = 0; q < d.nq; q++) found[q] = shard.search(row(d.queries, d.dim, q), opts);
    },
    found: (q) => found[q].map((h) => Number(h.id)),
    shard,
    shardBytes: bytes,
    dispose: () => shard.dispose(),
  };
}

/** The slice of hnswlib-node's API used here. */
interface NativeIndex {
  initIndex(maxElements: number, m: number, efConstruction: number, seed: number): void;
  addPoint(point: number[] | Float32Array, label: number): void;
  setEf(ef: number): void;
  searchKnn(query: number[] | Float32Array, k: number): { neighbors: number[] };
  writeIndexSync(path: string): void;
  readIndexSync(path: string): void;
}

/**
 * Native hnswlib (hnswlib-node@3.0.0, node-gyp, -O3 with its SSE/AVX kernels) is an optional
 * baseline, not a dependency: its install script compiles C++ on every `npm ci` (seconds to a
 * minute, a compiler in CI) for a bench-only row. Install it anywhere and point here, e.g.
 *   (mkdir -p /tmp/nb && cd /tmp/nb && npm init -y && npm i hnswlib-node@3.0.0 --allow-scripts=hnswlib-node)
 *   SHOAL_BENCH_HNSWLIB_NODE=/tmp/nb/node_modules/hnswlib-node npm run bench:engine
 */
const NATIVE = process.env.SHOAL_BENCH_HNSWLIB_NODE;

function loadNative(): { HierarchicalNSW: new (space: string, dim: number) => NativeIndex } | undefined {
  if (!NATIVE) return undefined;
  return createRequire(import.meta.url)(NATIVE) as { HierarchicalNSW: new (space: string, dim: number) => NativeIndex };
}

const RUNNERS: EngineRunner[] = [
  {
    engine: 'shoal',
    label: 'Shoal hnsw',
    short: 'Shoal',
    column: 'Shoal hnsw shard',
    exact: false,
    build: (d) => shoalShard(d, 'hnsw'),
  },
  {
    engine: 'hnswlib-wasm',
    label: 'raw hnswlib-wasm',
    short: 'raw',
    column: 'raw hnswlib-wasm',
    exact: false,
    build: async (d) => {
      const lib = await loadRawHnswlib();
      const t0 = performance.now();
      const raw: RawHnswIndex = new lib.HierarchicalNSW(d.metric, d.dim, '');
      raw.initIndex(d.n, HNSW_PARAMS.m, HNSW_PARAMS.efConstruction, HNSW_PARAMS.seed);
      for (let i = 0; i < d.n; i++) raw.addPoint(row(d.base, d.dim, i), i, false);
      const buildMs = performance.now() - t0;
      // Load: the index bytes alone, through the library's only way in (IDBFS → readIndex).
      const indexBytes = (await exportIndex(lib, raw)).slice();
      const found: number[][] = new Array(d.nq);
      return {
        buildMs,
        bytes: indexBytes.byteLength,
        loadOnce: async () => {
          const raw2 = new lib.HierarchicalNSW(d.metric, d.dim, '');
          const t = performance.now();
          await importIndex(lib, raw2, indexBytes, d.n);
          const ms = performance.now() - t;
          raw2.delete();
          return ms;
        },
        pass: (ef) => {
          raw.setEfSearch(ef ?? HNSW_PARAMS.efSearch);
          for (let q = 0; q < d.nq; q++) found[q] = raw.searchKnn(row(d.queries, d.dim, q), K, undefined).neighbors;
        },
        found: (q) => found[q],
        dispose: () => raw.delete(),
      };
    },
  },
  {
    engine: 'hnswlib-node',
    label: 'native hnswlib-node',
    short: 'native',
    column: 'native hnswlib-node',
    exact: false,
    build: async (d) => {
      const lib = loadNative();
      if (!lib) throw new Error('unreachable: hnswlib-node is filtered out when not installed');
      const t0 = performance.now();
      const index = new lib.HierarchicalNSW(d.metric, d.dim);
      index.initIndex(d.n, HNSW_PARAMS.m, HNSW_PARAMS.efConstruction, HNSW_PARAMS.seed);
      for (let i = 0; i < d.n; i++) index.addPoint(Array.from(row(d.base, d.dim, i)), i);
      const buildMs = performance.now() - t0;
      // hnswlib-node takes plain arrays: convert the queries once, outside the timed passes.
      const queries = Array.from({ length: d.nq }, (_, q) => Array.from(row(d.queries, d.dim, q)));
      const found: number[][] = new Array(d.nq);
      return {
        buildMs,
        bytes: NaN,
        pass: (ef) => {
          index.setEf(ef ?? HNSW_PARAMS.efSearch);
          for (let q = 0; q < d.nq; q++) found[q] = index.searchKnn(queries[q], K).neighbors;
        },
        found: (q) => found[q],
        dispose: () => undefined,
      };
    },
  },
  {
    engine: 'flat',
    label: 'flat',
    short: 'flat',
    column: 'flat shard',
    exact: true,
    build: (d) => shoalShard(d, 'flat'),
  },
];

/** The JSON rows: one per engine × dataset × ef (ef null for exact engines). */
interface Row {
  dataset: string;
  engine: string;
  ef: number | null;
  /** recall@10 against the dataset's exact neighbours. */
  recall: number;
  qps: number;
  buildVectorsPerSec: number | null;
  bytesPerVector: number;
  loadMs: number | null;
}

interface FilterRow {
  dataset: string;
  engine: 'shoal';
  ef: number;
  selectivity: number;
  matches: number;
  plan: string;
  /** recall@10 against exact search over the matching rows. */
  recall: number;
  exactlyK: number;
  qps: number;
  /** Exact (flat) search with the same filter, same queries. */
  exactQps: number;
}

/** The graph plan of one filtered query batch, old filter vs new, same graph, same ef. */
interface GraphFilterRow {
  dataset: string;
  /**
   * `hnswlib-wasm-callback`: the package calling a JS closure per candidate (the old plan);
   * `shoal-bitmap`: the bitmap read inside Shoal's WASM.
   */
  engine: 'hnswlib-wasm-callback' | 'shoal-bitmap';
  selectivity: number;
  matches: number;
  ef: number;
  /** recall@10 against exact search over the matching rows (after the exact fallback). */
  recall: number;
  /** Share of queries the graph answered with k hits by itself (the rest fell back to an exact scan). */
  graphK: number;
  /** Share of queries answered with exactly k hits (the promise; always 100 %). */
  exactlyK: number;
  qps: number;
}

/** Selectivity of the old-vs-new graph-filter table. */
const GRAPH_FILTER_SELECTIVITY = 0.25;

interface DatasetInfo {
  name: string;
  base: number;
  queries: number;
  dim: number;
  metric: Metric;
}

function recallAt(truth: Int32Array, q: number, found: ArrayLike<number>): number {
  let hit = 0;
  const want = new Set<number>();
  for (let j = 0; j < K; j++) want.add(truth[q * K + j]);
  for (let j = 0; j < Math.min(K, found.length); j++) if (want.has(found[j])) hit++;
  return hit / K;
}

/** Best of `rounds` timed passes: the least-disturbed measurement on a shared machine. */
function bestQps(rounds: number, nq: number, pass: () => void): number {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    pass();
    best = Math.min(best, performance.now() - t0);
  }
  return (nq * 1000) / best;
}

function prepare(name: DatasetName, maxBase: number | undefined, maxQueries: number): Data {
  const ds = loadDataset(name, { maxBase, maxQueries });
  const nq = Math.min(ds.queryCount, maxQueries);
  const queries = ds.queries.subarray(0, nq * ds.dim);
  let truth: Int32Array;
  if (ds.groundTruth && ds.gtK) {
    truth = new Int32Array(nq * K);
    for (let q = 0; q < nq; q++) truth.set(ds.groundTruth.subarray(q * ds.gtK, q * ds.gtK + K), q * K);
  } else {
    // Subsets have no published ground truth: compute it exactly.
    const view = { data: ds.base, offset: 0, stride: ds.dim, dim: ds.dim, count: ds.baseCount, normalized: false };
    const res = exactTopKBatch(view, ds.metric, queries, nq, K);
    truth = new Int32Array(nq * K);
    res.forEach((hits, q) => hits.forEach((h, j) => (truth[q * K + j] = h.row)));
  }
  return { name: ds.name, metric: ds.metric, dim: ds.dim, base: ds.base, n: ds.baseCount, queries, nq, truth };
}

/** Rows of the untimed warm-up build each engine gets once per process. */
const WARM_UP_ROWS = 1_000;

/**
 * Timed builds per engine on datasets of at most BUILD_ROUNDS_MAX_ROWS rows, interleaved across engines;
 * the fastest counts. A sub-second build is one sample of a shared machine's state (runs on this VM differ by
 * ±15 %), as one search pass is, so it gets the search passes' treatment. Larger datasets are built once:
 * a build of minutes averages the disturbances itself, and three would triple the bench's longest step.
 */
const BUILD_ROUNDS = 3;
const BUILD_ROUNDS_MAX_ROWS = 10_000;
const warmedUp = new Set<EngineRunner>();

/**
 * The build rate is a steady-state figure (a builder builds shard after shard in one process), so each
 * engine first builds a small index untimed: V8 compiles WebAssembly in tiers, and without this the first
 * timed build, whichever engine ran first, also paid for optimising the module's hot functions.
 */
async function warmUp(r: EngineRunner, d: Data): Promise<void> {
  if (warmedUp.has(r)) return;
  warmedUp.add(r);
  const n = Math.min(d.n, WARM_UP_ROWS);
  const small = await r.build({ ...d, n, base: d.base.subarray(0, n * d.dim) });
  small.dispose();
}

async function benchDataset(
  d: Data,
  runners: EngineRunner[],
  quick: boolean,
  out: { rows: Row[]; filtered: FilterRow[]; graphFilter: GraphFilterRow[] },
  progress: Progress,
): Promise<void> {
  const { n, nq } = d;
  const built = new Map<EngineRunner, Built>();
  const buildMs = new Map<EngineRunner, number>();
  for (const r of runners) {
    progress.step(`${d.name}: ${r.engine} build`);
    await warmUp(r, d);
    const b = await r.build(d);
    built.set(r, b);
    if (b.buildMs !== null) buildMs.set(r, b.buildMs);
  }
  const rounds = n <= BUILD_ROUNDS_MAX_ROWS ? BUILD_ROUNDS : 1;
  for (let round = 1; round < rounds; round++) {
    for (const r of runners) {
      if (!buildMs.has(r)) continue;
      const again = await r.build(d);
      buildMs.set(r, Math.min(buildMs.get(r) ?? Infinity, again.buildMs ?? Infinity));
      again.dispose();
    }
  }

  progress.step(`${d.name}: load`);
  const loadMs = new Map<EngineRunner, number>();
  for (let round = 0; round < 3; round++) {
    for (const [r, b] of built) {
      if (b.loadOnce) loadMs.set(r, Math.min(loadMs.get(r) ?? Infinity, await b.loadOnce()));
    }
  }

  const push = (r: EngineRunner, ef: number | null, recall: number, qps: number) => {
    const b = built.get(r);
    if (!b) throw new Error('unreachable');
    out.rows.push({
      dataset: d.name,
      engine: r.engine,
      ef,
      recall,
      qps,
      buildVectorsPerSec: buildMs.has(r) ? (n * 1000) / (buildMs.get(r) ?? NaN) : null,
      bytesPerVector: b.bytes / n,
      loadMs: loadMs.get(r) ?? null,
    });
  };
  const recallOf = (b: Built) => {
    let sum = 0;
    for (let q = 0; q < nq; q++) sum += recallAt(d.truth, q, b.found(q));
    return sum / nq;
  };

  const exactRows: Array<() => void> = [];
  for (const [r, b] of built) {
    if (!r.exact) continue;
    progress.step(`${d.name}: ${r.engine} exact`);
    const qps = bestQps(quick ? 1 : 2, nq, () => b.pass(null));
    const recall = recallOf(b);
    exactRows.push(() => push(r, null, recall, qps));
  }

  const graphs = [...built].filter(([r]) => !r.exact);
  for (const ef of EFS) {
    progress.step(`${d.name}: search ef=${ef}`);
    // Interleave rounds so every engine sees the same machine conditions.
    // Hits are kept and scored after the timed passes, so only the search is timed.
    const qps = new Map<EngineRunner, number>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [r, b] of graphs)
        qps.set(
          r,
          Math.max(
            qps.get(r) ?? 0,
            bestQps(1, nq, () => b.pass(ef)),
          ),
        );
    }
    for (const [r, b] of graphs) push(r, ef, recallOf(b), qps.get(r) ?? 0);
  }
  for (const add of exactRows) add();

  // Filtered search on the Shoal shard: recall against exact search over the matching rows only.
  const shard = built.get(RUNNERS[0])?.shard;
  const flat = [...built].find(([r]) => r.engine === 'flat')?.[1].shard;
  if (shard && flat) {
    const fq = Math.min(nq, quick ? 50 : 200);
    for (const s of SELECTIVITIES) {
      progress.step(`${d.name}: filtered s=${s}`);
      out.filtered.push(filtered(d, shard, flat, fq, s));
    }
  }
  const shardBytes = built.get(RUNNERS[0])?.shardBytes;
  if (shardBytes && runners.some((r) => r.engine === BASELINE)) {
    progress.step(`${d.name}: filtered graph, old vs new`);
    out.graphFilter.push(...(await graphFilter(d, shardBytes, Math.min(nq, quick ? 50 : 200))));
  }
  for (const b of built.values()) b.dispose();
}

function filtered(d: Data, shard: Shard, flat: Shard, fq: number, s: number): FilterRow {
  const filter = {
    op: 'cmp' as const,
    cmp: '<' as const,
    ref: { field: 'r', path: [] },
    value: Math.round(s * 100_000),
  };
  const matchRows = flat.matchingRows(filter, undefined) ?? new Int32Array(0);
  let recall = 0;
  let exactlyK = 0;
  const plans = new Map<string, number>();
  const t = performance.now();
  const found: string[][] = [];
  for (let q = 0; q < fq; q++) {
    const hits = shard.search(row(d.queries, d.dim, q), { k: K, ef: 64, filter });
    plans.set(shard.lastPlan.kind, (plans.get(shard.lastPlan.kind) ?? 0) + 1);
    found.push(hits.map((h) => h.id));
    if (hits.length === Math.min(K, matchRows.length)) exactlyK++;
  }
  const qps = (fq * 1000) / (performance.now() - t);
  const tf = performance.now();
  const truths = Array.from({ length: fq }, (_, q) =>
    flat.search(row(d.queries, d.dim, q), { k: K, filter }).map((h) => h.id),
  );
  const exactQps = (fq * 1000) / (performance.now() - tf);
  for (let q = 0; q < fq; q++) {
    const truth = truths[q];
    const want = new Set(truth);
    recall += truth.length === 0 ? 1 : found[q].filter((id) => want.has(id)).length / truth.length;
  }
  return {
    dataset: d.name,
    engine: 'shoal',
    ef: 64,
    selectivity: s,
    matches: matchRows.length,
    plan: [...plans].map(([k, v]) => `${k}×${v}`).join(' '),
    recall: recall / fq,
    exactlyK: exactlyK / fq,
    qps,
    exactQps,
  };
}

/**
 * The filtered-graph plan at GRAPH_FILTER_SELECTIVITY, forced (whatever the planner would pick),
 * on the same index bytes: the old runtime (hnswlib-wasm with a JS closure over a byte-per-row
 * mask, as shard.ts did) and the new one (a bitmap read inside Shoal's WASM). Both keep the
 * "exactly k" promise with the planner's exact fallback; its cost is inside the QPS.
 */
async function graphFilter(d: Data, shardBytes: Uint8Array, fq: number): Promise<GraphFilterRow[]> {
  const c = decodeShard(shardBytes);
  const attr = filterAttribute(d.n);
  const limit = Math.round(GRAPH_FILTER_SELECTIVITY * 100_000);
  const rowsList: number[] = [];
  for (let r = 0; r < d.n; r++) if (attr[r].r < limit) rowsList.push(r);
  const rows = Int32Array.from(rowsList);
  const mask = new Uint8Array(d.n);
  const bits = new Uint8Array((d.n + 7) >>> 3);
  for (const r of rows) {
    mask[r] = 1;
    bits[r >>> 3] |= 1 << (r & 7);
  }
  const selectivity = rows.length / d.n;
  const ef = Math.min(Math.max(64, Math.ceil(64 / Math.sqrt(selectivity))), 1024);
  const info = { dim: d.dim, metric: d.metric, count: d.n, params: c.params };
  const shoal = await hnswEngine.load(c.index, info);
  const lib = await loadRawHnswlib();
  const raw = new lib.HierarchicalNSW(d.metric, d.dim, '');
  await importIndex(lib, raw, c.index, d.n);
  raw.setEfSearch(ef);
  const view = shoal.vectors();
  const truth = Array.from({ length: fq }, (_, q) =>
    exactTopK(view, d.metric, row(d.queries, d.dim, q), K, { rows }).map((h) => h.row),
  );
  const want = Math.min(K, rows.length);
  const engines: Array<[GraphFilterRow['engine'], (q: Float32Array) => number[]]> = [
    ['hnswlib-wasm-callback', (q) => raw.searchKnn(q, K, (label) => mask[label] === 1).neighbors],
    ['shoal-bitmap', (q) => shoal.search(q, { k: K, ef, allowedBits: bits }).map((h) => h.row)],
  ];
  const results = new Map<string, { found: number[][]; graphK: number; best: number }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, search] of engines) {
      const found: number[][] = [];
      let graphK = 0;
      const t = performance.now();
      for (let q = 0; q < fq; q++) {
        const query = row(d.queries, d.dim, q);
        let hits = search(query);
        if (hits.length >= want) graphK++;
        else hits = exactTopK(view, d.metric, query, K, { rows }).map((h: RowHit) => h.row);
        found.push(hits);
      }
      const ms = performance.now() - t;
      const prev = results.get(name);
      results.set(name, { found, graphK, best: Math.min(prev?.best ?? Infinity, ms) });
    }
  }
  raw.delete();
  shoal.dispose();
  return engines.map(([name]) => {
    const r = results.get(name)!;
    let recall = 0;
    let exactlyK = 0;
    r.found.forEach((hits, q) => {
      const set = new Set(truth[q]);
      recall += truth[q].length === 0 ? 1 : hits.filter((h) => set.has(h)).length / truth[q].length;
      if (hits.length === want) exactlyK++;
    });
    return {
      dataset: d.name,
      engine: name,
      selectivity,
      matches: rows.length,
      ef,
      recall: recall / fq,
      graphK: r.graphK / fq,
      exactlyK: exactlyK / fq,
      qps: (fq * 1000) / r.best,
    };
  });
}

function fmt(x: number | null | undefined, digits = 0): string {
  return x === null || x === undefined || Number.isNaN(x)
    ? '—'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

const cells = (xs: string[]) => `| ${xs.join(' | ')} |`;

function report(
  runners: EngineRunner[],
  datasets: DatasetInfo[],
  rows: Row[],
  filterRows: FilterRow[],
  graphRows: GraphFilterRow[],
  header: { started: Date; machine: string; command: string },
): string {
  const lines: string[] = [];
  lines.push(`# Engine benchmark — ${header.started.toISOString()}`, '', `Machine: ${header.machine}`, '');
  lines.push(
    `Command: \`${header.command}\`. k=${K}; HNSW m=${HNSW_DEFAULTS.m}, ` +
      `efConstruction=${HNSW_DEFAULTS.efConstruction}, seed=${HNSW_DEFAULTS.seed}; single thread; ` +
      `QPS = best of ${ROUNDS} interleaved passes; ` +
      `build rate after one untimed ${WARM_UP_ROWS}-row build per engine, the best of ${BUILD_ROUNDS} ` +
      `interleaved builds on datasets of ≤ ${BUILD_ROUNDS_MAX_ROWS} rows (one build above).`,
    '',
  );
  const graphs = runners.filter((r) => !r.exact);
  const exact = runners.filter((r) => r.exact);
  const baseline = graphs.find((r) => r.engine === BASELINE);
  const compared = baseline ? graphs.filter((r) => r !== baseline) : [];
  for (const ds of datasets) {
    const sub = rows.filter((r) => r.dataset === ds.name);
    const at = (r: EngineRunner, ef: number | null) => sub.find((x) => x.engine === r.engine && x.ef === ef);
    const any = (r: EngineRunner) => sub.find((x) => x.engine === r.engine);
    lines.push(`## ${ds.name} (${ds.base} × ${ds.dim}, ${ds.metric}, ${ds.queries} queries)`, '');
    lines.push(
      cells([
        'ef',
        ...graphs.flatMap((r) => [`${r.label} recall@10`, `${r.short} QPS`]),
        ...compared.map((r) => `${r.short} / ${baseline?.short}`),
        ...exact.map((r) => `${r.label} (exact) QPS`),
      ]),
    );
    lines.push(`|---:|${'---:|'.repeat(graphs.length * 2 + compared.length + exact.length)}`);
    for (const ef of EFS) {
      const base = baseline && at(baseline, ef);
      lines.push(
        cells([
          String(ef),
          ...graphs.flatMap((r) => [fmt(at(r, ef)?.recall, 4), fmt(at(r, ef)?.qps)]),
          ...compared.map((r) => fmt(base ? (at(r, ef)?.qps ?? NaN) / base.qps : null, 3)),
          ...exact.map((r) => fmt(at(r, null)?.qps)),
        ]),
      );
    }
    lines.push('');
    lines.push(`| |${runners.map((r) => ` ${r.column} |`).join('')}`, `|---|${'---:|'.repeat(runners.length)}`);
    lines.push(cells(['build (vectors/s)', ...runners.map((r) => fmt(any(r)?.buildVectorsPerSec))]));
    lines.push(cells(['bytes per vector', ...runners.map((r) => fmt(any(r)?.bytesPerVector, 1))]));
    lines.push(cells(['load from bytes (ms)', ...runners.map((r) => fmt(any(r)?.loadMs, 1))]));
    lines.push(
      cells([
        'recall@10',
        ...runners.map((r) => (r.exact ? fmt(at(r, null)?.recall, 4) : `${fmt(at(r, 64)?.recall, 4)} (ef=64)`)),
      ]),
    );
    lines.push('');
    const f = filterRows.filter((r) => r.dataset === ds.name);
    if (f.length) {
      lines.push(
        'Filtered search (`r < s·100000`, r uniform; recall vs exact search over the matching rows; ef=64):',
        '',
      );
      lines.push(
        '| selectivity | matches | plan (queries) | recall@10 | exactly k | QPS | exact-scan QPS |',
        '|---:|---:|---|---:|---:|---:|---:|',
      );
      for (const r of f) {
        lines.push(
          cells([
            `${(r.selectivity * 100).toFixed(1)} %`,
            String(r.matches),
            r.plan,
            fmt(r.recall, 4),
            `${fmt(r.exactlyK * 100, 0)} %`,
            fmt(r.qps),
            fmt(r.exactQps),
          ]),
        );
      }
      lines.push('');
    }
    const g = graphRows.filter((r) => r.dataset === ds.name);
    if (g.length) {
      lines.push(
        `Filtered graph plan forced at ${(GRAPH_FILTER_SELECTIVITY * 100).toFixed(0)} % selectivity, ` +
          'same index bytes, ' +
          `ef=${g[0].ef} (the planner's widened beam), exact fallback when the graph finds fewer than k:`,
        '',
        '| filter | matches | recall@10 | graph found k | exactly k | QPS |',
        '|---|---:|---:|---:|---:|---:|',
      );
      for (const r of g) {
        lines.push(
          cells([
            r.engine === 'shoal-bitmap' ? 'bitmap inside Shoal WASM (new)' : 'JS callback, hnswlib-wasm (old)',
            String(r.matches),
            fmt(r.recall, 4),
            `${fmt(r.graphK * 100, 0)} %`,
            `${fmt(r.exactlyK * 100, 0)} %`,
            fmt(r.qps),
          ]),
        );
      }
      const [old, neu] = [g.find((r) => r.engine !== 'shoal-bitmap'), g.find((r) => r.engine === 'shoal-bitmap')];
      if (old && neu) lines.push('', `New / old filtered-graph QPS: ${fmt(neu.qps / old.qps, 2)}×`);
      lines.push('');
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const cli = parseCli({
    name: 'engine',
    summary: 'Recall@10, QPS, build rate, size and load time of each engine on the real datasets.',
    quick: 'sift5k + a 5 000-row MNIST subset, fewer queries (< 1 minute)',
    options: [
      { flag: '--datasets', arg: 'list', help: `comma-separated subset of ${DATASET_NAMES.join(', ')}` },
      { flag: '--engines', arg: 'list', help: `comma-separated subset of ${RUNNERS.map((r) => r.engine).join(', ')}` },
      { flag: '--base', arg: 'n', help: 'use at most n base vectors per dataset (exact ground truth recomputed)' },
      { flag: '--queries', arg: 'n', help: 'use at most n queries per dataset' },
    ],
  });
  const defaults: Array<[DatasetName, number | undefined, number]> = cli.quick
    ? [
        ['sift5k', undefined, 500],
        ['mnist', 5_000, 200],
      ]
    : [
        ['sift5k', undefined, 500],
        ['glove50', undefined, 500],
        ['mnist', undefined, 1000],
      ];
  const chosen = cli.list('--datasets', DATASET_NAMES, DATASET_NAMES);
  const base = cli.int('--base');
  const queries = cli.int('--queries');
  const plan = (cli.value('--datasets') === undefined ? defaults.map(([d]) => d) : chosen).map(
    (name): [DatasetName, number | undefined, number] => {
      const [, maxBase, maxQ] = defaults.find(([d]) => d === name) ?? [name, cli.quick ? 5_000 : undefined, 500];
      return [name, base ?? maxBase, queries ?? maxQ];
    },
  );
  const engines = cli.list(
    '--engines',
    RUNNERS.map((r) => r.engine),
    RUNNERS.map((r) => r.engine),
  );
  // The native baseline runs only when installed (NATIVE); asked for explicitly without it, say so.
  if (!NATIVE && cli.value('--engines')?.includes('hnswlib-node')) {
    throw new Error(
      'hnswlib-node: set SHOAL_BENCH_HNSWLIB_NODE to an installed hnswlib-node@3.0.0 (see bench/engine.ts)',
    );
  }
  const runners = RUNNERS.filter((r) => engines.includes(r.engine) && (r.engine !== 'hnswlib-node' || NATIVE));

  const steps = 3 + runners.length + runners.filter((r) => r.exact).length + EFS.length + SELECTIVITIES.length;
  const progress = new Progress(plan.length * steps);
  const out = { rows: [] as Row[], filtered: [] as FilterRow[], graphFilter: [] as GraphFilterRow[] };
  const datasets: DatasetInfo[] = [];
  for (const [name, maxBase, maxQ] of plan) {
    progress.step(`${name}: loading`);
    const d = prepare(name, maxBase, maxQ);
    datasets.push({ name: d.name, base: d.n, queries: d.nq, dim: d.dim, metric: d.metric });
    await benchDataset(d, runners, cli.quick, out, progress);
  }
  progress.done();
  cli.out({
    markdown: report(runners, datasets, out.rows, out.filtered, out.graphFilter, {
      started: cli.started,
      machine: machineLine(cli.machine),
      // The native row needs its install named, or the command would not reproduce it.
      command: NATIVE ? `SHOAL_BENCH_HNSWLIB_NODE=<hnswlib-node@3.0.0 install> ${cli.command}` : cli.command,
    }),
    parameters: {
      k: K,
      efs: EFS,
      rounds: ROUNDS,
      buildRounds: BUILD_ROUNDS,
      buildRoundsMaxRows: BUILD_ROUNDS_MAX_ROWS,
      hnsw: HNSW_PARAMS,
      selectivities: SELECTIVITIES,
      engines: runners.map((r) => r.engine),
      datasets,
    },
    rows: out.rows,
    tables: { filtered: out.filtered, graphFilter: out.graphFilter },
  });
}

await main();
