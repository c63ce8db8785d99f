/** `@shoal/client`: the TypeScript SDK of Shoal (docs/typescript.md); no `node:` imports (`./node.ts` has them). */
export { Shoal, CollectionsApi, AliasesApi, ExperimentsApi, ModelsApi, KeysApi, type ShoalOptions } from './client.js';
export { CollectionClient, ImportsApi, CandidatesApi, MigrationsApi } from './collection.js';
export {
  ShoalError,
  ShoalApiError,
  ShoalValidationError,
  ShoalAuthError,
  ShoalForbiddenError,
  ShoalNotFoundError,
  ShoalConflictError,
  ShoalRateLimitError,
  ShoalServerError,
  ShoalNetworkError,
  ShoalTimeoutError,
} from './errors.js';
export {
  waitForIndex,
  waitForTune,
  type WaitForIndexOptions,
  type IndexProgress,
  type WaitForTuneOptions,
} from './wait.js';
export {
  importData,
  followImport,
  TERMINAL_IMPORT_STATES,
  type ImportFileOptions,
  type ImportProgress,
  type ImportSource,
  type ImportTarget,
} from './import.js';
export { upsertAll, MAX_BODY_BYTES, MAX_BATCH_ROWS, type UpsertAllOptions } from './batch.js';
export { parseRetryAfter, backoffMs, DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
export type { FetchLike } from './http.js';
export type * from './types.js';
