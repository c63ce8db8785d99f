/**
 * The entry point: `new Shoal({ url, apiKey })`, with a resource group per part of the API (docs/api.md).
 * POSTs that create something (a collection, a key, an alias move, an experiment) are not idempotent and
 * so are not retried after a 503 or a lost connection; a 429 is retried for every route, since the server
 * refuses it before doing anything.
 */
import { CollectionClient } from './collection.js';
import { Transport, seg, type FetchLike } from './http.js';
import type { RetryPolicy } from './retry.js';
import type {
  Alias,
  AliasMove,
  Api,
  ApiKey,
  Collection,
  CommitModelInput,
  CreateCollectionInput,
  CreatedKey,
  CreateKeyInput,
  ExperimentResults,
  FeedbackInput,
  FeedbackResult,
  Health,
  Model,
  ModelAlias,
  ModelAliasInput,
  ModelAliasMove,
  ModelComparison,
  ModelSummary,
  ModelUploadInput,
  ModelVersion,
  PutAliasInput,
  RegisterModelInput,
  RegisteredModel,
  StartExperimentInput,
} from './types.js';

export interface ShoalOptions {
  /** Base URL, e.g. `http://localhost:8787` or the API Gateway stage URL. */
  url: string;
  apiKey?: string;
  /** Retries after the first attempt on 429/503/network errors (default 3; 0 disables). */
  retries?: number;
  /** Backoff tuning beyond `retries` (base, cap, the longest Retry-After honoured, the random source). */
  retry?: Partial<Omit<RetryPolicy, 'retries'>>;
  /** Per-attempt timeout in ms (default 30 000). */
  timeoutMs?: number;
  /** A fetch to use instead of the global one (proxies, tests). */
  fetch?: FetchLike;
  userAgent?: string;
  onRetry?: ConstructorParameters<typeof Transport>[0]['onRetry'];
}

export class Shoal {
  readonly collections: CollectionsApi;
  readonly aliases: AliasesApi;
  readonly experiments: ExperimentsApi;
  readonly models: ModelsApi;
  readonly keys: KeysApi;
  protected readonly http: Transport;
  protected readonly uploadFetch: FetchLike;

  constructor(options: ShoalOptions) {
    if (!options?.url) throw new TypeError('Shoal: `url` is required');
    this.http = new Transport({
      url: options.url,
      apiKey: options.apiKey,
      timeoutMs: options.timeoutMs,
      retry: { ...options.retry, ...(options.retries !== undefined ? { retries: options.retries } : {}) },
      fetch: options.fetch,
      userAgent: options.userAgent,
      onRetry: options.onRetry,
    });
    this.uploadFetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.collections = new CollectionsApi(this.http);
    this.experiments = new ExperimentsApi(this.http);
    this.aliases = new AliasesApi(this.http, this.experiments);
    this.models = new ModelsApi(this.http);
    this.keys = new KeysApi(this.http);
  }

  get url(): string {
    return this.http.url;
  }

  /** A handle on one collection (or, for reads, an alias); no request is made. */
  collection(name: string): CollectionClient {
    return new CollectionClient(this.http, name, this.uploadFetch);
  }

  /** `GET /v1/health` (needs a key; `/healthz` is the unauthenticated liveness probe). */
  health(): Promise<Health> {
    return this.http.request('GET', '/v1/health');
  }

  /** A click or conversion on a search result served through an alias (experiments count it once). */
  feedback(input: FeedbackInput): Promise<FeedbackResult> {
    return this.http.request('POST', '/v1/feedback', { body: input });
  }
}

export class CollectionsApi {
  constructor(private readonly http: Transport) {}

  create(input: CreateCollectionInput): Promise<Collection> {
    return this.http.request('POST', '/v1/collections', { body: input });
  }

  async list(): Promise<Collection[]> {
    return (await this.http.request<Api.ListCollectionsResponse>('GET', '/v1/collections')).collections;
  }

  /** With `stats`. */
  get(name: string): Promise<Collection> {
    return this.http.request('GET', `/v1/collections/${seg(name)}`);
  }

  /** The alias quality gate (`minRecall`; null removes it). */
  update(name: string, patch: Api.UpdateCollectionRequest): Promise<Collection> {
    return this.http.request('PATCH', `/v1/collections/${seg(name)}`, { body: patch });
  }

  delete(name: string): Promise<Api.Deleted> {
    return this.http.request('DELETE', `/v1/collections/${seg(name)}`);
  }
}

export class AliasesApi {
  constructor(
    private readonly http: Transport,
    /** The same object as `shoal.experiments`. */
    readonly experiments: ExperimentsApi,
  ) {}

  /** Creates or moves an alias (a PUT: repeating it with the same target is a no-op move). */
  set(alias: string, input: PutAliasInput): Promise<Alias> {
    return this.http.request('PUT', `/v1/aliases/${seg(alias)}`, { body: input });
  }

  async list(): Promise<Alias[]> {
    return (await this.http.request<Api.ListAliasesResponse>('GET', '/v1/aliases')).aliases;
  }

  get(alias: string): Promise<Alias> {
    return this.http.request('GET', `/v1/aliases/${seg(alias)}`);
  }

  delete(alias: string, options: { expectedRevision?: number } = {}): Promise<Api.Deleted> {
    return this.http.request('DELETE', `/v1/aliases/${seg(alias)}`, { query: { ...options } });
  }

  /** Newest first. */
  async history(alias: string): Promise<AliasMove[]> {
    return (await this.http.request<Api.GetAliasHistoryResponse>('GET', `/v1/aliases/${seg(alias)}/history`)).history;
  }

  /** Back to the previous target (not retried: a second rollback would go back further). */
  rollback(alias: string, input: Api.RollbackAliasRequest = {}): Promise<Alias> {
    return this.http.request('POST', `/v1/aliases/${seg(alias)}/rollback`, { body: input });
  }
}

/** Champion/challenger experiments, one per alias. */
export class ExperimentsApi {
  constructor(private readonly http: Transport) {}

  start(alias: string, input: StartExperimentInput): Promise<ExperimentResults> {
    return this.http.request('POST', `/v1/aliases/${seg(alias)}/experiment`, { body: input });
  }

  /** Arms, rates with Wilson intervals and the sequential tests; each read is a look of the test. */
  results(alias: string): Promise<ExperimentResults> {
    return this.http.request('GET', `/v1/aliases/${seg(alias)}/experiment`);
  }

  promote(alias: string, input: Api.PromoteExperimentRequest = {}): Promise<ExperimentResults> {
    return this.http.request('POST', `/v1/aliases/${seg(alias)}/experiment/promote`, { body: input });
  }

  abort(alias: string, input: Api.AbortExperimentRequest = {}): Promise<ExperimentResults> {
    return this.http.request('POST', `/v1/aliases/${seg(alias)}/experiment/abort`, { body: input });
  }
}

export class ModelsApi {
  constructor(private readonly http: Transport) {}

  /** Each model's version count and latest version; `get(model)` has the versions themselves. */
  async list(): Promise<ModelSummary[]> {
    return (await this.http.request<Api.ListModelsResponse>('GET', '/v1/models')).models;
  }

  /** Every version of the model and its aliases. */
  get(model: string): Promise<Model> {
    return this.http.request('GET', `/v1/models/${seg(model)}`);
  }

  async versions(model: string): Promise<ModelVersion[]> {
    const path = `/v1/models/${seg(model)}/versions`;
    return (await this.http.request<Api.ListModelVersionsResponse>('GET', path)).versions;
  }

  version(model: string, version: number): Promise<ModelVersion> {
    return this.http.request('GET', `/v1/models/${seg(model)}/versions/${seg(version)}`);
  }

  /** A new pending version and a presigned PUT for its artifact. */
  register(model: string, input: RegisterModelInput): Promise<RegisteredModel> {
    return this.http.request('POST', `/v1/models/${seg(model)}/versions`, { body: input });
  }

  /** A fresh presigned PUT, or multipart part URLs with `parts`. */
  requestUpload(model: string, version: number, input: ModelUploadInput = {}): Promise<Api.RequestModelUploadResponse> {
    return this.http.request('POST', `/v1/models/${seg(model)}/versions/${seg(version)}/upload`, {
      body: input,
      idempotent: input.uploadId !== undefined || input.parts === undefined,
    });
  }

  abortUpload(model: string, version: number, uploadId: string): Promise<Api.AbortModelUploadResponse> {
    return this.http.request('POST', `/v1/models/${seg(model)}/versions/${seg(version)}/upload/abort`, {
      body: { uploadId },
      idempotent: true,
    });
  }

  /** Inline artifact (base64, ≤ 4 MB). */
  uploadArtifact(model: string, version: number, artifactBase64: string): Promise<ModelVersion> {
    return this.http.request('PUT', `/v1/models/${seg(model)}/versions/${seg(version)}/artifact`, {
      body: { artifact: artifactBase64 },
    });
  }

  /** Verifies the sha256 and makes the version ready (the same sha256 again is idempotent). */
  commit(model: string, version: number, input: CommitModelInput): Promise<ModelVersion> {
    return this.http.request('POST', `/v1/models/${seg(model)}/versions/${seg(version)}/commit`, {
      body: input,
      idempotent: true,
    });
  }

  compare(model: string, a: number, b: number): Promise<ModelComparison> {
    return this.http.request('GET', `/v1/models/${seg(model)}/compare`, { query: { a, b } });
  }

  setAlias(model: string, alias: string, input: ModelAliasInput): Promise<ModelAlias> {
    return this.http.request('PUT', `/v1/models/${seg(model)}/aliases/${seg(alias)}`, { body: input });
  }

  getAlias(model: string, alias: string): Promise<ModelAlias> {
    return this.http.request('GET', `/v1/models/${seg(model)}/aliases/${seg(alias)}`);
  }

  async aliasHistory(model: string, alias: string): Promise<ModelAliasMove[]> {
    const path = `/v1/models/${seg(model)}/aliases/${seg(alias)}/history`;
    return (await this.http.request<Api.GetModelAliasHistoryResponse>('GET', path)).history;
  }
}

/** API keys (admin keys only; docs/security.md). */
export class KeysApi {
  constructor(private readonly http: Transport) {}

  /** The secret is in `key`, shown this once. Not retried: a resend would make a second key. */
  create(input: CreateKeyInput): Promise<CreatedKey> {
    return this.http.request('POST', '/v1/keys', { body: input });
  }

  async list(): Promise<ApiKey[]> {
    return (await this.http.request<Api.ListKeysResponse>('GET', '/v1/keys')).keys;
  }

  revoke(id: string): Promise<Api.Deleted> {
    return this.http.request('DELETE', `/v1/keys/${seg(id)}`);
  }
}
