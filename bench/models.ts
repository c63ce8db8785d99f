/**
 * Embedding functions (docs/models.md): how fast Shoal's model runtime embeds 784-d images with the
 * example's PCA models (examples/models), per runtime — onnxruntime-node (native, the default) and
 * onnxruntime-web (WebAssembly) in the same run — and how long a model takes to load; then how many
 * rows per second a collection migration re-embeds through a whole local stack (a PCA-32 collection
 * of N rows migrated to PCA-128).
 *
 *   npm run bench:models              # 200 timed batches per model and runtime; 20,000-row migration
 *   npm run bench:models -- --quick   # 20 batches; 2,000-row migration
 *
 * The migration part needs the migration API (`POST /v1/collections/{name}/migrations`); on a stack
 * without it the bench says "migration API not available" and reports `migration: null`.
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ShoalNotFoundError } from '../clients/typescript/src/index.js';
import { ExampleShoal, FINAL_MIGRATION_STATES, type Migration } from '../examples/models/client.js';
import { IMAGE_PIXELS, fashionData } from '../examples/models/data.js';
import { covariance, pcaFromCovariance, pcaToOnnx } from '../examples/models/pca.js';
import { linearProjectionModel, readOnnxSignature } from '../shared/models/onnx.js';
import { machineLine, parseCli } from './cli.js';

const cli = parseCli({
  name: 'models',
  summary: 'Embedding throughput and model load time per ONNX runtime (PCA-32/128 on 784-d), then migration rows/s.',
  quick: '20 timed batches per model and runtime, a 2,000-row migration (default 200 and 20,000)',
  options: [
    { flag: '--batches', arg: 'n', help: 'timed batches per model and runtime (default 200; quick 20)' },
    { flag: '--rows', arg: 'n', help: 'rows of the migrated collection (default 20,000; quick 2,000)' },
    { flag: '--no-migration', help: 'only the runtime measurements' },
  ],
});

/** Rows per inference call: the runtime's default (DEFAULT_EMBED_BATCH_ROWS), what a collection's function uses. */
const BATCH = 256;
const BATCHES = cli.int('--batches') ?? (cli.quick ? 20 : 200);
const MIGRATION_ROWS = cli.int('--rows') ?? (cli.quick ? 2_000 : 20_000);
/** Untimed batches first: the runtimes allocate and pick kernels on the first calls. */
const WARMUP_BATCHES = 3;
/** Rows the PCAs are trained on: their quality does not change the cost of running them. */
const TRAIN_ROWS = 2_000;
const UPSERT_BATCH = 250;

interface Row {
  model: string;
  runtime: string;
  batch: number;
  rowsPerSec: number;
  msPerBatch: number;
  p95MsPerBatch: number;
  loadMs: number;
  bytes: number;
}

interface MigrationRow {
  /** Rows of the source collection, all migrated. */
  rows: number;
  seconds: number;
  /** Source rows per second of wall time (from the POST to `done`, evaluation included). */
  rowsPerSec: number;
  /** Rows the job embedded: the catch-up embeds the rows still in the source's write log a second time. */
  embedded: number;
  upsertRowsPerSec: number;
}

// The runtime logs each model load at INFO, the local stack each build, on stdout, which carries the
// report alone. Set before anything loads the logger (every import of it is dynamic, below).
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';

const log = (line: string) => process.stderr.write(`${line}\n`);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function runtimes(models: Array<{ name: string; bytes: Uint8Array; dim: number }>): Promise<Row[]> {
  // Imported here, after main() set the log level: the runtime's logger reads it when first loaded.
  const { ModelRuntime, ONNX_RUNTIMES, embeddingIO } = await import('../shared/models/runtime.js');
  const inputs = fashionData(BATCH * 4, { seed: 5 }).rows;
  const out: Row[] = [];
  for (const runtime of ONNX_RUNTIMES) {
    const rt = new ModelRuntime({ runtime, maxLoadedBytes: 1 << 28, batchRows: BATCH });
    // A tiny model first, so the runtime's own start (the native addon, the WASM instance) is not
    // charged to the first real model's load time.
    const tiny = linearProjectionModel({ inputDim: 2, outputDim: 2, weights: Float32Array.from([1, 0, 0, 1]) });
    await rt.session('warm', tiny.length, async () => tiny);
    for (const m of models) {
      const t0 = performance.now();
      const session = await rt.session(sha256(m.bytes), m.bytes.length, async () => m.bytes);
      const loadMs = performance.now() - t0;
      const io = embeddingIO(readOnnxSignature(m.bytes), m.dim, 'embedding');
      const batchOf = (i: number) => inputs.slice((i % 4) * BATCH, (i % 4) * BATCH + BATCH);
      for (let i = 0; i < WARMUP_BATCHES; i++) await rt.embed(session, io, batchOf(i));
      const times: number[] = [];
      for (let i = 0; i < BATCHES; i++) {
        const t = performance.now();
        await rt.embed(session, io, batchOf(i));
        times.push(performance.now() - t);
      }
      const total = times.reduce((a, b) => a + b, 0);
      const sorted = [...times].sort((a, b) => a - b);
      const row: Row = {
        model: m.name,
        runtime,
        batch: BATCH,
        rowsPerSec: Math.round((BATCHES * BATCH) / (total / 1000)),
        msPerBatch: Number((total / BATCHES).toFixed(3)),
        p95MsPerBatch: Number(sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))]!.toFixed(3)),
        loadMs: Number(loadMs.toFixed(1)),
        bytes: m.bytes.length,
      };
      log(`${m.name} on ${runtime}: ${row.rowsPerSec} rows/s, ${row.msPerBatch} ms per batch, load ${row.loadMs} ms`);
      out.push(row);
    }
  }
  return out;
}

/** A PCA-32 collection of MIGRATION_ROWS rows migrated to PCA-128 through a local stack; null without the API. */
async function migration(models: Array<{ bytes: Uint8Array; dim: number }>): Promise<MigrationRow | null> {
  const { startLocalShoal } = await import('../infra/local/shoal.js');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-bench-models-'));
  const local = await startLocalShoal({ dataDir, port: 0, silent: true, apiKey: 'bench-key' });
  try {
    const shoal = new ExampleShoal({ url: local.url, apiKey: local.apiKey });
    for (const m of models) {
      const { model } = await shoal.models.register('bench-pca', {
        dimension: m.dim,
        metric: 'cosine',
        format: 'onnx',
        artifact: Buffer.from(m.bytes).toString('base64'),
      });
      await shoal.models.commit('bench-pca', model.version, { sha256: sha256(m.bytes) });
    }
    await shoal.collections.create({ name: 'bench-src', embedding: { model: 'bench-pca', version: 1 } });
    // Before paying for the upserts: does this stack have the migration routes at all?
    try {
      await shoal.migrations.list('bench-src');
    } catch (err) {
      if (err instanceof ShoalNotFoundError) {
        log('migration API not available (GET /v1/collections/{name}/migrations: 404): migration skipped');
        return null;
      }
      throw err;
    }
    const t0 = performance.now();
    for (let i = 0; i < MIGRATION_ROWS; i += UPSERT_BATCH) {
      const n = Math.min(UPSERT_BATCH, MIGRATION_ROWS - i);
      const rows = fashionData(n, { seed: 100 + i }).rows;
      await shoal.upsertInputs(
        'bench-src',
        rows.map((inputs, j) => ({ id: i + j, inputs })),
      );
      if ((i / UPSERT_BATCH) % 8 === 7) log(`upserted ${i + n}/${MIGRATION_ROWS}`);
    }
    const upsertRowsPerSec = Math.round(MIGRATION_ROWS / ((performance.now() - t0) / 1000));
    const t1 = performance.now();
    let m: Migration = await shoal.migrations.start('bench-src', {
      to: { model: 'bench-pca', version: 2 },
      target: 'bench-dst',
    });
    let last = '';
    while (!FINAL_MIGRATION_STATES.includes(m.state)) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      m = await shoal.migrations.get('bench-src', m.id);
      const line = `migration ${m.state}: ${m.progress.embedded}/${MIGRATION_ROWS} embedded`;
      if (line !== last) log(line);
      last = line;
    }
    const seconds = (performance.now() - t1) / 1000;
    if (m.state !== 'done') throw new Error(`migration ended ${m.state}: ${JSON.stringify(m.error ?? null)}`);
    const target = await shoal.collection('bench-dst').stats();
    if (target.count !== MIGRATION_ROWS) throw new Error(`target has ${target.count} rows, not ${MIGRATION_ROWS}`);
    return {
      rows: MIGRATION_ROWS,
      seconds: Number(seconds.toFixed(2)),
      rowsPerSec: Math.round(MIGRATION_ROWS / seconds),
      embedded: m.progress.embedded,
      upsertRowsPerSec,
    };
  } finally {
    await local.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const t = performance.now();
  const stats = covariance(fashionData(TRAIN_ROWS, { seed: 1 }).rows);
  const models = [32, 128].map((k) => {
    const pca = pcaFromCovariance(stats, k);
    return { name: `PCA-${k}`, dim: k, bytes: pcaToOnnx(pca, { normalize: true }) };
  });
  log(`trained PCA-32 and PCA-128 on ${TRAIN_ROWS} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const rows = await runtimes(models);
  const migrated = cli.has('--no-migration') ? null : await migration(models);

  const fmt = (n: number) => n.toLocaleString('en-US');
  const markdown = [
    `# Embedding functions — ${cli.started.toISOString()}`,
    '',
    `Machine: ${machineLine(cli.machine)}. Command: \`${cli.command}\`.`,
    '',
    `Dataset: Fashion-MNIST-like 28×28 images (examples/models/data.ts), ${IMAGE_PIXELS} float32 inputs per row. ` +
      `Models: the example's PCA-32 and PCA-128 (trained on ${fmt(TRAIN_ROWS)} rows), exported as ` +
      '`(x − mean)·W` + L2 normalisation. One thread per runtime (the function default).',
    '',
    `## Embedding throughput, batches of ${BATCH} rows (${BATCHES} timed after ${WARMUP_BATCHES} warm-up)`,
    '',
    '| model | runtime | artifact KB | load ms | rows/s | ms/batch | p95 ms/batch |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.runtime} | ${fmt(Math.round(r.bytes / 1024))} | ${r.loadMs} | ${fmt(r.rowsPerSec)} | ` +
        `${r.msPerBatch} | ${r.p95MsPerBatch} |`,
    ),
    '',
    `## Migration PCA-32 → PCA-128 through a local stack (${fmt(MIGRATION_ROWS)} rows)`,
    '',
    migrated
      ? [
          '| rows | seconds | rows/s | rows embedded (catch-up included) | upsert rows/s (for scale) |',
          '|---:|---:|---:|---:|---:|',
          `| ${fmt(migrated.rows)} | ${migrated.seconds} | ${fmt(migrated.rowsPerSec)} | ` +
            `${fmt(migrated.embedded)} | ${fmt(migrated.upsertRowsPerSec)} |`,
        ].join('\n')
      : cli.has('--no-migration')
        ? 'Not run (--no-migration).'
        : 'migration API not available on this stack: not measured.',
    '',
  ].join('\n');
  cli.out({
    markdown,
    parameters: {
      dataset: 'fashion-like',
      dim: IMAGE_PIXELS,
      batch: BATCH,
      batches: BATCHES,
      warmupBatches: WARMUP_BATCHES,
      trainRows: TRAIN_ROWS,
      migrationRows: MIGRATION_ROWS,
    },
    rows: rows.map(({ model, runtime, batch, rowsPerSec, msPerBatch, p95MsPerBatch, loadMs, bytes }) => ({
      model,
      runtime,
      batch,
      rowsPerSec,
      msPerBatch,
      p95MsPerBatch,
      loadMs,
      bytes,
    })),
    tables: { migration: migrated },
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
