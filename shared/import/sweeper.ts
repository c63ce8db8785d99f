/**
 * The import sweeper (docs/imports.md, "Recovery"): runs on the index builder's scheduled tick and
 * re-announces import jobs whose continuation was lost — an invocation killed mid-job (SIGKILL of
 * the local server, a Lambda timeout) or a message that never arrived.
 *
 *   queued | running ─┬─ live lease (leaseUntil ≥ now) ──────────────► leave: an invocation owns it
 *                     ├─ lease expired ──────────────────────────────► requeue (resume from the checkpoint)
 *                     ├─ no lease, heartbeat older than `staleMs` ───► requeue (lost continuation / first message)
 *                     └─ no lease, recent heartbeat ─────────────────► leave: its message is on the way
 *
 * A requeue is one conditional write on the heartbeat the sweeper read (`ImportJobStore.requeue`),
 * and only its winner sends the message: racing sweepers send one. A requeue also drops an expired
 * lease, so a worker that is alive but slow loses its next save (its token is gone) and stops, and
 * the claim of the new invocation is conditional too: one job never has two owners.
 */
import { logger } from '../log.js';
import type { Catalog } from '../storage/types.js';
import { DEFAULT_SWEEP_STALE_MS, TERMINAL_STATES, type ImportJob, type ImportJobStore } from './job.js';
import type { ImportJobMessage } from './runner.js';

export type SweepDecision =
  | { action: 'requeue'; why: 'lease-expired' | 'no-continuation' | 'never-claimed' }
  | { action: 'leave'; why: 'ended' | 'live-lease' | 'recent' };

/** The last sign of life of a job: its heartbeat, else its first claim, else its creation (epoch ms). */
export function lastHeartbeat(job: ImportJob): number {
  return job.heartbeatAt ?? Date.parse(job.startedAt ?? job.createdAt);
}

/** What the sweeper does with one job at `now` (pure; the unit tests pin every branch). */
export function sweepDecision(job: ImportJob, now: number, staleMs: number): SweepDecision {
  if (TERMINAL_STATES.includes(job.state)) return { action: 'leave', why: 'ended' };
  if (job.leaseUntil !== undefined) {
    return job.leaseUntil >= now ? { action: 'leave', why: 'live-lease' } : { action: 'requeue', why: 'lease-expired' };
  }
  if (now - lastHeartbeat(job) < staleMs) return { action: 'leave', why: 'recent' };
  return { action: 'requeue', why: job.state === 'queued' ? 'never-claimed' : 'no-continuation' };
}

export interface SweepDeps {
  jobs: ImportJobStore;
  catalog: Pick<Catalog, 'listCollections'>;
  enqueue(message: ImportJobMessage): Promise<void>;
  now?: () => number;
  /** Default `DEFAULT_SWEEP_STALE_MS`. */
  staleMs?: number;
}

export interface SweepResult {
  /** Active (queued or running) jobs looked at. */
  active: number;
  /** Jobs this sweeper re-announced. */
  requeued: Array<{ collection: string; jobId: string; why: string }>;
  /** Jobs another sweeper (or a re-POST, or a claim) moved first. */
  lostRaces: number;
}

/**
 * One sweep over every collection's active import jobs. A collection whose sweep fails is logged
 * and skipped; the others still run.
 */
export async function sweepImports(deps: SweepDeps): Promise<SweepResult> {
  const now = deps.now ?? Date.now;
  const staleMs = deps.staleMs ?? DEFAULT_SWEEP_STALE_MS;
  const result: SweepResult = { active: 0, requeued: [], lostRaces: 0 };
  for (const c of await deps.catalog.listCollections()) {
    try {
      for (const job of await deps.jobs.listActive(c.name)) {
        result.active++;
        const t = now();
        const d = sweepDecision(job, t, staleMs);
        if (d.action === 'leave') continue;
        if (!(await deps.jobs.requeue(job.collection, job.jobId, job.heartbeatAt, t))) {
          result.lostRaces++;
          continue;
        }
        // A job of an older generation is announced too: its run fails it (the collection is gone).
        await deps.enqueue({ type: 'continue', collection: job.collection, jobId: job.jobId });
        result.requeued.push({ collection: job.collection, jobId: job.jobId, why: d.why });
        logger.warn('import job re-queued by the sweeper', {
          collection: job.collection,
          job: job.jobId,
          why: d.why,
          state: job.state,
          rows: job.rowsRead,
        });
      }
    } catch (err) {
      logger.error('import sweep failed', { collection: c.name, error: err as Error });
    }
  }
  return result;
}
