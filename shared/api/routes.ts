/**
 * The route table of the HTTP API v1: one entry per route — its key (`METHOD /path/{param}`, whose policy
 * is in `shared/auth/policy.ts`), operation id, summary, tag, request (path parameters come from the path,
 * query and body are zod schemas), response schemas per status (`responses.ts`), the error codes it can
 * answer besides the ones every route can, and its handler. The same table drives the dispatcher
 * (`router.ts`: matching, the 405 `Allow` list, parameter and body validation), the OpenAPI document
 * (`openapi.ts`), and through `ROUTE_POLICIES` the CDK routes and the authorizer.
 *
 * Adding a route: a line in `ROUTE_POLICIES` (the compiler then asks for the entry here), one entry in
 * `ROUTES`, then `npm run openapi` (the committed document and docs/api.md's route list).
 */
import { z } from 'zod';
import type { KeyAdmin, Principal } from '../auth/keys.js';
import { PUBLIC_ROUTE_KEYS, ROUTE_POLICIES, grantCovers, splitRouteKey } from '../auth/policy.js';
import type { ApiRouteKey, PublicRouteKey, RoutePolicy } from '../auth/policy.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import type { DriftApi } from '../models/drift-monitor.js';
import type { ImportApi } from '../import/service.js';
import { migrationView, type MigrationService } from '../models/migration.js';
import { LINE_NAME, parseLineName } from '../indexing/lines.js';
import type { Caller, LifecycleService, ShoalService } from '../service.js';
import { IMPORTS_FOLDER_PATTERN, collectionOfImportKey } from '../storage/keys.js';
import { LIMITS } from '../validation.js';
import * as R from './responses.js';
import type { ErrorCode, ResponseName } from './responses.js';
import * as S from './schemas.js';
import type { SchemaObjects } from './milvus/store.js';

export interface ApiDeps {
  service: ShoalService;
  /**
   * Who the bearer token (undefined when absent or not a Bearer header) belongs to: a `Principal`, or
   * undefined / false for no valid key. `true` stands for an unscoped, unlimited admin key.
   */
  authorize: (token: string | undefined) => Promise<AuthResult> | AuthResult;
  /** Key management (`/v1/keys`); without it those routes answer 404. */
  keys?: KeyAdmin;
  /** Extra fields for `GET /v1/health` (the local runtime adds its emulator endpoints). */
  healthExtra?: () => Record<string, unknown>;
  version: string;
  /** Bulk imports; without it the import routes answer 404. */
  imports?: ImportApi;
  /** Aliases, evaluation, models; without it those routes answer 404. */
  lifecycle?: LifecycleService;
  /** Re-embedding migrations; without it those routes answer 404. */
  migrations?: MigrationApi;
  /** The key id of a bearer token, when the deployment knows one (else a hash prefix of the token is used). */
  identify?: (token: string | undefined) => Promise<string | undefined> | string | undefined;
  /** Where the Milvus REST layer keeps collection schemas (docs/milvus.md); without it, in process only. */
  milvusSchemas?: SchemaObjects;
  /** Embedding drift (docs/drift.md); without it the drift routes answer 404. */
  drift?: DriftApi;
}

export type AuthResult = Principal | boolean | undefined;

/** The services a handler calls; the optional ones answer 404 NOT_FOUND when the deployment lacks them. */
export interface Uses {
  readonly service: ShoalService;
  readonly lifecycle: LifecycleService;
  readonly imports: ImportApi;
  readonly keys: KeyAdmin;
  readonly migrations: MigrationApi;
  readonly drift: DriftApi;
}

export type MigrationApi = Pick<MigrationService, 'start' | 'get' | 'list' | 'cancel'>;

export function usesOf(deps: ApiDeps): Uses {
  return {
    service: deps.service,
    get lifecycle() {
      if (!deps.lifecycle) throw new NotFoundError('the lifecycle API is not enabled on this deployment');
      return deps.lifecycle;
    },
    get imports() {
      if (!deps.imports) throw new NotFoundError('imports are not enabled on this deployment');
      return deps.imports;
    },
    get keys() {
      if (!deps.keys) throw new NotFoundError('key management is not enabled on this deployment');
      return deps.keys;
    },
    get migrations() {
      if (!deps.migrations) throw new NotFoundError('migrations are not enabled on this deployment (no model runtime)');
      return deps.migrations;
    },
    get drift() {
      if (!deps.drift) throw new NotFoundError('drift monitoring is not enabled on this deployment');
      return deps.drift;
    },
  };
}

export type Result = { status: number; body: unknown };

// ---------------------------------------------------------------------------------------
// Path and query parameters

/**
 * JSON Schema of each parameter schema as a client sends it (the value is a string on the wire; its rules
 * live in the parser), for the OpenAPI document. A side table rather than zod's `.meta()`, which clones
 * the schema: this module is loaded on every cold start of the api function.
 */
export const PARAM_DOCS = new WeakMap<z.ZodType, Record<string, unknown>>();

/**
 * A path or query parameter: the raw string in, the checked value out. The parser throws the same
 * `ValidationError` (message, `field`) the API has always answered; `doc` is its JSON Schema.
 */
function param<T>(parse: (raw: string) => T, doc: Record<string, unknown>, description: string) {
  const schema = z.string().transform((raw) => parse(raw));
  PARAM_DOCS.set(schema, { ...doc, description });
  return schema;
}

/** An optional query parameter: absent = undefined. */
function optionalParam<T>(parse: (raw: string) => T, doc: Record<string, unknown>, description: string) {
  const schema = z
    .string()
    .optional()
    .transform((raw) => (raw === undefined ? undefined : parse(raw)));
  PARAM_DOCS.set(schema, { ...doc, description });
  return schema;
}

const NAME_RULE = { type: 'string', pattern: LIMITS.collectionName.source };

/** Every path parameter, by name: a route's parameters are the `{x}` of its path, checked in path order. */
export const PATH_PARAMS = {
  name: param(S.parseCollectionName, NAME_RULE, 'A collection (the read routes also take an alias of one).'),
  alias: param(
    (v) => S.parseName(v, 'alias'),
    NAME_RULE,
    'An alias (of a collection, or of a model under /v1/models).',
  ),
  model: param((v) => S.parseName(v, 'model'), NAME_RULE, 'A model in the registry.'),
  v: param((v) => S.parseVersion(v), { type: 'integer', minimum: 1 }, 'A version number.'),
  candidate: param(parseLineName, { type: 'string', pattern: LINE_NAME.source }, 'A candidate index line.'),
  jobId: param((v) => v, { type: 'string' }, 'An import, migration or tune job id.'),
  id: param((v) => v, { type: 'string' }, 'An API key id (`key_…`), or a vector id (checked by its route).'),
} as const;

export type PathParamName = keyof typeof PATH_PARAMS;

/** A query parameter: absent = undefined when the schema accepts it, else the empty string. */
export type QuerySchema = z.ZodType<unknown, string | undefined>;

/** A query parameter passed on as written; its route parses the set (`S.parseListVectorsQuery`, …). */
const rawQuery = (doc: Record<string, unknown>, description: string) => optionalParam((v) => v, doc, description);

/** The raw query parameters of a route, back as URLSearchParams for the parsers that take the whole set. */
function searchParams(query: Record<string, string | undefined>): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) out.set(k, v);
  return out;
}

const PAGE_QUERY = {
  limit: rawQuery({ type: 'integer', minimum: 1, maximum: 1000 }, 'Page size, 1–1000 (default 100).'),
  cursor: rawQuery({ type: 'string' }, "The previous page's `nextCursor`, as it was."),
};

function parseDriftKind(v: string): 'query' | 'ingest' {
  if (v === 'query' || v === 'ingest') return v;
  throw new ValidationError(`kind must be query or ingest, got ${JSON.stringify(v.slice(0, 40))}`, { field: 'kind' });
}

function parseIntIn(v: string, field: string, min: number, max: number): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ValidationError(`${field} must be an integer in [${min}, ${max}]`, { field });
  }
  return n;
}

const versionQuery = (field: string, description: string) =>
  param((v) => S.parseVersion(v, field), { type: 'integer', minimum: 1 }, description);

// ---------------------------------------------------------------------------------------
// Request bodies

export interface BodySpec<T> {
  /** The body's schema for the document (the accepted input); a function, as only the document needs it. */
  schema: () => z.ZodType;
  /** An empty body counts as `{}`. */
  optional: boolean;
  /** Validates the parsed JSON (a `ValidationError` names the field) into the handler's input. */
  parse: (json: unknown, deps: ApiDeps) => T;
}

function body<Sc extends z.ZodType>(schema: Sc): BodySpec<z.output<Sc>> {
  return { schema: () => schema, optional: false, parse: (json) => S.parseBody(schema, json) };
}

function optionalBody<Sc extends z.ZodType>(schema: Sc): BodySpec<z.output<Sc>> {
  return { schema: () => schema, optional: true, parse: (json) => S.parseBody(schema, json) };
}

// ---------------------------------------------------------------------------------------
// Routes

type PathOf<K> = K extends `${string} ${infer P}` ? P : never;
type ParamNames<P> = P extends `${string}{${infer N}}${infer Rest}` ? N | ParamNames<Rest> : never;
/** The checked path parameters of route key K, typed from its path. */
export type ParamsOf<K> = {
  [N in ParamNames<PathOf<K>>]: N extends PathParamName ? z.output<(typeof PATH_PARAMS)[N]> : never;
};

export interface HandlerInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
  /** Who is calling (for lifecycle records). */
  caller(): Promise<Caller>;
  use: Uses;
  deps: ApiDeps;
}

export type Tag =
  | 'health'
  | 'collections'
  | 'vectors'
  | 'index'
  | 'imports'
  | 'aliases'
  | 'experiments'
  | 'models'
  | 'keys';

export const TAGS: Record<Tag, string> = {
  health: 'Liveness, health and this document',
  collections: 'Collections: create, list, inspect, configure, drop',
  vectors: 'Upsert, get, delete and search vectors',
  index: 'Index builds, versions, candidate lines, evaluation and tuning',
  imports: 'Bulk imports from S3 (docs/imports.md)',
  aliases: 'Collection aliases (docs/lifecycle.md)',
  experiments: 'Champion/challenger experiments on an alias, and feedback',
  models: 'The model registry: versions, artifacts, aliases',
  keys: 'API keys (docs/security.md)',
};

interface RouteSpec<K extends ApiRouteKey, Q extends Record<string, QuerySchema>, B> {
  key: K;
  /** The OpenAPI operationId (stable: SDKs name their methods after it). */
  operationId: string;
  summary: string;
  description?: string;
  tag: Tag;
  /** Checked after the collection name and before the other parameters: 404 when the deployment lacks it. */
  needs?: 'lifecycle' | 'keys' | 'imports' | 'migrations' | 'drift';
  /** Served only when the deployment has it (else the path answers 405 for this method). */
  onlyWith?: 'lifecycle';
  /** The body is checked before `needs` and the other path parameters (this route's order since v1). */
  bodyFirst?: true;
  query?: Q;
  body?: BodySpec<B>;
  /** The response body schema (`responses.ts`) by status code: every success status the route can answer. */
  responses: Readonly<Record<number, ResponseName>>;
  /**
   * Error codes the route answers besides those every route, every parameter and every body can
   * (`impliedErrors`): not found, conflicts, quality gates, …
   */
  errors: readonly ErrorCode[];
  handler: (input: HandlerInput<ParamsOf<K>, { [N in keyof Q]: z.output<Q[N]> }, B>) => Promise<Result>;
}

/** A route of the table. */
export interface Route {
  key: ApiRouteKey;
  method: string;
  /** `/v1/collections/{name}/search` */
  path: string;
  policy: RoutePolicy;
  operationId: string;
  summary: string;
  description?: string;
  tag: Tag;
  needs?: 'lifecycle' | 'keys' | 'imports' | 'migrations' | 'drift';
  onlyWith?: 'lifecycle';
  bodyFirst?: true;
  /** Path parameter names, in path order. */
  params: readonly PathParamName[];
  query: Readonly<Record<string, QuerySchema>>;
  body?: BodySpec<unknown>;
  responses: Readonly<Record<number, ResponseName>>;
  errors: readonly ErrorCode[];
  handler: (input: HandlerInput<Record<string, unknown>, Record<string, unknown>, unknown>) => Promise<Result>;
}

function route<
  K extends ApiRouteKey,
  Q extends Record<string, QuerySchema> = Record<never, QuerySchema>,
  B = undefined,
>(spec: RouteSpec<K, Q, B>): Route {
  const { method, path } = splitRouteKey(spec.key);
  const params = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  for (const p of params) {
    if (!Object.hasOwn(PATH_PARAMS, p)) throw new Error(`${spec.key}: no PATH_PARAMS entry for {${p}}`);
  }
  return {
    ...spec,
    method,
    path,
    policy: ROUTE_POLICIES[spec.key],
    params: params as PathParamName[],
    query: spec.query ?? {},
    body: spec.body as BodySpec<unknown> | undefined,
    handler: spec.handler as Route['handler'],
  };
}

const ok = (body: unknown, status = 200): Result => ({ status, body });

/**
 * A scoped key imports only from the drop folders (`imports/<collection>/`) of its own collections: the
 * import role reads every collection's folder, so any other object would let it copy another
 * collection's upload into its own and read it back.
 */
function assertImportInScope(principal: Principal, uri: string): void {
  if (principal.collections === undefined) return;
  const key = /^s3:\/\/[^/]+\/(.+)$/.exec(uri)?.[1] ?? '';
  const folder = collectionOfImportKey(key);
  if (folder === undefined || !grantCovers(principal, folder)) {
    throw new ForbiddenError(
      `a scoped key imports only from the ${IMPORTS_FOLDER_PATTERN} folders of its collections`,
      { field: 'uri' },
    );
  }
}

/** A listing cut down to what a scoped key may see (its collections or aliases). */
function visible<T extends { name: string }>(principal: Principal, items: T[]): T[] {
  return items.filter((item) => grantCovers(principal, item.name));
}

/** `f`, evaluated on the first call only. */
function once<T>(f: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: f() }).v;
}

/** `POST /v1/collections`: the create body, plus the lifecycle fields (`minRecall`, `model`). */
const createCollectionBody: BodySpec<ReturnType<typeof S.parseCreateCollection>> = {
  schema: once(() =>
    z.strictObject({ ...S.createCollectionSchema.in.shape, ...S.createCollectionLifecycleSchema.shape }),
  ),
  optional: false,
  parse: (json, deps) => (deps.lifecycle ? S.parseCreateCollection(json) : S.parseBody(S.createCollectionSchema, json)),
};

/** `POST /v1/collections/{name}/vectors`: the vectors, and an optional `modelVersion` claim. */
const upsertBody: BodySpec<ReturnType<typeof S.parseUpsert>> = {
  schema: once(() =>
    z.strictObject({
      ...S.upsertDocumentSchema.shape,
      modelVersion: S.createCollectionLifecycleSchema.shape.model,
    }),
  ),
  optional: false,
  parse: (json) => S.parseUpsert(json),
};

/**
 * Every keyed route, in dispatch order. Routes of one path keep the order of their methods here, which
 * is the order of a 405's `Allow` list.
 */
export const ROUTES: readonly Route[] = [
  route({
    key: 'GET /v1/health',
    operationId: 'getHealth',
    summary: 'Status and version (local mode adds its emulator endpoints)',
    tag: 'health',
    responses: { 200: 'health' },
    errors: [],
    handler: async ({ deps }) => ok({ status: 'ok', version: deps.version, ...(deps.healthExtra?.() ?? {}) }),
  }),
  // --- collections ---
  route({
    key: 'GET /v1/collections',
    operationId: 'listCollections',
    summary: 'List collections (a scoped key sees its own)',
    tag: 'collections',
    responses: { 200: 'collectionList' },
    errors: [],
    handler: async ({ use, principal }) => ok({ collections: visible(principal, await use.service.listCollections()) }),
  }),
  route({
    key: 'POST /v1/collections',
    operationId: 'createCollection',
    summary: 'Create a collection',
    tag: 'collections',
    body: createCollectionBody,
    responses: { 201: 'collection' },
    errors: ['CONFLICT'],
    handler: async ({ use, body }) => ok(await use.service.createCollection(body), 201),
  }),
  route({
    key: 'GET /v1/collections/{name}',
    operationId: 'getCollection',
    summary: 'A collection with the stats of its serving index line',
    tag: 'collections',
    responses: { 200: 'collection' },
    errors: ['NOT_FOUND', 'TAIL_BUDGET_EXCEEDED'],
    handler: async ({ use, params }) => ok(await use.service.getCollection(params.name)),
  }),
  route({
    key: 'DELETE /v1/collections/{name}',
    operationId: 'deleteCollection',
    summary: 'Drop a collection and everything in it',
    tag: 'collections',
    responses: { 200: 'deleted' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => {
      await use.service.deleteCollection(params.name);
      return ok({ deleted: true });
    },
  }),
  route({
    key: 'PATCH /v1/collections/{name}',
    operationId: 'updateCollection',
    summary: "Set or clear the collection's quality gate (minRecall)",
    tag: 'collections',
    onlyWith: 'lifecycle',
    body: body(S.patchCollectionSchema),
    responses: { 200: 'collection' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params, body }) => ok(await use.lifecycle.updateCollection(params.name, body)),
  }),
  // --- vectors ---
  route({
    key: 'GET /v1/collections/{name}/vectors',
    operationId: 'listVectors',
    summary: "Page through a collection's live vectors (in the order of their last write), optionally filtered",
    tag: 'vectors',
    query: {
      ...PAGE_QUERY,
      filter: rawQuery(
        { type: 'string' },
        'A filter expression (`lang == "en"`) or a filter object as JSON (`{"year":{"$lt":2022}}`).',
      ),
      include: rawQuery({ type: 'string' }, 'Comma list of `values`, `metadata` (default: ids only).'),
    },
    responses: { 200: 'vectorPage' },
    errors: ['NOT_FOUND', 'FILTER_SYNTAX_ERROR'],
    handler: async ({ use, params, query }) =>
      ok(await use.service.listVectors(params.name, S.parseListVectorsQuery(searchParams(query)))),
  }),
  route({
    key: 'POST /v1/collections/{name}/vectors',
    operationId: 'upsertVectors',
    summary: 'Upsert vectors (durable and visible to the next strong search when acknowledged)',
    tag: 'vectors',
    body: upsertBody,
    responses: { 200: 'upserted' },
    errors: ['NOT_FOUND', 'MODEL_MISMATCH', 'BACKPRESSURE'],
    handler: async ({ use, params, body }) => {
      if ('inputs' in body) return ok(await use.service.upsertInputs(params.name, body.inputs));
      const { vectors, modelVersion } = body;
      return ok(
        modelVersion
          ? await use.service.upsert(params.name, vectors, { modelVersion })
          : await use.service.upsert(params.name, vectors),
      );
    },
  }),
  route({
    key: 'POST /v1/collections/{name}/vectors/get',
    operationId: 'getVectors',
    summary: 'Get vectors by id (missing and deleted ids are left out)',
    tag: 'vectors',
    body: body(S.getVectorsSchema),
    responses: { 200: 'vectorList' },
    errors: ['NOT_FOUND', 'TAIL_BUDGET_EXCEEDED'],
    handler: async ({ use, params, body }) => ok({ vectors: await use.service.getVectors(params.name, body) }),
  }),
  route({
    key: 'POST /v1/collections/{name}/vectors/delete',
    operationId: 'deleteVectors',
    summary: 'Delete vectors by id or by filter',
    tag: 'vectors',
    body: body(S.deleteVectorsSchema),
    responses: { 200: 'vectorsDeleted' },
    errors: ['NOT_FOUND', 'FILTER_SYNTAX_ERROR', 'BACKPRESSURE', 'TAIL_BUDGET_EXCEEDED', 'LIMIT_EXCEEDED'],
    handler: async ({ use, params, body }) => ok(await use.service.deleteVectors(params.name, body)),
  }),
  // After vectors/get and vectors/delete: the first path that matches wins, so those literals do.
  route({
    key: 'PATCH /v1/collections/{name}/vectors/{id}',
    operationId: 'patchVector',
    summary: 'Merge metadata into a stored vector without resending its values (null removes a key)',
    tag: 'vectors',
    body: body(S.patchVectorSchema),
    responses: { 200: 'upserted' },
    errors: ['NOT_FOUND', 'CONFLICT', 'BACKPRESSURE'],
    handler: async ({ use, params, body }) =>
      ok(await use.service.patchVector(params.name, S.parseVectorId(params.id), body.metadata)),
  }),
  route({
    key: 'POST /v1/collections/{name}/search',
    operationId: 'search',
    summary: 'Search by one vector (`vector`) or up to 100 (`vectors`), with filters',
    tag: 'vectors',
    body: body(S.searchSchema),
    responses: { 200: 'searchResult' },
    errors: ['NOT_FOUND', 'FILTER_SYNTAX_ERROR', 'LIMIT_EXCEEDED', 'TAIL_BUDGET_EXCEEDED', 'SEARCH_UNAVAILABLE'],
    handler: async ({ use, params, body: { input, single } }) => {
      const out = await use.service.search(params.name, input);
      return ok({
        results: single ? (out.results[0] ?? []) : out.results,
        servedBy: out.servedBy,
        ...(out.queryId !== undefined ? { queryId: out.queryId } : {}),
        stats: out.stats,
      });
    },
  }),
  // --- index versions and candidate lines ---
  route({
    key: 'POST /v1/collections/{name}/index',
    operationId: 'buildIndex',
    summary: 'Request a build now, or start a candidate index line with other settings',
    tag: 'index',
    body: optionalBody(S.buildRequestSchema),
    responses: { 202: 'buildOutput' },
    errors: ['NOT_FOUND', 'CONFLICT', 'LIMIT_EXCEEDED'],
    handler: async ({ use, params, body, caller }) =>
      ok(await use.service.buildIndex(params.name, body, await caller()), 202),
  }),
  route({
    key: 'GET /v1/collections/{name}/candidates',
    operationId: 'listLines',
    summary: 'The serving line, the candidate lines and the last promotions',
    tag: 'index',
    responses: { 200: 'lineList' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.service.listLines(params.name)),
  }),
  route({
    key: 'GET /v1/collections/{name}/candidates/{candidate}',
    operationId: 'getCandidate',
    summary: 'A candidate index line',
    tag: 'index',
    responses: { 200: 'lineView' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.service.getCandidate(params.name, params.candidate)),
  }),
  route({
    key: 'DELETE /v1/collections/{name}/candidates/{candidate}',
    operationId: 'deleteCandidate',
    summary: 'Stop building a candidate line',
    tag: 'index',
    responses: { 200: 'deleted' },
    errors: ['NOT_FOUND', 'CONFLICT'],
    handler: async ({ use, params }) => {
      await use.service.deleteCandidate(params.name, params.candidate);
      return ok({ deleted: true });
    },
  }),
  route({
    key: 'POST /v1/collections/{name}/candidates/{candidate}/promote',
    operationId: 'promoteCandidate',
    summary: 'Make a candidate line the serving one',
    tag: 'index',
    body: optionalBody(S.promoteCandidateSchema),
    responses: { 200: 'promoteCandidateResult' },
    errors: ['NOT_FOUND', 'CONFLICT', 'QUALITY_GATE'],
    handler: async ({ use, params, body, caller }) =>
      ok(await use.service.promoteCandidate(params.name, params.candidate, body, await caller())),
  }),
  // --- imports ---
  route({
    key: 'GET /v1/collections/{name}/imports',
    operationId: 'listImports',
    summary: 'Import jobs of a collection, newest first',
    tag: 'imports',
    needs: 'imports',
    responses: { 200: 'importJobList' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok({ jobs: await use.imports.listImports(params.name) }),
  }),
  route({
    key: 'POST /v1/collections/{name}/imports',
    operationId: 'createImport',
    summary: 'Import an S3 object (202: a new or resumed job; 200: the object was imported already)',
    tag: 'imports',
    // The body and the key's scope are checked before whether the deployment has imports.
    body: body(S.createImportSchema),
    responses: { 200: 'importJob', 202: 'importJob' },
    errors: ['NOT_FOUND', 'CONFLICT', 'UNREADABLE_FILE', 'OBJECT_CHANGED'],
    handler: async ({ use, params, body: { uri, ...limits }, principal }) => {
      assertImportInScope(principal, uri);
      const { job, created, resumed } = await use.imports.createImport(params.name, uri, limits);
      return ok(job, created || resumed ? 202 : 200);
    },
  }),
  // Before imports/{jobId}: the literal wins.
  route({
    key: 'POST /v1/collections/{name}/imports/uploads',
    operationId: 'requestImportUpload',
    summary: "A presigned PUT URL for a file in the collection's import drop folder",
    tag: 'imports',
    needs: 'imports',
    body: body(S.importUploadSchema),
    responses: { 201: 'importUpload' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params, body }) => ok(await use.imports.requestUpload(params.name, body), 201),
  }),
  route({
    key: 'GET /v1/collections/{name}/imports/{jobId}/rejects',
    operationId: 'listImportRejects',
    summary: "An import's reject report, paged",
    tag: 'imports',
    needs: 'imports',
    query: PAGE_QUERY,
    responses: { 200: 'rejectPage' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params, query }) =>
      ok(await use.imports.listRejects(params.name, params.jobId, S.parseRejectsQuery(searchParams(query)))),
  }),
  route({
    key: 'GET /v1/collections/{name}/imports/{jobId}',
    operationId: 'getImport',
    summary: 'An import job and its progress',
    tag: 'imports',
    needs: 'imports',
    responses: { 200: 'importJob' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.imports.getImport(params.name, params.jobId)),
  }),
  route({
    key: 'DELETE /v1/collections/{name}/imports/{jobId}',
    operationId: 'cancelImport',
    summary: 'Cancel a queued or running import job',
    tag: 'imports',
    needs: 'imports',
    responses: { 200: 'importJob' },
    errors: ['NOT_FOUND', 'CONFLICT'],
    handler: async ({ use, params }) => ok(await use.imports.cancelImport(params.name, params.jobId)),
  }),
  // --- migrations (docs/models.md) ---
  route({
    key: 'POST /v1/collections/{name}/migrations',
    operationId: 'createMigration',
    summary: 'Re-embed a collection into a new one bound to another model version (a job; 202)',
    tag: 'models',
    needs: 'migrations',
    body: body(S.createMigrationSchema),
    responses: { 202: 'migrationResult' },
    errors: ['NOT_FOUND', 'CONFLICT'],
    handler: async ({ use, params, body, caller }) => {
      const job = await use.migrations.start(params.name, body, (await caller()).actor);
      return ok({ migration: migrationView(job) }, 202);
    },
  }),
  route({
    key: 'GET /v1/collections/{name}/migrations',
    operationId: 'listMigrations',
    summary: "A collection's migrations, newest first",
    tag: 'models',
    needs: 'migrations',
    responses: { 200: 'migrationList' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok({ migrations: (await use.migrations.list(params.name)).map(migrationView) }),
  }),
  route({
    key: 'GET /v1/collections/{name}/migrations/{jobId}',
    operationId: 'getMigration',
    summary: 'A migration: state, progress, rejects and (when done) the comparison report',
    tag: 'models',
    needs: 'migrations',
    responses: { 200: 'migration' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(migrationView(await use.migrations.get(params.name, params.jobId))),
  }),
  route({
    key: 'DELETE /v1/collections/{name}/migrations/{jobId}',
    operationId: 'cancelMigration',
    summary: 'Cancel a migration (the target keeps the rows written so far)',
    tag: 'models',
    needs: 'migrations',
    responses: { 200: 'migration' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(migrationView(await use.migrations.cancel(params.name, params.jobId))),
  }),
  // --- versions, evaluation, tuning ---
  route({
    key: 'GET /v1/collections/{name}/versions',
    operationId: 'listVersions',
    summary: 'Index versions (manifests), newest first',
    tag: 'index',
    responses: { 200: 'versionList' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok({ versions: await use.service.listVersions(params.name) }),
  }),
  route({
    key: 'POST /v1/collections/{name}/versions/{v}/evaluate',
    operationId: 'evaluateVersion',
    summary: 'Measure recall and latency of an index version',
    tag: 'index',
    needs: 'lifecycle',
    body: optionalBody(S.evaluateSchema),
    responses: { 200: 'evaluation' },
    errors: ['NOT_FOUND', 'LIMIT_EXCEEDED'],
    handler: async ({ use, params, body, caller }) =>
      ok(await use.lifecycle.evaluateVersion(params.name, params.v, body, await caller())),
  }),
  route({
    key: 'POST /v1/collections/{name}/versions/{v}/tune',
    operationId: 'tuneVersion',
    summary: "Sweep efSearch (and nprobe) to a target recall; set the line's defaults (async: a tune job, 202)",
    tag: 'index',
    needs: 'lifecycle',
    body: body(S.tuneSchema),
    responses: { 200: 'evaluation', 202: 'tuneJob' },
    errors: ['NOT_FOUND', 'CONFLICT', 'LIMIT_EXCEEDED', 'ASYNC_REQUIRED'],
    handler: async ({ use, params, body, caller }) =>
      body.async
        ? ok(await use.lifecycle.startTuneJob(params.name, params.v, body, await caller()), 202)
        : ok(await use.lifecycle.tuneVersion(params.name, params.v, body, await caller())),
  }),
  route({
    key: 'GET /v1/collections/{name}/tune-jobs/{jobId}',
    operationId: 'getTuneJob',
    summary: 'An asynchronous tune job: status, progress and (once succeeded) the evaluation',
    tag: 'index',
    needs: 'lifecycle',
    responses: { 200: 'tuneJob' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.lifecycle.getTuneJob(params.name, params.jobId)),
  }),
  // --- embedding drift ---
  route({
    key: 'GET /v1/collections/{name}/drift',
    operationId: 'getDrift',
    summary: 'Embedding drift of queries and upserts against the reference, per hour (docs/drift.md)',
    tag: 'index',
    needs: 'drift',
    query: {
      kind: optionalParam(
        parseDriftKind,
        { type: 'string', enum: ['query', 'ingest'] },
        'Only the windows of this kind (default both).',
      ),
      hours: optionalParam(
        (v) => parseIntIn(v, 'hours', 1, 168),
        { type: 'integer', minimum: 1, maximum: 168 },
        'Hours of windows back from now, 1–168 (default 24).',
      ),
    },
    responses: { 200: 'driftReport' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params, query }) =>
      ok(
        await use.drift.report(params.name, {
          ...(query.kind !== undefined ? { kind: query.kind } : {}),
          ...(query.hours !== undefined ? { hours: query.hours } : {}),
        }),
      ),
  }),
  route({
    key: 'POST /v1/collections/{name}/drift/reference',
    operationId: 'resetDriftReference',
    summary: "Rebuild the drift reference from the collection's current rows (accept a new distribution)",
    tag: 'index',
    needs: 'drift',
    responses: { 200: 'driftReference' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.drift.resetReference(params.name)),
  }),
  // --- aliases ---
  route({
    key: 'GET /v1/aliases',
    operationId: 'listAliases',
    summary: 'List aliases (a scoped key sees its own)',
    tag: 'aliases',
    needs: 'lifecycle',
    responses: { 200: 'aliasList' },
    errors: [],
    handler: async ({ use, principal }) => ok({ aliases: visible(principal, await use.lifecycle.listAliases()) }),
  }),
  route({
    key: 'GET /v1/aliases/{alias}',
    operationId: 'getAlias',
    summary: 'An alias and its running experiment',
    tag: 'aliases',
    needs: 'lifecycle',
    responses: { 200: 'alias' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.lifecycle.getAlias(params.alias)),
  }),
  route({
    key: 'PUT /v1/aliases/{alias}',
    operationId: 'putAlias',
    summary: 'Create or move an alias (201 when created)',
    tag: 'aliases',
    needs: 'lifecycle',
    body: body(S.putAliasSchema),
    responses: { 200: 'alias', 201: 'alias' },
    errors: ['NOT_FOUND', 'CONFLICT', 'QUALITY_GATE'],
    handler: async ({ use, params, body, caller }) => {
      const { alias: view, created } = await use.lifecycle.putAlias(params.alias, body, await caller());
      return ok(view, created ? 201 : 200);
    },
  }),
  route({
    key: 'DELETE /v1/aliases/{alias}',
    operationId: 'deleteAlias',
    summary: 'Delete an alias (optionally only at an expected revision)',
    tag: 'aliases',
    needs: 'lifecycle',
    query: {
      expectedRevision: optionalParam(
        (v) => S.parseVersion(v, 'expectedRevision'),
        { type: 'integer', minimum: 1 },
        'Delete only if the alias is at this revision (409 CONFLICT otherwise).',
      ),
    },
    responses: { 200: 'deleted' },
    errors: ['NOT_FOUND', 'CONFLICT'],
    handler: async ({ use, params, query, caller }) => {
      await use.lifecycle.deleteAlias(params.alias, await caller(), query.expectedRevision);
      return ok({ deleted: true });
    },
  }),
  route({
    key: 'GET /v1/aliases/{alias}/history',
    operationId: 'getAliasHistory',
    summary: "An alias's moves, newest first",
    tag: 'aliases',
    needs: 'lifecycle',
    responses: { 200: 'aliasHistory' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok({ history: await use.lifecycle.aliasHistory(params.alias) }),
  }),
  route({
    key: 'POST /v1/aliases/{alias}/rollback',
    operationId: 'rollbackAlias',
    summary: 'Move an alias back to its previous target',
    tag: 'aliases',
    needs: 'lifecycle',
    body: optionalBody(S.rollbackAliasSchema),
    responses: { 200: 'alias' },
    errors: ['NOT_FOUND', 'CONFLICT', 'QUALITY_GATE'],
    handler: async ({ use, params, body, caller }) =>
      ok(await use.lifecycle.rollbackAlias(params.alias, body, await caller())),
  }),
  // --- experiments ---
  route({
    key: 'GET /v1/aliases/{alias}/experiment',
    operationId: 'getExperiment',
    summary: "The alias's running (or last) experiment with per-arm results and tests",
    tag: 'experiments',
    needs: 'lifecycle',
    responses: { 200: 'experimentResults' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.lifecycle.getExperiment(params.alias)),
  }),
  route({
    key: 'POST /v1/aliases/{alias}/experiment',
    operationId: 'startExperiment',
    summary: 'Start a champion/challenger experiment (split or shadow)',
    tag: 'experiments',
    needs: 'lifecycle',
    body: body(S.startExperimentSchema),
    responses: { 201: 'experimentResults' },
    errors: ['NOT_FOUND', 'CONFLICT'],
    handler: async ({ use, params, body, caller }) =>
      ok(await use.lifecycle.startExperiment(params.alias, body, await caller()), 201),
  }),
  route({
    key: 'POST /v1/aliases/{alias}/experiment/promote',
    operationId: 'promoteExperiment',
    summary: 'Move the alias to the challenger and end the experiment',
    tag: 'experiments',
    needs: 'lifecycle',
    body: optionalBody(S.promoteExperimentSchema),
    responses: { 200: 'experimentResults' },
    errors: ['NOT_FOUND', 'CONFLICT', 'QUALITY_GATE'],
    handler: async ({ use, params, body, caller }) =>
      ok(await use.lifecycle.promoteExperiment(params.alias, body, await caller())),
  }),
  route({
    key: 'POST /v1/aliases/{alias}/experiment/abort',
    operationId: 'abortExperiment',
    summary: 'End the experiment, leaving the alias where it is',
    tag: 'experiments',
    needs: 'lifecycle',
    body: optionalBody(S.abortExperimentSchema),
    responses: { 200: 'experimentResults' },
    errors: ['NOT_FOUND', 'CONFLICT'],
    handler: async ({ use, params, body, caller }) =>
      ok(await use.lifecycle.abortExperiment(params.alias, body, await caller())),
  }),
  route({
    key: 'POST /v1/feedback',
    operationId: 'sendFeedback',
    summary: 'A click or conversion on a search result (attributed to its experiment arm)',
    tag: 'experiments',
    needs: 'lifecycle',
    body: body(S.feedbackSchema),
    responses: { 200: 'feedbackResult' },
    errors: [],
    handler: async ({ use, body }) => ok(await use.lifecycle.feedback(body)),
  }),
  // --- models ---
  route({
    key: 'GET /v1/models',
    operationId: 'listModels',
    summary: 'Models in the registry',
    tag: 'models',
    needs: 'lifecycle',
    responses: { 200: 'modelList' },
    errors: [],
    handler: async ({ use }) => ok({ models: await use.lifecycle.listModels() }),
  }),
  route({
    key: 'GET /v1/models/{model}',
    operationId: 'getModel',
    summary: 'A model: its versions and aliases',
    tag: 'models',
    needs: 'lifecycle',
    responses: { 200: 'model' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.lifecycle.getModel(params.model)),
  }),
  route({
    key: 'GET /v1/models/{model}/versions',
    operationId: 'listModelVersions',
    summary: "A model's versions",
    tag: 'models',
    needs: 'lifecycle',
    responses: { 200: 'modelVersionList' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok({ versions: (await use.lifecycle.getModel(params.model)).versions }),
  }),
  route({
    key: 'POST /v1/models/{model}/versions',
    operationId: 'registerModelVersion',
    summary: 'Register a model version (artifact inline, or a presigned upload)',
    tag: 'models',
    needs: 'lifecycle',
    body: body(S.registerModelSchema),
    responses: { 201: 'registeredModel' },
    errors: ['CONFLICT', 'LIMIT_EXCEEDED'],
    handler: async ({ use, params, body, caller }) =>
      ok(await use.lifecycle.registerModelVersion(params.model, body, await caller()), 201),
  }),
  route({
    key: 'GET /v1/models/{model}/versions/{v}',
    operationId: 'getModelVersion',
    summary: 'A model version',
    tag: 'models',
    needs: 'lifecycle',
    responses: { 200: 'modelVersion' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.lifecycle.getModelVersion(params.model, params.v)),
  }),
  route({
    key: 'PUT /v1/models/{model}/versions/{v}/artifact',
    operationId: 'uploadModelArtifact',
    summary: "Send a pending version's artifact inline (base64, ≤ 4 MB)",
    tag: 'models',
    needs: 'lifecycle',
    body: body(S.uploadArtifactSchema),
    responses: { 200: 'modelVersion' },
    errors: ['NOT_FOUND', 'CONFLICT', 'LIMIT_EXCEEDED'],
    handler: async ({ use, params, body }) =>
      ok(await use.lifecycle.uploadModelArtifact(params.model, params.v, body.artifact)),
  }),
  route({
    key: 'POST /v1/models/{model}/versions/{v}/commit',
    operationId: 'commitModelVersion',
    summary: 'Verify the artifact (sha256) and freeze the version (202 while a large one is verified)',
    tag: 'models',
    needs: 'lifecycle',
    bodyFirst: true,
    body: body(S.commitModelSchema),
    responses: { 200: 'modelVersion', 202: 'modelVersion' },
    errors: ['NOT_FOUND', 'CONFLICT', 'LIMIT_EXCEEDED'],
    handler: async ({ use, params, body: { sha256, multipart } }) => {
      const mv = await use.lifecycle.commitModelVersion(params.model, params.v, sha256, multipart);
      return ok(mv, mv.state === 'verifying' ? 202 : 200);
    },
  }),
  route({
    key: 'POST /v1/models/{model}/versions/{v}/upload',
    operationId: 'requestModelUpload',
    summary: 'Presigned URL(s) for the artifact: one PUT, or multipart parts',
    tag: 'models',
    needs: 'lifecycle',
    body: optionalBody(S.modelUploadSchema),
    responses: { 200: 'modelUpload' },
    errors: ['NOT_FOUND', 'CONFLICT'],
    handler: async ({ use, params, body }) => ok(await use.lifecycle.requestModelUpload(params.model, params.v, body)),
  }),
  route({
    key: 'POST /v1/models/{model}/versions/{v}/upload/abort',
    operationId: 'abortModelUpload',
    summary: 'Abort a multipart upload',
    tag: 'models',
    needs: 'lifecycle',
    body: body(S.abortModelUploadSchema),
    responses: { 200: 'uploadAborted' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params, body }) =>
      ok(await use.lifecycle.abortModelUpload(params.model, params.v, body.uploadId)),
  }),
  route({
    key: 'GET /v1/models/{model}/compare',
    operationId: 'compareModelVersions',
    summary: 'Differences between two versions of a model',
    tag: 'models',
    needs: 'lifecycle',
    query: { a: versionQuery('a', 'The first version.'), b: versionQuery('b', 'The second version.') },
    responses: { 200: 'modelComparison' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params, query }) =>
      ok(await use.lifecycle.compareModelVersions(params.model, query.a, query.b)),
  }),
  route({
    key: 'GET /v1/models/{model}/aliases/{alias}',
    operationId: 'getModelAlias',
    summary: 'A model alias',
    tag: 'models',
    needs: 'lifecycle',
    responses: { 200: 'modelAlias' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => ok(await use.lifecycle.getModelAlias(params.model, params.alias)),
  }),
  route({
    key: 'PUT /v1/models/{model}/aliases/{alias}',
    operationId: 'putModelAlias',
    summary: 'Create or move a model alias (201 when created)',
    tag: 'models',
    needs: 'lifecycle',
    body: body(S.putModelAliasSchema),
    responses: { 200: 'modelAlias', 201: 'modelAlias' },
    errors: ['NOT_FOUND', 'CONFLICT'],
    handler: async ({ use, params, body, caller }) => {
      const out = await use.lifecycle.putModelAlias(params.model, params.alias, body, await caller());
      return ok(out.alias, out.created ? 201 : 200);
    },
  }),
  route({
    key: 'GET /v1/models/{model}/aliases/{alias}/history',
    operationId: 'getModelAliasHistory',
    summary: "A model alias's moves, newest first",
    tag: 'models',
    needs: 'lifecycle',
    responses: { 200: 'modelAliasHistory' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) =>
      ok({ history: await use.lifecycle.modelAliasHistory(params.model, params.alias) }),
  }),
  // --- API keys (docs/security.md) ---
  route({
    key: 'GET /v1/keys',
    operationId: 'listKeys',
    summary: 'API keys made through the API, oldest first (never a key or a hash)',
    tag: 'keys',
    needs: 'keys',
    responses: { 200: 'keyList' },
    errors: [],
    handler: async ({ use }) => ok({ keys: await use.keys.list() }),
  }),
  route({
    key: 'POST /v1/keys',
    operationId: 'createKey',
    summary: 'Create an API key (shown this once)',
    tag: 'keys',
    needs: 'keys',
    body: body(S.createKeySchema),
    responses: { 201: 'createdKey' },
    errors: [],
    handler: async ({ use, body, caller }) => ok(await use.keys.create(body, await caller()), 201),
  }),
  route({
    key: 'DELETE /v1/keys/{id}',
    operationId: 'revokeKey',
    summary: 'Revoke an API key',
    tag: 'keys',
    needs: 'keys',
    responses: { 200: 'deleted' },
    errors: ['NOT_FOUND'],
    handler: async ({ use, params }) => {
      await use.keys.revoke(params.id);
      return ok({ deleted: true });
    },
  }),
];

/** The routes served without a key (`PUBLIC_ROUTE_KEYS`): answered by the router before the key check. */
export interface PublicRoute {
  key: PublicRouteKey;
  method: string;
  path: string;
  operationId: string;
  summary: string;
  tag: Tag;
  responses: Readonly<Record<number, ResponseName>>;
}

const PUBLIC_DOCS: Record<PublicRouteKey, Omit<PublicRoute, 'key' | 'method' | 'path'>> = {
  'GET /healthz': {
    operationId: 'liveness',
    summary: 'Liveness probe: status and version only, no key needed',
    tag: 'health',
    responses: { 200: 'liveness' },
  },
  'GET /v1/openapi.json': {
    operationId: 'getOpenApi',
    summary: 'This OpenAPI 3.1 document, no key needed',
    tag: 'health',
    responses: { 200: 'openApiDocument' },
  },
};

export const PUBLIC_ROUTES: readonly PublicRoute[] = PUBLIC_ROUTE_KEYS.map((key) => ({
  key,
  ...splitRouteKey(key),
  ...PUBLIC_DOCS[key],
}));

/**
 * The error codes every route (or every route with path parameters, a body, an optional dependency)
 * can answer, on top of the route's own `errors`: the key check and the policy, the rate limit, the
 * body size, storage outages and server faults.
 */
export function impliedErrors(r: Route): ErrorCode[] {
  const codes: ErrorCode[] = ['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED', 'PAYLOAD_TOO_LARGE'];
  if (r.params.length || r.body || Object.keys(r.query).length) codes.push('VALIDATION_ERROR');
  if (r.body) codes.push('INVALID_JSON');
  if (r.needs) codes.push('NOT_FOUND');
  codes.push('INTERNAL', 'CORRUPT_DATA', 'UNSUPPORTED_FORMAT', 'ENGINE_ERROR', 'CONFIG_ERROR', 'STORAGE_UNAVAILABLE');
  return codes;
}

/** Every error code a route can answer, in the order of `ERROR_STATUS`. */
export function errorsOf(r: Route): ErrorCode[] {
  const all = new Set<ErrorCode>([...impliedErrors(r), ...r.errors]);
  return R.ERROR_CODES.filter((c) => all.has(c));
}
