/**
 * The SDK's names for the Shoal HTTP API v1's request and response shapes. The shapes themselves come from
 * the OpenAPI document (`api-types.gen.ts`, written by `npm run openapi`), so the SDK cannot drift from the
 * server; this file only names them, and widens inputs where the SDK accepts more than JSON carries
 * (`ArrayLike<number>` vectors, sent as arrays). test/types.test-d.ts checks every method against the
 * document. The package never imports the server's code.
 */
import type * as Api from './api-types.gen.js';

export type * as Api from './api-types.gen.js';
export type { Operations } from './api-types.gen.js';

export type Metric = Api.Collection['metric'];
export type Engine = Api.IndexSpec['engine'];
export type Role = Api.ApiKey['role'];
export type Consistency = NonNullable<Api.SearchRequest['consistency']>;

/** A JSON value as metadata holds it (what the SDK accepts; answers carry `Record<string, unknown>`). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Metadata = Record<string, JsonValue>;

/**
 * A filter: a Milvus-style expression (`lang == "en" and year >= 2021`) or a JSON filter object
 * (`{"year": {"$lt": 2022}}`).
 */
export type Filter = NonNullable<Api.SearchRequest['filter']>;

/** Index settings a request may give (a collection's or line's `index` in answers is `Api.IndexSpec`). */
export type IndexSpec = NonNullable<Api.CreateCollectionRequest['index']>;
export type ModelRef = NonNullable<Api.CreateCollectionRequest['model']>;

// --- Collections ----------------------------------------------------------------------

export type CreateCollectionInput = Api.CreateCollectionRequest;
export type CollectionStats = Api.CollectionStats;
export type Collection = Api.Collection;

// --- Vectors --------------------------------------------------------------------------

type UpsertRow = Api.UpsertVectorsRequest['vectors'][number];

export interface VectorInput extends Omit<UpsertRow, 'values' | 'metadata'> {
  /** Any array-like of numbers; a Float32Array is sent with 9 significant digits. */
  values: ArrayLike<number>;
  metadata?: Metadata;
}

export type Vector = Api.GetVectorsResponse['vectors'][number];
export type UpsertOptions = Pick<Api.UpsertVectorsRequest, 'modelVersion'>;
export type UpsertResult = Api.UpsertVectorsResponse;

/** Exactly one of `ids` and `filter` (the server refuses both or neither). */
export type DeleteSelector =
  | Required<Pick<Api.DeleteVectorsRequest, 'ids'>>
  | Required<Pick<Api.DeleteVectorsRequest, 'filter'>>;
export type DeleteResult = Api.DeleteVectorsResponse;

export type Include = NonNullable<Api.SearchRequest['include']>[number];

type SearchOptions = Omit<Api.SearchRequest, 'vector' | 'vectors' | 'input' | 'inputs'>;

export interface SearchInput extends SearchOptions {
  vector: ArrayLike<number>;
}

export interface SearchManyInput extends SearchOptions {
  /** Up to 100 queries. */
  vectors: ArrayLike<number>[];
}

export type SearchHit = Api.SearchHit;
export type ServedBy = Api.SearchResult['servedBy'];
export type SearchStats = Api.SearchResult['stats'];

/** `search` answers one list of hits, `searchMany` one list per query; the document allows either. */
export type SearchResult<R extends Api.SearchResult['results'] = SearchHit[]> = Omit<Api.SearchResult, 'results'> & {
  /** Best first. */
  results: R;
};

/** The query of `GET …/vectors` (query parameters are not in the generated types). */
export interface ListVectorsOptions {
  /** Page size, 1–1000 (the server's default is 100). */
  limit?: number;
  cursor?: string;
  filter?: Filter;
  include?: Include[];
}

export type VectorPage = Api.ListVectorsResponse;

// --- Index builds, versions, candidate lines ------------------------------------------

export type BuildRequest = Api.BuildIndexRequest;
export type BuildResult = Api.BuildOutput;
export type BuildKind = NonNullable<Api.BuildOutput['kind']>;
export type LineView = Api.LineView;
export type LineHead = NonNullable<Api.LineView['head']>;
export type ShardRef = Api.ShardRef;
export type Manifest = Api.Manifest;
export type LinePromotion = Api.LinePromotion;
export type CandidateList = Api.ListLinesResponse;
export type PromoteCandidateResult = Api.PromoteCandidateResponse;

export interface EvaluateInput extends Omit<Api.EvaluateVersionRequest, 'queries'> {
  queries?: ArrayLike<number>[];
}

export type TuneInput = Api.TuneVersionRequest;
export type Evaluation = Api.Evaluation;
/** An asynchronous tune (`tune(v, {async: true, …})`), run by the index-builder function. */
export type TuneJob = Api.TuneJob;
export type TuneJobStatus = Api.TuneJob['status'];

// --- Embedding drift (docs/drift.md) -------------------------------------------------

export type DriftReport = Api.GetDriftResponse;
export type DriftWindow = Api.DriftWindow;
export type DriftReferenceResult = Api.ResetDriftReferenceResponse;
export interface DriftOptions {
  /** Only the windows of this kind (default both). */
  kind?: DriftWindow['kind'];
  /** Hours back from now, 1–168 (default 24). */
  hours?: number;
}

// --- Imports --------------------------------------------------------------------------

export type ImportJob = Api.ImportJob;
export type ImportState = Api.ImportJob['state'];
export type ImportFormat = NonNullable<Api.ImportJob['format']>;
export type ImportLimits = Api.ImportJob['limits'];
export type CreateImportInput = Api.CreateImportRequest;
export type RejectPage = Api.ListImportRejectsResponse;
export type ImportReject = RejectPage['rejects'][number];
export type UploadRequestInput = Api.RequestImportUploadRequest;
export type ImportUpload = Api.RequestImportUploadResponse;

// --- Aliases and experiments ----------------------------------------------------------

export type AliasTarget = Api.AliasTarget;
export type PutAliasInput = Api.PutAliasRequest;
export type Alias = Api.Alias;
export type AliasMove = Api.GetAliasHistoryResponse['history'][number];
export type MoveAction = AliasMove['action'];

export type ExperimentSummary = Api.ExperimentSummary;
export type ExperimentResults = Api.ExperimentResults;
export type Experiment = ExperimentResults['experiment'];
export type ExperimentMode = Experiment['mode'];
export type ExperimentState = Experiment['state'];
export type Guardrails = Experiment['guardrails'];
export type StartExperimentInput = Api.StartExperimentRequest;
export type ArmResult = Api.ArmResult;
export type Proportion = Api.Proportion;
export type RateTest = Api.RateTest;
export type Verdict = RateTest['verdict'];

export type FeedbackInput = Api.SendFeedbackRequest;
export type FeedbackEvent = FeedbackInput['event'];
/** `experiment`, `alias` and `arm` are set when `attributed` is true. */
export type FeedbackResult = Api.SendFeedbackResponse;

// --- Embedding functions and migrations (docs/models.md) ------------------------------

/** A row of raw model input for a collection with an embedding function. */
export interface InputRowInput {
  id: string | number;
  /** The model's input for this row: its flattened tensor (any array-like of numbers), or a text for a text model. */
  inputs: ArrayLike<number> | string;
  metadata?: Metadata;
}

export interface SearchByInputInput extends SearchOptions {
  input: ArrayLike<number> | string;
}

export interface SearchManyByInputInput extends SearchOptions {
  /** Up to 100 queries. */
  inputs: Array<ArrayLike<number> | string>;
}

export type Migration = Api.Migration;
export type MigrationState = Api.Migration['state'];
export type MigrationReport = NonNullable<Api.Migration['report']>;
export type CreateMigrationInput = Api.CreateMigrationRequest;

// --- Models ---------------------------------------------------------------------------

export type RegisterModelInput = Api.RegisterModelVersionRequest;
export type ModelVersion = Api.ModelVersion;
export type SingleUpload = Api.SingleUpload;
export type MultipartUpload = Api.MultipartUpload;
export type RegisteredModel = Api.RegisterModelVersionResponse;
export type ModelUploadInput = Api.RequestModelUploadRequest;
export type CommitModelInput = Api.CommitModelVersionRequest;
/** One model of `models.list()`: its version count and latest version number, not the versions. */
export type ModelSummary = Api.ListModelsResponse['models'][number];
/** `models.get()`: every version and the model's aliases. */
export type Model = Api.GetModelResponse;
export type ModelComparison = Api.CompareModelVersionsResponse;
export type ModelAlias = Api.ModelAlias;
export type ModelAliasInput = Api.PutModelAliasRequest;
export type ModelAliasMove = Api.GetModelAliasHistoryResponse['history'][number];

// --- Keys and health ------------------------------------------------------------------

export type CreateKeyInput = Api.CreateKeyRequest;
export type RateLimit = NonNullable<CreateKeyInput['rateLimit']>;
export type ApiKey = Api.ApiKey;
export type CreatedKey = Api.CreatedKey;
/** Local mode (`npm start`) adds `local`: the embedded S3's endpoint and credentials. */
export type Health = Api.GetHealthResponse;

/** The error body every API error has. */
export type ApiErrorBody = Api.Error;
