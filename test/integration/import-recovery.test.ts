/**
 * Import recovery against the embedded emulators (real conditional writes on DynamoDB, reports in
 * S3), with a test clock: a worker that dies mid-job (its writes hang after N batches, its
 * continuation never sent) is re-queued by the sweeper once its lease expires and the job completes
 * with every row present exactly once — also when the dead worker turns out to be merely slow and
 * wakes up afterwards; a lost continuation is re-sent after the quiet period; racing sweepers send
 * one message; a cancel stops a running worker at its next batch; each limit ends the job `failed`
 * with its reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { DEFAULT_IMPORT_LIMITS, type ImportJob, type ImportLimits, newImportJob } from '../../shared/import/job.js';
import { parseReport } from '../../shared/import/report.js';
import { runImportJob, type ImportDeps, type ImportJobMessage } from '../../shared/import/runner.js';
import { memorySource } from '../../shared/import/s3-source.js';
import { sweepImports } from '../../shared/import/sweeper.js';
import { makeAwsClients } from '../../shared/storage/clients.js';
import { DynamoImportJobs } from '../../shared/storage/dynamo-import-jobs.js';
import { collectionKey } from '../../shared/storage/keys.js';
import type { CollectionMeta, RecordStore, StoredRecord } from '../../shared/storage/types.js';
import { lifecycleCores, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';

const COLLECTION = 'rec';
const STALE_MS = 300_000;
let clock = Date.parse('2025-06-01T00:00:00Z');
const now = (): number => clock;
let stack: EmulatedStack;
let jobs: DynamoImportJobs;
let meta: CollectionMeta;

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-recovery', now });
  const e = stack.emulators.endpoints;
  const aws = makeAwsClients(
    parseConfig({
      AWS_REGION: e.region,
      SHOAL_BUCKET: 'shoal-recovery',
      SHOAL_CATALOG_TABLE: 'catalog',
      SHOAL_RECORDS_TABLE: 'records',
      SHOAL_BUILD_QUEUE_URL: `${e.sqs}/000000000000/build`,
      SHOAL_S3_ENDPOINT: e.s3,
      SHOAL_DYNAMODB_ENDPOINT: e.dynamodb,
      SHOAL_SQS_ENDPOINT: e.sqs,
    }),
  );
  jobs = new DynamoImportJobs({ ddb: aws.ddb, table: 'catalog' });
  const { core } = lifecycleCores(stack, now);
  await core.createCollection({ name: COLLECTION, dimension: 4, metric: 'l2', index: { engine: 'flat' } });
  meta = await stack.catalog.getCollection(COLLECTION);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

/** Row i of every file: id `<prefix><i>`, vector [i, 1, 2, 3]; `bad(i)` replaces a line. */
function jsonl(prefix: string, n: number, bad?: (i: number) => string | undefined): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(bad?.(i) ?? JSON.stringify({ id: `${prefix}${i}`, values: [i, 1, 2, 3] }));
  return new TextEncoder().encode(lines.join('\n') + '\n');
}

async function newJob(key: string, bytes: Uint8Array, limits: Partial<ImportLimits> = {}): Promise<ImportJob> {
  const base = { collection: COLLECTION, generation: meta.generation, bucket: 'src', key, etag: 'e1' };
  const job = newImportJob(base, {
    size: bytes.byteLength,
    format: 'jsonl',
    createdAt: clock,
    limits: { ...DEFAULT_IMPORT_LIMITS, ...limits },
  });
  expect((await jobs.create(job)).created).toBe(true);
  return job;
}

/** A gate a worker's writes wait on from its `after`-th write on (the worker "dies" there until opened). */
function gated(after: number) {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let blocked!: () => void;
  const stuck = new Promise<void>((r) => (blocked = r));
  let puts = 0;
  const records: RecordStore = Object.create(stack.records, {
    put: {
      value: async (rs: StoredRecord[]) => {
        if (++puts >= after) {
          blocked();
          await gate;
        }
        return stack.records.put(rs);
      },
    },
  });
  return { records, open, stuck };
}

function deps(
  bytes: Uint8Array,
  sent: ImportJobMessage[],
  records: RecordStore = stack.records,
  extra: Partial<ImportDeps> = {},
): ImportDeps {
  return {
    jobs,
    catalog: stack.catalog,
    ingest: { catalog: stack.catalog, records, wake: async () => undefined },
    objects: stack.objects,
    openSource: async () => memorySource(bytes),
    findSidecar: async () => undefined,
    enqueue: async (m) => void sent.push(m),
    now,
    batchRows: 100,
    concurrency: 1,
    // A checkpoint at every look at the clock (every 64 rows, or an empty batch): fine-grained resumes.
    checkpointEveryMs: 0,
    ...extra,
  };
}

/** One sweeper pass; messages (and requeues) for other tests' jobs are left out. */
async function sweep(sent: ImportJobMessage[], jobId: string) {
  const out = await sweepImports({
    jobs,
    catalog: stack.catalog,
    enqueue: async (m) => void (m.jobId === jobId && sent.push(m)),
    now,
    staleMs: STALE_MS,
  });
  return { ...out, requeued: out.requeued.filter((r) => r.jobId === jobId) };
}

/**
 * The records of the collection whose id starts with `prefix` are exactly rows 0..n-1, each written once:
 * one record per id (the table's key), no id beyond them, and every write in the collection's log
 * accounted for by one id (`tail` from 0 yields each id once, at its newest write).
 */
async function expectRowsExactlyOnce(prefix: string, n: number): Promise<void> {
  const seen = new Map<string, number>();
  for await (const page of stack.records.tail(collectionKey(meta), 0)) {
    for (const r of page) {
      if (!r.id.startsWith(prefix)) continue;
      seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
      expect(r.vector?.[0]).toBe(Number(r.id.slice(prefix.length)));
    }
  }
  expect(seen.size).toBe(n);
  for (let i = 0; i < n; i++) expect(seen.get(`${prefix}${i}`), `${prefix}${i}`).toBe(1);
}

describe('import recovery on the emulators', () => {
  it('re-queues a job whose worker died once its lease expires; the job completes with every row once', async () => {
    const n = 3000;
    const bytes = jsonl('d', n);
    const job = await newJob('imports/rec/died.jsonl', bytes);
    // Worker A writes 7 batches, then hangs on the 8th (a SIGKILL or a Lambda timeout, as far as anyone can tell).
    const a = gated(8);
    const dropped: ImportJobMessage[] = [];
    const worker = runImportJob(deps(bytes, dropped, a.records), COLLECTION, job.jobId, { deadline: clock + 60_000 });
    await a.stuck;
    const mid = (await jobs.get(COLLECTION, job.jobId))!;
    expect(mid).toMatchObject({ state: 'running', invocations: 1 });
    expect(mid.rowsWritten).toBeGreaterThan(0);
    expect(mid.rowsWritten).toBeLessThan(n);

    // While the lease is live, the sweeper leaves the job alone.
    const sent: ImportJobMessage[] = [];
    expect((await sweep(sent, job.jobId)).requeued).toEqual([]);

    // The lease expires; two sweepers race: one message.
    clock = mid.leaseUntil! + 1;
    const [s1, s2] = await Promise.all([sweep(sent, job.jobId), sweep(sent, job.jobId)]);
    expect(s1.requeued.length + s2.requeued.length).toBe(1);
    expect(sent).toEqual([{ type: 'continue', collection: COLLECTION, jobId: job.jobId }]);
    expect((await jobs.get(COLLECTION, job.jobId))!.leaseToken).toBeUndefined();

    // Worker B takes the message and resumes from A's checkpoint.
    const next: ImportJobMessage[] = [];
    const out = await runImportJob(deps(bytes, next), COLLECTION, job.jobId, { deadline: clock + 60_000 });
    expect(out.outcome).toBe('finished');
    expect(out.job).toMatchObject({
      state: 'succeeded',
      rowsRead: n,
      rowsWritten: n,
      rowsRejected: 0,
      invocations: 2,
      requeues: 1,
    });
    expect(next).toEqual([]);

    // A was only slow: it wakes up, its pending write lands (same rows, same values), and it stops
    // without touching the job.
    a.open();
    expect((await worker).outcome).toBe('skipped');
    expect(await jobs.get(COLLECTION, job.jobId)).toMatchObject({ state: 'succeeded', rowsRead: n, rowsWritten: n });
    await expectRowsExactlyOnce('d', n);
  });

  it('re-sends a lost continuation after the quiet period', async () => {
    const n = 1000;
    const bytes = jsonl('l', n);
    const job = await newJob('imports/rec/lost.jsonl', bytes);
    // Out of time at once: the worker checkpoints, releases and "sends" a continuation that is lost.
    const lost: ImportJobMessage[] = [];
    expect((await runImportJob(deps(bytes, lost), COLLECTION, job.jobId, { deadline: clock })).outcome).toBe(
      'continued',
    );
    expect(lost).toHaveLength(1);
    const released = (await jobs.get(COLLECTION, job.jobId))!;
    expect(released.leaseToken).toBeUndefined();
    expect(released.rowsRead).toBeGreaterThan(0);
    expect(released.rowsRead).toBeLessThan(n);

    const sent: ImportJobMessage[] = [];
    clock += STALE_MS - 1;
    expect((await sweep(sent, job.jobId)).requeued).toEqual([]);
    clock += 1;
    const swept = await sweep(sent, job.jobId);
    expect(swept.requeued).toEqual([{ collection: COLLECTION, jobId: job.jobId, why: 'no-continuation' }]);
    expect(sent).toHaveLength(1);
    const out = await runImportJob(deps(bytes, []), COLLECTION, job.jobId, { deadline: clock + 60_000 });
    expect(out.job).toMatchObject({ state: 'succeeded', rowsRead: n, rowsWritten: n });
    await expectRowsExactlyOnce('l', n);
  });

  it('a requeue loses to a claim that moved the heartbeat first (no second owner, no message)', async () => {
    const bytes = jsonl('q', 10);
    const job = await newJob('imports/rec/claimed.jsonl', bytes);
    clock += STALE_MS;
    const [seen] = (await jobs.listActive(COLLECTION)).filter((j) => j.jobId === job.jobId);
    expect(await jobs.claim(COLLECTION, job.jobId, 'worker', clock + 60_000, clock)).toBeDefined();
    expect(await jobs.requeue(COLLECTION, job.jobId, seen.heartbeatAt, clock)).toBe(false);
    // Even with the fresh heartbeat, a live lease is never taken.
    const claimed = (await jobs.get(COLLECTION, job.jobId))!;
    expect(await jobs.requeue(COLLECTION, job.jobId, claimed.heartbeatAt, clock)).toBe(false);
    await jobs.finish(COLLECTION, job.jobId, 'worker', { state: 'succeeded' }, clock);
  });

  it('a cancel stops a running worker at its next batch; written rows stay; the job is final', async () => {
    const n = 3000;
    const bytes = jsonl('c', n);
    const job = await newJob('imports/rec/cancel.jsonl', bytes);
    const w = gated(3);
    // No checkpoints (the clock stands still): batches of exactly 100 rows.
    const d = deps(bytes, [], w.records, { checkpointEveryMs: 60_000 });
    const worker = runImportJob(d, COLLECTION, job.jobId, { deadline: clock + 60_000 });
    await w.stuck;
    const cancelled = await jobs.cancel(COLLECTION, job.jobId, clock);
    expect(cancelled.outcome).toBe('cancelled');
    w.open();
    const out = await worker;
    expect(out.outcome).toBe('finished');
    // The third batch was in flight: it lands and counts; the fourth is never sent.
    expect(out.job).toMatchObject({ state: 'cancelled', reason: 'CANCELLED', rowsRead: 300, rowsWritten: 300 });
    expect(out.job?.leaseToken).toBeUndefined();
    await expectRowsExactlyOnce('c', 300);
    expect((await jobs.cancel(COLLECTION, job.jobId, clock)).outcome).toBe('ended');
    expect((await jobs.cancel(COLLECTION, '000000000000000000000000', clock)).outcome).toBe('missing');
    // Nothing resurrects it: the sweeper does not list it, a claim is refused.
    clock += 10 * STALE_MS;
    const sent: ImportJobMessage[] = [];
    await sweep(sent, job.jobId);
    expect(sent.filter((m) => m.jobId === job.jobId)).toEqual([]);
    expect(await jobs.claim(COLLECTION, job.jobId, 'late', clock + 60_000, clock)).toBeUndefined();
  });

  it('ROW_LIMIT ends the job failed after maxRows rows; those rows stay', async () => {
    const bytes = jsonl('m', 1000);
    const job = await newJob('imports/rec/rows.jsonl', bytes, { maxRows: 250 });
    const out = await runImportJob(deps(bytes, []), COLLECTION, job.jobId, { deadline: clock + 60_000 });
    expect(out.job).toMatchObject({ state: 'failed', reason: 'ROW_LIMIT', rowsRead: 250, rowsWritten: 250 });
    await expectRowsExactlyOnce('m', 250);
  });

  it('REJECT_RATIO ends the job failed with the rejects so far in its report', async () => {
    const bytes = jsonl('x', 3000, (i) => (i % 4 === 0 ? undefined : '{"id": "bad", "values": [1]}'));
    const job = await newJob('imports/rec/ratio.jsonl', bytes, { maxRejectRatio: 0.5, rejectRatioMinRows: 1000 });
    const out = await runImportJob(deps(bytes, []), COLLECTION, job.jobId, { deadline: clock + 60_000 });
    expect(out.job).toMatchObject({
      state: 'failed',
      reason: 'REJECT_RATIO',
      rowsRead: 1000,
      rowsRejected: 750,
      rowsWritten: 250,
    });
    const report = parseReport(await stack.objects.get(out.job!.report!));
    expect(report).toHaveLength(750);
    expect(report[0]).toMatchObject({ line: 2, code: 'WRONG_DIMENSION' });
  });

  it('TIME_LIMIT fails a continuation claimed after the wall-time limit', async () => {
    const bytes = jsonl('t', 2000);
    const job = await newJob('imports/rec/time.jsonl', bytes, { maxDurationSeconds: 600 });
    expect((await runImportJob(deps(bytes, []), COLLECTION, job.jobId, { deadline: clock })).outcome).toBe('continued');
    clock += 601_000;
    const out = await runImportJob(deps(bytes, []), COLLECTION, job.jobId, { deadline: clock + 60_000 });
    expect(out.job).toMatchObject({ state: 'failed', reason: 'TIME_LIMIT' });
    expect(out.job?.error).toMatch(/maxDurationSeconds/);
  });
});
