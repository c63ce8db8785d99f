/**
 * Compile-time only (`npm run typecheck`; nothing here runs): every operation of the OpenAPI document has an
 * SDK method whose result is the document's 2xx response (or the list it wraps), and the inputs the SDK
 * passes through as the body are the document's request bodies. A route added to the table, or a response
 * schema changed, fails the typecheck here until `npm run openapi` and the SDK agree again.
 */
import type { Operations } from '../src/api-types.gen.js';
import type {
  AliasesApi,
  CandidatesApi,
  CollectionClient,
  CollectionsApi,
  ExperimentsApi,
  ImportsApi,
  KeysApi,
  MigrationsApi,
  ModelsApi,
  Shoal,
} from '../src/index.js';

/** Each assignable to the other: the same set of values, however the types are spelled. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** A assignable to B: the SDK narrows what the document allows (one `search` answer shape of two). */
type Within<A, B> = [A] extends [never] ? false : [A] extends [B] ? true : false;
/** Both checks hold (an intersection `true & false` would be `never`, which passes every constraint). */
type Both<A extends boolean, B extends boolean> = A extends true ? B : false;

type Result<F> = F extends (...args: never[]) => Promise<infer R> ? R : never;
type Input<F, N extends number = 0> = F extends (...args: infer P) => unknown ? Exclude<P[N], undefined> : never;
type Response<K extends keyof Operations> = Operations[K]['response'];
type Body<K extends keyof Operations> = Operations[K]['body'];

type Items<T, K extends keyof T> = T[K];

/** `true` for each operation, or why it has no method; a `false` fails the constraint and names the operation. */
type Checked<T extends { [K in keyof Operations]: true | 'no method' }> = T;
/** `true` for each operation named (only operations may be named). */
type CheckedSome<T extends { [K in keyof T]: K extends keyof Operations ? true : never }> = T;

export type ResponseChecks = Checked<{
  liveness: 'no method'; // the load balancer's probe; health() is the keyed one
  getOpenApi: 'no method'; // this document itself
  getHealth: Same<Result<Shoal['health']>, Response<'getHealth'>>;
  sendFeedback: Same<Result<Shoal['feedback']>, Response<'sendFeedback'>>;

  listCollections: Same<Result<CollectionsApi['list']>, Items<Response<'listCollections'>, 'collections'>>;
  createCollection: Same<Result<CollectionsApi['create']>, Response<'createCollection'>>;
  getCollection: Both<
    Same<Result<CollectionsApi['get']>, Response<'getCollection'>>,
    Same<Result<CollectionClient['info']>, Response<'getCollection'>>
  >;
  deleteCollection: Same<Result<CollectionsApi['delete']>, Response<'deleteCollection'>>;
  updateCollection: Same<Result<CollectionsApi['update']>, Response<'updateCollection'>>;

  listVectors: Same<Result<CollectionClient['listPage']>, Response<'listVectors'>>;
  upsertVectors: Same<Result<CollectionClient['upsert']>, Response<'upsertVectors'>>;
  getVectors: Same<Result<CollectionClient['get']>, Items<Response<'getVectors'>, 'vectors'>>;
  deleteVectors: Same<Result<CollectionClient['delete']>, Response<'deleteVectors'>>;
  patchVector: Same<Result<CollectionClient['patch']>, Response<'patchVector'>>;
  search: Both<
    Within<Result<CollectionClient['search']>, Response<'search'>>,
    Within<Result<CollectionClient['searchMany']>, Response<'search'>>
  >;
  buildIndex: Same<Result<CollectionClient['index']>, Response<'buildIndex'>>;
  listVersions: Same<Result<CollectionClient['versions']>, Items<Response<'listVersions'>, 'versions'>>;
  evaluateVersion: Same<Result<CollectionClient['evaluate']>, Response<'evaluateVersion'>>;
  tuneVersion: Same<Result<CollectionClient['tune']>, Response<'tuneVersion'>>;
  getTuneJob: Both<
    Same<Result<CollectionClient['tuneJob']>, Response<'getTuneJob'>>,
    Same<Result<CollectionClient['waitForTune']>, Response<'getTuneJob'>>
  >;
  getDrift: Same<Result<CollectionClient['drift']>, Response<'getDrift'>>;
  resetDriftReference: Same<Result<CollectionClient['resetDriftReference']>, Response<'resetDriftReference'>>;

  listLines: Same<Result<CandidatesApi['list']>, Response<'listLines'>>;
  getCandidate: Same<Result<CandidatesApi['get']>, Response<'getCandidate'>>;
  deleteCandidate: Same<Result<CandidatesApi['delete']>, Response<'deleteCandidate'>>;
  promoteCandidate: Same<Result<CandidatesApi['promote']>, Response<'promoteCandidate'>>;

  listImports: Same<Result<ImportsApi['list']>, Items<Response<'listImports'>, 'jobs'>>;
  createImport: Same<Result<ImportsApi['create']>, Response<'createImport'>>;
  requestImportUpload: Same<Result<ImportsApi['requestUpload']>, Response<'requestImportUpload'>>;
  listImportRejects: Same<Result<ImportsApi['rejectsPage']>, Response<'listImportRejects'>>;
  getImport: Same<Result<ImportsApi['get']>, Response<'getImport'>>;
  cancelImport: Same<Result<ImportsApi['cancel']>, Response<'cancelImport'>>;

  createMigration: Same<Result<MigrationsApi['start']>, Items<Response<'createMigration'>, 'migration'>>;
  listMigrations: Same<Result<MigrationsApi['list']>, Items<Response<'listMigrations'>, 'migrations'>>;
  getMigration: Same<Result<MigrationsApi['get']>, Response<'getMigration'>>;
  cancelMigration: Same<Result<MigrationsApi['cancel']>, Response<'cancelMigration'>>;

  listAliases: Same<Result<AliasesApi['list']>, Items<Response<'listAliases'>, 'aliases'>>;
  getAlias: Same<Result<AliasesApi['get']>, Response<'getAlias'>>;
  putAlias: Same<Result<AliasesApi['set']>, Response<'putAlias'>>;
  deleteAlias: Same<Result<AliasesApi['delete']>, Response<'deleteAlias'>>;
  getAliasHistory: Same<Result<AliasesApi['history']>, Items<Response<'getAliasHistory'>, 'history'>>;
  rollbackAlias: Same<Result<AliasesApi['rollback']>, Response<'rollbackAlias'>>;
  getExperiment: Same<Result<ExperimentsApi['results']>, Response<'getExperiment'>>;
  startExperiment: Same<Result<ExperimentsApi['start']>, Response<'startExperiment'>>;
  promoteExperiment: Same<Result<ExperimentsApi['promote']>, Response<'promoteExperiment'>>;
  abortExperiment: Same<Result<ExperimentsApi['abort']>, Response<'abortExperiment'>>;

  listModels: Same<Result<ModelsApi['list']>, Items<Response<'listModels'>, 'models'>>;
  getModel: Same<Result<ModelsApi['get']>, Response<'getModel'>>;
  listModelVersions: Same<Result<ModelsApi['versions']>, Items<Response<'listModelVersions'>, 'versions'>>;
  registerModelVersion: Same<Result<ModelsApi['register']>, Response<'registerModelVersion'>>;
  getModelVersion: Same<Result<ModelsApi['version']>, Response<'getModelVersion'>>;
  uploadModelArtifact: Same<Result<ModelsApi['uploadArtifact']>, Response<'uploadModelArtifact'>>;
  commitModelVersion: Same<Result<ModelsApi['commit']>, Response<'commitModelVersion'>>;
  requestModelUpload: Same<Result<ModelsApi['requestUpload']>, Response<'requestModelUpload'>>;
  abortModelUpload: Same<Result<ModelsApi['abortUpload']>, Response<'abortModelUpload'>>;
  compareModelVersions: Same<Result<ModelsApi['compare']>, Response<'compareModelVersions'>>;
  getModelAlias: Same<Result<ModelsApi['getAlias']>, Response<'getModelAlias'>>;
  putModelAlias: Same<Result<ModelsApi['setAlias']>, Response<'putModelAlias'>>;
  getModelAliasHistory: Same<Result<ModelsApi['aliasHistory']>, Items<Response<'getModelAliasHistory'>, 'history'>>;

  listKeys: Same<Result<KeysApi['list']>, Items<Response<'listKeys'>, 'keys'>>;
  createKey: Same<Result<KeysApi['create']>, Response<'createKey'>>;
  revokeKey: Same<Result<KeysApi['revoke']>, Response<'revokeKey'>>;
}>;

/** The inputs sent as the body unchanged; the others are assembled (vectors, ids) or sent as a query. */
export type BodyChecks = CheckedSome<{
  sendFeedback: Same<Input<Shoal['feedback']>, Body<'sendFeedback'>>;
  createCollection: Same<Input<CollectionsApi['create']>, Body<'createCollection'>>;
  updateCollection: Same<Input<CollectionsApi['update'], 1>, Body<'updateCollection'>>;
  deleteVectors: Within<Input<CollectionClient['delete']>, Body<'deleteVectors'> | Body<'deleteVectors'>['ids']>;
  buildIndex: Same<Input<CollectionClient['index']>, Body<'buildIndex'>>;
  tuneVersion: Same<Input<CollectionClient['tune'], 1>, Body<'tuneVersion'>>;
  promoteCandidate: Same<Input<CandidatesApi['promote'], 1>, Body<'promoteCandidate'>>;
  createImport: Same<Input<ImportsApi['create']>, Body<'createImport'>>;
  createMigration: Same<Input<MigrationsApi['start']>, Body<'createMigration'>>;
  requestImportUpload: Same<Input<ImportsApi['requestUpload']>, Body<'requestImportUpload'>>;
  putAlias: Same<Input<AliasesApi['set'], 1>, Body<'putAlias'>>;
  rollbackAlias: Same<Input<AliasesApi['rollback'], 1>, Body<'rollbackAlias'>>;
  startExperiment: Same<Input<ExperimentsApi['start'], 1>, Body<'startExperiment'>>;
  promoteExperiment: Same<Input<ExperimentsApi['promote'], 1>, Body<'promoteExperiment'>>;
  abortExperiment: Same<Input<ExperimentsApi['abort'], 1>, Body<'abortExperiment'>>;
  registerModelVersion: Same<Input<ModelsApi['register'], 1>, Body<'registerModelVersion'>>;
  commitModelVersion: Same<Input<ModelsApi['commit'], 2>, Body<'commitModelVersion'>>;
  requestModelUpload: Same<Input<ModelsApi['requestUpload'], 2>, Body<'requestModelUpload'>>;
  putModelAlias: Same<Input<ModelsApi['setAlias'], 2>, Body<'putModelAlias'>>;
  createKey: Same<Input<KeysApi['create']>, Body<'createKey'>>;
}>;
