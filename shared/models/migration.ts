/**
 * Re-embedding migrations (docs/models.md, docs/architecture.md §8.10): a collection with an embedding
 * function moves to another model version by re-embedding every live row's kept raw input into a new
 * collection bound to that version, then the two are compared (neighbour overlap@k; kNN label agreement
 * where rows carry a label) so the switch can go through the usual path — an experiment behind an alias,
 * promote, one-call rollback.
 *
 * A migration is a job like an import (docs/architecture.md §9): an item in the source's catalog partition,
 * run in steps by the import function (each step until its deadline, then a checkpoint and a continuation
 * message), resumable from its checkpoint, with rejects and their reasons. Every write is conditional on
 * the revision the worker read, so a duplicate message, a crashed worker's redelivery or a cancel can never
 * interleave two writers: the loser re-reads and stops or resumes.
 *
 * Completeness: the copy pages the source's rows in seq order (the bySeq listing, §4.2); a row written
 * during the copy gets a new seq and shows up again ahead of the cursor, a delete as a tombstone. When the
 * listing ends, a strongly consistent read of the whole retained write log (§6.1) catches what the GSI had
 * not shown yet — the pattern of the delete-by-filter scan (§4.2). The log keeps at least the last 5 minutes
 * of writes and the GSI lags by far less, so every write is seen by one of the two reads: the target holds
 * every write acknowledged on the source before the catch-up read.
 */
import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  LimitExceededError,
  NotFoundError,
  RetryLaterError,
  TailBudgetError,
  ValidationError,
} from '../errors.js';
import { logger } from '../log.js';
import { mulberry32 } from '../random.js';
import type { InputRow, SearchOutput, ShoalService } from '../service.js';
import { collectionKey } from '../storage/keys.js';
import type { Catalog, CollectionMeta, ObjectStore, RecordStore, StoredRecord } from '../storage/types.js';
import type { Embedder, EmbeddingRequest } from './embedder.js';
import { loadInputs } from './inputs.js';

export type MigrationState = 'queued' | 'running' | 'evaluating' | 'done' | 'failed' | 'cancelled';
const TERMINAL: ReadonlySet<MigrationState> = new Set(['done', 'failed', 'cancelled']);

/**
 * Rows per re-embedding batch (default 256): one listing page, one raw-input GET per source batch object,
 * one inference call, one target write. Larger batches amortise round trips; smaller ones checkpoint more
 * often (less work repeated after a crash) and stay well inside a step's deadline.
 */
export const MIGRATION_BATCH_ROWS = 256;
/**
 * Seq ranges of the rows the copy applied, kept so the catch-up skips them (default cap 8,192 ranges, ≈ 150 KB
 * of the job item at worst). A bulk-loaded collection's seqs are one range; rewrites and deletes make gaps.
 * Past the cap the set is dropped and the catch-up re-embeds what the write log still holds: correct, slower.
 */
export const MIGRATION_MAX_COPIED_RANGES = 8192;
/** Rejects kept on the job item (the count is exact; the item stays far below DynamoDB's 400 KB). */
export const MIGRATION_MAX_REJECTS = 100;
/** Default evaluation queries (sampled rows of the source) and neighbours compared. */
export const DEFAULT_MIGRATION_SAMPLE = 200;
/** Delay before an evaluation whose strong searches ran out of tail budget tries again (a delta build's time). */
export const EVALUATION_RETRY_S = 30;
export const DEFAULT_MIGRATION_K = 10;

export interface MigrationReport {
  k: number;
  queries: number;
  /** Mean |top-k(source) ∩ top-k(target)| / k over the sampled rows' own inputs (the row itself left out). */
  overlapAtK: number;
  /** Share of sampled rows whose k nearest neighbours' majority label equals their own, per collection. */
  labelAgreement?: { field: string; rows: number; source: number; target: number };
}

export interface MigrationJob {
  id: string;
  source: string;
  target: string;
  from: { model: string; version: number };
  to: { model: string; version: number };
  state: MigrationState;
  /** copy: paging the source; catch-up: the write log after the listing's end; evaluate: comparing. */
  phase: 'copy' | 'catch-up' | 'evaluate' | 'finished';
  settings: { k: number; sample: number; labelField?: string; seed: number };
  createdAt: string;
  updatedAt: string;
  createdBy: string;
  progress: { rowsRead: number; embedded: number; rejected: number; deleted: number; steps: number };
  rejects: Array<{ id: string; reason: string }>;
  report?: MigrationReport;
  error?: string;
  // --- worker state (not shown by the API) ---
  cursor?: { seq: number; id: string };
  /** Highest source seq applied to the target. */
  lastSeq: number;
  /** Where the next catch-up read starts: 0 (the whole retained log), then the last seq a read saw. */
  catchUpFrom?: number;
  /**
   * Sorted inclusive seq ranges the copy applied: a log record with one of these seqs is the very write the
   * copy embedded, so the catch-up skips it. Absent once it outgrew MIGRATION_MAX_COPIED_RANGES.
   */
  copied?: Array<[number, number]>;
  /** Reservoir of evaluation rows (seeded), and how many rows it has seen. */
  samples: Array<{ id: string; ref: string; label?: string }>;
  seen: number;
  /** Bumped by every write; every write is conditional on the previous value. */
  rev: number;
  lease?: { token: string; until: number };
}

/** The job as the API shows it. */
export type MigrationView = Omit<
  MigrationJob,
  'cursor' | 'lastSeq' | 'catchUpFrom' | 'copied' | 'samples' | 'seen' | 'rev' | 'lease'
>;

export function migrationView(job: MigrationJob): MigrationView {
  const {
    cursor: _c,
    lastSeq: _l,
    catchUpFrom: _f,
    copied: _p,
    samples: _s,
    seen: _n,
    rev: _r,
    lease: _e,
    ...view
  } = job;
  return view;
}

export interface MigrationStore {
  /** Conditional put of a new job; false if the id exists. */
  create(job: MigrationJob): Promise<boolean>;
  get(source: string, id: string): Promise<MigrationJob | undefined>;
  list(source: string): Promise<MigrationJob[]>;
  /** Replaces the job if its stored `rev` is still `expectedRev` (the new job carries rev + 1). */
  replace(job: MigrationJob, expectedRev: number): Promise<boolean>;
}

export interface MigrationRequest {
  to: { model: string; version?: number; alias?: string };
  target?: string;
  labelField?: string;
  k?: number;
  sample?: number;
}

export interface MigrationDeps {
  store: MigrationStore;
  catalog: Catalog;
  records: RecordStore;
  objects: ObjectStore;
  embedder: Embedder;
  /** The core: creates the target, writes and searches through the normal paths. */
  service: Pick<ShoalService, 'createCollection' | 'upsert' | 'deleteVectors' | 'search' | 'getCollection'>;
  /** Asks the import function to run (or continue) the job; absent = the caller runs steps itself (tests). */
  enqueue?: (source: string, id: string, delaySeconds?: number) => Promise<void>;
  now?: () => number;
}

export class MigrationService {
  constructor(private readonly deps: MigrationDeps) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /**
   * Creates the target collection (same index settings, bound to the new version) and the job, and queues
   * it. The source must have an embedding function; the target name must be free.
   */
  async start(source: string, request: MigrationRequest, createdBy: string): Promise<MigrationJob> {
    const meta = await this.deps.catalog.getCollection(source);
    if (!meta.embedding) {
      throw new ValidationError(
        `collection ${JSON.stringify(source)} has no embedding function; only collections Shoal embeds keep ` +
          'the raw inputs a migration re-embeds',
        { field: 'name' },
      );
    }
    const embedding: EmbeddingRequest = {
      model: request.to.model,
      ...(request.to.version !== undefined ? { version: request.to.version } : {}),
      ...(request.to.alias !== undefined ? { alias: request.to.alias } : {}),
    };
    const { version } = await this.deps.embedder.bind(embedding).catch((err: unknown) => {
      if (err instanceof ValidationError && err.field?.startsWith('embedding')) {
        throw new ValidationError(err.message, { field: err.field.replace(/^embedding/, 'to') });
      }
      throw err;
    });
    if (version.name === meta.embedding.model && version.version === meta.embedding.version) {
      throw new ValidationError(`the collection already embeds with ${version.name} v${version.version}`, {
        field: 'to',
      });
    }
    const target = request.target ?? `${source}-${version.name}-v${version.version}`.slice(0, 255);
    const { engine, params } = meta.index;
    const { partitions: _p, nprobe: _n, ...index } = params as Record<string, number>;
    await this.deps.service
      .createCollection({
        name: target,
        embedding: { model: version.name, version: version.version },
        index: { engine, ...index },
        ...(meta.minRecall !== undefined ? { minRecall: meta.minRecall } : {}),
      })
      .catch((err: unknown) => {
        if (err instanceof ConflictError) {
          throw new ConflictError(`the target collection ${JSON.stringify(target)} exists; name another target`, {
            field: 'target',
          });
        }
        throw err;
      });
    const at = new Date(this.now()).toISOString();
    const job: MigrationJob = {
      id: `mig_${randomUUID().replace(/-/g, '').slice(0, 20)}`,
      source,
      target,
      from: { model: meta.embedding.model, version: meta.embedding.version },
      to: { model: version.name, version: version.version },
      state: 'queued',
      phase: 'copy',
      settings: {
        k: request.k ?? DEFAULT_MIGRATION_K,
        sample: request.sample ?? DEFAULT_MIGRATION_SAMPLE,
        ...(request.labelField !== undefined ? { labelField: request.labelField } : {}),
        seed: 1,
      },
      createdAt: at,
      updatedAt: at,
      createdBy,
      progress: { rowsRead: 0, embedded: 0, rejected: 0, deleted: 0, steps: 0 },
      rejects: [],
      lastSeq: 0,
      copied: [],
      samples: [],
      seen: 0,
      rev: 1,
    };
    if (!(await this.deps.store.create(job))) throw new ConflictError('migration id collision; retry', {});
    await this.deps.enqueue?.(source, job.id);
    return job;
  }

  async get(source: string, id: string): Promise<MigrationJob> {
    const job = await this.deps.store.get(source, id);
    if (!job)
      throw new NotFoundError(`migration ${JSON.stringify(id)} of ${JSON.stringify(source)} not found`, {
        field: 'id',
      });
    return job;
  }

  async list(source: string): Promise<MigrationJob[]> {
    await this.deps.catalog.getCollection(source);
    return (await this.deps.store.list(source)).sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  }

  /** Moves a queued or running job to `cancelled`; the worker sees it at its next checkpoint. */
  async cancel(source: string, id: string): Promise<MigrationJob> {
    for (;;) {
      const job = await this.get(source, id);
      if (TERMINAL.has(job.state)) return job;
      const next: MigrationJob = { ...job, state: 'cancelled', rev: job.rev + 1, updatedAt: this.iso() };
      delete next.lease;
      if (await this.deps.store.replace(next, job.rev)) return next;
    }
  }

  /** Marks a job failed unless it already ended (a step that keeps failing: poison messages). */
  async fail(source: string, id: string, reason: string): Promise<void> {
    for (;;) {
      const job = await this.deps.store.get(source, id);
      if (!job || TERMINAL.has(job.state)) return;
      const failed: MigrationJob = { ...job, state: 'failed', error: reason, rev: job.rev + 1, updatedAt: this.iso() };
      delete failed.lease;
      if (await this.deps.store.replace(failed, job.rev)) return;
    }
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  /**
   * One step of a job: claims it, re-embeds batches until `deadline`, checkpointing after each, then either
   * finishes (evaluation, `done`) or asks for a continuation. Returns the job as the step left it.
   */
  async run(source: string, id: string, deadline: number): Promise<MigrationJob | undefined> {
    let job = await this.deps.store.get(source, id);
    if (!job || TERMINAL.has(job.state)) return job;
    if (job.lease && job.lease.until > this.now()) {
      // Another worker holds it (a duplicate message, or a redelivery while a dead worker's lease runs): look
      // again once the lease lapses, so a job never waits on a message that was consumed here.
      const wait = Math.min(900, Math.max(1, Math.ceil((job.lease.until - this.now()) / 1000)));
      await this.deps.enqueue?.(source, id, wait);
      return job;
    }
    const claimed: MigrationJob = {
      ...job,
      state: job.phase === 'evaluate' ? 'evaluating' : 'running',
      lease: { token: randomUUID(), until: deadline + 60_000 },
      progress: { ...job.progress, steps: job.progress.steps + 1 },
      rev: job.rev + 1,
      updatedAt: this.iso(),
    };
    if (!(await this.deps.store.replace(claimed, job.rev))) return this.deps.store.get(source, id);
    job = claimed;
    try {
      const meta = await this.deps.catalog.getCollection(source);
      const target = await this.deps.catalog.getCollection(job.target);
      if (!target.embedding) throw new ValidationError(`target ${job.target} lost its embedding function`);
      while (job.phase !== 'finished') {
        if (this.now() >= deadline) return await this.continueLater(job);
        const next = await this.step(job, meta, target, deadline);
        const saved: MigrationJob = { ...next, rev: job.rev + 1, updatedAt: this.iso() };
        if (!(await this.deps.store.replace(saved, job.rev))) {
          // Cancelled (or taken over after our lease lapsed): stop without writing more.
          return this.deps.store.get(source, id);
        }
        job = saved;
      }
      const done: MigrationJob = { ...job, state: 'done', rev: job.rev + 1, updatedAt: this.iso() };
      delete done.lease;
      if (!(await this.deps.store.replace(done, job.rev))) return this.deps.store.get(source, id);
      logger.info('migration done', { source, id, target: job.target, ...job.progress });
      return done;
    } catch (err) {
      if (err instanceof RetryLaterError) {
        // The target's unindexed tail is over its cap: pause until the builder catches up.
        return this.continueLater(job, Math.max(1, err.retryAfterSeconds));
      }
      if (err instanceof TailBudgetError) {
        // The evaluation's strong searches could not read a large fresh target's tail in budget: let the
        // builder index it first.
        return this.continueLater(job, EVALUATION_RETRY_S);
      }
      if (err instanceof ValidationError || err instanceof NotFoundError || err instanceof LimitExceededError) {
        const failed: MigrationJob = { ...job, state: 'failed', error: err.message, rev: job.rev + 1 };
        delete failed.lease;
        await this.deps.store.replace(failed, job.rev);
        return failed;
      }
      throw err; // transient: the queue redelivers, the lease lapses, the next step resumes
    }
  }

  private async continueLater(job: MigrationJob, delaySeconds?: number): Promise<MigrationJob> {
    const released: MigrationJob = { ...job, rev: job.rev + 1, updatedAt: this.iso() };
    delete released.lease;
    if (!(await this.deps.store.replace(released, job.rev))) return job;
    await this.deps.enqueue?.(job.source, job.id, delaySeconds);
    return released;
  }

  /** One unit of work of the job's phase; returns the job to checkpoint. */
  private async step(
    job: MigrationJob,
    meta: CollectionMeta,
    target: CollectionMeta,
    deadline: number,
  ): Promise<MigrationJob> {
    const ck = collectionKey(meta);
    if (job.phase === 'copy') {
      const page = await this.deps.records.list(ck, {
        limit: MIGRATION_BATCH_ROWS,
        values: false,
        metadata: true,
        inputs: true,
        ...(job.cursor ? { after: job.cursor } : {}),
      });
      const next = await this.apply(job, meta, target, page.records);
      next.copied = addSeqs(job.copied, page.records);
      // The position the Query stopped at, not the last record returned: a page the lagging GSI shows empty
      // still moves on.
      if (page.next) next.cursor = page.next;
      else next.phase = 'catch-up';
      return next;
    }
    if (job.phase === 'catch-up') {
      // The whole retained log (every write of the last 5 minutes at least, and every unindexed one), read
      // strongly: a write the lagging GSI did not show the listing is here, whatever its seq. Rows the
      // listing copied already are written again (same input, same vector): the price of not trusting the GSI.
      // Then again from the last seq seen, until a read finds nothing new: writes that landed while the
      // previous read was being applied are carried over too.
      const from = job.catchUpFrom ?? 0;
      let next = job;
      let seen = from;
      // The counter item first: its pending write leases name acknowledged writes not yet in the log.
      const { pending } = await this.deps.catalog.seqState(meta.name);
      for await (const batch of this.deps.records.tail(ck, from, undefined, undefined, pending)) {
        for (const r of batch) seen = Math.max(seen, r.seq);
        const fresh = job.copied ? batch.filter((r) => !hasSeq(job.copied!, r.seq)) : batch;
        if (fresh.length) next = await this.apply(next, meta, target, fresh);
        // A long log is read over several steps: batches come in seq order, so the next read resumes here.
        if (this.now() >= deadline) return { ...next, catchUpFrom: seen };
      }
      if (seen > from) return { ...next, catchUpFrom: seen };
      return { ...next, phase: 'evaluate', state: 'evaluating' };
    }
    const report = await this.evaluate(job, meta);
    return { ...job, report, phase: 'finished' };
  }

  /** Re-embeds live rows into the target, deletes tombstoned ones, records rejects and samples. */
  private async apply(
    job: MigrationJob,
    meta: CollectionMeta,
    target: CollectionMeta,
    records: StoredRecord[],
  ): Promise<MigrationJob> {
    const next: MigrationJob = {
      ...job,
      progress: { ...job.progress },
      rejects: [...job.rejects],
      samples: [...job.samples],
    };
    const reject = (id: string, reason: string): void => {
      next.progress.rejected++;
      if (next.rejects.length < MIGRATION_MAX_REJECTS) next.rejects.push({ id, reason });
    };
    const live = records.filter((r) => !r.deleted);
    const gone = records.filter((r) => r.deleted).map((r) => r.id);
    next.progress.rowsRead += records.length;
    for (const r of records) next.lastSeq = Math.max(next.lastSeq, r.seq);
    if (gone.length) {
      await this.deps.service.deleteVectors(job.target, { ids: gone });
      next.progress.deleted += gone.length;
    }
    const withInput = live.filter((r) => {
      if (r.input !== undefined) return true;
      reject(r.id, 'no raw input: the row was upserted as values, so there is nothing to re-embed');
      return false;
    });
    if (!withInput.length) return next;
    const inputs = await loadInputs(
      this.deps.objects,
      collectionKey(meta),
      withInput.map((r) => r.input!),
    );
    const rows: InputRow[] = [];
    withInput.forEach((r, i) => {
      const input = inputs[i];
      const fn = target.embedding!;
      if (!input) reject(r.id, 'raw input missing or damaged in S3');
      else if (fn.text ? typeof input !== 'string' : typeof input === 'string' || input.length !== fn.inputLength) {
        const has = typeof input === 'string' ? 'is text' : `has ${input.length} values`;
        const takes = fn.text ? 'text' : `${fn.inputLength} values`;
        reject(r.id, `raw input ${has}; ${job.to.model} v${job.to.version} takes ${takes}`);
      } else rows.push({ id: r.id, input, ...(r.metadata !== undefined ? { metadata: r.metadata } : {}) });
    });
    if (!rows.length) return next;
    const vectors = await this.deps.embedder.toVectors(
      { binding: target.embedding!, ck: collectionKey(target) },
      rows,
      (i) => `rows[${rows[i]?.id ?? i}]`,
    );
    await this.deps.service.upsert(job.target, vectors, {
      modelVersion: { name: job.to.model, version: job.to.version },
    });
    next.progress.embedded += vectors.length;
    // Reservoir sample of evaluation rows, seeded: the same job picks the same rows whatever its steps.
    const field = job.settings.labelField;
    for (const r of rows) {
      next.seen++;
      const label = field !== undefined ? r.metadata?.[field] : undefined;
      const entry = {
        id: r.id,
        ref: withInput.find((w) => w.id === r.id)!.input!,
        ...(label !== undefined && label !== null ? { label: String(label) } : {}),
      };
      if (next.samples.length < job.settings.sample) next.samples.push(entry);
      else {
        const j = Math.floor(mulberry32(job.settings.seed * 1_000_003 + next.seen)() * next.seen);
        if (j < job.settings.sample) next.samples[j] = entry;
      }
    }
    return next;
  }

  /** Overlap@k of source and target neighbours of the sampled rows, and kNN label agreement of each. */
  private async evaluate(job: MigrationJob, meta: CollectionMeta): Promise<MigrationReport> {
    const { k, labelField } = job.settings;
    const sample = job.samples;
    const inputs = await loadInputs(
      this.deps.objects,
      collectionKey(meta),
      sample.map((s) => s.ref),
    );
    const usable = sample.flatMap((s, i) => (inputs[i] ? [{ ...s, input: inputs[i] }] : []));
    if (!usable.length) return { k, queries: 0, overlapAtK: 0 };
    const neighbours = async (collection: string): Promise<Array<Array<{ id: string; label?: string }>>> => {
      const out: Array<Array<{ id: string; label?: string }>> = [];
      for (let i = 0; i < usable.length; i += 100) {
        const part = usable.slice(i, i + 100);
        const res: SearchOutput = await this.deps.service.search(collection, {
          queries: [],
          inputs: part.map((u) => u.input),
          k: k + 1,
          consistency: 'strong',
          includeMetadata: labelField !== undefined,
          includeValues: false,
        });
        res.results.forEach((hits, j) => {
          out.push(
            hits
              .filter((h) => h.id !== part[j]!.id)
              .slice(0, k)
              .map((h) => {
                const label = labelField !== undefined ? h.metadata?.[labelField] : undefined;
                return { id: h.id, ...(label !== undefined && label !== null ? { label: String(label) } : {}) };
              }),
          );
        });
      }
      return out;
    };
    const a = await neighbours(job.source);
    const b = await neighbours(job.target);
    let overlap = 0;
    for (let i = 0; i < usable.length; i++) {
      const ids = new Set(a[i]!.map((h) => h.id));
      overlap += b[i]!.filter((h) => ids.has(h.id)).length / k;
    }
    const report: MigrationReport = { k, queries: usable.length, overlapAtK: round(overlap / usable.length) };
    if (labelField !== undefined) {
      const labelled = usable.map((u, i) => ({ u, i })).filter(({ u }) => u.label !== undefined);
      const agree = (hits: Array<Array<{ label?: string }>>): number =>
        labelled.filter(({ u, i }) => majority(hits[i]!.map((h) => h.label)) === u.label).length /
        Math.max(1, labelled.length);
      report.labelAgreement = {
        field: labelField,
        rows: labelled.length,
        source: round(agree(a)),
        target: round(agree(b)),
      };
    }
    return report;
  }
}

const round = (x: number): number => Math.round(x * 10_000) / 10_000;

/** The copy's seq ranges with a page's records added (pages come in seq order); undefined past the cap. */
function addSeqs(
  ranges: Array<[number, number]> | undefined,
  records: StoredRecord[],
): Array<[number, number]> | undefined {
  if (!ranges) return undefined;
  const out = ranges.map((r) => [r[0], r[1]] as [number, number]);
  for (const { seq } of [...records].sort((a, b) => a.seq - b.seq)) {
    const last = out.at(-1);
    if (last && seq >= last[0] && seq <= last[1] + 1) last[1] = Math.max(last[1], seq);
    else out.push([seq, seq]);
    if (out.length > MIGRATION_MAX_COPIED_RANGES) return undefined;
  }
  return out;
}

/** Binary search of sorted, disjoint inclusive ranges. */
export function hasSeq(ranges: ReadonlyArray<readonly [number, number]>, seq: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid]!;
    if (seq < a) hi = mid - 1;
    else if (seq > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** The most frequent defined label (ties: the one seen first, i.e. the nearer neighbour's). */
function majority(labels: Array<string | undefined>): string | undefined {
  const counts = new Map<string, number>();
  let best: string | undefined;
  let bestCount = 0;
  for (const l of labels) {
    if (l === undefined) continue;
    const c = (counts.get(l) ?? 0) + 1;
    counts.set(l, c);
    if (c > bestCount) {
      best = l;
      bestCount = c;
    }
  }
  return best;
}
