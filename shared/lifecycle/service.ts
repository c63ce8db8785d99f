/**
 * The lifecycle half of the service (docs/architecture.md §8), on the LifecycleStore plus the data-path
 * adapters: aliases (moves, history, rollback, quality gates), evaluation and tuning of
 * index versions, and the model registry with model aliases.
 */
import { randomUUID } from 'node:crypto';
import {
  AsyncRequiredError,
  ConflictError,
  LimitExceededError,
  NotFoundError,
  ShoalError,
  ValidationError,
} from '../errors.js';
import { logger } from '../log.js';
import type { ShardCache } from '../search/shard-cache.js';
import type {
  AliasView,
  Caller,
  CollectionInfo,
  EvaluateInput,
  LifecycleService,
  ModelComparison,
  PutAliasInput,
  RegisterModelInput,
  TuneInput,
} from '../service.js';
import {
  MAIN_LINE,
  type Catalog,
  type CollectionMeta,
  type DirectUploads,
  type ObjectStore,
} from '../storage/types.js';
import { aliasView, checkAliasTarget, movePointer, pointerHistory, type PointerDeps } from './aliases.js';
import {
  GRAPH_SAMPLE_ROWS,
  checkQueries,
  TUNE_EFS,
  sweepPartitioned,
  tuneSweepSize,
  type TuneRow,
  evaluateVersion,
  loadVersion,
  measure,
  prepareQueries,
  sweepGraph,
  type EvalDeps,
} from './evaluation.js';
import {
  MAX_INLINE_ARTIFACT_BYTES,
  abortUpload,
  commitModelVersion,
  compareVersions,
  getModelVersion,
  registerModelVersion,
  requestUpload,
  singleUpload,
  uploadArtifact,
  type ModelDeps,
  verifyModelArtifact,
} from './models.js';
import {
  endExperiment,
  enforceGuardrails,
  evaluateExperiment,
  newExperiment,
  recordFeedback,
  requireExperiment,
  requireRunning,
  runningExperiment,
  summary,
  type ExperimentDeps,
} from './experiments.js';
import type { Alias, LifecycleStore, ModelAlias } from './types.js';
import type {
  AliasTarget,
  CompletedUpload,
  Evaluation,
  Experiment,
  ExperimentResults,
  FeedbackEvent,
  IndexSpec,
  LineView,
  ModelAliasTarget,
  ModelVersion,
  MultipartUpload,
  PointerMove,
  SingleUpload,
  StartExperimentInput,
  TuneJob,
  TuneJobInput,
  UploadRequest,
} from '../service-types.js';
import { defaultEf, manifestFor } from '../collections.js';

/** Held-out queries a tune samples from the version when the request does not say (`sample`). */
export const DEFAULT_TUNE_SAMPLE = 100;

/**
 * The largest version a synchronous tune takes, in live rows at DEFAULT_TUNE_SAMPLE queries (200,000); with
 * `sample` queries the limit is rows × sample ≤ 200,000 × 100. The exact side scans every row once per
 * query and the sweep then runs up to ~35 × `sample` searches: at 200,000 × 128-d that is ~10–20 s of the
 * API's 30 s on Lambda. Past it the request is refused with 422 ASYNC_REQUIRED (send `async: true`: the
 * index-builder function runs it as a tune job, 15 min). Injectable (`LifecycleDeps.tuneSyncMaxRows`,
 * env `SHOAL_TUNE_SYNC_MAX_ROWS`) so tests need not load 200,000 rows.
 */
export const TUNE_SYNC_MAX_ROWS = 200_000;

/** Tune jobs expire 7 days after their creation (DynamoDB TTL), like other transient items. */
export const TUNE_JOB_TTL_SECONDS = 7 * 24 * 3600;

/** A running tune job writes its progress at most this often. */
export const TUNE_PROGRESS_INTERVAL_MS = 1000;

type TuneProgress = (measured: number, of: number) => Promise<void>;

/**
 * The most query floats (queries × dimension) a tune job carries: 81,920 (320 KiB, e.g. 640 queries at
 * 128-d or 106 at 768-d). They are kept in one DynamoDB item beside the job, under its 400 KB limit; a
 * synchronous tune takes up to 2,000 queries of any dimension the request body holds.
 */
export const TUNE_JOB_MAX_QUERY_FLOATS = 81_920;

/** The tune request as a job runs it: `sample` defaulted (or the supplied queries counted), `async` dropped. */
function tuneJobInput(input: TuneInput): TuneJobInput {
  return {
    targetRecall: input.targetRecall,
    k: input.k,
    sample: input.queries?.length ?? input.sample ?? DEFAULT_TUNE_SAMPLE,
    ...(input.queries ? { queries: true } : {}),
    ...(input.graph ? { graph: input.graph } : {}),
  };
}

/** A finished job's `error`: the typed error's code; the message only when it may be shown. */
function jobError(err: unknown): { code: string; message: string } {
  if (err instanceof ShoalError) {
    return { code: err.code, message: err.expose ? err.message : "internal error (see the index builder's logs)" };
  }
  return { code: 'INTERNAL', message: "internal error (see the index builder's logs)" };
}

export interface LifecycleDeps {
  catalog: Catalog;
  /** Also signs direct-to-S3 uploads of model artifacts. */
  objects: ObjectStore & DirectUploads;
  cache: ShardCache;
  store: LifecycleStore;
  /** Collection info with stats (the core's getCollection). */
  getCollection: (name: string) => Promise<CollectionInfo>;
  /** Large artifacts are verified by the builder function: the size above which, and how to ask it. */
  verifyArtifacts?: ModelDeps['verifyAsync'];
  /** Validates `onnx` artifacts at commit (docs/models.md). */
  embedder?: ModelDeps['embedder'];
  /** Starts a candidate index line (the core's buildIndex with settings); graph tuning uses it. */
  startCandidate?: (
    collection: string,
    index: Partial<IndexSpec>,
    name: string | undefined,
    caller: Caller,
  ) => Promise<LineView>;
  /** Asks the index-builder function to run a tune job (a `tune` build-queue message); absent = no async tunes. */
  enqueueTune?: (collection: string, version: number, jobId: string) => Promise<void>;
  /** The largest synchronous tune, in live rows at the default sample (default TUNE_SYNC_MAX_ROWS). */
  tuneSyncMaxRows?: number;
  now?: () => number;
}

const ALIAS = 'alias';
const modelKind = (model: string): string => `model:${model}`;

export class LifecycleCore implements LifecycleService {
  private readonly pointers: PointerDeps;
  private readonly evals: EvalDeps;
  private readonly models: ModelDeps;
  private readonly experiments: ExperimentDeps;

  constructor(private readonly deps: LifecycleDeps) {
    const now = deps.now ?? Date.now;
    this.pointers = { store: deps.store, now };
    this.evals = { catalog: deps.catalog, cache: deps.cache, now };
    this.models = {
      store: deps.store,
      objects: deps.objects,
      now,
      ...(deps.verifyArtifacts ? { verifyAsync: deps.verifyArtifacts } : {}),
      ...(deps.embedder ? { embedder: deps.embedder } : {}),
    };
    this.experiments = { store: deps.store, now };
  }

  private async withExperiment(a: Alias): Promise<AliasView> {
    const e = await runningExperiment(this.deps.store, a.name);
    return { ...aliasView(a), experiment: e ? summary(e) : null };
  }

  /** A manual move (or delete) of an alias ends its running experiment: the champion is gone. */
  private async abortOnMove(name: string, caller: Caller, why: string): Promise<void> {
    const e = await runningExperiment(this.deps.store, name);
    if (e) await endExperiment(this.experiments, e, 'aborted', caller.actor, why);
  }

  // --- aliases ---------------------------------------------------------------------------------

  async putAlias(name: string, input: PutAliasInput, caller: Caller): Promise<{ alias: AliasView; created: boolean }> {
    const clash = await this.deps.catalog.getCollection(name).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (clash)
      throw new ConflictError(`${JSON.stringify(name)} is a collection; collections and aliases share one namespace`, {
        field: 'name',
      });
    const target: AliasTarget = {
      collection: input.collection,
      ...(input.version !== undefined ? { version: input.version } : {}),
      ...(input.line !== undefined ? { line: input.line } : {}),
    };
    const { forced } = await checkAliasTarget(this.deps.catalog, this.deps.store, target, input.force === true);
    const { pointer, created } = await movePointer(this.pointers, ALIAS, name, target, {
      expectedRevision: input.expectedRevision,
      action: 'move',
      by: caller.actor,
      reason: input.reason,
      forced,
    });
    if (!created)
      await this.abortOnMove(name, caller, `alias moved to ${target.collection} (revision ${pointer.revision})`);
    return { alias: aliasView(pointer as Alias), created };
  }

  async listAliases(): Promise<AliasView[]> {
    return Promise.all(((await this.deps.store.listPointers(ALIAS)) as Alias[]).map((a) => this.withExperiment(a)));
  }

  private async alias(name: string): Promise<Alias> {
    const a = (await this.deps.store.getPointer(ALIAS, name)) as Alias | undefined;
    if (!a) throw new NotFoundError(`alias ${JSON.stringify(name)} not found`, { field: 'name' });
    return a;
  }

  async getAlias(name: string): Promise<AliasView> {
    return this.withExperiment(await this.alias(name));
  }

  async deleteAlias(name: string, caller: Caller, expectedRevision?: number): Promise<void> {
    const a = await this.alias(name);
    const rev = expectedRevision ?? a.revision;
    if (!(await this.deps.store.deletePointer(ALIAS, name, rev))) {
      const now = await this.deps.store.getPointer(ALIAS, name);
      throw new ConflictError(`alias ${JSON.stringify(name)} is at revision ${now?.revision ?? 0}, not ${rev}`, {
        field: 'expectedRevision',
        details: { expectedRevision: rev, currentRevision: now?.revision ?? 0 },
      });
    }
    await this.abortOnMove(name, caller, 'alias deleted');
  }

  async aliasHistory(name: string): Promise<PointerMove<AliasTarget>[]> {
    return (await pointerHistory(this.pointers, ALIAS, name)) as PointerMove<AliasTarget>[];
  }

  /**
   * Back to the target before the last move, in one call (recorded as a `rollback` move).
   * The quality gate is not applied: the previous target was already serving.
   */
  async rollbackAlias(
    name: string,
    input: { reason?: string; expectedRevision?: number },
    caller: Caller,
  ): Promise<AliasView> {
    const a = await this.alias(name);
    const previous = a.lastMove.from as AliasTarget | null;
    if (!previous)
      throw new ConflictError(`alias ${JSON.stringify(name)} has no previous target to roll back to`, {
        field: 'name',
      });
    await checkAliasTarget(this.deps.catalog, this.deps.store, previous, true);
    const { pointer } = await movePointer(this.pointers, ALIAS, name, previous, {
      expectedRevision: input.expectedRevision ?? a.revision,
      action: 'rollback',
      by: caller.actor,
      reason: input.reason,
    });
    await this.abortOnMove(name, caller, `alias rolled back (revision ${pointer.revision})`);
    return aliasView(pointer as Alias);
  }

  // --- evaluation ------------------------------------------------------------------------------

  async evaluateVersion(
    collection: string,
    version: number,
    input: EvaluateInput,
    caller: Caller,
  ): Promise<Evaluation> {
    const ev = await evaluateVersion(this.evals, collection, version, input, caller.actor);
    const prior = await this.deps.store.getEvaluation(ev.collection, ev.version);
    if (prior?.tuning && prior.generation === ev.generation) ev.tuning = prior.tuning;
    await this.deps.store.putEvaluation(ev);
    return ev;
  }

  /**
   * Sweeps efSearch over TUNE_EFS on sampled queries, records the recall/latency table on the
   * evaluation item, and makes the cheapest ef that meets `targetRecall` the default efSearch of
   * the version's line (used by searches that send no `ef`). With `graph`, also sweeps
   * m × efConstruction on a sample (graph changes need a rebuild: the recommendation can start
   * a candidate line, which serves only once promoted). Inside the request: a version too large for
   * the API's time is refused (422 ASYNC_REQUIRED) before anything is read or stored.
   */
  async tuneVersion(collection: string, version: number, input: TuneInput, caller: Caller): Promise<Evaluation> {
    const meta = await this.deps.catalog.getCollection(collection);
    const queries = input.queries && checkQueries(input.queries, meta.dimension);
    await this.assertSyncTune(meta, version, queries?.length ?? input.sample ?? DEFAULT_TUNE_SAMPLE);
    return this.runTune(collection, version, tuneJobInput(input), caller.actor, undefined, queries);
  }

  /** Refuses a synchronous tune whose live rows × queries exceed what the API's 30 s can take. */
  private async assertSyncTune(meta: CollectionMeta, version: number, sample: number): Promise<void> {
    const manifest = await manifestFor(this.deps.catalog, meta, version);
    if (!manifest) return; // loadVersion answers the 404
    const rows = manifest.shards.reduce((n, s) => n + s.live, 0);
    const maxRows = this.deps.tuneSyncMaxRows ?? TUNE_SYNC_MAX_ROWS;
    if (rows * sample <= maxRows * DEFAULT_TUNE_SAMPLE) return;
    throw new AsyncRequiredError(
      `version ${manifest.version} of ${JSON.stringify(meta.name)} holds ${rows} live rows: a tune with ` +
        `${sample} queries takes longer than the API's 30 s (the limit is ${maxRows} rows at ` +
        `${DEFAULT_TUNE_SAMPLE} queries); send \`async: true\` to run it as a tune job ` +
        `(GET /v1/collections/{name}/tune-jobs/{jobId} follows it)`,
      { field: 'async', details: { rows, sample, maxRows } },
    );
  }

  async startTuneJob(collection: string, version: number, input: TuneInput, caller: Caller): Promise<TuneJob> {
    const enqueue = this.deps.enqueueTune;
    if (!enqueue)
      throw new ValidationError('asynchronous tunes are not available on this deployment (no build queue)', {
        field: 'async',
      });
    const meta = await this.deps.catalog.getCollection(collection);
    const queries = input.queries && checkQueries(input.queries, meta.dimension);
    if (queries && queries.length * meta.dimension > TUNE_JOB_MAX_QUERY_FLOATS)
      throw new ValidationError(
        `a tune job carries at most ${TUNE_JOB_MAX_QUERY_FLOATS} query floats (queries × dimension); ` +
          `${queries.length} × ${meta.dimension} is more: send at most ` +
          `${Math.floor(TUNE_JOB_MAX_QUERY_FLOATS / meta.dimension)} queries`,
        { field: 'queries', details: { queries: queries.length, dimension: meta.dimension } },
      );
    const at = new Date((this.deps.now ?? Date.now)()).toISOString();
    const job: TuneJob = {
      id: randomUUID(),
      collection: meta.name,
      version,
      status: 'queued',
      createdAt: at,
      updatedAt: at,
      progress: { measured: 0 },
      input: tuneJobInput(input),
      by: caller.actor,
    };
    if (queries) {
      const flat = new Float32Array(queries.length * meta.dimension);
      queries.forEach((q, i) => flat.set(q, i * meta.dimension));
      // Before the job: a worker that sees the job finds its queries. A job that is then never created
      // leaves an item that expires with the job's TTL.
      await this.deps.store.putTuneQueries(job, flat, TUNE_JOB_TTL_SECONDS);
    }
    await this.deps.store.createTuneJob(job, TUNE_JOB_TTL_SECONDS);
    try {
      await enqueue(job.collection, version, job.id);
    } catch (err) {
      // Nobody would ever run it: end it now rather than leave it queued until it expires.
      const failed: TuneJob = { ...job, status: 'failed', error: jobError(err) };
      await this.deps.store.updateTuneJob(failed, TUNE_JOB_TTL_SECONDS).catch(() => false);
      throw err;
    }
    return job;
  }

  async getTuneJob(collection: string, jobId: string): Promise<TuneJob> {
    const job = await this.deps.store.getTuneJob(collection, jobId);
    if (!job)
      throw new NotFoundError(`tune job ${JSON.stringify(jobId)} of ${JSON.stringify(collection)} not found`, {
        field: 'jobId',
      });
    return job;
  }

  /**
   * Runs a tune job (the index-builder function, on its `tune` message): the synchronous tune's logic,
   * with the job's progress written at most once per TUNE_PROGRESS_INTERVAL_MS. A job already finished is
   * left alone (a redelivered message); a `running` one is run again (the previous attempt died; the
   * result is deterministic). Errors end the job `failed` with the typed error's code. Undefined when the
   * job is gone (expired, or its collection dropped).
   *
   * `deadline` (epoch ms): the invocation's end less a margin. A tune still measuring then ends `failed`
   * with LIMIT_EXCEEDED (fewer `sample` queries, or a lower target, fit) instead of dying with the
   * function: a killed attempt would leave the job `running` and its message would come back only after
   * the build queue's visibility timeout, to die the same way.
   */
  async runTuneJob(collection: string, jobId: string, opts: { deadline?: number } = {}): Promise<TuneJob | undefined> {
    const now = this.deps.now ?? Date.now;
    const store = this.deps.store;
    const job = await store.getTuneJob(collection, jobId);
    if (!job || job.status === 'succeeded' || job.status === 'failed') return job;
    let current: TuneJob = {
      ...job,
      status: 'running',
      updatedAt: new Date(now()).toISOString(),
      progress: { measured: 0 },
    };
    if (!(await store.updateTuneJob(current, TUNE_JOB_TTL_SECONDS))) return store.getTuneJob(collection, jobId);
    let written = now();
    const progress: TuneProgress = async (measured, of) => {
      current = { ...current, progress: { measured, of } };
      const t = now();
      if (opts.deadline !== undefined && t > opts.deadline)
        throw new LimitExceededError(
          `the tune of version ${job.version} did not finish within the build worker's time ` +
            `(${measured} of at most ${of} settings measured with ${job.input.sample} queries); ` +
            'start it again with a smaller `sample`',
          { field: 'sample', details: { measured, of, sample: job.input.sample } },
        );
      if (t - written < TUNE_PROGRESS_INTERVAL_MS) return;
      written = t;
      current = { ...current, updatedAt: new Date(t).toISOString() };
      await store.updateTuneJob(current, TUNE_JOB_TTL_SECONDS);
    };
    let done: TuneJob;
    try {
      let queries: Float32Array[] | undefined;
      if (job.input.queries) {
        const flat = await store.getTuneQueries(collection, jobId);
        if (!flat)
          throw new NotFoundError(`the queries of tune job ${JSON.stringify(jobId)} are gone`, { field: 'queries' });
        const dim = flat.length / job.input.sample;
        queries = Array.from({ length: job.input.sample }, (_, i) => flat.slice(i * dim, (i + 1) * dim));
      }
      const evaluation = await this.runTune(
        collection,
        job.version,
        job.input,
        job.by ?? 'tune-job',
        progress,
        queries,
      );
      done = { ...current, status: 'succeeded', evaluation };
    } catch (err) {
      logger.warn('tune job failed', { collection, jobId, error: err as Error });
      done = { ...current, status: 'failed', error: jobError(err) };
    }
    done.updatedAt = new Date(now()).toISOString();
    if (!(await store.updateTuneJob(done, TUNE_JOB_TTL_SECONDS))) return store.getTuneJob(collection, jobId);
    // Finished for good: its queries are not needed again (the TTL would take them within 7 days anyway).
    if (job.input.queries) await store.deleteTuneQueries(collection, jobId).catch(() => undefined);
    return done;
  }

  /** The tune itself (synchronous request or tune job): sweep, store the evaluation, set the line's defaults. */
  private async runTune(
    collection: string,
    version: number,
    input: TuneJobInput,
    actor: string,
    progress?: TuneProgress,
    queries?: Float32Array[],
  ): Promise<Evaluation> {
    const corpus = await loadVersion(this.evals, collection, version);
    let graph: NonNullable<Evaluation['tuning']>['graph'];
    if (input.graph) {
      const sweep = await sweepGraph(corpus, {
        targetRecall: input.targetRecall,
        k: input.k,
        sample: input.graph.sample ?? GRAPH_SAMPLE_ROWS,
      });
      const r = sweep.recommendation;
      graph = {
        sample: sweep.sample,
        queries: sweep.queries,
        table: sweep.table,
        recommendation: { m: r.m, efConstruction: r.efConstruction, efSearch: r.ef },
      };
      const same =
        corpus.manifest.engine === 'hnsw' &&
        corpus.manifest.params.m === r.m &&
        corpus.manifest.params.efConstruction === r.efConstruction;
      if (input.graph.candidate !== undefined && input.graph.candidate !== false && !same) {
        if (!this.deps.startCandidate)
          throw new ValidationError('candidate lines are not available on this deployment', {
            field: 'graph.candidate',
          });
        // Before anything is stored: a refused candidate (limit, name taken) leaves no half-applied tune.
        // The sample's efSearch is optimistic for the full index (a smaller graph is easier to
        // search: `npm run bench:tune` measures 1.5–3× more ef needed at full size), so the
        // candidate keeps the efSearch this version serves with; tune its own head once built.
        const line = await this.deps.startCandidate(
          corpus.meta.name,
          {
            engine: 'hnsw',
            m: r.m,
            efConstruction: r.efConstruction,
            efSearch: defaultEf(corpus.meta, corpus.manifest) ?? Math.max(64, r.ef),
          },
          typeof input.graph.candidate === 'string' ? input.graph.candidate : undefined,
          { actor },
        );
        graph.candidate = line.line;
      }
    }
    const prepared = prepareQueries(corpus, { queries, sample: input.sample, k: input.k });
    const table: TuneRow[] = [];
    const of = tuneSweepSize(corpus.manifest, input.k);
    await progress?.(0, of);
    let chosen: { ef: number; nprobe?: number; recall: number; latencyMs: Evaluation['latencyMs'] } | undefined;
    if (corpus.manifest.partitions) {
      // Partitioned: (nprobe, ef) pairs, the fewest partitions that meet the target.
      const sweep = await sweepPartitioned(this.evals, corpus, prepared, input.k, input.targetRecall, (_, rows) =>
        progress?.(rows.length, of),
      );
      table.push(...sweep.table);
      const c = sweep.chosen;
      if (c)
        chosen = { ef: c.ef, nprobe: c.nprobe, recall: c.recall, latencyMs: { p50: c.p50, p95: c.p95, mean: c.p50 } };
    } else {
      for (const ef of TUNE_EFS) {
        const m = await measure(this.evals, corpus, prepared, input.k, Math.max(ef, input.k));
        table.push({ ef, recall: m.recall, p50: m.latencyMs.p50, p95: m.latencyMs.p95 });
        await progress?.(table.length, of);
        if (m.recall >= input.targetRecall) {
          chosen = { ef, recall: m.recall, latencyMs: m.latencyMs };
          break;
        }
      }
    }
    const last = table[table.length - 1];
    const ev: Evaluation = {
      collection: corpus.meta.name,
      generation: corpus.meta.generation,
      version: corpus.manifest.version,
      k: input.k,
      ef: chosen?.ef ?? last.ef,
      ...((chosen?.nprobe ?? last.nprobe) !== undefined ? { nprobe: chosen?.nprobe ?? last.nprobe } : {}),
      queries: prepared.queries.length,
      source: prepared.source,
      recall: chosen?.recall ?? last.recall,
      latencyMs: chosen?.latencyMs ?? { p50: last.p50, p95: last.p95, mean: last.p50 },
      rows: corpus.ids.length,
      evaluatedAt: new Date((this.deps.now ?? Date.now)()).toISOString(),
      by: actor,
      tuning: {
        targetRecall: input.targetRecall,
        k: input.k,
        table,
        ...(chosen ? { chosenEf: chosen.ef } : {}),
        ...(chosen?.nprobe !== undefined ? { chosenNprobe: chosen.nprobe } : {}),
        ...(graph ? { graph } : {}),
      },
    };
    await this.deps.store.putEvaluation(ev);
    if (chosen && (corpus.manifest.engine === 'hnsw' || chosen.nprobe !== undefined)) {
      // The tuned default belongs to the version's line: the serving one, or the candidate it was built by.
      const line = corpus.manifest.line ?? MAIN_LINE;
      const candidate =
        line !== (corpus.meta.index.line ?? MAIN_LINE) && corpus.meta.candidates?.[line] ? line : undefined;
      if (line === (corpus.meta.index.line ?? MAIN_LINE) || candidate) {
        await this.deps.catalog.updateCollectionSettings(corpus.meta.name, corpus.meta.generation, {
          ...(corpus.manifest.engine === 'hnsw' ? { efSearch: chosen.ef } : {}),
          ...(chosen.nprobe !== undefined ? { nprobe: chosen.nprobe } : {}),
          ...(candidate ? { candidate } : {}),
        });
      }
    }
    return ev;
  }

  async updateCollection(name: string, patch: { minRecall?: number | null }): Promise<CollectionInfo> {
    const meta = await this.deps.catalog.getCollection(name);
    await this.deps.catalog.updateCollectionSettings(name, meta.generation, { minRecall: patch.minRecall });
    return this.deps.getCollection(name);
  }

  // --- models ------------------------------------------------------------------------------------

  async registerModelVersion(
    name: string,
    input: RegisterModelInput,
    caller: Caller,
  ): Promise<{ model: ModelVersion; upload: Record<string, unknown> }> {
    const model = await registerModelVersion(this.models, name, input, caller.actor);
    const base = `/v1/models/${encodeURIComponent(name)}/versions/${model.version}`;
    return {
      model,
      upload: {
        uploaded: input.artifact !== undefined,
        // A presigned PUT straight to S3; POST `upload` for a fresh one or for multipart.
        ...(await singleUpload(this.models, name, model.version)),
        paths: { upload: `${base}/upload`, commit: `${base}/commit`, inline: `${base}/artifact` },
        maxInlineBytes: MAX_INLINE_ARTIFACT_BYTES,
      },
    };
  }

  uploadModelArtifact(name: string, version: number, bytes: Uint8Array): Promise<ModelVersion> {
    return uploadArtifact(this.models, name, version, bytes);
  }

  requestModelUpload(name: string, version: number, input: UploadRequest): Promise<SingleUpload | MultipartUpload> {
    return requestUpload(this.models, name, version, input);
  }

  abortModelUpload(name: string, version: number, uploadId: string): Promise<{ aborted: true; uploadId: string }> {
    return abortUpload(this.models, name, version, uploadId);
  }

  /** The builder function's entry for `verify-artifact` messages (large artifacts, asynchronous commit). */
  verifyModelArtifact(name: string, version: number): Promise<ModelVersion | undefined> {
    return verifyModelArtifact(this.models, name, version);
  }

  commitModelVersion(
    name: string,
    version: number,
    sha256: string,
    multipart?: CompletedUpload,
  ): Promise<ModelVersion> {
    return commitModelVersion(this.models, name, version, sha256, multipart);
  }

  async listModels(): Promise<Array<{ name: string; versions: number; latest: number | null }>> {
    const out: Array<{ name: string; versions: number; latest: number | null }> = [];
    for (const name of await this.deps.store.listModels()) {
      const versions = await this.deps.store.listModelVersions(name);
      out.push({ name, versions: versions.length, latest: versions[0]?.version ?? null });
    }
    return out;
  }

  async getModel(name: string): Promise<{
    name: string;
    versions: ModelVersion[];
    aliases: Array<{ name: string; version: number; revision: number }>;
  }> {
    const versions = await this.deps.store.listModelVersions(name);
    if (!versions.length) throw new NotFoundError(`model ${JSON.stringify(name)} not found`, { field: 'name' });
    const aliases = ((await this.deps.store.listPointers(modelKind(name))) as ModelAlias[]).map((a) => ({
      name: a.name,
      version: a.target.version,
      revision: a.revision,
    }));
    return { name, versions, aliases };
  }

  getModelVersion(name: string, version: number): Promise<ModelVersion> {
    return getModelVersion(this.models, name, version);
  }

  async compareModelVersions(name: string, a: number, b: number): Promise<ModelComparison> {
    const [x, y] = await Promise.all([getModelVersion(this.models, name, a), getModelVersion(this.models, name, b)]);
    return compareVersions(x, y);
  }

  async putModelAlias(
    name: string,
    alias: string,
    input: { version: number; expectedRevision?: number; reason?: string },
    caller: Caller,
  ): Promise<{ alias: { name: string; model: string; version: number; revision: number }; created: boolean }> {
    const mv = await getModelVersion(this.models, name, input.version);
    if (mv.state !== 'ready')
      throw new ValidationError(`model ${name} version ${input.version} is not committed yet`, { field: 'version' });
    const { pointer, created } = await movePointer<ModelAliasTarget>(
      this.pointers,
      modelKind(name),
      alias,
      { model: name, version: input.version },
      {
        expectedRevision: input.expectedRevision,
        action: 'move',
        by: caller.actor,
        reason: input.reason,
      },
    );
    return {
      alias: { name: alias, model: name, version: pointer.target.version, revision: pointer.revision },
      created,
    };
  }

  async getModelAlias(
    name: string,
    alias: string,
  ): Promise<{ name: string; model: string; version: number; revision: number }> {
    const p = (await this.deps.store.getPointer(modelKind(name), alias)) as ModelAlias | undefined;
    if (!p)
      throw new NotFoundError(`model alias ${JSON.stringify(alias)} of ${JSON.stringify(name)} not found`, {
        field: 'alias',
      });
    return { name: alias, model: name, version: p.target.version, revision: p.revision };
  }

  async modelAliasHistory(name: string, alias: string): Promise<PointerMove<ModelAliasTarget>[]> {
    return (await pointerHistory(this.pointers, modelKind(name), alias)) as PointerMove<ModelAliasTarget>[];
  }

  // --- experiments -------------------------------------------------------------------------------

  private async results(e: Experiment): Promise<ExperimentResults> {
    return evaluateExperiment(this.deps.store, e);
  }

  /** Starts a champion/challenger experiment (one conditional write: 409 while another runs). */
  async startExperiment(name: string, input: StartExperimentInput, caller: Caller): Promise<ExperimentResults> {
    const a = await this.alias(name);
    const running = await runningExperiment(this.deps.store, name);
    if (running)
      throw new ConflictError(`alias ${JSON.stringify(name)} already runs experiment ${running.id}`, {
        field: 'alias',
        details: { experiment: running.id },
      });
    const champion = await this.deps.catalog.getCollection(a.target.collection);
    const challenger = await this.deps.catalog.getCollection(input.challenger.collection).catch((err: unknown) => {
      if (err instanceof NotFoundError)
        throw new NotFoundError(`collection ${JSON.stringify(input.challenger.collection)} not found`, {
          field: 'challenger.collection',
        });
      throw err;
    });
    // The same query goes to either arm. As a vector it must fit both; as raw inputs each arm embeds it
    // with its own embedding function (docs/architecture.md §8.9), so two collections whose functions
    // take the same input compare even when their embeddings differ (a new model version's usual case).
    const sameShape = challenger.dimension === champion.dimension && challenger.metric === champion.metric;
    const sameInputs =
      champion.embedding !== undefined &&
      challenger.embedding !== undefined &&
      (champion.embedding.text !== undefined) === (challenger.embedding.text !== undefined) &&
      (champion.embedding.text !== undefined || champion.embedding.inputLength === challenger.embedding.inputLength);
    if (!sameShape && !sameInputs) {
      throw new ValidationError(
        `the challenger ${challenger.name} (${challenger.dimension}-d ${challenger.metric}) ` +
          `must have the champion ${champion.name}'s dimension and metric ` +
          `(${champion.dimension}-d ${champion.metric})`,
        { field: 'challenger.collection' },
      );
    }
    if (input.challenger.version !== undefined || input.challenger.line !== undefined)
      await checkAliasTarget(this.deps.catalog, this.deps.store, input.challenger, true);
    const e = newExperiment(name, a.target, input, caller.actor, (this.deps.now ?? Date.now)());
    if (!(await this.deps.store.startExperiment(e))) {
      const now = await runningExperiment(this.deps.store, name);
      throw new ConflictError(`alias ${JSON.stringify(name)} already runs experiment ${now?.id ?? '(unknown)'}`, {
        field: 'alias',
        details: { experiment: now?.id ?? null },
      });
    }
    return this.results(e);
  }

  async getExperiment(name: string): Promise<ExperimentResults> {
    await this.alias(name);
    let e = await requireExperiment(this.deps.store, name);
    const arms = await this.deps.store.getArms(e.id);
    if (e.state === 'running') {
      e = await enforceGuardrails(this.experiments, e, arms);
    }
    // Every results read is a look of the sequential tests (advances their running state).
    return evaluateExperiment(this.deps.store, e, arms);
  }

  /** Moves the alias to the challenger (a `promote` move, quality-gated) and ends the experiment as promoted. */
  async promoteExperiment(
    name: string,
    input: { reason?: string; force?: boolean },
    caller: Caller,
  ): Promise<ExperimentResults> {
    const a = await this.alias(name);
    const e = await requireRunning(this.deps.store, name);
    const { forced } = await checkAliasTarget(this.deps.catalog, this.deps.store, e.challenger, input.force === true);
    const reason = `experiment ${e.id} promoted${input.reason ? `: ${input.reason}` : ''}`;
    await movePointer(this.pointers, ALIAS, name, e.challenger, {
      expectedRevision: a.revision,
      action: 'promote',
      by: caller.actor,
      reason,
      forced,
    });
    const ended = await endExperiment(this.experiments, e, 'promoted', caller.actor, reason);
    return this.results(ended ?? (await requireExperiment(this.deps.store, name)));
  }

  async abortExperiment(name: string, input: { reason?: string }, caller: Caller): Promise<ExperimentResults> {
    await this.alias(name);
    const e = await requireRunning(this.deps.store, name);
    const ended = await endExperiment(this.experiments, e, 'aborted', caller.actor, input.reason ?? 'aborted');
    if (!ended) throw new ConflictError(`experiment ${e.id} ended concurrently`, { field: 'alias' });
    return this.results(ended);
  }

  feedback(input: {
    queryId: string;
    id: string;
    event: FeedbackEvent;
  }): Promise<{ attributed: boolean; experiment?: string; alias?: string; arm?: 'champion' | 'challenger' }> {
    return recordFeedback(this.deps.store, input);
  }
}
