/**
 * The model development loop, end to end against a running Shoal (examples/models/README.md):
 *
 *   1. generate Fashion-MNIST-like images (data.ts) and train two embedding models on them in
 *      TypeScript, PCA-32 and PCA-128 (pca.ts), exported as ONNX;
 *   2. register them as versions 1 and 2 of model `fashion-pca`, point its alias `prod` at v1;
 *   3. create collection `fashion-v1` whose embedding function is `fashion-pca@prod`, upsert the raw
 *      pixels as `inputs` (Shoal embeds them), put the collection alias `fashion` on it and measure
 *      the kNN label accuracy of held-out queries searched through the alias with raw `inputs`;
 *   4. migrate the collection to v2 (a new collection `fashion-v2`, re-embedded by Shoal from the raw
 *      inputs it kept) while writes keep landing on v1, and read the migration's evaluation report;
 *   5. run a split experiment on `fashion` with `fashion-v2` as challenger, with clicks as feedback
 *      (a click when the top hit has the query's label), read the results, promote the challenger,
 *      then roll the alias back in one call.
 *
 *   npm run example:models -- [--quick] [--json] [--url URL --key KEY] [--name fashion]
 *
 * Without --url it starts a fresh local stack in this process (as `npm start` does) on a temporary
 * data dir and stops it at the end. Progress goes to stderr; stdout carries the summary (with --json,
 * exactly one JSON document).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ShoalNotFoundError, type ExperimentResults, type SearchHit } from '../../clients/typescript/src/index.js';
import { ExampleShoal, FINAL_MIGRATION_STATES, type Migration } from './client.js';
import { CLASS_NAMES, fashionData, type FashionData } from './data.js';
import { covariance, pcaFromCovariance, pcaToOnnx, type Pca } from './pca.js';

export interface LoopOptions {
  /** 2,000 training rows and 200 queries instead of 10,000 and 500. */
  quick?: boolean;
  /** A running Shoal; without it a local stack is started in this process. */
  url?: string;
  apiKey?: string;
  /** Prefix of every name the loop creates (default `fashion`): collections, aliases, the model. */
  name?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** The longest wait for the migration (default 10 minutes). */
  migrationTimeoutMs?: number;
}

export interface LoopReport {
  url: string;
  data: { train: number; queries: number; late: number };
  models: Array<{ name: string; version: number; dimension: number; bytes: number; explainedVariance: number }>;
  /** kNN label accuracy (majority of the top 10) of the held-out queries, on each collection. */
  accuracy: { v1: number; v2: number | null };
  migration: {
    id: string;
    state: string;
    rows: number;
    rejected: number;
    rowsPerSec: number;
    seconds: number;
    /** Rows written to the source during the migration that reached the target. */
    carriedOver: number;
  };
  overlap: number | null;
  labelAgreement: { source: number; target: number } | null;
  experiment: {
    id: string;
    state: string;
    verdict: string | null;
    significant: boolean | null;
    difference: number | null;
    p: number | null;
    overlapAtK: number | null;
    champion: ArmSummary;
    challenger: ArmSummary;
  };
  aliasAfterPromote: string;
  aliasAfterRollback: string;
  seconds: number;
}

interface ArmSummary {
  collection: string;
  requests: number;
  clicks: number;
  clickRate: number | null;
}

const K = 10;
/** Rows per upsert request: 250 raw 784-pixel rows are ~1.3 MB of JSON, far under the 6 MB body limit. */
const UPSERT_BATCH = 250;
/** Inputs per search request (the API's maximum is 100). */
const SEARCH_BATCH = 100;
/**
 * Searches in flight during the experiment (4): enough to keep a local stack busy, few enough to be
 * polite to a deployed one.
 */
const EXPERIMENT_CONCURRENCY = 4;
const LATE_ROWS = 20;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const round = (x: number, digits = 4): number => Number(x.toFixed(digits));

function majority(hits: readonly SearchHit[]): number | undefined {
  const votes = new Map<number, number>();
  for (const h of hits) {
    const label = h.metadata?.label;
    if (typeof label === 'number') votes.set(label, (votes.get(label) ?? 0) + 1);
  }
  let best: number | undefined;
  let most = 0;
  for (const [label, n] of votes) {
    if (n > most) {
      best = label;
      most = n;
    }
  }
  return best;
}

async function accuracy(shoal: ExampleShoal, target: string, queries: FashionData): Promise<number> {
  let right = 0;
  for (let i = 0; i < queries.rows.length; i += SEARCH_BATCH) {
    const out = await shoal.searchInputs(target, queries.rows.slice(i, i + SEARCH_BATCH), {
      k: K,
      include: ['metadata'],
    });
    out.results.forEach((hits, j) => {
      if (majority(hits) === queries.labels[i + j]) right++;
    });
  }
  return right / queries.rows.length;
}

function arm(results: ExperimentResults, which: 'champion' | 'challenger'): ArmSummary {
  const a = results.arms[which];
  return { collection: a.target.collection, requests: a.requests, clicks: a.clicks, clickRate: a.clickRate.rate };
}

/** Runs the whole loop against `shoal`. */
async function runAgainst(shoal: ExampleShoal, options: LoopOptions, log: (line: string) => void) {
  const started = performance.now();
  const quick = options.quick ?? false;
  const prefix = options.name ?? 'fashion';
  const modelName = `${prefix}-pca`;
  const v1Name = `${prefix}-v1`;
  const v2Name = `${prefix}-v2`;
  const alias = prefix;

  // 1. Data and models.
  const trainRows = quick ? 2_000 : 10_000;
  const queryRows = quick ? 200 : 500;
  const train = fashionData(trainRows, { seed: 1 });
  const queries = fashionData(queryRows, { seed: 2 });
  const late = fashionData(LATE_ROWS, { seed: 3 });
  log(`data: ${trainRows} training images, ${queryRows} queries, 28×28, classes ${CLASS_NAMES.join(', ')}`);
  let t = performance.now();
  const stats = covariance(train.rows);
  const pcas: Pca[] = [pcaFromCovariance(stats, 32), pcaFromCovariance(stats, 128)];
  const explained = (p: Pca) => p.explained.reduce((a, b) => a + b, 0);
  log(
    `trained PCA-32 and PCA-128 in ${((performance.now() - t) / 1000).toFixed(1)} s ` +
      `(explained variance ${explained(pcas[0]!).toFixed(3)} and ${explained(pcas[1]!).toFixed(3)})`,
  );

  // 2. Register both as ONNX versions of one model; `prod` → the first.
  const models: LoopReport['models'] = [];
  for (const pca of pcas) {
    // Cosine collections: the projection is L2-normalised inside the model.
    const bytes = pcaToOnnx(pca, { normalize: true, name: `${modelName}-${pca.components}` });
    const { model } = await shoal.models.register(modelName, {
      dimension: pca.components,
      metric: 'cosine',
      format: 'onnx',
      framework: 'onnx',
      description: `PCA-${pca.components} of 28×28 images (examples/models/pca.ts)`,
      params: { components: pca.components, trainRows, iterations: pca.iterations },
      metrics: { explainedVariance: round(explained(pca)) },
      artifact: Buffer.from(bytes).toString('base64'),
    });
    const committed = await shoal.models.commit(modelName, model.version, { sha256: sha256(bytes) });
    log(`model ${modelName} v${committed.version}: PCA-${pca.components}, ${bytes.length} bytes, ${committed.state}`);
    models.push({
      name: modelName,
      version: committed.version,
      dimension: pca.components,
      bytes: bytes.length,
      explainedVariance: round(explained(pca)),
    });
  }
  const [m1, m2] = models as [LoopReport['models'][number], LoopReport['models'][number]];
  await shoal.models.setAlias(modelName, 'prod', { version: m1.version, reason: 'first model' });
  log(`model alias ${modelName}@prod → v${m1.version}`);

  // 3. A collection embedded by the model `prod` names, the raw pixels upserted, an alias on it.
  const created = await shoal.collections.create({ name: v1Name, embedding: { model: modelName, alias: 'prod' } });
  log(`collection ${v1Name}: ${created.dimension}-d ${created.metric}, embedded by ${modelName} v${m1.version}`);
  t = performance.now();
  for (let i = 0; i < train.rows.length; i += UPSERT_BATCH) {
    const rows = train.rows.slice(i, i + UPSERT_BATCH).map((inputs, j) => ({
      id: `img-${i + j}`,
      inputs,
      metadata: { label: train.labels[i + j]! },
    }));
    await shoal.upsertInputs(v1Name, rows);
    log(`upserted ${Math.min(i + UPSERT_BATCH, train.rows.length)}/${train.rows.length} rows as raw inputs`);
  }
  const upsertSeconds = (performance.now() - t) / 1000;
  log(`upsert: ${Math.round(train.rows.length / upsertSeconds)} rows/s (embedded on the way in)`);
  await shoal.aliases.set(alias, { collection: v1Name, reason: 'first model' });
  const accuracyV1 = await accuracy(shoal, alias, queries);
  log(`kNN label accuracy through alias ${alias} (${v1Name}, top ${K}): ${(accuracyV1 * 100).toFixed(1)}%`);

  // 4. Migrate to v2 while writes keep coming.
  t = performance.now();
  let migration: Migration;
  try {
    migration = await shoal.migrations.start(v1Name, {
      to: { model: modelName, version: m2.version },
      target: v2Name,
      labelField: 'label',
      k: K,
    });
  } catch (err) {
    // The collection was just created: a 404 here is the route itself missing (a Shoal before migrations).
    if (err instanceof ShoalNotFoundError) {
      throw new Error(`this Shoal has no migration API (POST /v1/collections/{name}/migrations answered 404)`, {
        cause: err,
      });
    }
    throw err;
  }
  log(`migration ${migration.id}: ${v1Name} → ${migration.target} (${modelName} v${m2.version}), ${migration.state}`);
  // Writes landing on the source during the migration are carried over to the target.
  await shoal.upsertInputs(
    v1Name,
    late.rows.map((inputs, j) => ({ id: `late-${j}`, inputs, metadata: { label: late.labels[j]! } })),
  );
  log(`upserted ${LATE_ROWS} more rows into ${v1Name} during the migration`);
  const deadline = Date.now() + (options.migrationTimeoutMs ?? 600_000);
  let last = '';
  while (!FINAL_MIGRATION_STATES.includes(migration.state)) {
    if (Date.now() > deadline) throw new Error(`migration ${migration.id} still ${migration.state} at the deadline`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    migration = await shoal.migrations.get(v1Name, migration.id);
    const p = migration.progress;
    const line = `migration ${migration.state}: ${p.rowsRead} read, ${p.embedded} embedded, ${p.rejected} rejected`;
    if (line !== last) log(line);
    last = line;
  }
  const migrationSeconds = (performance.now() - t) / 1000;
  if (migration.state !== 'done') {
    throw new Error(`migration ${migration.id} ended ${migration.state}: ${JSON.stringify(migration.error ?? null)}`);
  }
  const lateIds = late.rows.map((_, j) => `late-${j}`);
  const carriedOver = (await shoal.collection(migration.target).get(lateIds)).length;
  const report = migration.report;
  log(
    `migration done in ${migrationSeconds.toFixed(1)} s: ${migration.progress.embedded} rows ` +
      `(${Math.round(migration.progress.embedded / migrationSeconds)} rows/s), ` +
      `${carriedOver}/${LATE_ROWS} late writes carried over`,
  );
  if (report) {
    log(
      `report: overlap@${report.k} ${report.overlapAtK.toFixed(3)} over ${report.queries} queries` +
        (report.labelAgreement
          ? `; ${report.labelAgreement.field} agreement ${report.labelAgreement.source.toFixed(3)} (v1) → ` +
            `${report.labelAgreement.target.toFixed(3)} (v2)`
          : ''),
    );
  }
  const accuracyV2 = await accuracy(shoal, migration.target, queries);
  log(`kNN label accuracy on ${migration.target}: ${(accuracyV2 * 100).toFixed(1)}%`);

  // 5. Champion (v1) vs challenger (v2) on live traffic, then promote and roll back.
  const started2 = await shoal.experiments.start(alias, {
    challenger: { collection: migration.target },
    mode: 'split',
    weight: 50,
    // The 128-d arm embeds and compares 4× the floats: on a busy laptop its p95 can be a multiple of
    // the 32-d arm's without anything being wrong. The default guardrail would abort on that.
    guardrails: { maxP95Ratio: 20 },
  });
  const experimentId = started2.experiment.id;
  log(`experiment ${experimentId} on ${alias}: ${v1Name} (champion) vs ${migration.target} (challenger), split 50/50`);
  let next = 0;
  let clicks = 0;
  const worker = async () => {
    for (let i = next++; i < queries.rows.length; i = next++) {
      const out = await shoal.searchInput(alias, queries.rows[i]!, {
        k: K,
        include: ['metadata'],
        stickyKey: `user-${i}`,
      });
      const top = out.results[0];
      if (out.queryId && top && top.metadata?.label === queries.labels[i]) {
        await shoal.feedback({ queryId: out.queryId, id: top.id, event: 'click' });
        clicks++;
      }
    }
  };
  await Promise.all(Array.from({ length: EXPERIMENT_CONCURRENCY }, worker));
  log(`${queries.rows.length} searches through ${alias}, ${clicks} clicks`);
  const results = await shoal.experiments.results(alias);
  const click = results.tests.click;
  for (const which of ['champion', 'challenger'] as const) {
    const a = arm(results, which);
    log(
      `  ${which.padEnd(10)} ${a.collection}: ${a.requests} requests, ${a.clicks} clicks, ` +
        `click rate ${a.clickRate === null ? '-' : a.clickRate.toFixed(3)}`,
    );
  }
  log(
    `  verdict ${click?.verdict ?? 'n/a'} (sequential p ${click ? click.sequential.p.toFixed(3) : '-'}, ` +
      `significant: ${click?.significant ?? false})`,
  );
  const promoted = await shoal.experiments.promote(alias, { reason: 'example: promote the challenger' });
  const afterPromote = await shoal.aliases.get(alias);
  log(`promoted: ${alias} → ${afterPromote.collection} (experiment ${promoted.experiment.state})`);
  const rolledBack = await shoal.aliases.rollback(alias, { reason: 'example: one-call rollback' });
  log(`rolled back: ${alias} → ${rolledBack.collection}`);

  return {
    data: { train: trainRows, queries: queryRows, late: LATE_ROWS },
    models,
    accuracy: { v1: round(accuracyV1), v2: round(accuracyV2) },
    migration: {
      id: migration.id,
      state: migration.state,
      rows: migration.progress.embedded,
      rejected: migration.progress.rejected,
      rowsPerSec: Math.round(migration.progress.embedded / migrationSeconds),
      seconds: round(migrationSeconds, 2),
      carriedOver,
    },
    overlap: report ? round(report.overlapAtK) : null,
    labelAgreement: report?.labelAgreement
      ? { source: round(report.labelAgreement.source), target: round(report.labelAgreement.target) }
      : null,
    experiment: {
      id: experimentId,
      state: promoted.experiment.state,
      verdict: click?.verdict ?? null,
      significant: click?.significant ?? null,
      difference: click?.difference ?? null,
      p: click ? round(click.sequential.p) : null,
      overlapAtK: results.overlapAtK.mean === null ? null : round(results.overlapAtK.mean),
      champion: arm(results, 'champion'),
      challenger: arm(results, 'challenger'),
    },
    aliasAfterPromote: afterPromote.collection,
    aliasAfterRollback: rolledBack.collection,
    seconds: round((performance.now() - started) / 1000, 1),
  };
}

/** The loop against `options.url`, or against a local stack started (and stopped) here. */
export async function runLoop(options: LoopOptions = {}): Promise<LoopReport> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (options.url) {
    const shoal = new ExampleShoal({ url: options.url, apiKey: options.apiKey });
    return { url: options.url, ...(await runAgainst(shoal, options, log)) };
  }
  // The handlers' and builder threads' INFO lines would go to stdout, which carries the report alone.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const { startLocalShoal } = await import('../../infra/local/shoal.js');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-example-models-'));
  try {
    const local = await startLocalShoal({ dataDir, port: 0, silent: true, apiKey: 'example-key' });
    log(`local Shoal at ${local.url} (data in ${dataDir}, removed at the end)`);
    try {
      const shoal = new ExampleShoal({ url: local.url, apiKey: local.apiKey });
      return { url: local.url, ...(await runAgainst(shoal, options, log)) };
    } finally {
      await local.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

function summary(r: LoopReport): string {
  const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
  return [
    `Model development loop against ${r.url} (${r.seconds} s)`,
    '',
    ...r.models.map(
      (m) => `  ${m.name} v${m.version}: ${m.dimension}-d, ${m.bytes} bytes, explained variance ${m.explainedVariance}`,
    ),
    `  kNN label accuracy (top ${K}): v1 ${pct(r.accuracy.v1)}, v2 ${pct(r.accuracy.v2)}`,
    `  migration ${r.migration.id}: ${r.migration.state}, ${r.migration.rows} rows in ${r.migration.seconds} s ` +
      `(${r.migration.rowsPerSec} rows/s), ${r.migration.carriedOver}/${r.data.late} late writes carried over`,
    `  overlap@${K} v1 vs v2: ${r.overlap ?? '-'}; label agreement ${r.labelAgreement?.source ?? '-'} → ` +
      `${r.labelAgreement?.target ?? '-'}`,
    `  experiment ${r.experiment.id}: click rate ${pct(r.experiment.champion.clickRate)} (champion) vs ` +
      `${pct(r.experiment.challenger.clickRate)} (challenger), verdict ${r.experiment.verdict ?? '-'}`,
    `  alias after promote: ${r.aliasAfterPromote}; after rollback: ${r.aliasAfterRollback}`,
    '',
  ].join('\n');
}

const USAGE = `npm run example:models -- [options]

The model development loop: train two PCA embedding models, register them, embed a collection with
one, migrate it to the other, A/B them on an alias, promote and roll back.

  --quick          2,000 training rows and 200 queries (default 10,000 and 500)
  --json           one JSON document on stdout instead of the summary
  --url <url>      a running Shoal (npm start, or a deployed stack's API URL); default: a local stack
                   started in this process on a temporary data dir
  --key <key>      its API key (default: env SHOAL_API_KEY)
  --name <prefix>  prefix of the collections, alias and model it creates (default fashion)
  --help           this text

Progress goes to stderr.
`;

async function main(): Promise<void> {
  const writeStdout = process.stdout.write.bind(process.stdout);
  let args: ReturnType<typeof parseCliArgs>;
  try {
    args = parseCliArgs();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    writeStdout(USAGE);
    return;
  }
  const apiKey = args.key ?? process.env.SHOAL_API_KEY;
  if (args.url && !apiKey) {
    process.stderr.write(`--url needs an API key: --key or env SHOAL_API_KEY\n`);
    process.exit(2);
  }
  // Anything that logs with console.log (a handler, a library) must not mix into the report.
  console.log = (...parts: unknown[]) => console.error(...parts);
  console.info = console.log;
  const report = await runLoop({ quick: args.quick, url: args.url, apiKey, name: args.name });
  writeStdout(args.json ? `${JSON.stringify(report, null, 2)}\n` : summary(report));
}

function parseCliArgs() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      url: { type: 'string' },
      key: { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  return values;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`example:models failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
