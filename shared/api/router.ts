/**
 * The HTTP API v1 as a plain function: `createApi(deps).handle(req)` routes a request,
 * checks the bearer key, validates the body (`schemas.ts`), calls the `ShoalService` and
 * shapes the JSON. It never throws: every failure goes through `toErrorResponse`.
 * Transport-agnostic: the Lambda handler and the tests drive it directly.
 */
import { createHash } from 'node:crypto';
import type { KeyAdmin, Principal } from '../auth/keys.js';
import { ROUTE_POLICIES, decide, grantCovers, type RouteKey } from '../auth/policy.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../errors.js';
import type { ImportApi } from '../import/service.js';
import type { Caller, LifecycleService, ShoalService } from '../service.js';
import { InvalidJsonError, MethodNotAllowedError, PayloadTooLargeError, toErrorResponse } from './http-errors.js';
import { consoleResponse } from './console.js';
import { MILVUS_PATH_PREFIX, createMilvusApi } from './milvus/index.js';
import type { SchemaObjects } from './milvus/store.js';
import { parseLineName } from '../indexing/lines.js';
import { IMPORTS_FOLDER_PATTERN, collectionOfImportKey } from '../storage/keys.js';
import { LIMITS, jsonDepth } from '../validation.js';
import {
  buildRequestSchema,
  promoteCandidateSchema,
  createCollectionSchema,
  commitModelSchema,
  createKeySchema,
  abortModelUploadSchema,
  modelUploadSchema,
  createImportSchema,
  deleteVectorsSchema,
  evaluateSchema,
  getVectorsSchema,
  importUploadSchema,
  parseBody,
  parseListVectorsQuery,
  parseRejectsQuery,
  parseVectorId,
  patchVectorSchema,
  parseCollectionName,
  parseCreateCollection,
  parseName,
  parseUpsert,
  parseVersion,
  patchCollectionSchema,
  putAliasSchema,
  putModelAliasSchema,
  registerModelSchema,
  rollbackAliasSchema,
  searchSchema,
  startExperimentSchema,
  promoteExperimentSchema,
  abortExperimentSchema,
  feedbackSchema,
  tuneSchema,
  uploadArtifactSchema,
} from './schemas.js';

/** The Lambda synchronous-invocation payload limit that API Gateway enforces in front of us. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

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
  /** The key id of a bearer token, when the deployment knows one (else a hash prefix of the token is used). */
  identify?: (token: string | undefined) => Promise<string | undefined> | string | undefined;
  /** Where the Milvus REST layer keeps collection schemas (docs/milvus.md); without it, in process only. */
  milvusSchemas?: SchemaObjects;
}

export interface ApiRequest {
  method: string;
  /** The request path, percent-encoded as received (query string, if any, is ignored). */
  path: string;
  /** The raw query string (without `?`); when absent, a `?…` in `path` is used. */
  query?: string;
  headers: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
}

export interface ApiResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

type AuthResult = Principal | boolean | undefined;

export interface Api {
  handle(req: ApiRequest): Promise<ApiResponse>;
  /** Every route served, as `METHOD /path/{param}` (the API Gateway route-key form; the policy's keys). */
  readonly routes: readonly RouteKey[];
}

interface RouteContext {
  /** The collection name from the path, validated. */
  name: string;
  /** Other path parameters (`:jobId`), percent-decoded. */
  params: Record<string, string>;
  /** The parsed JSON body (INVALID_JSON is thrown lazily, only by routes that read a body). */
  json(): unknown;
  /** The parsed body, or `{}` when the body is empty (routes whose body is optional). */
  jsonOrEmpty(): unknown;
  query: URLSearchParams;
  /** Who is calling (for lifecycle records). */
  caller(): Promise<Caller>;
  /** The authenticated key (role, scope). */
  principal: Principal;
}

type Result = { status: number; body: unknown };
type RouteHandler = (ctx: RouteContext) => Promise<Result>;

interface Route {
  /** Path segments; `:name` is the collection-name parameter, other `:x` segments are `params.x`. */
  segments: string[];
  methods: Record<string, RouteHandler>;
}

function ok(body: unknown, status = 200): Result {
  return { status, body };
}

function bearerToken(headers: Record<string, string | undefined>): string | undefined {
  let value: string | undefined;
  for (const [key, v] of Object.entries(headers)) {
    if (key.toLowerCase() === 'authorization') {
      value = v;
      break;
    }
  }
  if (value === undefined) return undefined;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(value);
  return match ? match[1] : undefined;
}

function decodeBody(req: ApiRequest): string | undefined {
  if (req.body === undefined || req.body === null) return undefined;
  const text = req.isBase64Encoded ? Buffer.from(req.body, 'base64').toString('utf8') : req.body;
  const bytes = req.isBase64Encoded ? Buffer.byteLength(req.body, 'base64') : Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(`request body is ${bytes} bytes; the limit is ${MAX_BODY_BYTES} bytes (6 MB)`, {
      details: { bytes, limit: MAX_BODY_BYTES },
    });
  }
  return text;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text.trim() === '')
    throw new InvalidJsonError('request body is empty; expected a JSON object');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new InvalidJsonError(`request body is not valid JSON: ${(err as Error).message}`);
  }
  // One guard for every route: nothing recursive runs on the body before this check.
  const depth = jsonDepth(body, LIMITS.maxJsonDepth);
  if (depth > LIMITS.maxJsonDepth) {
    throw new ValidationError(`request body nests deeper than ${LIMITS.maxJsonDepth} levels`, {
      field: 'body',
      details: { limit: LIMITS.maxJsonDepth },
    });
  }
  return body;
}

function splitPath(path: string): string[] | undefined {
  const q = path.indexOf('?');
  let p = q === -1 ? path : path.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (!p.startsWith('/')) return undefined;
  return p.slice(1).split('/');
}

/**
 * A JSON response body. The trailing newline keeps pasted `curl` output from running into the next
 * prompt; JSON parsers ignore it.
 */
export function jsonBody(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** The unauthenticated liveness probe (`GET /healthz`); everything else needs a key. */
export const LIVENESS_PATH = '/healthz';

/** `POST /v1/collections/{name}/search`: a route as API Gateway and the policy table spell it. */
function routeKey(method: string, route: Route): RouteKey {
  return `${method} /${route.segments.map((x) => (x.startsWith(':') ? `{${x.slice(1)}}` : x)).join('/')}`;
}

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
      {
        field: 'uri',
      },
    );
  }
}

/** A listing cut down to what a scoped key may see (its collections or aliases). */
function visible<T extends { name: string }>(ctx: RouteContext, items: T[]): T[] {
  return items.filter((item) => grantCovers(ctx.principal, item.name));
}

function isLivenessProbe(req: ApiRequest): boolean {
  const q = req.path.indexOf('?');
  const p = q === -1 ? req.path : req.path.slice(0, q);
  return req.method.toUpperCase() === 'GET' && (p === LIVENESS_PATH || p === `${LIVENESS_PATH}/`);
}

export function createApi(deps: ApiDeps): Api {
  const { service } = deps;
  const imports = (): ImportApi => {
    if (!deps.imports) throw new NotFoundError('imports are not enabled on this deployment');
    return deps.imports;
  };
  const lifecycle = (): LifecycleService => {
    if (!deps.lifecycle) throw new NotFoundError('the lifecycle API is not enabled on this deployment');
    return deps.lifecycle;
  };
  const keys = (): KeyAdmin => {
    if (!deps.keys) throw new NotFoundError('key management is not enabled on this deployment');
    return deps.keys;
  };
  const limiter = new RateLimiter();
  const alias = (ctx: RouteContext): string => parseName(ctx.params.alias, 'alias');
  const model = (ctx: RouteContext): string => parseName(ctx.params.model, 'model');

  const routes: Route[] = [
    {
      segments: ['v1', 'health'],
      methods: {
        GET: async () => ok({ status: 'ok', version: deps.version, ...(deps.healthExtra?.() ?? {}) }),
      },
    },
    {
      segments: ['v1', 'collections'],
      methods: {
        GET: async (ctx) => ok({ collections: visible(ctx, await service.listCollections()) }),
        POST: async (ctx) =>
          ok(
            await service.createCollection(
              deps.lifecycle ? parseCreateCollection(ctx.json()) : parseBody(createCollectionSchema, ctx.json()),
            ),
            201,
          ),
      },
    },
    {
      segments: ['v1', 'collections', ':name'],
      methods: {
        GET: async (ctx) => ok(await service.getCollection(ctx.name)),
        DELETE: async (ctx) => {
          await service.deleteCollection(ctx.name);
          return ok({ deleted: true });
        },
        ...(deps.lifecycle
          ? {
              PATCH: async (ctx: RouteContext) =>
                ok(await lifecycle().updateCollection(ctx.name, parseBody(patchCollectionSchema, ctx.json()))),
            }
          : {}),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'vectors'],
      methods: {
        GET: async (ctx) => ok(await service.listVectors(ctx.name, parseListVectorsQuery(ctx.query))),
        POST: async (ctx) => {
          const { vectors, modelVersion } = parseUpsert(ctx.json());
          return ok(
            modelVersion
              ? await service.upsert(ctx.name, vectors, { modelVersion })
              : await service.upsert(ctx.name, vectors),
          );
        },
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'vectors', 'get'],
      methods: {
        POST: async (ctx) =>
          ok({ vectors: await service.getVectors(ctx.name, parseBody(getVectorsSchema, ctx.json())) }),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'vectors', 'delete'],
      methods: {
        POST: async (ctx) => ok(await service.deleteVectors(ctx.name, parseBody(deleteVectorsSchema, ctx.json()))),
      },
    },
    // After vectors/get and vectors/delete: the first route that matches wins, so those literals do.
    {
      segments: ['v1', 'collections', ':name', 'vectors', ':id'],
      methods: {
        PATCH: async (ctx) =>
          ok(
            await service.patchVector(
              ctx.name,
              parseVectorId(ctx.params.id),
              parseBody(patchVectorSchema, ctx.json()).metadata,
            ),
          ),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'search'],
      methods: {
        POST: async (ctx) => {
          const { input, single } = parseBody(searchSchema, ctx.json());
          const out = await service.search(ctx.name, input);
          return ok({
            results: single ? (out.results[0] ?? []) : out.results,
            servedBy: out.servedBy,
            ...(out.queryId !== undefined ? { queryId: out.queryId } : {}),
            stats: out.stats,
          });
        },
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'index'],
      methods: {
        POST: async (ctx) => {
          const request = parseBody(buildRequestSchema, ctx.jsonOrEmpty());
          return ok(await service.buildIndex(ctx.name, request, await ctx.caller()), 202);
        },
      },
    },
    // --- index lines: candidates built beside the serving line ---
    {
      segments: ['v1', 'collections', ':name', 'candidates'],
      methods: {
        GET: async (ctx) => ok(await service.listLines(ctx.name)),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'candidates', ':candidate'],
      methods: {
        GET: async (ctx) => ok(await service.getCandidate(ctx.name, parseLineName(ctx.params.candidate))),
        DELETE: async (ctx) => {
          await service.deleteCandidate(ctx.name, parseLineName(ctx.params.candidate));
          return ok({ deleted: true });
        },
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'candidates', ':candidate', 'promote'],
      methods: {
        POST: async (ctx) =>
          ok(
            await service.promoteCandidate(
              ctx.name,
              parseLineName(ctx.params.candidate),
              parseBody(promoteCandidateSchema, ctx.jsonOrEmpty()),
              await ctx.caller(),
            ),
          ),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'imports'],
      methods: {
        GET: async (ctx) => ok({ jobs: await imports().listImports(ctx.name) }),
        POST: async (ctx) => {
          const { uri, ...limits } = parseBody(createImportSchema, ctx.json());
          assertImportInScope(ctx.principal, uri);
          const { job, created, resumed } = await imports().createImport(ctx.name, uri, limits);
          return ok(job, created || resumed ? 202 : 200);
        },
      },
    },
    // Before imports/:jobId, so that the literal wins.
    {
      segments: ['v1', 'collections', ':name', 'imports', 'uploads'],
      methods: {
        POST: async (ctx) =>
          ok(await imports().requestUpload(ctx.name, parseBody(importUploadSchema, ctx.json())), 201),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'imports', ':jobId', 'rejects'],
      methods: {
        GET: async (ctx) => ok(await imports().listRejects(ctx.name, ctx.params.jobId, parseRejectsQuery(ctx.query))),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'imports', ':jobId'],
      methods: {
        GET: async (ctx) => ok(await imports().getImport(ctx.name, ctx.params.jobId)),
        DELETE: async (ctx) => ok(await imports().cancelImport(ctx.name, ctx.params.jobId)),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'versions'],
      methods: {
        GET: async (ctx) => ok({ versions: await service.listVersions(ctx.name) }),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'versions', ':v', 'evaluate'],
      methods: {
        POST: async (ctx) =>
          ok(
            await lifecycle().evaluateVersion(
              ctx.name,
              parseVersion(ctx.params.v),
              parseBody(evaluateSchema, ctx.jsonOrEmpty()),
              await ctx.caller(),
            ),
          ),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'versions', ':v', 'tune'],
      methods: {
        POST: async (ctx) =>
          ok(
            await lifecycle().tuneVersion(
              ctx.name,
              parseVersion(ctx.params.v),
              parseBody(tuneSchema, ctx.json()),
              await ctx.caller(),
            ),
          ),
      },
    },
    // --- aliases ---
    {
      segments: ['v1', 'aliases'],
      methods: {
        GET: async (ctx) => ok({ aliases: visible(ctx, await lifecycle().listAliases()) }),
      },
    },
    {
      segments: ['v1', 'aliases', ':alias'],
      methods: {
        GET: async (ctx) => ok(await lifecycle().getAlias(alias(ctx))),
        PUT: async (ctx) => {
          const { alias: view, created } = await lifecycle().putAlias(
            alias(ctx),
            parseBody(putAliasSchema, ctx.json()),
            await ctx.caller(),
          );
          return ok(view, created ? 201 : 200);
        },
        DELETE: async (ctx) => {
          const rev = ctx.query.get('expectedRevision');
          await lifecycle().deleteAlias(
            alias(ctx),
            await ctx.caller(),
            rev === null ? undefined : parseVersion(rev, 'expectedRevision'),
          );
          return ok({ deleted: true });
        },
      },
    },
    {
      segments: ['v1', 'aliases', ':alias', 'history'],
      methods: {
        GET: async (ctx) => ok({ history: await lifecycle().aliasHistory(alias(ctx)) }),
      },
    },
    {
      segments: ['v1', 'aliases', ':alias', 'rollback'],
      methods: {
        POST: async (ctx) =>
          ok(
            await lifecycle().rollbackAlias(
              alias(ctx),
              parseBody(rollbackAliasSchema, ctx.jsonOrEmpty()),
              await ctx.caller(),
            ),
          ),
      },
    },
    // --- experiments ---
    {
      segments: ['v1', 'aliases', ':alias', 'experiment'],
      methods: {
        GET: async (ctx) => ok(await lifecycle().getExperiment(alias(ctx))),
        POST: async (ctx) =>
          ok(
            await lifecycle().startExperiment(
              alias(ctx),
              parseBody(startExperimentSchema, ctx.json()),
              await ctx.caller(),
            ),
            201,
          ),
      },
    },
    {
      segments: ['v1', 'aliases', ':alias', 'experiment', 'promote'],
      methods: {
        POST: async (ctx) =>
          ok(
            await lifecycle().promoteExperiment(
              alias(ctx),
              parseBody(promoteExperimentSchema, ctx.jsonOrEmpty()),
              await ctx.caller(),
            ),
          ),
      },
    },
    {
      segments: ['v1', 'aliases', ':alias', 'experiment', 'abort'],
      methods: {
        POST: async (ctx) =>
          ok(
            await lifecycle().abortExperiment(
              alias(ctx),
              parseBody(abortExperimentSchema, ctx.jsonOrEmpty()),
              await ctx.caller(),
            ),
          ),
      },
    },
    {
      segments: ['v1', 'feedback'],
      methods: {
        POST: async (ctx) => ok(await lifecycle().feedback(parseBody(feedbackSchema, ctx.json()))),
      },
    },
    // --- models ---
    {
      segments: ['v1', 'models'],
      methods: {
        GET: async () => ok({ models: await lifecycle().listModels() }),
      },
    },
    {
      segments: ['v1', 'models', ':model'],
      methods: {
        GET: async (ctx) => ok(await lifecycle().getModel(model(ctx))),
      },
    },
    {
      segments: ['v1', 'models', ':model', 'versions'],
      methods: {
        GET: async (ctx) => ok({ versions: (await lifecycle().getModel(model(ctx))).versions }),
        POST: async (ctx) =>
          ok(
            await lifecycle().registerModelVersion(
              model(ctx),
              parseBody(registerModelSchema, ctx.json()),
              await ctx.caller(),
            ),
            201,
          ),
      },
    },
    {
      segments: ['v1', 'models', ':model', 'versions', ':v'],
      methods: {
        GET: async (ctx) => ok(await lifecycle().getModelVersion(model(ctx), parseVersion(ctx.params.v))),
      },
    },
    {
      segments: ['v1', 'models', ':model', 'versions', ':v', 'artifact'],
      methods: {
        PUT: async (ctx) =>
          ok(
            await lifecycle().uploadModelArtifact(
              model(ctx),
              parseVersion(ctx.params.v),
              parseBody(uploadArtifactSchema, ctx.json()).artifact,
            ),
          ),
      },
    },
    {
      segments: ['v1', 'models', ':model', 'versions', ':v', 'commit'],
      methods: {
        POST: async (ctx) => {
          const { sha256, multipart } = parseBody(commitModelSchema, ctx.json());
          const mv = await lifecycle().commitModelVersion(model(ctx), parseVersion(ctx.params.v), sha256, multipart);
          return ok(mv, mv.state === 'verifying' ? 202 : 200);
        },
      },
    },
    {
      segments: ['v1', 'models', ':model', 'versions', ':v', 'upload'],
      methods: {
        POST: async (ctx) =>
          ok(
            await lifecycle().requestModelUpload(
              model(ctx),
              parseVersion(ctx.params.v),
              parseBody(modelUploadSchema, ctx.jsonOrEmpty()),
            ),
          ),
      },
    },
    {
      segments: ['v1', 'models', ':model', 'versions', ':v', 'upload', 'abort'],
      methods: {
        POST: async (ctx) =>
          ok(
            await lifecycle().abortModelUpload(
              model(ctx),
              parseVersion(ctx.params.v),
              parseBody(abortModelUploadSchema, ctx.json()).uploadId,
            ),
          ),
      },
    },
    {
      segments: ['v1', 'models', ':model', 'compare'],
      methods: {
        GET: async (ctx) =>
          ok(
            await lifecycle().compareModelVersions(
              model(ctx),
              parseVersion(ctx.query.get('a') ?? '', 'a'),
              parseVersion(ctx.query.get('b') ?? '', 'b'),
            ),
          ),
      },
    },
    {
      segments: ['v1', 'models', ':model', 'aliases', ':alias'],
      methods: {
        GET: async (ctx) => ok(await lifecycle().getModelAlias(model(ctx), alias(ctx))),
        PUT: async (ctx) => {
          const out = await lifecycle().putModelAlias(
            model(ctx),
            alias(ctx),
            parseBody(putModelAliasSchema, ctx.json()),
            await ctx.caller(),
          );
          return ok(out.alias, out.created ? 201 : 200);
        },
      },
    },
    {
      segments: ['v1', 'models', ':model', 'aliases', ':alias', 'history'],
      methods: {
        GET: async (ctx) => ok({ history: await lifecycle().modelAliasHistory(model(ctx), alias(ctx)) }),
      },
    },
    // --- API keys (docs/security.md) ---
    {
      segments: ['v1', 'keys'],
      methods: {
        GET: async () => ok({ keys: await keys().list() }),
        POST: async (ctx) => ok(await keys().create(parseBody(createKeySchema, ctx.json()), await ctx.caller()), 201),
      },
    },
    {
      segments: ['v1', 'keys', ':id'],
      methods: {
        DELETE: async (ctx) => {
          await keys().revoke(ctx.params.id);
          return ok({ deleted: true });
        },
      },
    },
  ];

  function match(
    segments: string[],
  ): { route: Route; name: string | undefined; params: Record<string, string> } | undefined {
    for (const route of routes) {
      if (route.segments.length !== segments.length) continue;
      let name: string | undefined;
      const params: Record<string, string> = {};
      let matched = true;
      for (let i = 0; i < segments.length; i++) {
        const want = route.segments[i];
        if (want === ':name') {
          if (segments[i] === '') {
            matched = false;
            break;
          }
          name = segments[i];
        } else if (want.startsWith(':')) {
          if (segments[i] === '') {
            matched = false;
            break;
          }
          params[want.slice(1)] = segments[i];
        } else if (want !== segments[i]) {
          matched = false;
          break;
        }
      }
      if (matched) return { route, name, params };
    }
    return undefined;
  }

  const routeKeys: RouteKey[] = routes.flatMap((r) => Object.keys(r.methods).map((m) => routeKey(m, r)));

  async function authenticate(token: string | undefined): Promise<Principal> {
    const who = await deps.authorize(token);
    if (!who) throw new UnauthorizedError('a valid API key is required (Authorization: Bearer <key>)');
    if (who !== true) return who;
    const hash = createHash('sha256')
      .update(token ?? '')
      .digest('hex');
    return { role: 'admin', actor: `key:${hash.slice(0, 12)}`, bucket: hash };
  }

  async function dispatch(req: ApiRequest): Promise<Result> {
    const token = bearerToken(req.headers);
    const principal = await authenticate(token);
    // Before routing, so that a key over its limit costs no more than this check, whatever it asks for.
    if (principal.rateLimit) limiter.take(principal.bucket, principal.rateLimit);
    const segments = splitPath(req.path);
    const found = segments && match(segments);
    if (!found) throw new NotFoundError(`no route for ${req.path}`);
    const method = req.method.toUpperCase();
    const handler = found.route.methods[method];
    if (!handler) throw new MethodNotAllowedError(method, Object.keys(found.route.methods));

    let name = '';
    if (found.name !== undefined) {
      try {
        name = decodeURIComponent(found.name);
      } catch {
        throw new ValidationError('collection name in the path is not valid percent-encoding', { field: 'name' });
      }
    }
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(found.params)) {
      try {
        params[k] = decodeURIComponent(v);
      } catch {
        throw new ValidationError(`${k} in the path is not valid percent-encoding`, { field: k });
      }
    }
    // The same table the AWS authorizer applies (shared/auth/policy.ts); a route missing from it (a test
    // prevents that) would need an unscoped admin key rather than be open.
    const policy = ROUTE_POLICIES[routeKey(method, found.route)] ?? { role: 'admin' };
    const decision = decide(principal, policy, found.name !== undefined ? { ...params, name } : params);
    if (!decision.allowed) throw new ForbiddenError(decision.reason);
    if (found.name !== undefined) parseCollectionName(name);
    const text = decodeBody(req);
    let parsed: { value: unknown } | undefined;
    const q = req.path.indexOf('?');
    const query = new URLSearchParams(req.query ?? (q === -1 ? '' : req.path.slice(q + 1)));
    return handler({
      name,
      params,
      query,
      principal,
      json: () => {
        parsed ??= { value: parseJson(text) };
        return parsed.value;
      },
      jsonOrEmpty: () => {
        if (text === undefined || text.trim() === '') return {};
        parsed ??= { value: parseJson(text) };
        return parsed.value;
      },
      caller: async () => ({ actor: principal.keyId ?? (await deps.identify?.(token)) ?? principal.actor }),
    });
  }

  // Milvus REST v2 (docs/milvus.md): its own wire (HTTP 200 envelopes), the same services and policy.
  const milvus = createMilvusApi({ ...deps, limiter, ...(deps.milvusSchemas ? { objects: deps.milvusSchemas } : {}) });

  return {
    routes: routeKeys,
    async handle(req) {
      if (req.path.startsWith(MILVUS_PATH_PREFIX)) return milvus.handle(req);
      if (req.path === '/console' || req.path.startsWith('/console/')) return (await consoleResponse(req))!;
      // Served before the key check, and only status and version: no endpoints, no credentials
      // (unlike /v1/health, whose local extras name the emulators and their keys).
      if (isLivenessProbe(req)) {
        return {
          statusCode: 200,
          headers: { 'Content-Type': 'application/json' },
          body: jsonBody({ status: 'ok', version: deps.version }),
        };
      }
      try {
        const result = await dispatch(req);
        return {
          statusCode: result.status,
          headers: { 'Content-Type': 'application/json' },
          body: jsonBody(result.body),
        };
      } catch (err) {
        const { statusCode, headers, body } = toErrorResponse(err);
        return { statusCode, headers: { 'Content-Type': 'application/json', ...headers }, body: jsonBody(body) };
      }
    },
  };
}
