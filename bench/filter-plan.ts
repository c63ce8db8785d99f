/**
 * Calibrates the filtered-search planner (FILTER_PLAN in shared/shard/shard.ts): for each
 * dataset and selectivity, QPS and recall@10 of the exact plan and of the filtered-graph
 * plan, each forced. The crossover is where GRAPH_ROWS_PER_EF · ef / s matches.
 *
 *   npm run bench:filter-plan
 */
import { loadDataset } from '../shared/io/datasets.js';
import { FILTER_PLAN, Shard, buildShard } from '../shared/shard/shard.js';

const Q = 50;
const saved = { ...FILTER_PLAN };
console.log(
  '| dataset | rows | selectivity | matches | exact QPS | exact recall | graph QPS | graph recall | planner picks |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
for (const [name, maxBase] of [
  ['sift5k', undefined],
  ['glove50', undefined],
  ['mnist', 20_000],
] as const) {
  const ds = await loadDataset(name, { maxBase, maxQueries: Q });
  const { baseCount: n, dim } = ds;
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const metadata = Array.from({ length: n }, () => ({ r: Math.floor(rand() * 100_000) }));
  const ids = Array.from({ length: n }, (_, i) => String(i));
  const seqs = ids.map((_, i) => i + 1);
  const shard = await Shard.open(
    await buildShard({ engine: 'hnsw', dim, metric: ds.metric, ids, vectors: ds.base, seqs, metadata }),
  );
  const flat = await Shard.open(
    await buildShard({ engine: 'flat', dim, metric: ds.metric, ids, vectors: ds.base, seqs, metadata }),
  );
  const q = (i: number) => ds.queries.subarray(i * dim, (i + 1) * dim);
  for (const s of [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]) {
    const filter = {
      op: 'cmp' as const,
      cmp: '<' as const,
      ref: { field: 'r', path: [] },
      value: Math.round(s * 100_000),
    };
    const truth = Array.from({ length: Q }, (_, i) => new Set(flat.search(q(i), { k: 10, filter }).map((h) => h.id)));
    const measure = (force: Partial<typeof FILTER_PLAN>) => {
      Object.assign(FILTER_PLAN, saved, force);
      let recall = 0;
      const t = performance.now();
      for (let i = 0; i < Q; i++) {
        const hits = shard.search(q(i), { k: 10, ef: 64, filter });
        recall += hits.filter((h) => truth[i].has(h.id)).length / Math.max(1, truth[i].size);
      }
      return { qps: (Q * 1000) / (performance.now() - t), recall: recall / Q };
    };
    const exact = measure({ EXACT_MIN_ROWS: Number.MAX_SAFE_INTEGER });
    const graph = measure({ EXACT_MIN_ROWS: 0, GRAPH_ROWS_PER_EF: 0 });
    Object.assign(FILTER_PLAN, saved);
    shard.search(q(0), { k: 10, ef: 64, filter });
    const matches = shard.lastPlan.matches;
    console.log(
      `| ${name} | ${n} | ${s} | ${matches} | ${exact.qps.toFixed(0)} | ${exact.recall.toFixed(3)} | ${graph.qps.toFixed(0)} | ${graph.recall.toFixed(3)} | ${shard.lastPlan.kind} |`,
    );
  }
  shard.dispose();
  flat.dispose();
}
