/**
 * The bounded unindexed tail (docs/architecture.md §7.2) on the emulators: upserts over the cap are a 429
 * BACKPRESSURE with nothing written and the builder woken; an import pauses (checkpoint, continuation
 * delayed) instead of growing the tail, and finishes with every row once the builder caught up; a strong
 * read that cannot read its tail within the budget is a 503 TAIL_BUDGET_EXCEEDED, an eventual one answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../../shared/api/router.js';
import { BackpressureError, TailBudgetError } from '../../shared/errors.js';
import { newImportJob } from '../../shared/import/job.js';
import { PAUSE_DELAY_S, runImportJob, type ImportJobMessage } from '../../shared/import/runner.js';
import { memorySource } from '../../shared/import/s3-source.js';
import { TailCap } from '../../shared/ingest/backpressure.js';
import type { QueueProducer } from '../../shared/queue/messages.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { TailCache } from '../../shared/search/tail-cache.js';
import { createServices, type Services } from '../../shared/services.js';
import { DynamoImportJobs } from '../../shared/storage/dynamo-import-jobs.js';
import type { RecordStore } from '../../shared/storage/types.js';
import { searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

const DIM = 4;
/** 100 pending rows of 4 floats: 1,600 bytes. */
const CAP_BYTES = 100 * DIM * 4;
let clock = Date.parse('2025-07-01T00:00:00Z');
const now = (): number => clock;
let stack: EmulatedStack;
let services: Services;
const wakes: string[] = [];

function servicesWith(extra: { tailCapBytes?: number; strongReadBudgetMs?: number; now?: () => number }): Services {
  const queues: QueueProducer = {
    send: async (queue, message) => {
      if (queue === 'build' && 'collection' in message) wakes.push(message.collection);
    },
  };
  return createServices({
    catalog: stack.catalog,
    records: stack.records,
    objects: stack.objects,
    cache: new ShardCache({
      objects: stack.objects,
      memoryBytes: 64 * 2 ** 20,
      diskDir: stack.cacheDir,
      diskBytes: 64 * 2 ** 20,
    }),
    lifecycleStore: stack.lifecycle,
    queues,
    slots: 1,
    tails: new TailCache(stack.catalog, stack.records),
    codeVersion: 'test',
    now,
    ...extra,
  });
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-backpressure', now });
  services = servicesWith({ tailCapBytes: CAP_BYTES });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('tail cap', () => {
  it('refuses upserts over the cap (429 BACKPRESSURE), writes nothing, wakes the builder', async () => {
    const { core, indexer } = services;
    await core.createCollection({ name: 'bp', dimension: DIM, metric: 'l2', index: { engine: 'flat' } });
    const rows = vectorInputs(160, DIM, 5, 'b');
    await core.upsert('bp', rows.slice(0, 120)); // the cap is checked before a write: this one goes in whole
    clock += 2_000; // past the estimate's cache

    wakes.length = 0;
    const refused = await core.upsert('bp', rows.slice(120, 140)).catch((e: unknown) => e);
    const info = await core.getCollection('bp');
    expect(refused).toBeInstanceOf(BackpressureError);
    expect(refused).toMatchObject({ statusCode: 429, code: 'BACKPRESSURE', retryAfterSeconds: 5 });
    expect((refused as BackpressureError).details).toMatchObject({ capBytes: CAP_BYTES });
    expect(info.stats?.count).toBe(120);
    expect(wakes).toContain('bp');

    await indexer.buildNow('bp');
    clock += 2_000;
    await core.upsert('bp', rows.slice(120, 140));
    expect((await core.getCollection('bp')).stats?.count).toBe(140);
  });

  it('pauses an import over the cap (delayed continuation) and finishes it once the builder caught up', async () => {
    const { core, indexer } = services;
    await core.createCollection({ name: 'bpi', dimension: DIM, metric: 'l2', index: { engine: 'flat' } });
    const meta = await stack.catalog.getCollection('bpi');
    const n = 1_000;
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ id: `r${i}`, values: [i, 1, 2, 3] }));
    const bytes = new TextEncoder().encode(lines.join('\n') + '\n');
    const jobs = new DynamoImportJobs({ ddb: stack.aws.ddb, table: 'catalog' });
    const base = {
      collection: 'bpi',
      generation: meta.generation,
      bucket: 'src',
      key: 'imports/bpi/a.jsonl',
      etag: 'e',
    };
    const job = newImportJob(base, { size: bytes.byteLength, format: 'jsonl', createdAt: clock });
    await jobs.create(job);
    const sent: Array<{ message: ImportJobMessage; delaySeconds?: number }> = [];
    const deps = {
      jobs,
      catalog: stack.catalog,
      ingest: { catalog: stack.catalog, records: stack.records, wake: async () => undefined },
      objects: stack.objects,
      openSource: async () => memorySource(bytes),
      findSidecar: async () => undefined,
      enqueue: async (message: ImportJobMessage, options?: { delaySeconds?: number }) =>
        void sent.push({ message, ...options }),
      now,
      batchRows: 50,
      concurrency: 1,
      checkpointEveryMs: 0,
      tailCap: new TailCap(stack.catalog, CAP_BYTES, now, 0),
    };

    // Act: each invocation runs until the tail is over the cap; the builder runs between invocations.
    const outcomes: string[] = [];
    for (let i = 0; i < 40; i++) {
      const out = await runImportJob(deps, 'bpi', job.jobId, { deadline: clock + 60_000 });
      outcomes.push(out.outcome);
      if (out.outcome === 'finished') break;
      await indexer.buildNow('bpi');
    }
    const done = await jobs.get('bpi', job.jobId);
    const got = await core.getVectors(
      'bpi',
      Array.from({ length: n }, (_, i) => `r${i}`),
    );

    // Assess
    expect(outcomes.at(-1)).toBe('finished');
    expect(outcomes.filter((o) => o === 'continued').length).toBeGreaterThan(2);
    expect(sent.every((s) => s.delaySeconds === PAUSE_DELAY_S)).toBe(true);
    expect(done?.state).toBe('succeeded');
    expect(done?.rowsWritten).toBe(n);
    expect(got).toHaveLength(n);
  });
});

describe('row cap', () => {
  it('bounds the tail in rows too (reads cost per item): small vectors under the byte cap are refused', async () => {
    const { core } = services;
    await core.createCollection({ name: 'rows', dimension: DIM, metric: 'l2', index: { engine: 'flat' } });
    await core.upsert('rows', vectorInputs(20, DIM, 4, 'w'));
    const meta = await stack.catalog.getCollection('rows');

    const err = await new TailCap(stack.catalog, 2 ** 30, now, 0, 10).check(meta).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(BackpressureError);
    expect((err as BackpressureError).details).toMatchObject({ pendingRows: 20, capRows: 10 });
  });
});

describe('over HTTP (the router)', () => {
  it('answers 429 BACKPRESSURE with Retry-After', async () => {
    const tiny = servicesWith({ tailCapBytes: 16 });
    const api = createApi({
      service: tiny.core,
      authorize: (t) => (t === 'k' ? { role: 'admin', actor: 'k', bucket: 'k' } : undefined),
      version: 't',
    });
    const call = (path: string, body: unknown) =>
      api.handle({ method: 'POST', path, headers: { authorization: 'Bearer k' }, body: JSON.stringify(body) });
    await call('/v1/collections', { name: 'bph', dimension: DIM, metric: 'l2' });
    const vectors = vectorInputs(4, DIM, 3, 'h').map((v) => ({ id: v.id, values: Array.from(v.values) }));
    expect((await call('/v1/collections/bph/vectors', { vectors: vectors.slice(0, 2) })).statusCode).toBe(200);
    clock += 2_000;

    const res = await call('/v1/collections/bph/vectors', { vectors: vectors.slice(2) });

    expect(res.statusCode).toBe(429);
    expect(res.headers['Retry-After']).toBe('5');
    expect(JSON.parse(res.body).error.code).toBe('BACKPRESSURE');
  });
});

describe('strong-read time budget', () => {
  it('answers 503 TAIL_BUDGET_EXCEEDED instead of the function timeout; eventual reads answer', async () => {
    let t = clock;
    // A clock that jumps a second per reading: the budget of 1 ms is spent before the first batch ends.
    const jumpy = servicesWith({ strongReadBudgetMs: 1, now: () => (t += 1_000) });
    await jumpy.core.createCollection({ name: 'budget', dimension: DIM, metric: 'l2', index: { engine: 'flat' } });
    const rows = vectorInputs(20, DIM, 9, 'q');
    await jumpy.core.upsert('budget', rows);

    const strong = await jumpy.core.search('budget', searchInput(rows[0].values)).catch((e: unknown) => e);
    const eventual = await jumpy.core.search('budget', searchInput(rows[0].values, { consistency: 'eventual' }));

    expect(strong).toBeInstanceOf(TailBudgetError);
    expect(strong).toMatchObject({ statusCode: 503, code: 'TAIL_BUDGET_EXCEEDED' });
    expect(eventual.results[0]).toEqual([]);
  });

  it('keeps the progress of a strong read cut short by the budget: the retry reads only the rest', async () => {
    const open = servicesWith({});
    await open.core.createCollection({ name: 'resume', dimension: DIM, metric: 'l2', index: { engine: 'flat' } });
    const rows = vectorInputs(3000, DIM, 11, 'r');
    for (let i = 0; i < rows.length; i += 1000) await open.core.upsert('resume', rows.slice(i, i + 1000));
    let yielded = 0;
    const counting: RecordStore = Object.assign(Object.create(stack.records) as RecordStore, {
      tail: (ck: string, after: number, upTo?: number, progress?: (seq: number) => void) =>
        (async function* () {
          for await (const batch of stack.records.tail(ck, after, upTo, progress)) {
            yielded += batch.length;
            yield batch;
          }
        })(),
    });
    const tails = new TailCache(stack.catalog, counting);
    const meta = await stack.catalog.getCollection('resume');
    // A deadline passed after the third batch of reads (each check advances this clock by one).
    const deadline = () => {
      let ticks = 0;
      return { at: 1, budgetMs: 1, now: () => ticks++ };
    };
    await expect(tails.read(meta, 0, deadline())).rejects.toBeInstanceOf(TailBudgetError);
    const first = yielded;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(3000);
    // Without kept progress the retry would hit the same wall after the same three batches.
    const snapshot = await tails.read(meta, 0, deadline());
    expect(snapshot.records).toHaveLength(3000);
    expect(yielded - first).toBe(3000 - first);
  });
});
