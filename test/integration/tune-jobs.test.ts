/**
 * Tune jobs on the emulators (docs/architecture.md §8.7), at the LifecycleCore: the synchronous guard counts
 * live rows × queries (an injected limit), a started job is stored queued with its build-queue message, a
 * `running` job (its previous attempt died) runs again, progress is written at most once per second, and a
 * finished job never changes again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AsyncRequiredError } from '../../shared/errors.js';
import { LifecycleCore, TUNE_PROGRESS_INTERVAL_MS } from '../../shared/lifecycle/service.js';
import type { LifecycleStore } from '../../shared/lifecycle/types.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import type { TuneJob } from '../../shared/service-types.js';
import type { ShoalCore } from '../../shared/core.js';
import { lifecycleCores, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { mulberry32 } from '../helpers/random.js';

const ROWS = 400;
let stack: EmulatedStack;
let core: ShoalCore;
let clock = Date.parse('2026-01-01T00:00:00Z');
const enqueued: Array<{ collection: string; version: number; jobId: string }> = [];
/** Every job write, with the time it was made. */
const writes: Array<{ at: number; status: string; measured: number }> = [];
let life: LifecycleCore;

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-tune-jobs', now: () => clock });
  const cores = lifecycleCores(stack, () => clock);
  core = cores.core;
  await core.createCollection({ name: 'small', dimension: 8, metric: 'l2' });
  const rng = mulberry32(5);
  await core.upsert(
    'small',
    Array.from({ length: ROWS }, (_, i) => ({ id: `r${i}`, values: Float32Array.from({ length: 8 }, () => rng()) })),
  );
  await cores.indexer.buildNow('small');
  const store: LifecycleStore = Object.create(stack.lifecycle) as LifecycleStore;
  store.updateTuneJob = (job: TuneJob, ttl: number) => {
    writes.push({ at: clock, status: job.status, measured: job.progress.measured });
    return stack.lifecycle.updateTuneJob(job, ttl);
  };
  life = new LifecycleCore({
    catalog: stack.catalog,
    objects: stack.objects,
    cache: new ShardCache({ objects: stack.objects, memoryBytes: 64 * 2 ** 20 }),
    store,
    getCollection: (n) => core.getCollection(n),
    enqueueTune: async (collection, version, jobId) => void enqueued.push({ collection, version, jobId }),
    tuneSyncMaxRows: 100,
    // Every reading of the clock moves it 300 ms: the sweep's rows come faster than the throttle.
    now: () => (clock += 300),
  });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('tune jobs', () => {
  it('guards synchronous tunes by live rows × queries, before reading or storing anything', async () => {
    const err = await life.tuneVersion('small', 1, { targetRecall: 0.9, k: 10 }, { actor: 't' }).catch((e) => e);
    expect(err).toBeInstanceOf(AsyncRequiredError);
    expect(err).toMatchObject({ code: 'ASYNC_REQUIRED', statusCode: 422, field: 'async' });
    expect(err.message).toMatch(/400 live rows.*send `async: true`/);
    expect(await stack.lifecycle.getEvaluation('small', 1)).toBeUndefined();
    // 400 rows × 20 queries fits 100 rows × 100 queries.
    const ev = await life.tuneVersion('small', 1, { targetRecall: 0.9, k: 10, sample: 20 }, { actor: 't' });
    expect(ev.queries).toBe(20);
  });

  it('runs a job left running again, throttles its progress, and never changes a finished job', async () => {
    const queued = await life.startTuneJob('small', 1, { targetRecall: 0.95, k: 10, async: true }, { actor: 'al' });
    expect(queued).toMatchObject({ status: 'queued', input: { targetRecall: 0.95, k: 10, sample: 100 }, by: 'al' });
    expect(enqueued).toEqual([{ collection: 'small', version: 1, jobId: queued.id }]);
    expect(await life.getTuneJob('small', queued.id)).toEqual(queued);
    // The previous attempt died mid-sweep.
    await stack.lifecycle.updateTuneJob({ ...queued, status: 'running', progress: { measured: 3 } }, 60);
    writes.length = 0;
    const done = (await life.runTuneJob('small', queued.id))!;
    expect(done.status).toBe('succeeded');
    expect(done.evaluation).toEqual(await stack.lifecycle.getEvaluation('small', 1));
    expect(done.evaluation).toMatchObject({ by: 'al', queries: 100 });
    expect(done.progress.measured).toBe(done.evaluation!.tuning!.table.length);
    expect(done.evaluation!.tuning!.chosenEf).toBeDefined();
    expect((await core.getCollection('small')).index.efSearch).toBe(done.evaluation!.tuning!.chosenEf);
    // First write: running from 0; last: succeeded; progress writes in between ≥ 1 s apart.
    expect(writes[0]).toMatchObject({ status: 'running', measured: 0 });
    expect(writes.at(-1)!.status).toBe('succeeded');
    const running = writes.filter((w) => w.status === 'running');
    for (let i = 1; i < running.length; i++)
      expect(running[i].at - running[i - 1].at).toBeGreaterThanOrEqual(TUNE_PROGRESS_INTERVAL_MS);

    writes.length = 0;
    expect(await life.runTuneJob('small', queued.id)).toEqual(done);
    expect(writes).toEqual([]);
    expect(await stack.lifecycle.updateTuneJob({ ...done, status: 'running' }, 60)).toBe(false);
    expect(await life.getTuneJob('small', queued.id)).toEqual(done);
    await expect(life.getTuneJob('small', 'nope')).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'jobId' });
  });

  it("ends a job that runs out of its invocation's time failed with LIMIT_EXCEEDED, settings untouched", async () => {
    const before = (await core.getCollection('small')).index.efSearch;
    const evaluated = await stack.lifecycle.getEvaluation('small', 1);
    const job = await life.startTuneJob(
      'small',
      1,
      { targetRecall: 0.99, k: 10, sample: 50, async: true },
      {
        actor: 'al',
      },
    );
    const failed = (await life.runTuneJob('small', job.id, { deadline: 0 }))!;
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'LIMIT_EXCEEDED' } });
    expect(failed.error!.message).toMatch(/smaller `sample`/);
    expect(failed.evaluation).toBeUndefined();
    expect((await core.getCollection('small')).index.efSearch).toBe(before);
    expect(await stack.lifecycle.getEvaluation('small', 1)).toEqual(evaluated);
  });
});
