/**
 * Import benchmark: 100 000 × 128-d rows in each format (JSONL, JSONL.gz, CSV with a JSON vector
 * column, CSV.gz, Parquet, .npy), imported by the real runner (`runImportJob`: reader, row checks,
 * batching, checkpoints, report) into an in-memory record store, so the numbers are the import
 * path's own cost, not DynamoDB's. `--local` also imports each file through the embedded
 * emulators (dynalite + s3rver: the whole write path with seq leases), much slower.
 *
 *   npm run bench:import              # in-memory sink
 *   npm run bench:import -- --quick   # 10 000 rows
 *   npm run bench:import -- --rows 20000 --local
 *
 * Peak memory is sampled every 10 ms (RSS, and heap used above the baseline before the format's run).
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { MemoryImportJobStore, newImportJob } from '../shared/import/job.js';
import { runImportJob, type ImportDeps } from '../shared/import/runner.js';
import { memorySource } from '../shared/import/s3-source.js';
import type { ImportFormat } from '../shared/import/types.js';
import type { Catalog, CollectionMeta, ObjectStore, RecordStore } from '../shared/storage/types.js';
import { mulberry32 } from '../shared/random.js';
import { writeNpy, writeParquet } from '../test/helpers/parquet-writer.js';
import { machineLine, parseCli } from './cli.js';
import { Progress } from './progress.js';

const cli = parseCli({
  name: 'import',
  summary: 'Rows/s and peak memory of the import runner per file format (JSONL, CSV, Parquet, .npy, gzip).',
  quick: '10 000 rows per format',
  options: [
    { flag: '--rows', arg: 'n', help: 'rows per format (default 100 000)' },
    { flag: '--local', help: 'also import each file through the embedded emulators (much slower)' },
  ],
});
const ROWS = cli.int('--rows') ?? (cli.quick ? 10_000 : 100_000);
const DIM = 128;
const LOCAL = cli.has('--local');

const rng = mulberry32;

const r = rng(42);
const data = new Float32Array(ROWS * DIM).map(() => Math.round((r() * 2 - 1) * 1e4) / 1e4);
const vec = (i: number): number[] => Array.from(data.subarray(i * DIM, (i + 1) * DIM));

const enc = new TextEncoder();
const jsonlBytes = (): Uint8Array =>
  enc.encode(
    Array.from({ length: ROWS }, (_, i) =>
      JSON.stringify({ id: `r${i}`, values: vec(i), metadata: { i, tag: i % 7 === 0 ? 'x' : 'y' } }),
    ).join('\n') + '\n',
  );
const csvBytes = (): Uint8Array =>
  enc.encode(
    [
      'id,vector,i,tag',
      ...Array.from({ length: ROWS }, (_, i) => `r${i},"${JSON.stringify(vec(i))}",${i},${i % 7 === 0 ? 'x' : 'y'}`),
    ].join('\n') + '\n',
  );

/** One file at a time (built lazily), so RSS shows the import, not every input at once. */
const FILES: Array<{ format: ImportFormat; make: () => Uint8Array }> = [
  { format: 'jsonl', make: jsonlBytes },
  { format: 'jsonl.gz', make: () => gzipSync(jsonlBytes()) },
  { format: 'csv', make: csvBytes },
  { format: 'csv.gz', make: () => gzipSync(csvBytes()) },
  {
    format: 'parquet',
    make: () =>
      writeParquet(
        [
          { name: 'id', kind: 'string', values: Array.from({ length: ROWS }, (_, i) => `r${i}`) },
          {
            name: 'vector',
            kind: 'floatList',
            values: Array.from({ length: ROWS }, (_, i) => data.subarray(i * DIM, (i + 1) * DIM)),
          },
          { name: 'i', kind: 'int32', values: Array.from({ length: ROWS }, (_, i) => i) },
        ],
        10_000,
      ),
  },
  { format: 'npy', make: () => writeNpy(data, ROWS, DIM) },
];

/** Memory is sampled on a timer and at every batch write (a fast in-memory import may never yield to timers). */
let sample: () => void = () => undefined;

const META: CollectionMeta = {
  name: 'bench',
  dimension: DIM,
  metric: 'l2',
  index: { engine: 'flat', params: {} },
  createdAt: '',
  generation: 1,
};

async function runInMemory(format: ImportFormat, bytes: Uint8Array): Promise<number> {
  let seq = 0;
  let stored = 0;
  const catalog = {
    getCollection: async () => META,
    leaseSeqs: async (_c: string, n: number) => ({
      first: seq + 1,
      last: (seq += n),
      token: 't',
      expiresAt: Date.now() + 60_000,
    }),
    releaseSeqs: async () => true,
  } as unknown as Catalog;
  const records = {
    put: async (rs: unknown[]) => {
      stored += rs.length;
      sample();
    },
  } as unknown as RecordStore;
  const objects: ObjectStore = {
    putImmutable: async () => undefined,
    get: async () => new Uint8Array(),
    hash: async () => ({ sha256: '', bytes: 0, etag: '' }),
    list: async function* () {},
    delete: async () => undefined,
  };
  const jobs = new MemoryImportJobStore();
  const base = { collection: 'bench', generation: 1, bucket: 'b', key: `f.${format}`, etag: 'e' };
  const job = newImportJob(base, { size: bytes.byteLength, format, createdAt: Date.now() });
  await jobs.create(job);
  const deps: ImportDeps = {
    jobs,
    catalog,
    ingest: { catalog, records, wake: async () => undefined },
    objects,
    openSource: async () => memorySource(bytes, job.key, 1 << 20),
    findSidecar: async () => undefined,
    enqueue: async () => undefined,
  };
  const out = await runImportJob(deps, 'bench', job.jobId, { deadline: Date.now() + 3_600_000 });
  if (out.job?.state !== 'succeeded' || stored !== ROWS) throw new Error(`${format}: ${JSON.stringify(out.job)}`);
  return stored;
}

async function runLocal(format: ImportFormat, bytes: Uint8Array, ctx: LocalCtx): Promise<void> {
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  const name = `b${format.replace('.', '')}`;
  await ctx.service.createCollection({ name, dimension: DIM, metric: 'l2', index: { engine: 'flat' } });
  const key = `imports/${name}/data.${format}`;
  const put = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: bytes }));
  const etag = (put.ETag ?? '').replace(/"/g, '');
  const out = await ctx.imports.onObjectCreated(
    { bucket: ctx.bucket, key, etag, size: bytes.byteLength },
    Date.now() + 3_600_000,
  );
  if (out.job?.state !== 'succeeded') throw new Error(`${format}: ${JSON.stringify(out.job)}`);
}

interface LocalCtx {
  s3: import('@aws-sdk/client-s3').S3Client;
  bucket: string;
  service: import('../shared/service.js').ShoalService;
  imports: import('../shared/import/service.js').ImportService;
  stop(): Promise<void>;
}

async function startLocal(): Promise<LocalCtx> {
  const { startLocalShoal } = await import('../infra/local/shoal.js');
  const { mkdtemp } = await import('node:fs/promises');
  const { S3Client } = await import('@aws-sdk/client-s3');
  const { makeClientConfig } = await import('../infra/local/aws-clients.js');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-bench-import-'));
  const shoal = await startLocalShoal({ dataDir: dir, port: 0, silent: true, tickMs: 3_600_000 });
  const { getRuntime } = await import('../shared/runtime.js');
  const rt = await getRuntime();
  return {
    s3: new S3Client(makeClientConfig(shoal.endpoints, 's3')),
    bucket: shoal.resources.bucket,
    service: rt.service,
    imports: rt.imports,
    stop: () => shoal.stop(),
  };
}

function mb(n: number): string {
  return (n / 2 ** 20).toFixed(1);
}

async function measure(fn: () => Promise<unknown>): Promise<{ ms: number; peakRss: number; peakHeap: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const baseHeap = process.memoryUsage().heapUsed;
  let peakRss = process.memoryUsage().rss;
  let peakHeap = 0;
  sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed - baseHeap);
  };
  const timer = setInterval(sample, 10);
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  clearInterval(timer);
  return { ms, peakRss, peakHeap };
}

const rows: Array<{
  format: ImportFormat;
  fileBytes: number;
  rowsPerSec: number;
  seconds: number;
  peakRssBytes: number;
  peakHeapBytes: number;
  localRowsPerSec: number | null;
}> = [];
const local = LOCAL ? await startLocal() : undefined;
const progress = new Progress(FILES.length);
for (const { format, make } of FILES) {
  progress.step(format);
  let bytes: Uint8Array | undefined = make();
  const input = bytes;
  const m = await measure(() => runInMemory(format, input));
  let localRowsPerSec: number | null = null;
  if (local) {
    const l = await measure(() => runLocal(format, input, local));
    localRowsPerSec = ROWS / (l.ms / 1000);
  }
  const size = bytes.byteLength;
  bytes = undefined;
  rows.push({
    format,
    fileBytes: size,
    rowsPerSec: ROWS / (m.ms / 1000),
    seconds: m.ms / 1000,
    peakRssBytes: m.peakRss,
    peakHeapBytes: m.peakHeap,
    localRowsPerSec,
  });
}
progress.done();
await local?.stop();

const count = (x: number) => Math.round(x).toLocaleString('en-US');
cli.out({
  markdown: [
    `# Import benchmark (${cli.started.toISOString().slice(0, 10)})`,
    '',
    `${ROWS.toLocaleString('en-US')} × ${DIM}-d rows per format, imported by the real runner into an in-memory` +
      ` record store${LOCAL ? ' (and, in the last column, through the embedded emulators)' : ''}.`,
    `Machine: ${machineLine(cli.machine)}. Command: \`${cli.command}\`.`,
    'The file being imported is held in memory (it counts in RSS: subtract its size); inputs are built one at a time.',
    '',
    '| format | file size (MB) | rows/s | time (s) | peak RSS (MB) | peak heap above baseline (MB) |' +
      (LOCAL ? ' local rows/s |' : ''),
    `|---|---:|---:|---:|---:|---:|${LOCAL ? '---:|' : ''}`,
    ...rows.map(
      (r) =>
        `| ${r.format} | ${mb(r.fileBytes)} | ${count(r.rowsPerSec)} | ${r.seconds.toFixed(2)} |` +
        ` ${mb(r.peakRssBytes)} | ${mb(r.peakHeapBytes)} |` +
        (r.localRowsPerSec === null ? '' : ` ${count(r.localRowsPerSec)} |`),
    ),
    '',
  ].join('\n'),
  parameters: { rows: ROWS, dim: DIM, local: LOCAL, sink: 'in-memory record store' },
  rows,
  variant: cli.value('--rows') === undefined ? undefined : String(ROWS),
});
