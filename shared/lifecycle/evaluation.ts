/**
 * Evaluation of an index version (docs/architecture.md §8.7): recall@k of the version's own search against
 * exact search over the very same live rows, plus the search latency (p50/p95, one query at
 * a time, in process, warm shards). Queries are the caller's, or held out from the data: a
 * seeded sample of the version's rows, each query's own id removed from both result lists.
 *
 * Runs in the calling process (the API function): the exact side scans every live row once
 * per query, so it suits collections up to a few hundred thousand rows within the API's 30 s.
 */
import { exactTopK } from '../engine/distance.js';
import { getEngine } from '../engine/registry.js';
import { sampleRows } from '../random.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { ShardCache } from '../search/shard-cache.js';
import { searchShards } from '../search/shard-searcher.js';
import { defaultNprobeOf, probeShards } from '../search/coordinator.js';
import type { Catalog, CollectionMeta, Manifest } from '../storage/types.js';
import type { Evaluation, GraphTrial } from '../service-types.js';
import { defaultEf, manifestFor } from '../collections.js';

export interface EvalDeps {
  catalog: Catalog;
  cache: ShardCache;
  now: () => number;
}

export interface VersionCorpus {
  meta: CollectionMeta;
  manifest: Manifest;
  ids: string[];
  data: Float32Array;
}

/** Every live row of one index version (read from its shards through the cache). */
export async function loadVersion(deps: EvalDeps, collection: string, version: number): Promise<VersionCorpus> {
  const meta = await deps.catalog.getCollection(collection);
  const manifest = await manifestFor(deps.catalog, meta, version);
  if (!manifest)
    throw new NotFoundError(`index version ${version} of ${JSON.stringify(collection)} not found`, {
      field: 'version',
    });
  const ids: string[] = [];
  const parts: Float32Array[] = [];
  const dim = meta.dimension;
  for (const ref of manifest.shards) {
    const [shard, bits] = await Promise.all([deps.cache.shard(ref), deps.cache.bitmap(ref)]);
    const rows: number[] = [];
    for (let row = 0; row < shard.count; row++) {
      if (bits && (bits[row >>> 3] & (1 << (row & 7))) !== 0) continue;
      ids.push(shard.ids[row]);
      rows.push(row);
    }
    // Copied before the next shard loads: vectorOf is a view of the engine's WASM memory, which a
    // later load may grow (detaching every earlier view) or free (evicting this shard).
    const part = new Float32Array(rows.length * dim);
    rows.forEach((row, i) => part.set(shard.vectorOf(row), i * dim));
    parts.push(part);
  }
  const data = new Float32Array(ids.length * dim);
  let at = 0;
  for (const part of parts) {
    data.set(part, at);
    at += part.length;
  }
  return { meta, manifest, ids, data };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

export interface MeasureResult {
  recall: number;
  latencyMs: { p50: number; p95: number; mean: number };
}

export interface PreparedQueries {
  queries: Float32Array[];
  /** The query's own id when it was sampled from the data (removed from both lists). */
  self: Array<string | undefined>;
  /** Exact top-k ids per query (self removed). */
  truth: string[][];
  source: 'sample' | 'supplied';
}

/** Supplied evaluation or tune queries, checked against the collection's dimension (400 on `queries[i]`). */
export function checkQueries(queries: Float32Array[], dimension: number): Float32Array[] {
  queries.forEach((q, i) => {
    if (q.length !== dimension)
      throw new ValidationError(`query ${i} has ${q.length} dimensions; collection has ${dimension}`, {
        field: `queries[${i}]`,
      });
  });
  return queries;
}

export function prepareQueries(
  corpus: VersionCorpus,
  input: { queries?: Float32Array[]; sample: number; k: number },
): PreparedQueries {
  const { meta, ids, data } = corpus;
  const dim = meta.dimension;
  let queries: Float32Array[];
  let self: Array<string | undefined>;
  const source = input.queries?.length ? 'supplied' : 'sample';
  if (input.queries?.length) {
    queries = checkQueries(input.queries, dim);
    self = queries.map(() => undefined);
  } else {
    if (ids.length < 2)
      throw new ValidationError('the version holds fewer than 2 rows; supply queries to evaluate it', {
        field: 'sample',
      });
    const rows = sampleRows(ids.length, input.sample, corpus.manifest.version * 7919 + corpus.meta.generation);
    queries = rows.map((r) => data.slice(r * dim, (r + 1) * dim));
    self = rows.map((r) => ids[r]);
  }
  const view = { data, offset: 0, stride: dim, dim, count: ids.length, normalized: false };
  const truth = queries.map((q, i) => {
    const hits = exactTopK(view, meta.metric, q, input.k + (self[i] !== undefined ? 1 : 0));
    return hits
      .map((h) => ids[h.row])
      .filter((id) => id !== self[i])
      .slice(0, input.k);
  });
  return { queries, self, truth, source };
}

/** Recall@k and latency of the version's own search (one query per call, warm shards). */
export async function measure(
  deps: EvalDeps,
  corpus: VersionCorpus,
  prepared: PreparedQueries,
  k: number,
  ef?: number,
  nprobe?: number,
): Promise<MeasureResult> {
  const { manifest, meta } = corpus;
  const ask = async (q: Float32Array, kk: number) =>
    (
      await searchShards(deps.cache, {
        shards: await probeShards(deps.cache, meta, manifest, q, nprobe),
        metric: meta.metric,
        queries: [Array.from(q)],
        k: kk,
        ef,
      })
    ).results[0];
  if (prepared.queries.length) await ask(prepared.queries[0], k + 1); // warm-up: load shards
  const times: number[] = [];
  let hits = 0;
  let wanted = 0;
  for (let i = 0; i < prepared.queries.length; i++) {
    const self = prepared.self[i];
    const t0 = performance.now();
    const got = await ask(prepared.queries[i], k + (self !== undefined ? 1 : 0));
    times.push(performance.now() - t0);
    const approx = new Set(
      got
        .map((c) => c.id)
        .filter((id) => id !== self)
        .slice(0, k),
    );
    const truth = prepared.truth[i];
    wanted += truth.length;
    hits += truth.filter((id) => approx.has(id)).length;
  }
  times.sort((a, b) => a - b);
  return {
    recall: wanted === 0 ? 1 : round(hits / wanted, 4),
    latencyMs: {
      p50: round(percentile(times, 50)),
      p95: round(percentile(times, 95)),
      mean: round(times.reduce((s, t) => s + t, 0) / Math.max(1, times.length)),
    },
  };
}

export async function evaluateVersion(
  deps: EvalDeps,
  collection: string,
  version: number,
  input: { queries?: Float32Array[]; sample: number; k: number; ef?: number; nprobe?: number },
  by?: string,
): Promise<Evaluation> {
  const corpus = await loadVersion(deps, collection, version);
  const prepared = prepareQueries(corpus, input);
  // Without `ef` / `nprobe`, what the version serves with (the collection's tuned defaults for its line).
  const ef = input.ef ?? defaultEf(corpus.meta, corpus.manifest);
  const nprobe = corpus.manifest.partitions
    ? (input.nprobe ?? defaultNprobeOf(corpus.meta, corpus.manifest))
    : undefined;
  const m = await measure(deps, corpus, prepared, input.k, ef, nprobe);
  const ev: Evaluation = {
    collection: corpus.meta.name,
    generation: corpus.meta.generation,
    version: corpus.manifest.version,
    k: input.k,
    queries: prepared.queries.length,
    source: prepared.source,
    recall: m.recall,
    latencyMs: m.latencyMs,
    rows: corpus.ids.length,
    evaluatedAt: new Date(deps.now()).toISOString(),
  };
  if (ef !== undefined) ev.ef = ef;
  if (nprobe !== undefined) ev.nprobe = nprobe;
  if (by !== undefined) ev.by = by;
  return ev;
}

/** efSearch values the tuner tries, cheapest first. */
export const TUNE_EFS = [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];

/** nprobe values the tuner tries on a partitioned version, cheapest first (capped at its partitions). */
export const TUNE_NPROBES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096];

/**
 * efSearch at which the tuner reads an nprobe's recall ceiling (128): past it, more ef buys little
 * recall at k ≤ 100 on a partition-sized graph, so an nprobe that misses the target here needs more
 * partitions, not more ef.
 */
export const TUNE_CEILING_EF = 128;

/**
 * How close (as a fraction of the chosen nprobe) the tuner bisects between the grid step that missed
 * the target and the one that met it: 0.1. Smaller saves a few more probes per query for one or two
 * more measured settings per tune; 0 would bisect to the exact nprobe.
 */
export const TUNE_NPROBE_REFINE = 0.1;

/** The nprobe values swept on a version of `total` partitions. */
function tuneNprobes(total: number): number[] {
  return [...TUNE_NPROBES.filter((n) => n < total), total];
}

/**
 * The most rows the (nprobe, ef) sweep of a version can measure (it stops at the first meeting the
 * target): every nprobe once at the ceiling ef, plus the ef steps below the ceiling at one of them.
 */
export function tuneSweepSize(manifest: Manifest, k: number): number {
  if (!manifest.partitions) return TUNE_EFS.length;
  const efs = manifest.engine === 'hnsw' ? TUNE_EFS.filter((e) => e < Math.max(TUNE_CEILING_EF, k)).length : 0;
  // The bisection between two grid steps adds at most log2 of the widest gap it can fall into.
  const nprobes = tuneNprobes(manifest.partitions.count);
  const widest = Math.max(...nprobes.map((n, i) => n - (nprobes[i - 1] ?? 0)));
  return nprobes.length + Math.ceil(Math.log2(Math.max(1, widest))) + efs;
}

export interface TuneRow {
  ef: number;
  nprobe?: number;
  recall: number;
  p50: number;
  p95: number;
}

/**
 * The cheapest (nprobe, ef) of a partitioned version meeting `targetRecall`: the smallest nprobe
 * (to within TUNE_NPROBE_REFINE) whose recall at TUNE_CEILING_EF meets it (shards searched grow
 * linearly with nprobe, so fewer probes are the bigger saving), then the smallest ef at that nprobe.
 * The flat engine has no ef: only nprobe is swept. Returns every measured row, in order.
 */
export async function sweepPartitioned(
  deps: EvalDeps,
  corpus: VersionCorpus,
  prepared: PreparedQueries,
  k: number,
  targetRecall: number,
  onRow?: (row: TuneRow, table: readonly TuneRow[]) => Promise<void> | void,
): Promise<{ table: TuneRow[]; chosen?: TuneRow }> {
  const total = corpus.manifest.partitions!.count;
  const hnsw = corpus.manifest.engine === 'hnsw';
  const ceilingEf = Math.max(TUNE_CEILING_EF, k);
  const table: TuneRow[] = [];
  const run = async (nprobe: number, ef: number): Promise<TuneRow> => {
    const m = await measure(deps, corpus, prepared, k, hnsw ? ef : undefined, nprobe);
    const row = { ef, nprobe, recall: m.recall, p50: m.latencyMs.p50, p95: m.latencyMs.p95 };
    table.push(row);
    await onRow?.(row, table);
    return row;
  };
  const nprobes = tuneNprobes(total);
  let below = 0;
  for (const step of nprobes) {
    let ceiling = await run(step, ceilingEf);
    if (ceiling.recall < targetRecall) {
      below = step;
      continue;
    }
    // The grid's steps widen to 1.5× past 8: bisect down from the step that met the target to within
    // TUNE_NPROBE_REFINE of the one that missed, so a target met between two steps does not pay for
    // the upper one (at 184 partitions, 24 vs 32 probes is 13 % vs 17 % of the shards).
    let nprobe = step;
    while (nprobe - below > Math.max(1, Math.ceil(nprobe * TUNE_NPROBE_REFINE))) {
      const mid = Math.round((below + nprobe) / 2);
      const row = await run(mid, ceilingEf);
      if (row.recall >= targetRecall) [nprobe, ceiling] = [mid, row];
      else below = mid;
    }
    if (!hnsw) return { table, chosen: ceiling };
    for (const ef of TUNE_EFS.filter((e) => e < ceilingEf)) {
      const row = await run(nprobe, Math.max(ef, k));
      if (row.recall >= targetRecall) return { table, chosen: row };
    }
    return { table, chosen: ceiling };
  }
  return { table };
}

/**
 * Graph-parameter grid the tuner tries on a sample (`graph` tuning). m: 8 (smallest index,
 * lowest recall ceiling) … 32 (≈ 2× the memory of 16, best recall at high dimension);
 * efConstruction: 64 (fast builds) or 200 (better graphs, ≈ 2–3× build time).
 */
export const GRAPH_GRID = { m: [8, 16, 32], efConstruction: [64, 200] } as const;

/**
 * Default rows the graph sweep builds its trial indexes from (2 000). More rows make the
 * recall of a trial closer to the full index's (recall falls slowly with size), at the cost
 * of build time: 6 trial builds run inside the API request (≈ 5–20 s at 128–784 dimensions).
 */
export const GRAPH_SAMPLE_ROWS = 2000;

/**
 * m × efConstruction sweep (GRAPH_GRID) on a seeded sample of the version's rows: builds each
 * trial graph in memory, finds the cheapest efSearch meeting `targetRecall` on held-out sample
 * queries (exact truth within the sample), and marks the recall / search-cost Pareto front.
 * The recommendation is the cheapest trial meeting the target, else the most accurate.
 * Latencies are for the sample's size: compare them with each other only.
 */
export async function sweepGraph(
  corpus: VersionCorpus,
  input: { targetRecall: number; k: number; sample: number },
): Promise<{ sample: number; queries: number; table: GraphTrial[]; recommendation: GraphTrial }> {
  const { meta, ids, data } = corpus;
  const dim = meta.dimension;
  const rows = sampleRows(ids.length, Math.min(input.sample, ids.length), corpus.manifest.version * 104_729 + 17);
  if (rows.length < 2 * input.k + 2) {
    throw new ValidationError(`the version holds ${ids.length} rows; graph tuning needs at least ${2 * input.k + 2}`, {
      field: 'graph.sample',
    });
  }
  rows.sort((a, b) => a - b);
  const sampleIds = rows.map((r) => ids[r]);
  const sampleData = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => sampleData.set(data.subarray(r * dim, (r + 1) * dim), i * dim));
  const sub: VersionCorpus = { ...corpus, ids: sampleIds, data: sampleData };
  const prepared = prepareQueries(sub, { sample: Math.min(100, Math.floor(rows.length / 2)), k: input.k });
  const engine = getEngine('hnsw');
  const table: GraphTrial[] = [];
  for (const m of GRAPH_GRID.m) {
    for (const efConstruction of GRAPH_GRID.efConstruction) {
      const t0 = performance.now();
      const built = await engine.build({
        dim,
        metric: meta.metric,
        count: rows.length,
        vectors: sampleData,
        params: { m, efConstruction, seed: 1 },
      });
      const buildMs = performance.now() - t0;
      const index = await engine.load(built.bytes, {
        dim,
        metric: meta.metric,
        count: rows.length,
        params: built.params,
      });
      try {
        let best: Omit<GraphTrial, 'pareto'> | undefined;
        for (const ef of TUNE_EFS) {
          const times: number[] = [];
          let hits = 0;
          let wanted = 0;
          prepared.queries.forEach((q, i) => {
            const self = prepared.self[i];
            const t = performance.now();
            const got = index.search(q, { k: input.k + (self !== undefined ? 1 : 0), ef: Math.max(ef, input.k + 1) });
            times.push(performance.now() - t);
            const approx = new Set(
              got
                .map((h) => sampleIds[h.row])
                .filter((id) => id !== self)
                .slice(0, input.k),
            );
            wanted += prepared.truth[i].length;
            hits += prepared.truth[i].filter((id) => approx.has(id)).length;
          });
          times.sort((a, b) => a - b);
          const recall = wanted === 0 ? 1 : round(hits / wanted, 4);
          best = {
            m,
            efConstruction,
            ef,
            recall,
            p50: round(percentile(times, 50), 4),
            p95: round(percentile(times, 95), 4),
            buildMs: Math.round(buildMs),
            bytesPerVector: Math.round(built.bytes.byteLength / rows.length),
            meetsTarget: recall >= input.targetRecall,
            searchCost: ef * m,
          };
          if (best.meetsTarget) break;
        }
        table.push({ ...best!, pareto: false });
      } finally {
        index.dispose();
      }
    }
  }
  for (const t of table) {
    t.pareto = !table.some(
      (o) =>
        o !== t &&
        o.recall >= t.recall &&
        o.searchCost <= t.searchCost &&
        (o.recall > t.recall || o.searchCost < t.searchCost),
    );
  }
  const meeting = table.filter((t) => t.meetsTarget);
  // Cheapest search work; on ties the higher recall (so the choice is on the front), then the
  // smaller index, then the cheaper build (table order: efConstruction ascending).
  const rank = (t: GraphTrial): number[] => [t.searchCost, -t.recall, t.bytesPerVector];
  const cheaper = (a: GraphTrial, b: GraphTrial): GraphTrial => {
    const [x, y] = [rank(a), rank(b)];
    const i = x.findIndex((v, j) => v !== y[j]);
    return i !== -1 && y[i] < x[i] ? b : a;
  };
  const recommendation = meeting.length
    ? meeting.reduce(cheaper)
    : table.reduce((a, b) => (b.recall > a.recall ? b : a));
  return { sample: rows.length, queries: prepared.queries.length, table, recommendation };
}
