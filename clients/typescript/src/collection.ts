/**
 * One collection (or an alias, for the read routes): `shoal.collection('docs')`. Which POSTs are marked
 * idempotent (retried after a 503 or a lost connection) follows docs/api.md: an upsert by id and a delete
 * leave the same state when repeated (the newest write wins), a search or get reads nothing new, a build
 * request only asks for a build, and an import is keyed by the object (the same file lands on the same job).
 */
import { upsertAll, vectorJson, type UpsertAllOptions } from './batch.js';
import { seg, type FetchLike, type Transport } from './http.js';
import { followImport, importData, type ImportFileOptions, type ImportSource, type ImportTarget } from './import.js';
import { paginate } from './paging.js';
import type {
  Api,
  BuildRequest,
  BuildResult,
  CandidateList,
  Collection,
  CreateImportInput,
  DeleteResult,
  DeleteSelector,
  DriftOptions,
  DriftReferenceResult,
  DriftReport,
  EvaluateInput,
  Evaluation,
  Filter,
  ImportJob,
  ImportReject,
  ImportUpload,
  LineView,
  ListVectorsOptions,
  Manifest,
  Metadata,
  PromoteCandidateResult,
  RejectPage,
  SearchHit,
  SearchInput,
  SearchManyInput,
  SearchResult,
  TuneInput,
  TuneJob,
  UploadRequestInput,
  UpsertOptions,
  UpsertResult,
  InputRowInput,
  SearchByInputInput,
  SearchManyByInputInput,
  Migration,
  CreateMigrationInput,
  Vector,
  VectorInput,
  VectorPage,
} from './types.js';
import {
  waitForIndex,
  waitForTune,
  type StatsSource,
  type TuneJobSource,
  type WaitForIndexOptions,
  type WaitForTuneOptions,
} from './wait.js';
import type { CollectionStats } from './types.js';

interface Signal {
  signal?: AbortSignal;
}

function filterParam(filter: Filter | undefined): string | undefined {
  if (filter === undefined) return undefined;
  return typeof filter === 'string' ? filter : JSON.stringify(filter);
}

function toNumbers(values: ArrayLike<number>): number[] {
  return Array.from(values);
}

/** A text goes as it is; numbers as a plain array. */
function rawInput(value: ArrayLike<number> | string): number[] | string {
  return typeof value === 'string' ? value : toNumbers(value);
}

export class CollectionClient implements StatsSource, ImportTarget, TuneJobSource {
  readonly imports: ImportsApi;
  readonly candidates: CandidatesApi;
  readonly migrations: MigrationsApi;
  private readonly base: string;

  constructor(
    private readonly http: Transport,
    readonly name: string,
    readonly uploadFetch: FetchLike,
  ) {
    this.base = `/v1/collections/${seg(name)}`;
    this.imports = new ImportsApi(http, this.base);
    this.candidates = new CandidatesApi(http, this.base);
    this.migrations = new MigrationsApi(http, this.base);
  }

  /** The collection with `stats` (`count`, `indexed`, `pending`, `shards`, `version`, `watermark`). */
  info(options: Signal = {}): Promise<Collection> {
    return this.http.request('GET', this.base, options);
  }

  async stats(options: Signal = {}): Promise<CollectionStats> {
    const info = await this.info(options);
    if (!info.stats) throw new TypeError(`GET ${this.base} answered without stats`);
    return info.stats;
  }

  /** Up to 1 000 vectors in one request; see `upsertAll` for more. */
  upsert(vectors: VectorInput[], options: UpsertOptions & Signal = {}): Promise<UpsertResult> {
    const model = options.modelVersion ? `,"modelVersion":${JSON.stringify(options.modelVersion)}` : '';
    const rawBody = `{"vectors":[${vectors.map(vectorJson).join(',')}]${model}}`;
    return this.http.request('POST', `${this.base}/vectors`, { rawBody, idempotent: true, signal: options.signal });
  }

  /** Any number of vectors, batched by rows and by the 6 MB body limit. */
  upsertAll(
    vectors: Iterable<VectorInput> | AsyncIterable<VectorInput>,
    options: UpsertAllOptions & Signal = {},
  ): Promise<UpsertResult & { batches: number }> {
    const send = (rawBody: string): Promise<UpsertResult> =>
      this.http.request('POST', `${this.base}/vectors`, { rawBody, idempotent: true, signal: options.signal });
    return upsertAll(send, vectors, options);
  }

  /**
   * Up to 1 000 rows of raw model input into a collection with an embedding function: Shoal runs the model,
   * keeps the inputs (for later migrations) and stores the vectors (docs/models.md).
   */
  upsertInputs(rows: InputRowInput[], options: Signal = {}): Promise<UpsertResult> {
    const body = {
      vectors: rows.map((r) => ({
        id: r.id,
        inputs: rawInput(r.inputs),
        ...(r.metadata !== undefined ? { metadata: r.metadata } : {}),
      })),
    };
    return this.http.request('POST', `${this.base}/vectors`, { body, idempotent: true, signal: options.signal });
  }

  /** A search by raw model input, embedded by the collection's (or, through an alias, each arm's) model. */
  searchByInput(input: SearchByInputInput, options: Signal = {}): Promise<SearchResult> {
    const body = { ...input, input: rawInput(input.input) };
    return this.http.request('POST', `${this.base}/search`, { body, idempotent: true, signal: options.signal });
  }

  /** Up to 100 queries by raw model input; one result list per query. */
  searchManyByInput(input: SearchManyByInputInput, options: Signal = {}): Promise<SearchResult<SearchHit[][]>> {
    const body = { ...input, inputs: input.inputs.map(rawInput) };
    return this.http.request('POST', `${this.base}/search`, { body, idempotent: true, signal: options.signal });
  }

  /** Sets metadata keys of one vector (`null` removes a key); its values stay. */
  patch(id: string | number, metadata: Record<string, Metadata[string] | null>, options: Signal = {}) {
    return this.http.request<UpsertResult>('PATCH', `${this.base}/vectors/${seg(id)}`, {
      body: { metadata },
      signal: options.signal,
    });
  }

  async get(ids: Array<string | number>, options: Signal = {}): Promise<Vector[]> {
    const out = await this.http.request<Api.GetVectorsResponse>('POST', `${this.base}/vectors/get`, {
      body: { ids },
      idempotent: true,
      signal: options.signal,
    });
    return out.vectors;
  }

  /** `{ids}` or `{filter}`; an array is taken as ids. */
  delete(selector: DeleteSelector | Array<string | number>, options: Signal = {}): Promise<DeleteResult> {
    const body = Array.isArray(selector) ? { ids: selector } : selector;
    return this.http.request('POST', `${this.base}/vectors/delete`, { body, idempotent: true, signal: options.signal });
  }

  search(input: SearchInput, options: Signal = {}): Promise<SearchResult> {
    const body = { ...input, vector: toNumbers(input.vector) };
    return this.http.request('POST', `${this.base}/search`, { body, idempotent: true, signal: options.signal });
  }

  /** Up to 100 queries in one request; one result list per query. */
  searchMany(input: SearchManyInput, options: Signal = {}): Promise<SearchResult<SearchHit[][]>> {
    const body = { ...input, vectors: input.vectors.map(toNumbers) };
    return this.http.request('POST', `${this.base}/search`, { body, idempotent: true, signal: options.signal });
  }

  /** One page of the collection's live vectors, in the order of their last write (docs/api.md). */
  listPage(options: ListVectorsOptions & Signal = {}): Promise<VectorPage> {
    return this.http.request('GET', `${this.base}/vectors`, {
      query: {
        limit: options.limit,
        cursor: options.cursor,
        filter: filterParam(options.filter),
        include: options.include?.join(','),
      },
      signal: options.signal,
    });
  }

  /** Every vector (matching `filter`), page by page as the loop asks for them. */
  list(options: Omit<ListVectorsOptions, 'cursor'> & Signal & { cursor?: string } = {}): AsyncGenerator<Vector> {
    return paginate(async (cursor) => {
      const page = await this.listPage({ ...options, cursor });
      return { items: page.vectors, nextCursor: page.nextCursor };
    }, options.cursor);
  }

  /** Asks for a build now (202); with `index` settings, starts a candidate line instead. */
  index(request: BuildRequest = {}, options: Signal = {}): Promise<BuildResult> {
    return this.http.request('POST', `${this.base}/index`, {
      body: request.index === undefined && request.candidate === undefined ? undefined : request,
      // A second build request while one is queued queues nothing new; a candidate with the same settings is a 409.
      idempotent: request.index === undefined,
      signal: options.signal,
    });
  }

  /** Resolves once every acknowledged write is indexed (`stats.pending` is 0). */
  waitForIndex(options: WaitForIndexOptions = {}): Promise<CollectionStats> {
    return waitForIndex(this, options);
  }

  /** Newest first. */
  async versions(options: Signal = {}): Promise<Manifest[]> {
    return (await this.http.request<Api.ListVersionsResponse>('GET', `${this.base}/versions`, options)).versions;
  }

  evaluate(version: number, input: EvaluateInput = {}, options: Signal = {}): Promise<Evaluation> {
    const body = input.queries ? { ...input, queries: input.queries.map(toNumbers) } : input;
    return this.http.request('POST', `${this.base}/versions/${seg(version)}/evaluate`, { body, ...options });
  }

  /**
   * Sweeps efSearch (and nprobe) to `targetRecall` and sets the line's defaults. Inside the request it answers
   * the evaluation (a version too large for the API's 30 s is a 422 `ASYNC_REQUIRED`); with `async: true` it
   * answers the queued tune job at once (follow it with `waitForTune`).
   */
  tune(version: number, input: TuneInput & { async: true }, options?: Signal): Promise<TuneJob>;
  tune(version: number, input: TuneInput & { async?: false }, options?: Signal): Promise<Evaluation>;
  tune(version: number, input: TuneInput, options?: Signal): Promise<Evaluation | TuneJob>;
  tune(version: number, input: TuneInput, options: Signal = {}): Promise<Evaluation | TuneJob> {
    return this.http.request('POST', `${this.base}/versions/${seg(version)}/tune`, { body: input, ...options });
  }

  /** A tune job: status, progress (sweep rows measured) and, once succeeded, the evaluation. */
  tuneJob(jobId: string, options: Signal = {}): Promise<TuneJob> {
    return this.http.request('GET', `${this.base}/tune-jobs/${seg(jobId)}`, options);
  }

  /** Polls a tune job until it is `succeeded` or `failed` (ShoalTimeoutError after `timeoutMs`, default 15 min). */
  waitForTune(jobId: string, options: WaitForTuneOptions = {}): Promise<TuneJob> {
    return waitForTune(this, jobId, options);
  }

  /** Embedding drift of queries and upserts against the collection's reference, per hour window. */
  drift(options: DriftOptions & Signal = {}): Promise<DriftReport> {
    const { signal, ...query } = options;
    return this.http.request('GET', `${this.base}/drift`, { query: { ...query }, ...(signal ? { signal } : {}) });
  }

  /** Rebuilds the drift reference from the current rows (after an intended change of the distribution). */
  resetDriftReference(options: Signal = {}): Promise<DriftReferenceResult> {
    return this.http.request('POST', `${this.base}/drift/reference`, options);
  }

  /**
   * Uploads bytes (a browser `File` is a Blob) as `filename` under the import prefix, starts their import and
   * follows the job to its end. A local file by path: `importFile` of `@shoal/client/node`.
   */
  importData(source: ImportSource, options: ImportFileOptions & { filename: string }): Promise<ImportJob> {
    return importData(this, source, options);
  }

  /** Follows an existing import job to its end. */
  followImport(jobId: string, options: Parameters<typeof followImport>[2] = {}): Promise<ImportJob> {
    return followImport(this, jobId, options);
  }
}

export class ImportsApi {
  constructor(
    private readonly http: Transport,
    private readonly base: string,
  ) {}

  /** A presigned PUT under the collection's import prefix. */
  requestUpload(input: UploadRequestInput): Promise<ImportUpload> {
    // Each call only signs a URL.
    return this.http.request('POST', `${this.base}/imports/uploads`, { body: input, idempotent: true });
  }

  /** Starts (or finds) the job for an object; the same object always lands on the same job. */
  create(input: CreateImportInput): Promise<ImportJob> {
    return this.http.request('POST', `${this.base}/imports`, { body: input, idempotent: true });
  }

  /** Newest first, up to 100. */
  async list(): Promise<ImportJob[]> {
    return (await this.http.request<Api.ListImportsResponse>('GET', `${this.base}/imports`)).jobs;
  }

  get(jobId: string): Promise<ImportJob> {
    return this.http.request('GET', `${this.base}/imports/${seg(jobId)}`);
  }

  cancel(jobId: string): Promise<ImportJob> {
    return this.http.request('DELETE', `${this.base}/imports/${seg(jobId)}`);
  }

  rejectsPage(jobId: string, options: { limit?: number; cursor?: string } = {}): Promise<RejectPage> {
    return this.http.request('GET', `${this.base}/imports/${seg(jobId)}/rejects`, { query: { ...options } });
  }

  /** Every reported reject of a job, page by page. */
  rejects(jobId: string, options: { limit?: number; cursor?: string } = {}): AsyncGenerator<ImportReject> {
    return paginate(async (cursor) => {
      const page = await this.rejectsPage(jobId, { limit: options.limit, cursor });
      return { items: page.rejects, nextCursor: page.nextCursor };
    }, options.cursor);
  }
}

export class CandidatesApi {
  constructor(
    private readonly http: Transport,
    private readonly base: string,
  ) {}

  list(): Promise<CandidateList> {
    return this.http.request('GET', `${this.base}/candidates`);
  }

  get(candidate: string): Promise<LineView> {
    return this.http.request('GET', `${this.base}/candidates/${seg(candidate)}`);
  }

  delete(candidate: string): Promise<Api.Deleted> {
    return this.http.request('DELETE', `${this.base}/candidates/${seg(candidate)}`);
  }

  promote(candidate: string, input: Api.PromoteCandidateRequest = {}): Promise<PromoteCandidateResult> {
    return this.http.request('POST', `${this.base}/candidates/${seg(candidate)}/promote`, { body: input });
  }
}

/** Re-embedding migrations of a collection to another model version (docs/models.md). */
export class MigrationsApi {
  constructor(
    private readonly http: Transport,
    private readonly base: string,
  ) {}

  /** Starts one: creates the target collection and a job (not retried: a second call starts a second job). */
  async start(input: CreateMigrationInput, options: Signal = {}): Promise<Migration> {
    const out = await this.http.request<Api.CreateMigrationResponse>('POST', `${this.base}/migrations`, {
      body: input,
      signal: options.signal,
    });
    return out.migration;
  }

  async list(options: Signal = {}): Promise<Migration[]> {
    return (await this.http.request<Api.ListMigrationsResponse>('GET', `${this.base}/migrations`, options)).migrations;
  }

  get(id: string, options: Signal = {}): Promise<Migration> {
    return this.http.request('GET', `${this.base}/migrations/${seg(id)}`, options);
  }

  cancel(id: string, options: Signal = {}): Promise<Migration> {
    return this.http.request('DELETE', `${this.base}/migrations/${seg(id)}`, { idempotent: true, ...options });
  }

  /**
   * Polls a migration until it ends (`done`, `failed`, `cancelled`), reporting each state; rejects with a
   * TypeError after `timeoutMs` (default 10 minutes).
   */
  async wait(
    id: string,
    options: Signal & { intervalMs?: number; timeoutMs?: number; onProgress?: (m: Migration) => void } = {},
  ): Promise<Migration> {
    const until = Date.now() + (options.timeoutMs ?? 600_000);
    for (;;) {
      const m = await this.get(id, options);
      options.onProgress?.(m);
      if (m.state === 'done' || m.state === 'failed' || m.state === 'cancelled') return m;
      if (Date.now() > until) throw new TypeError(`migration ${id} still ${m.state} after ${options.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 500));
    }
  }
}
