/**
 * Per-job limits and stops of the import runner on in-memory stores: `ROW_LIMIT`, `TIME_LIMIT` and
 * `REJECT_RATIO` end the job `failed` with their reason (rows before the limit stay); a cancel is
 * noticed at the next batch; a requeue by the sweeper (lease taken) stops the old invocation without
 * a write to the job; a file of one id repeated is a few writes, not one per row.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_IMPORT_LIMITS,
  MemoryImportJobStore,
  type ImportJob,
  type ImportLimits,
  newImportJob,
} from '../../shared/import/job.js';
import { parseReport } from '../../shared/import/report.js';
import { runImportJob, type ImportDeps } from '../../shared/import/runner.js';
import { memorySource } from '../../shared/import/s3-source.js';
import type { Catalog, CollectionMeta, ObjectStore, RecordStore, StoredRecord } from '../../shared/storage/types.js';

const META: CollectionMeta = {
  name: 'c',
  dimension: 4,
  metric: 'l2',
  index: { engine: 'flat', params: {} },
  createdAt: '',
  generation: 1,
};

interface Harness {
  jobs: MemoryImportJobStore;
  rows: Map<string, StoredRecord>;
  objects: Map<string, Uint8Array>;
  puts: number;
  deps: ImportDeps;
  job: ImportJob;
}

/** A JSONL file of `n` rows `r<i>` (or `bad(i)`'s line where it returns one). */
function jsonl(n: number, opts: { bad?: (i: number) => string | undefined; id?: (i: number) => string } = {}) {
  const lines: string[] = [];
  for (let i = 0; i < n; i++)
    lines.push(opts.bad?.(i) ?? JSON.stringify({ id: opts.id?.(i) ?? `r${i}`, values: [i, 1, 2, 3] }));
  return new TextEncoder().encode(lines.join('\n') + '\n');
}

async function harness(
  bytes: Uint8Array,
  opts: { limits?: Partial<ImportLimits>; onPut?: (n: number) => Promise<void> | void; now?: () => number } = {},
): Promise<Harness> {
  let seq = 0;
  const h = { rows: new Map<string, StoredRecord>(), objects: new Map<string, Uint8Array>(), puts: 0 } as Harness;
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
    put: async (rs: StoredRecord[]) => {
      await opts.onPut?.(++h.puts);
      for (const r of rs) h.rows.set(r.id, r);
    },
  } as unknown as RecordStore;
  const store: ObjectStore = {
    putImmutable: async (k, b) => void (h.objects.has(k) || h.objects.set(k, b)),
    get: async (k) => h.objects.get(k)!,
    hash: async () => {
      throw new Error('unused');
    },
    list: async function* () {},
    delete: async () => undefined,
  };
  h.jobs = new MemoryImportJobStore();
  const base = { collection: 'c', generation: 1, bucket: 'b', key: 'imports/c/f.jsonl', etag: 'e' };
  h.job = newImportJob(base, {
    size: bytes.byteLength,
    format: 'jsonl',
    createdAt: 0,
    limits: { ...DEFAULT_IMPORT_LIMITS, ...opts.limits },
  });
  await h.jobs.create(h.job);
  h.deps = {
    jobs: h.jobs,
    catalog,
    ingest: { catalog, records, wake: async () => undefined },
    objects: store,
    openSource: async () => memorySource(bytes),
    findSidecar: async () => undefined,
    enqueue: async () => undefined,
    batchRows: 100,
    concurrency: 1,
    ...(opts.now ? { now: opts.now } : {}),
  };
  return h;
}

const run = (h: Harness, deadline = Date.now() + 60_000) => runImportJob(h.deps, 'c', h.job.jobId, { deadline });

describe('import limits', () => {
  it('ROW_LIMIT: stops after maxRows rows; those rows stay imported', async () => {
    const h = await harness(jsonl(1000), { limits: { maxRows: 250 } });
    const out = await run(h);
    expect(out.job).toMatchObject({ state: 'failed', reason: 'ROW_LIMIT', rowsRead: 250, rowsWritten: 250 });
    expect(out.job?.error).toMatch(/more than 250 rows \(maxRows\)/);
    expect(h.rows.size).toBe(250);
  });

  it('a file of exactly maxRows rows succeeds', async () => {
    const h = await harness(jsonl(250), { limits: { maxRows: 250 } });
    expect((await run(h)).job).toMatchObject({ state: 'succeeded', rowsRead: 250 });
  });

  it('REJECT_RATIO: fails once more than the ratio of at least rejectRatioMinRows rows were rejected', async () => {
    // 3 of every 5 rows are bad: 60 % > 50 %, checked from row 1000 on.
    const bad = (i: number) => (i % 5 < 3 ? '{"id": "x", "values": [1]}' : undefined);
    const h = await harness(jsonl(5000, { bad }), { limits: { rejectRatioMinRows: 1000, maxRejectRatio: 0.5 } });
    const out = await run(h);
    expect(out.job).toMatchObject({ state: 'failed', reason: 'REJECT_RATIO', rowsRead: 1000, rowsRejected: 600 });
    expect(out.job?.rowsWritten).toBe(400);
    expect(out.job?.error).toMatch(/600 of the first 1000 rows were rejected, more than maxRejectRatio 0.5/);
    // The report lists what was rejected before the stop.
    expect(parseReport(h.objects.get(out.job!.report!)!)).toHaveLength(600);
  });

  it('REJECT_RATIO is not checked below rejectRatioMinRows, and never with maxRejectRatio 1', async () => {
    const bad = (i: number) => (i % 5 < 3 ? '{"id": "x", "values": [1]}' : undefined);
    const small = await harness(jsonl(999, { bad }), { limits: { rejectRatioMinRows: 1000 } });
    expect((await run(small)).job).toMatchObject({ state: 'partial', rowsRead: 999 });
    const lenient = await harness(jsonl(3000, { bad }), { limits: { maxRejectRatio: 1 } });
    expect((await run(lenient)).job).toMatchObject({ state: 'partial', rowsRead: 3000, rowsRejected: 1800 });
  });

  it('TIME_LIMIT: fails mid-run once the wall time from the first claim passes maxDurationSeconds', async () => {
    let clock = 1_000_000;
    // Every look at the clock costs 100 ms: the job runs out of its 60 s after some hundreds of rows.
    const h = await harness(jsonl(100_000), { limits: { maxDurationSeconds: 60 }, now: () => (clock += 100) });
    const out = await run(h, Number.MAX_SAFE_INTEGER);
    expect(out.job).toMatchObject({ state: 'failed', reason: 'TIME_LIMIT' });
    expect(out.job?.error).toMatch(/longer than its limit of 60 s \(maxDurationSeconds\)/);
    expect(out.job!.rowsRead).toBeGreaterThan(0);
    expect(out.job!.rowsRead).toBeLessThan(100_000);
    expect(h.rows.size).toBe(out.job!.rowsWritten);
  });

  it('TIME_LIMIT: a continuation claimed after the limit fails at once', async () => {
    let clock = 1_000_000;
    const h = await harness(jsonl(2000), { limits: { maxDurationSeconds: 60 }, now: () => clock });
    // The first invocation is out of time at once: it checkpoints and continues.
    expect((await run(h, clock)).outcome).toBe('continued');
    clock += 61_000;
    const out = await run(h, clock + 60_000);
    expect(out.job).toMatchObject({ state: 'failed', reason: 'TIME_LIMIT' });
  });
});

describe('stopping a running import', () => {
  it('a cancel is noticed at the next batch; rows written stay and are counted', async () => {
    const h: Harness = await harness(jsonl(5000), {
      onPut: async (n) => {
        if (n === 3) expect((await h.jobs.cancel('c', h.job.jobId, Date.now())).outcome).toBe('cancelled');
      },
    });
    const out = await run(h);
    expect(out.outcome).toBe('finished');
    // Batch 3 was in flight when the cancel landed: it lands; batch 4 is never sent.
    expect(out.job).toMatchObject({ state: 'cancelled', reason: 'CANCELLED', rowsWritten: 300, rowsRead: 300 });
    expect(out.job?.leaseToken).toBeUndefined();
    expect(h.rows.size).toBe(300);
    // A cancelled job is ended: no claim, no second cancel.
    expect((await h.jobs.cancel('c', h.job.jobId, Date.now())).outcome).toBe('ended');
    expect((await run(h)).outcome).toBe('skipped');
  });

  it('a cancel that lands while the last batch waits is honoured at the end of the file too', async () => {
    const h: Harness = await harness(jsonl(250), {
      onPut: async (n) => {
        if (n === 2) await h.jobs.cancel('c', h.job.jobId, Date.now());
      },
    });
    const out = await run(h);
    expect(out.job).toMatchObject({ state: 'cancelled', rowsRead: 200, rowsWritten: 200 });
    expect(h.rows.size).toBe(200);
  });

  it('a job cancelled before any invocation claimed it is never run', async () => {
    const h = await harness(jsonl(10));
    await h.jobs.cancel('c', h.job.jobId, Date.now());
    expect((await run(h)).outcome).toBe('skipped');
    expect(h.rows.size).toBe(0);
  });

  it('an invocation whose lease was taken by a requeue stops without touching the job', async () => {
    let clock = 1_000_000;
    const h: Harness = await harness(jsonl(5000), {
      now: () => clock,
      onPut: async (n) => {
        if (n !== 2) return;
        // The lease lapses (a slow worker) and the sweeper re-queues the job.
        const seen = (await h.jobs.get('c', h.job.jobId))!;
        clock = seen.leaseUntil! + 1;
        expect(await h.jobs.requeue('c', h.job.jobId, seen.heartbeatAt, clock)).toBe(true);
      },
    });
    const out = await run(h, clock + 1000);
    expect(out.outcome).toBe('skipped');
    const job = (await h.jobs.get('c', h.job.jobId))!;
    expect(job).toMatchObject({ state: 'running', requeues: 1, rowsWritten: 0 });
    expect(job.leaseToken).toBeUndefined();
    expect(h.rows.size).toBe(200);
  });

  it('a file of one id repeated is a few writes, and the last row wins', async () => {
    const n = 50_000;
    const h = await harness(jsonl(n, { id: () => 'same' }));
    const out = await run(h);
    expect(out.job).toMatchObject({ state: 'succeeded', rowsRead: n, rowsWritten: n });
    expect(h.puts).toBeLessThan(10);
    expect(Array.from(h.rows.get('same')!.vector!)).toEqual([n - 1, 1, 2, 3]);
  });

  it('a repeated id waits for the batch in flight that holds it, so the later row keeps the later seq', async () => {
    // Ids cycle every 150 rows with batches of 100: every batch repeats ids of the one before it.
    // Odd-numbered writes are slow: without the wait, the next batch would land first.
    const h = await harness(jsonl(3000, { id: (i) => `k${i % 150}` }), {
      onPut: (n) => (n % 2 ? new Promise((r) => setTimeout(r, 5)) : undefined),
    });
    h.deps.concurrency = 4;
    const out = await run(h);
    expect(out.job).toMatchObject({ state: 'succeeded', rowsRead: 3000 });
    for (let k = 0; k < 150; k++) expect(h.rows.get(`k${k}`)!.vector![0]).toBe(2850 + k);
  });
});
