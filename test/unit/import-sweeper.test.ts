/**
 * The import sweeper's decisions (every branch of `sweepDecision`) and its pass over an in-memory
 * store: stale jobs are re-announced once, live and recent ones are left alone, ended jobs are never
 * touched, racing sweepers send one message, and a requeue fences the old lease holder.
 */
import { describe, expect, it } from 'vitest';
import { MemoryImportJobStore, emptyProgress, type ImportJob, newImportJob } from '../../shared/import/job.js';
import type { ImportJobMessage } from '../../shared/import/runner.js';
import { lastHeartbeat, sweepDecision, sweepImports } from '../../shared/import/sweeper.js';
import { tickPeriodMs } from '../../infra/local/scheduler.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const STALE = 300_000;

function job(over: Partial<ImportJob> = {}, key = 'imports/c/x.jsonl'): ImportJob {
  const base = { collection: 'c', generation: 1, bucket: 'b', key, etag: 'e' };
  return { ...newImportJob(base, { size: 100, format: 'jsonl', createdAt: T0 }), ...over };
}

const catalog = { listCollections: async () => [{ name: 'c' }] } as never;

describe('sweepDecision', () => {
  it('leaves ended jobs, whatever their lease or age', () => {
    for (const state of ['succeeded', 'partial', 'failed', 'cancelled'] as const) {
      expect(sweepDecision(job({ state, leaseUntil: T0 - 1 }), T0 + 10 * STALE, STALE)).toEqual({
        action: 'leave',
        why: 'ended',
      });
    }
  });

  it('leaves a job whose lease is live (an invocation owns it), however quiet', () => {
    const j = job({ state: 'running', leaseToken: 't', leaseUntil: T0 + 1000, heartbeatAt: T0 - 10 * STALE });
    expect(sweepDecision(j, T0 + 1000, STALE)).toEqual({ action: 'leave', why: 'live-lease' });
  });

  it('re-queues a job whose lease expired at once (the invocation died)', () => {
    const j = job({ state: 'running', leaseToken: 't', leaseUntil: T0, heartbeatAt: T0 });
    expect(sweepDecision(j, T0 + 1, STALE)).toEqual({ action: 'requeue', why: 'lease-expired' });
  });

  it('gives a job without a lease its quiet period, then re-queues it', () => {
    const released = job({ state: 'running', heartbeatAt: T0 });
    expect(sweepDecision(released, T0 + STALE - 1, STALE)).toEqual({ action: 'leave', why: 'recent' });
    expect(sweepDecision(released, T0 + STALE, STALE)).toEqual({ action: 'requeue', why: 'no-continuation' });
    const queued = job();
    expect(lastHeartbeat(queued)).toBe(T0);
    expect(sweepDecision(queued, T0 + STALE - 1, STALE)).toEqual({ action: 'leave', why: 'recent' });
    expect(sweepDecision(queued, T0 + STALE, STALE)).toEqual({ action: 'requeue', why: 'never-claimed' });
  });

  it('with a zero quiet period (a re-POST) re-queues any job without a live lease', () => {
    expect(sweepDecision(job({ state: 'running', heartbeatAt: T0 }), T0, 0).action).toBe('requeue');
    expect(sweepDecision(job({ state: 'running', leaseUntil: T0 }), T0, 0).action).toBe('leave');
  });
});

describe('sweepImports', () => {
  it('re-announces stale jobs once and leaves the rest', async () => {
    const jobs = new MemoryImportJobStore();
    const dead = job({ state: 'running', leaseToken: 'dead', leaseUntil: T0 - 1, heartbeatAt: T0 - 60_000 }, 'k/dead');
    const live = job({ state: 'running', leaseToken: 'live', leaseUntil: T0 + 60_000, heartbeatAt: T0 }, 'k/live');
    const lost = job({ state: 'running', heartbeatAt: T0 - STALE }, 'k/lost');
    const fresh = job({ state: 'running', heartbeatAt: T0 - 1000 }, 'k/fresh');
    const done = job({ state: 'succeeded', heartbeatAt: T0 - 10 * STALE }, 'k/done');
    for (const j of [dead, live, lost, fresh, done]) await jobs.create(j);
    const sent: ImportJobMessage[] = [];
    const deps = { jobs, catalog, enqueue: async (m: ImportJobMessage) => void sent.push(m), now: () => T0 };

    const first = await sweepImports(deps);
    expect(first.active).toBe(4);
    expect(first.requeued.map((r) => [r.jobId, r.why]).sort()).toEqual(
      [
        [dead.jobId, 'lease-expired'],
        [lost.jobId, 'no-continuation'],
      ].sort(),
    );
    expect(sent.map((m) => m.jobId).sort()).toEqual([dead.jobId, lost.jobId].sort());
    expect(sent.every((m) => m.type === 'continue' && m.collection === 'c')).toBe(true);
    // The expired lease is gone: the old invocation, if alive, loses its next save.
    const after = (await jobs.get('c', dead.jobId))!;
    expect(after).toMatchObject({ heartbeatAt: T0, requeues: 1 });
    expect(after.leaseToken).toBeUndefined();
    expect(await jobs.save('c', dead.jobId, 'dead', emptyProgress(), T0 + 1e6, T0)).toBe(false);

    // The next tick: the re-queued jobs are recent now; nothing is sent twice.
    const second = await sweepImports(deps);
    expect(second.requeued).toEqual([]);
    expect(sent).toHaveLength(2);
  });

  it('racing sweepers send one message per stale job', async () => {
    const jobs = new MemoryImportJobStore();
    const stale = Array.from({ length: 8 }, (_, i) =>
      job({ state: 'running', leaseToken: `t${i}`, leaseUntil: T0 - 1, heartbeatAt: T0 - 1 }, `k/${i}`),
    );
    for (const j of stale) await jobs.create(j);
    // Both sweepers list before either writes: every requeue after the first loses its condition.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let listing = 0;
    const racing = {
      ...jobs,
      listActive: async (c: string) => {
        const out = await jobs.listActive(c);
        if (++listing === 2) release();
        await gate;
        return out;
      },
      requeue: jobs.requeue.bind(jobs),
    } as unknown as MemoryImportJobStore;
    const sent: ImportJobMessage[] = [];
    const deps = { jobs: racing, catalog, enqueue: async (m: ImportJobMessage) => void sent.push(m), now: () => T0 };
    const [a, b] = await Promise.all([sweepImports(deps), sweepImports(deps)]);
    expect(a.requeued.length + b.requeued.length).toBe(8);
    expect(a.lostRaces + b.lostRaces).toBe(8);
    expect(sent.map((m) => m.jobId).sort()).toEqual(stale.map((j) => j.jobId).sort());
  });

  it('logs a failing collection and sweeps the others', async () => {
    const jobs = new MemoryImportJobStore();
    const j = job({ collection: 'ok', heartbeatAt: T0 - STALE });
    await jobs.create(j);
    const broken = {
      ...jobs,
      listActive: async (c: string) => {
        if (c === 'bad') throw new Error('injected');
        return jobs.listActive(c);
      },
      requeue: jobs.requeue.bind(jobs),
    } as unknown as MemoryImportJobStore;
    const sent: ImportJobMessage[] = [];
    const out = await sweepImports({
      jobs: broken,
      catalog: { listCollections: async () => [{ name: 'bad' }, { name: 'ok' }] } as never,
      enqueue: async (m) => void sent.push(m),
      now: () => T0,
    });
    expect(out.requeued).toHaveLength(1);
    expect(sent).toEqual([{ type: 'continue', collection: 'ok', jobId: j.jobId }]);
  });
});

describe('the local tick that runs the sweeper', () => {
  it('defaults to the given period and takes SHOAL_LOCAL_TICK_S seconds when set', () => {
    expect(tickPeriodMs({}, 30_000)).toBe(30_000);
    expect(tickPeriodMs({ SHOAL_LOCAL_TICK_S: '' }, 30_000)).toBe(30_000);
    expect(tickPeriodMs({ SHOAL_LOCAL_TICK_S: '5' }, 30_000)).toBe(5_000);
    expect(tickPeriodMs({ SHOAL_LOCAL_TICK_S: '0.5' }, 30_000)).toBe(500);
    for (const bad of ['0', '-1', 'soon']) {
      expect(() => tickPeriodMs({ SHOAL_LOCAL_TICK_S: bad }, 30_000)).toThrow(/SHOAL_LOCAL_TICK_S must be a positive/);
    }
  });
});
