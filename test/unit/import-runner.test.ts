/**
 * The import runner on in-memory stores: a 1 000 000-row file completes across many time-boxed
 * invocations (checkpoint + continuation), an invocation that crashes mid-way is resumed from its
 * checkpoint by the next one without double counting, and no invocation takes a job whose lease
 * is live.
 */
import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../shared/errors.js';
import { MemoryImportJobStore, type ImportJob, newImportJob } from '../../shared/import/job.js';
import { parseReport } from '../../shared/import/report.js';
import { runImportJob, type ImportDeps, type ImportJobMessage } from '../../shared/import/runner.js';
import { memorySource } from '../../shared/import/s3-source.js';
import type { ByteSource } from '../../shared/import/types.js';
import type { Catalog, CollectionMeta, ObjectStore, RecordStore, StoredRecord } from '../../shared/storage/types.js';
import { writeNpy } from '../helpers/parquet-writer.js';

const META: CollectionMeta = {
  name: 'c',
  dimension: 4,
  metric: 'l2',
  index: { engine: 'flat', params: {} },
  createdAt: '',
  generation: 1,
};

function fakes(opts: { failAfterPuts?: number } = {}) {
  let seq = 0;
  const rows = new Map<string, StoredRecord>();
  let puts = 0;
  const catalog = {
    getCollection: async (name: string) => {
      if (name !== 'c') throw new NotFoundError('no');
      return META;
    },
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
      if (opts.failAfterPuts !== undefined && ++puts > opts.failAfterPuts) throw new Error('injected crash');
      for (const r of rs) rows.set(r.id, r);
    },
  } as unknown as RecordStore;
  const objects = new Map<string, Uint8Array>();
  const store: ObjectStore = {
    putImmutable: async (k, b) => {
      if (!objects.has(k)) objects.set(k, b);
    },
    get: async (k) => objects.get(k)!,
    hash: async () => {
      throw new Error('imports never hash objects');
    },
    list: async function* () {},
    delete: async () => undefined,
  };
  return { catalog, records, objects, store, rows };
}

function newJob(key: string, size: number): ImportJob {
  const base = { collection: 'c', generation: 1, bucket: 'b', key, etag: 'e1' };
  return newImportJob(base, { size, format: 'npy', createdAt: Date.now() });
}

function deps(
  f: ReturnType<typeof fakes>,
  jobs: MemoryImportJobStore,
  source: ByteSource,
  queue: ImportJobMessage[],
  extra: Partial<ImportDeps> = {},
): ImportDeps {
  return {
    jobs,
    catalog: f.catalog,
    ingest: { catalog: f.catalog, records: f.records, wake: async () => undefined },
    objects: f.store,
    openSource: async () => source,
    findSidecar: async () => undefined,
    enqueue: async (m) => {
      queue.push(m);
    },
    batchRows: 1000,
    ...extra,
  };
}

describe('import runner', () => {
  it('imports a 1 000 000-row file across time-boxed invocations', async () => {
    const n = 1_000_000;
    const data = new Float32Array(n * 4).map((_, i) => (i % 97) / 97);
    data[123_456 * 4] = NaN;
    const npy = writeNpy(data, n, 4);
    const f = fakes();
    const jobs = new MemoryImportJobStore();
    const job = newJob('imports/c/big.npy', npy.byteLength);
    await jobs.create(job);
    const queue: ImportJobMessage[] = [{ type: 'import', collection: 'c', jobId: job.jobId }];
    let invocations = 0;
    while (queue.length) {
      const m = queue.shift()!;
      invocations++;
      await runImportJob(deps(f, jobs, memorySource(npy), queue, { checkpointEveryMs: 100 }), m.collection, m.jobId, {
        deadline: Date.now() + 400,
      });
    }
    const done = (await jobs.get('c', job.jobId))!;
    expect(invocations).toBeGreaterThan(2);
    expect(done).toMatchObject({
      state: 'partial',
      rowsRead: n,
      rowsWritten: n - 1,
      rowsRejected: 1,
      bytesRead: npy.byteLength,
    });
    expect(f.rows.size).toBe(n - 1);
    expect(parseReport(f.objects.get(done.report!)!)).toEqual([
      { row: 123_456, id: '123456', code: 'NOT_FINITE', reason: 'vector[0] is NaN' },
    ]);
  }, 60_000);

  it('resumes an interrupted invocation from its checkpoint without double counting', async () => {
    const n = 20_000;
    const data = new Float32Array(n * 4).map((_, i) => i);
    for (const r of [10, 15_000]) data[r * 4 + 2] = Infinity;
    const npy = writeNpy(data, n, 4);
    const jobs = new MemoryImportJobStore();
    const job = newJob('imports/c/x.npy', npy.byteLength);
    await jobs.create(job);
    const crashing = fakes({ failAfterPuts: 12 });
    let clock = Date.now();
    const queue: ImportJobMessage[] = [];
    const d1 = deps(crashing, jobs, memorySource(npy), queue, {
      checkpointEveryMs: 0,
      concurrency: 1,
      now: () => clock,
    });
    await expect(runImportJob(d1, 'c', job.jobId, { deadline: clock + 60_000 })).rejects.toThrow('injected crash');
    const mid = (await jobs.get('c', job.jobId))!;
    expect(mid.state).toBe('running');
    expect(mid.rowsWritten).toBeGreaterThan(0);
    expect(mid.rowsWritten).toBeLessThan(n);

    // The failed invocation gave its lease back. Another invocation holding a live lease (say, a
    // duplicate delivery still running) turns a redelivery away; once that lease expires, it resumes.
    expect(mid.leaseToken).toBeUndefined();
    expect(await jobs.claim('c', job.jobId, 'other', clock + 60_000, clock)).toBeDefined();
    const healthy = { ...crashing, records: fakes().records };
    const rows = new Map(crashing.rows);
    healthy.records = {
      put: async (rs: StoredRecord[]) => void rs.forEach((r) => rows.set(r.id, r)),
    } as unknown as RecordStore;
    const d2 = deps(healthy, jobs, memorySource(npy), queue, { now: () => clock });
    expect((await runImportJob(d2, 'c', job.jobId, { deadline: clock + 60_000 })).outcome).toBe('skipped');
    clock += 3 * 60_000;
    const out = await runImportJob(d2, 'c', job.jobId, { deadline: clock + 60_000 });
    expect(out.outcome).toBe('finished');
    expect(out.job).toMatchObject({
      state: 'partial',
      rowsRead: n,
      rowsWritten: n - 2,
      rowsRejected: 2,
      invocations: 3,
    });
    expect(rows.size).toBe(n - 2);
    const report = parseReport(crashing.objects.get(out.job!.report!)!);
    expect(report.map((r) => r.row)).toEqual([10, 15_000]);
  });

  it.each([
    ['deleted', () => Promise.reject(new NotFoundError('no such collection')), /was deleted during the import/],
    ['re-created', () => Promise.resolve({ ...META, generation: 2 }), /deleted and re-created during the import/],
  ] as const)('stops writing at the next batch when the collection is %s mid-import', async (_kind, after, message) => {
    // Prepare: 10 batches of 1 000 rows; the collection goes away after the third batch's check.
    const n = 10_000;
    const npy = writeNpy(
      new Float32Array(n * 4).map((_, i) => i),
      n,
      4,
    );
    const f = fakes();
    let checks = 0;
    const original = f.catalog.getCollection.bind(f.catalog);
    f.catalog.getCollection = (name: string) =>
      (++checks > 4 ? after() : original(name)) as ReturnType<typeof original>;
    const jobs = new MemoryImportJobStore();
    const job = newJob('imports/c/gone.npy', npy.byteLength);
    await jobs.create(job);
    // Act
    const out = await runImportJob(deps(f, jobs, memorySource(npy), []), 'c', job.jobId, {
      deadline: Date.now() + 60_000,
    });
    // Assess: failed with the reason, and no row written after the collection went away.
    expect(out.outcome).toBe('finished');
    expect(out.job?.state).toBe('failed');
    expect(out.job?.error).toMatch(message);
    expect(f.rows.size).toBe(3000);
  });
});
