/**
 * How well graph tuning on a sample predicts the full index: for each dataset, the tuner's
 * m × efConstruction sweep (`sweepGraph`, 2 000-row sample, target recall@10 0.95) beside
 * full builds of every grid point measured on the dataset's held-out queries — recall at the
 * efSearch the sample chose, the cheapest efSearch that really meets the target, QPS, build
 * time — with exact search (flat scan) as the baseline.
 *
 *   npm run bench:tune
 *   npm run bench:tune -- --quick   # sift5k only
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { exactTopK } from '../shared/engine/distance.js';
import { getEngine } from '../shared/engine/registry.js';
import { loadDataset, type DatasetName } from '../shared/io/datasets.js';
import { GRAPH_SAMPLE_ROWS, TUNE_EFS, sweepGraph, type VersionCorpus } from '../shared/lifecycle/evaluation.js';
import type { CollectionMeta, Manifest } from '../shared/storage/types.js';
import { machineLine, parseCli } from './cli.js';

const TARGET = 0.95;
const K = 10;
const Q = 200;
const cli = parseCli({
  name: 'tune',
  summary: 'Graph tuning on a 2k sample vs full builds of every m × efConstruction point.',
  quick: 'sift5k only',
});
const DATASETS = (
  [
    ['sift5k', undefined],
    ['glove50', undefined],
    ['mnist', 10_000],
  ] as Array<[DatasetName, number | undefined]>
).filter(([name]) => !cli.quick || name === 'sift5k');
const lines: string[] = [
  `# Graph tuning on a sample vs full builds — ${cli.started.toISOString()}`,
  '',
  `Machine: ${machineLine(cli.machine)}. Command: \`${cli.command}\`. Target recall@${K} ${TARGET};`,
  `sample ${GRAPH_SAMPLE_ROWS} rows (seeded); full index over the whole base,`,
  `${Q} held-out queries, exact ground truth by flat scan.`,
  '"sample ef" is the cheapest efSearch meeting the target on the sample;',
  `"full ef" the cheapest that meets it on the full index. QPS single-threaded at the sample's ef.`,
  '',
  '| dataset | rows | m | efC | sample ef | sample recall | full recall @ sample ef | full ef | full QPS | build s |' +
    ' front | pick |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
];
const exactLines: string[] = ['', '| dataset | exact (flat scan) QPS |', '|---|---:|'];
const rows: Array<{
  dataset: string;
  rows: number;
  m: number;
  efConstruction: number;
  sampleEf: number;
  sampleRecall: number;
  fullRecallAtSampleEf: number;
  fullEf: number | null;
  fullQps: number;
  buildSeconds: number;
  pareto: boolean;
  pick: boolean;
}> = [];
const exactRows: Array<{ dataset: string; rows: number; dim: number; qps: number }> = [];

for (const [name, maxBase] of DATASETS) {
  const ds = loadDataset(name, { maxBase, maxQueries: Q });
  const { dim, baseCount: n } = ds;
  const ids = Array.from({ length: n }, (_, i) => `r${i}`);
  const meta = {
    name,
    dimension: dim,
    metric: ds.metric,
    index: { engine: 'hnsw', params: {} },
    createdAt: '',
    generation: 1,
  } as CollectionMeta;
  const corpus: VersionCorpus = { meta, manifest: { version: 1 } as Manifest, ids, data: ds.base };
  process.stderr.write(`${name}: sweeping the sample…\n`);
  const sweep = await sweepGraph(corpus, { targetRecall: TARGET, k: K, sample: GRAPH_SAMPLE_ROWS });

  const view = { data: ds.base, offset: 0, stride: dim, dim, count: n, normalized: false };
  const queries = Array.from({ length: ds.queryCount }, (_, i) => ds.queries.subarray(i * dim, (i + 1) * dim));
  let t = performance.now();
  const truth = queries.map((q) => new Set(exactTopK(view, ds.metric, q, K).map((h) => h.row)));
  const exactQps = (queries.length * 1000) / (performance.now() - t);
  exactLines.push(`| ${name} (${n} × ${dim}) | ${exactQps.toFixed(0)} |`);
  exactRows.push({ dataset: name, rows: n, dim, qps: exactQps });

  const engine = getEngine('hnsw');
  for (const trial of sweep.table) {
    process.stderr.write(`${name}: full build m=${trial.m} efC=${trial.efConstruction}…\n`);
    t = performance.now();
    const built = await engine.build({
      dim,
      metric: ds.metric,
      count: n,
      vectors: ds.base,
      params: { m: trial.m, efConstruction: trial.efConstruction, seed: 1 },
    });
    const buildS = (performance.now() - t) / 1000;
    const index = await engine.load(built.bytes, { dim, metric: ds.metric, count: n, params: built.params });
    const recallAt = (ef: number): { recall: number; qps: number } => {
      let hits = 0;
      const t0 = performance.now();
      queries.forEach((q, i) => {
        for (const h of index.search(q, { k: K, ef: Math.max(ef, K) })) if (truth[i].has(h.row)) hits++;
      });
      return { recall: hits / (queries.length * K), qps: (queries.length * 1000) / (performance.now() - t0) };
    };
    const atSample = recallAt(trial.ef);
    const fullEf = TUNE_EFS.find((ef) => recallAt(ef).recall >= TARGET);
    index.dispose();
    const pick = trial === sweep.recommendation;
    rows.push({
      dataset: name,
      rows: n,
      m: trial.m,
      efConstruction: trial.efConstruction,
      sampleEf: trial.ef,
      sampleRecall: trial.recall,
      fullRecallAtSampleEf: atSample.recall,
      fullEf: fullEf ?? null,
      fullQps: atSample.qps,
      buildSeconds: buildS,
      pareto: trial.pareto,
      pick,
    });
    lines.push(
      `| ${name} | ${n} | ${trial.m} | ${trial.efConstruction} | ${trial.ef} | ${trial.recall.toFixed(3)} |` +
        ` ${atSample.recall.toFixed(3)} | ${fullEf ?? '> 512'} | ${atSample.qps.toFixed(0)} | ${buildS.toFixed(1)} |` +
        ` ${trial.pareto ? 'yes' : ''} | ${pick ? '**yes**' : ''} |`,
    );
  }
}

cli.out({
  markdown: [...lines, ...exactLines, ''].join('\n'),
  parameters: {
    targetRecall: TARGET,
    k: K,
    queries: Q,
    sampleRows: GRAPH_SAMPLE_ROWS,
    efs: TUNE_EFS,
    datasets: DATASETS.map(([name, maxBase]) => ({ name, maxBase: maxBase ?? null })),
  },
  rows,
  tables: { exact: exactRows },
});
