/**
 * Milvus REST v2 (`POST /v2/vectordb/<area>/<action>`) on Shoal's services, so that Milvus clients
 * (`@zilliz/milvus2-sdk-node`'s HttpClient, curl scripts) work unchanged (docs/milvus.md). Each action
 * calls the same `ShoalService` / `LifecycleService` method as its v1 route and is allowed by the same
 * policy entry (`ROUTE_POLICIES`); only the wire differs: every call is a POST whose body is JSON whatever
 * its content type, and every answer is HTTP 200 with `{code: 0, data}` or `{code, message}`.
 */
import { createHash, randomInt, randomUUID } from 'node:crypto';
import type { Principal } from '../../auth/keys.js';
import { ROUTE_POLICIES, decide, grantCovers, type RouteKey, type RoutePolicy } from '../../auth/policy.js';
import { RateLimiter } from '../../auth/rate-limit.js';
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../../errors.js';
import type { FilterNode } from '../../filter/ast.js';
import type {
  Caller,
  CollectionInfo,
  LifecycleService,
  ShoalService,
  VectorInput,
  VectorOutput,
} from '../../service.js';
import { LIMITS, jsonDepth } from '../../validation.js';
import {
  deleteVectorsSchema,
  parseBody,
  parseCollectionName,
  parseName,
  upsertSchema,
  PAGE_LIMIT,
  searchSchema,
} from '../schemas.js';
import { MILVUS_CODES, MilvusUnsupportedError, toMilvusError, type NotFoundKind } from './errors.js';
import {
  defaultSchema,
  describeCollection,
  fromShoalId,
  planCreate,
  rowToVector,
  selectFields,
  toMilvusDistance,
  toMilvusMetric,
  toShoalId,
  toShoalMetric,
  vectorToRow,
  type MilvusSchema,
} from './schema.js';
import { memorySchemaStore, objectSchemaStore, type SchemaObjects, type SchemaStore } from './store.js';

/** Paths this module serves; `shared/api/router.ts` hands them over before its own routing. */
export const MILVUS_PATH_PREFIX = '/v2/vectordb/';

/**
 * The API Gateway route(s) to add beside `V1_ROUTES` (infra/cdk/constructs/api.ts), WITHOUT the API-key
 * authorizer: this module authenticates in process and must answer a bad key with Milvus's HTTP 200
 * envelope (code 1800), which an authorizer's bare 401/403 would replace (docs/milvus.md, "Deployment").
 */
export const MILVUS_ROUTES = [{ method: 'POST', path: '/v2/vectordb/{proxy+}', authorizer: false }] as const;

/** The only Milvus database: Shoal has one namespace of collections. */
export const DEFAULT_DB = 'default';
/** Milvus's only partition name; Shoal collections are not partitioned by users. */
export const DEFAULT_PARTITION = '_default';

const MAX_BODY_BYTES = 6 * 1024 * 1024;
/** Milvus's default `limit` for search when none is sent. */
const DEFAULT_SEARCH_LIMIT = 100;
/**
 * Milvus's own bound on a query's `offset + limit` (`quotaAndLimits.limits.maxQueryResultWindow`, default
 * 16384; docs/milvus.md): the matches one query may skip and return.
 */
export const MAX_QUERY_WINDOW = 16_384;
/**
 * Listing pages one query or `count(*)` may read. A page reads at most 4 × 1 000 rows, so at most 256 000 rows
 * per request: a few seconds of DynamoDB Queries, well inside API Gateway's 29 s.
 */
export const MAX_QUERY_PAGES = 64;
/** Rows one full listing page may read at most (docs/api.md: 4 × its limit). */
const ROWS_PER_PAGE = 4 * PAGE_LIMIT.max;

export interface MilvusRequest {
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
}

export interface MilvusResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface MilvusApiDeps {
  service: ShoalService;
  lifecycle?: LifecycleService;
  /** As in the v1 API: a Principal, `true` for an unscoped admin key, or falsy for no valid key. */
  authorize: (token: string | undefined) => Promise<Principal | boolean | undefined> | Principal | boolean | undefined;
  identify?: (token: string | undefined) => Promise<string | undefined> | string | undefined;
  /** Where schemas are kept (the runtime's object store); without it, in this process only. */
  objects?: SchemaObjects;
  schemas?: SchemaStore;
  /**
   * The token buckets of rate-limited keys. Pass the v1 router's own, so that a key's requests to both
   * APIs draw on one limit; without it this API keeps buckets of its own (a key then gets each limit apart).
   */
  limiter?: RateLimiter;
}

export interface MilvusApi {
  handle(req: MilvusRequest): Promise<MilvusResponse>;
}

interface Ctx {
  body: Record<string, unknown>;
  principal: Principal;
  caller(): Promise<Caller>;
  /** `Accept-Type-Allow-Int64`: int64 values as JSON numbers unless the client said false. */
  int64AsNumber: boolean;
  /** Allowed by the policy of `route` for the collection or alias `name`, else ForbiddenError. */
  allow(route: RouteKey, name?: string): void;
}

type Handler = (ctx: Ctx) => Promise<unknown>;

interface Action {
  run: Handler;
  /** What a NotFoundError means here (default: a collection). */
  notFound?: NotFoundKind;
  /** Conflicts are alias conflicts (Milvus 1601 / 1602). */
  aliasOp?: boolean;
}

function header(headers: Record<string, string | undefined>, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

function bearerToken(headers: Record<string, string | undefined>): string | undefined {
  const value = header(headers, 'authorization');
  const match = value === undefined ? null : /^\s*Bearer\s+(\S+)\s*$/i.exec(value);
  return match ? match[1] : undefined;
}

/** The body as JSON whatever the content type: the Node SDK sends `ContentType`, not `Content-Type`. */
function parseBodyJson(req: MilvusRequest): Record<string, unknown> {
  if (req.body === undefined || req.body === null) return {};
  const text = req.isBase64Encoded ? Buffer.from(req.body, 'base64').toString('utf8') : req.body;
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES) {
    throw new ValidationError(`request body is over the ${MAX_BODY_BYTES} byte limit`, { field: 'body' });
  }
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`request body is not valid JSON: ${(err as Error).message}`, { field: 'body' });
  }
  if (jsonDepth(body, LIMITS.maxJsonDepth) > LIMITS.maxJsonDepth) {
    throw new ValidationError(`request body nests deeper than ${LIMITS.maxJsonDepth} levels`, { field: 'body' });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('request body must be a JSON object', { field: 'body' });
  }
  return body as Record<string, unknown>;
}

function str(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value === '') throw new ValidationError(`${field} is required`, { field });
  return value;
}

function optInt(body: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(`${field} must be an integer in [${min}, ${max}]`, { field });
  }
  return value;
}

function collectionOf(body: Record<string, unknown>): string {
  return parseCollectionName(str(body, 'collectionName'));
}

function checkPartitions(body: Record<string, unknown>): void {
  const names = [
    ...(Array.isArray(body.partitionNames) ? body.partitionNames : []),
    ...(body.partitionName !== undefined && body.partitionName !== '' ? [body.partitionName] : []),
  ];
  for (const p of names) {
    if (p !== DEFAULT_PARTITION) {
      throw new MilvusUnsupportedError(
        `partition ${JSON.stringify(p)} not found: Shoal collections have only the ${DEFAULT_PARTITION} partition`,
        MILVUS_CODES.partitionNotFound,
      );
    }
  }
}

/** `pk in [...]` or `pk == x` on the primary key: answered by id lookups, not a filtered scan. */
function idsOfFilter(schema: MilvusSchema, filter: FilterNode): unknown[] | undefined {
  if (filter.op === 'in' && !filter.negate && filter.ref.field === schema.pk.name && filter.ref.path.length === 0) {
    return filter.values;
  }
  if (filter.op === 'cmp' && filter.cmp === '==' && filter.ref.field === schema.pk.name && !filter.ref.path.length) {
    return [filter.value];
  }
  return undefined;
}

function newInt64Id(): string {
  // 53 random bits: exact as a JSON number; collisions become likely only past ~10^7 generated rows.
  return String(randomInt(2 ** 47) * 64 + randomInt(64) + 1);
}

export function createMilvusApi(deps: MilvusApiDeps): MilvusApi {
  const { service } = deps;
  const schemas = deps.schemas ?? (deps.objects ? objectSchemaStore(deps.objects) : memorySchemaStore());
  const limiter = deps.limiter ?? new RateLimiter();
  const lifecycle = (): LifecycleService => {
    if (!deps.lifecycle) throw new MilvusUnsupportedError('aliases are not enabled on this deployment');
    return deps.lifecycle;
  };

  async function authenticate(token: string | undefined): Promise<Principal> {
    const who = await deps.authorize(token);
    if (!who) throw new UnauthorizedError('a valid Shoal API key is required (Authorization: Bearer <key>)');
    if (who !== true) return who;
    const hash = createHash('sha256')
      .update(token ?? '')
      .digest('hex');
    return { role: 'admin', actor: `key:${hash.slice(0, 12)}`, bucket: hash };
  }

  /** The collection (through an alias too) and its Milvus schema. */
  async function target(name: string): Promise<{ info: CollectionInfo; schema: MilvusSchema }> {
    const info = await service.getCollection(name);
    return { info, schema: (await schemas.get(info.name, info.createdAt)) ?? defaultSchema() };
  }

  async function collectionTarget(ctx: Ctx, route: RouteKey): Promise<{ info: CollectionInfo; schema: MilvusSchema }> {
    const name = collectionOf(ctx.body);
    ctx.allow(route, name);
    checkPartitions(ctx.body);
    return target(name);
  }

  const READ = 'GET /v1/collections/{name}';

  async function toVectors(ctx: Ctx, schema: MilvusSchema, autoIds: boolean): Promise<VectorInput[]> {
    const data = ctx.body.data;
    if (!Array.isArray(data) || data.length === 0)
      throw new ValidationError('data must be a non-empty list of rows', { field: 'data' });
    if (data.length > LIMITS.maxBatch) {
      throw new ValidationError(`data has ${data.length} rows; at most ${LIMITS.maxBatch} per request`, {
        field: 'data',
      });
    }
    const newId = autoIds ? (schema.pk.type === 'Int64' ? newInt64Id : () => randomUUID()) : undefined;
    const rows = data.map((row, i) => rowToVector(schema, row, `data[${i}]`, newId));
    // The v1 upsert's own validation (values, metadata limits, repeated ids): one rule set for both APIs.
    return parseBody(upsertSchema, { vectors: rows });
  }

  async function write(ctx: Ctx, kind: 'insert' | 'upsert'): Promise<unknown> {
    const { info, schema } = await collectionTarget(ctx, 'POST /v1/collections/{name}/vectors');
    if (kind === 'upsert' && schema.pk.autoId) {
      throw new ValidationError('cannot upsert into an autoID collection (its primary keys are generated)', {
        field: 'data',
      });
    }
    const vectors = await toVectors(ctx, schema, kind === 'insert' && schema.pk.autoId);
    await service.upsert(info.name, vectors);
    const ids = vectors.map((v) => fromShoalId(schema, v.id, ctx.int64AsNumber));
    return kind === 'insert'
      ? { insertCount: vectors.length, insertIds: ids }
      : { upsertCount: vectors.length, upsertIds: ids };
  }

  function filterOf(ctx: Ctx): FilterNode | undefined {
    const filter = ctx.body.filter;
    if (filter === undefined || filter === null || filter === '') return undefined;
    if (typeof filter !== 'string')
      throw new ValidationError('filter must be a Milvus expression string', { field: 'filter' });
    return parseBody(searchSchema, { vector: [0], filter }).input.filter;
  }

  /**
   * Query (no vector): id lookups when the filter names primary keys, else the paged listing (`listVectors`,
   * the v1 `GET …/vectors`), in the order of the rows' last writes. `offset` is skipped by reading pages, so
   * the work is bounded twice: `offset + limit` ≤ MAX_QUERY_WINDOW matches, and at most MAX_QUERY_PAGES pages
   * read (a filter that matches too few rows for the window within them is refused rather than scanning on).
   */
  async function query(
    info: CollectionInfo,
    schema: MilvusSchema,
    filter: FilterNode | undefined,
    window: { offset: number; limit: number | undefined },
    withValues: boolean,
  ): Promise<VectorOutput[]> {
    const ids = filter ? idsOfFilter(schema, filter) : undefined;
    if (ids) {
      const shoalIds = [...new Set(ids.map((v, i) => toShoalId(schema, v, `filter[${i}]`)))];
      if (shoalIds.length > LIMITS.maxBatch) {
        throw new ValidationError(`the filter names ${shoalIds.length} primary keys; at most ${LIMITS.maxBatch}`, {
          field: 'filter',
        });
      }
      const found = shoalIds.length ? await service.getVectors(info.name, shoalIds) : [];
      return found.slice(window.offset, window.limit === undefined ? undefined : window.offset + window.limit);
    }
    if (!filter && window.limit === undefined) {
      throw new ValidationError('a query without a filter needs a limit', { field: 'limit' });
    }
    // Without a limit the window is every match up to Milvus's bound, from `offset` on.
    const end = window.limit === undefined ? MAX_QUERY_WINDOW : window.offset + window.limit;
    if (end > MAX_QUERY_WINDOW) {
      throw new ValidationError(`offset + limit must be at most ${MAX_QUERY_WINDOW} (got ${end})`, { field: 'limit' });
    }
    // Without a limit one match past the window tells "every match" from "too many to return".
    const want = window.limit === undefined ? end + 1 : end;
    const matches: VectorOutput[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      if (pages === MAX_QUERY_PAGES) {
        throw new ValidationError(
          `a query reads at most ${MAX_QUERY_PAGES * ROWS_PER_PAGE} rows, and they held ${matches.length} ` +
            `matches of the filter, fewer than offset + limit (${end}); page ` +
            `GET /v1/collections/${info.name}/vectors?filter=… instead (its cursor carries on where a page stops)`,
          { field: 'filter' },
        );
      }
      // Full pages always: a page reads at most 4 × its limit rows, so a short one would starve a selective
      // filter. Values are read only for the window, below; metadata holds every scalar field.
      const page = await service.listVectors(info.name, {
        limit: PAGE_LIMIT.max,
        ...(cursor !== undefined ? { cursor } : {}),
        ...(filter ? { filter } : {}),
        includeValues: false,
        includeMetadata: true,
      });
      pages++;
      // A row rewritten while the pages are read moves past the cursor and may come twice (docs/api.md).
      for (const v of page.vectors) {
        if (seen.has(v.id)) continue;
        seen.add(v.id);
        matches.push(v);
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined && matches.length < want);
    if (window.limit === undefined && matches.length > end) {
      throw new ValidationError(
        `the filter matches more than ${MAX_QUERY_WINDOW} entities; page with limit and offset ` +
          `(offset + limit ≤ ${MAX_QUERY_WINDOW})`,
        { field: 'limit' },
      );
    }
    const rows = matches.slice(window.offset, end);
    return withValues ? withVectorValues(info.name, rows) : rows;
  }

  /** `rows` with their values, by id lookups (rows deleted since the listing read them are left out). */
  async function withVectorValues(collection: string, rows: VectorOutput[]): Promise<VectorOutput[]> {
    const out: VectorOutput[] = [];
    for (let i = 0; i < rows.length; i += LIMITS.maxBatch) {
      out.push(
        ...(await service.getVectors(
          collection,
          rows.slice(i, i + LIMITS.maxBatch).map((r) => r.id),
        )),
      );
    }
    return out;
  }

  /** `count(*)` of a filter: every page of the listing, within the same page budget as a query. */
  async function countMatches(info: CollectionInfo, filter: FilterNode): Promise<number> {
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let pages = 0; ; pages++) {
      if (pages === MAX_QUERY_PAGES) {
        throw new ValidationError(
          `count(*) with a filter reads at most ${MAX_QUERY_PAGES * ROWS_PER_PAGE} rows, and the collection ` +
            `has more; count by paging GET /v1/collections/${info.name}/vectors?filter=…`,
          { field: 'filter' },
        );
      }
      const page = await service.listVectors(info.name, {
        limit: PAGE_LIMIT.max,
        ...(cursor !== undefined ? { cursor } : {}),
        filter,
        includeValues: false,
        includeMetadata: false,
      });
      for (const v of page.vectors) seen.add(v.id);
      if (page.nextCursor === null) return seen.size;
      cursor = page.nextCursor;
    }
  }

  const actions: Record<string, Action> = {
    // --- collections ---
    'collections/create': {
      run: async (ctx) => {
        ctx.allow('POST /v1/collections');
        const name = collectionOf(ctx.body);
        const plan = planCreate(ctx.body, name);
        const created = await service.createCollection(plan.input);
        try {
          await schemas.put(created.name, created.createdAt, plan.schema);
        } catch (err) {
          // Nothing half-applied: a collection whose schema could not be kept is removed again.
          await service.deleteCollection(created.name).catch(() => undefined);
          throw err;
        }
        return {};
      },
    },
    'collections/describe': {
      run: async (ctx) => {
        const { info, schema } = await collectionTarget(ctx, READ);
        const aliases = deps.lifecycle
          ? (await deps.lifecycle.listAliases()).filter((a) => a.collection === info.name).map((a) => a.name)
          : [];
        return describeCollection(schema, info, aliases);
      },
    },
    'collections/list': {
      run: async (ctx) => {
        ctx.allow('GET /v1/collections');
        return (await service.listCollections()).filter((c) => grantCovers(ctx.principal, c.name)).map((c) => c.name);
      },
    },
    'collections/has': {
      run: async (ctx) => {
        const name = collectionOf(ctx.body);
        ctx.allow(READ, name);
        try {
          await service.getCollection(name);
          return { has: true };
        } catch (err) {
          if (err instanceof NotFoundError) return { has: false };
          throw err;
        }
      },
    },
    'collections/drop': {
      run: async (ctx) => {
        const name = collectionOf(ctx.body);
        ctx.allow('DELETE /v1/collections/{name}', name);
        const info = await service.getCollection(name);
        if (info.name !== name) {
          throw new ValidationError(`${name} is an alias of ${info.name}; drop the alias, or the collection by name`, {
            field: 'collectionName',
          });
        }
        await service.deleteCollection(name);
        await schemas.delete(info.name, info.createdAt).catch(() => undefined);
        return {};
      },
    },
    'collections/get_stats': {
      run: async (ctx) => ({ rowCount: (await collectionTarget(ctx, READ)).info.stats?.count ?? 0 }),
    },
    // Shoal serves every collection without loading it: load and release succeed and change nothing.
    'collections/load': { run: async (ctx) => (await collectionTarget(ctx, READ), {}) },
    'collections/release': { run: async (ctx) => (await collectionTarget(ctx, READ), {}) },
    'collections/refresh_load': { run: async (ctx) => (await collectionTarget(ctx, READ), {}) },
    // Acknowledged writes are already durable (DynamoDB); there is nothing to flush.
    'collections/flush': {
      run: async (ctx) => (await collectionTarget(ctx, 'POST /v1/collections/{name}/vectors'), {}),
    },
    'collections/get_load_state': {
      run: async (ctx) => (await collectionTarget(ctx, READ), { loadState: 'LoadStateLoaded', loadProgress: 100 }),
    },
    // --- entities ---
    'entities/insert': { run: (ctx) => write(ctx, 'insert') },
    'entities/upsert': { run: (ctx) => write(ctx, 'upsert') },
    'entities/delete': {
      run: async (ctx) => {
        const { info, schema } = await collectionTarget(ctx, 'POST /v1/collections/{name}/vectors/delete');
        const filter = filterOf(ctx);
        if (!filter) throw new ValidationError('filter is required (e.g. "id in [1, 2]")', { field: 'filter' });
        const ids = idsOfFilter(schema, filter);
        const selector = ids
          ? { ids: ids.map((v, i) => toShoalId(schema, v, `filter[${i}]`)) }
          : parseBody(deleteVectorsSchema, { filter: ctx.body.filter });
        await service.deleteVectors(info.name, selector);
        return {};
      },
    },
    'entities/get': {
      run: async (ctx) => {
        const { info, schema } = await collectionTarget(ctx, 'POST /v1/collections/{name}/vectors/get');
        const raw = ctx.body.id;
        const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
        if (list.length === 0) throw new ValidationError('id is required (one primary key or a list)', { field: 'id' });
        if (list.length > LIMITS.maxBatch) {
          throw new ValidationError(`id has ${list.length} keys; at most ${LIMITS.maxBatch}`, { field: 'id' });
        }
        const ids = list.map((v, i) => toShoalId(schema, v, `id[${i}]`));
        const select = selectFields(schema, ctx.body.outputFields ?? ['*']);
        return (await service.getVectors(info.name, ids)).map((v) => vectorToRow(schema, v, select, ctx.int64AsNumber));
      },
    },
    'entities/query': {
      run: async (ctx) => {
        const { info, schema } = await collectionTarget(ctx, 'GET /v1/collections/{name}/vectors');
        const filter = filterOf(ctx);
        const limit = optInt(ctx.body, 'limit', 1, MAX_QUERY_WINDOW);
        const offset = optInt(ctx.body, 'offset', 0, MAX_QUERY_WINDOW) ?? 0;
        const fields = Array.isArray(ctx.body.outputFields) ? ctx.body.outputFields : [];
        if (fields.length === 1 && fields[0] === 'count(*)') {
          if (!filter) return [{ 'count(*)': info.stats?.count ?? 0 }];
          const ids = idsOfFilter(schema, filter);
          const count = ids
            ? (await query(info, schema, filter, { offset: 0, limit: undefined }, false)).length
            : await countMatches(info, filter);
          return [{ 'count(*)': count }];
        }
        const select = selectFields(schema, ctx.body.outputFields);
        const withValues = select.all || select.names.has(schema.vector.name);
        const rows = await query(info, schema, filter, { offset, limit }, withValues);
        return rows.map((v) => vectorToRow(schema, v, select, ctx.int64AsNumber));
      },
    },
    'entities/search': {
      run: async (ctx) => {
        const { info, schema } = await collectionTarget(ctx, 'POST /v1/collections/{name}/search');
        const body = ctx.body;
        if (body.annsField !== undefined && body.annsField !== '' && body.annsField !== schema.vector.name) {
          throw new ValidationError(
            `annsField ${String(body.annsField)} is not the vector field ${schema.vector.name}`,
            {
              field: 'annsField',
            },
          );
        }
        if (body.groupingField !== undefined)
          throw new MilvusUnsupportedError('grouping search is not supported by Shoal');
        const limit = optInt(body, 'limit', 1, LIMITS.maxK) ?? DEFAULT_SEARCH_LIMIT;
        const offset = optInt(body, 'offset', 0, LIMITS.maxK) ?? 0;
        if (offset + limit > LIMITS.maxK) {
          throw new ValidationError(`offset + limit must be at most ${LIMITS.maxK}`, { field: 'limit' });
        }
        const sp = body.searchParams === undefined ? {} : body.searchParams;
        if (typeof sp !== 'object' || sp === null || Array.isArray(sp)) {
          throw new ValidationError('searchParams must be an object', { field: 'searchParams' });
        }
        const searchParams = sp as Record<string, unknown>;
        const params = { ...(searchParams.params as Record<string, unknown> | undefined), ...searchParams };
        if (
          params.metricType !== undefined &&
          toShoalMetric(params.metricType, 'searchParams.metricType') !== info.metric
        ) {
          throw new ValidationError(
            `searchParams.metricType ${String(params.metricType)} does not match ` +
              `the collection's ${toMilvusMetric(info.metric)}`,
            { field: 'searchParams.metricType' },
          );
        }
        for (const unsupported of ['radius', 'range_filter', 'group_by_field']) {
          if (params[unsupported] !== undefined) {
            throw new MilvusUnsupportedError(
              `searchParams.${unsupported} (range/grouping search) is not supported by Shoal`,
            );
          }
        }
        const select = selectFields(schema, body.outputFields);
        const withValues = select.all || select.names.has(schema.vector.name);
        const { input } = parseBody(searchSchema, {
          vectors: body.data,
          k: offset + limit,
          consistency: body.consistencyLevel === 'Eventually' ? 'eventual' : 'strong',
          include: withValues ? ['metadata', 'values'] : ['metadata'],
          ...(params.ef !== undefined ? { ef: params.ef } : {}),
          ...(params.nprobe !== undefined ? { nprobe: params.nprobe } : {}),
        });
        const filter = filterOf(ctx);
        if (filter) input.filter = filter;
        const out = await service.search(info.name, input);
        const lists = out.results.map((hits) =>
          hits.slice(offset).map((h) => ({
            ...vectorToRow(schema, h, select, ctx.int64AsNumber),
            id: fromShoalId(schema, h.id, ctx.int64AsNumber),
            distance: toMilvusDistance(info.metric, h.score),
          })),
        );
        return { data: lists.flat(), topks: lists.map((l) => l.length) };
      },
    },
    'entities/hybrid_search': {
      run: async () => {
        throw new MilvusUnsupportedError('hybrid search is not supported: Shoal collections have one vector field');
      },
    },
    // --- aliases ---
    'aliases/create': {
      aliasOp: true,
      run: async (ctx) => {
        const alias = parseName(str(ctx.body, 'aliasName'), 'aliasName');
        ctx.allow('PUT /v1/aliases/{alias}', alias);
        const collection = collectionOf(ctx.body);
        await lifecycle().putAlias(alias, { collection, expectedRevision: 0 }, await ctx.caller());
        return {};
      },
    },
    'aliases/alter': {
      notFound: 'alias',
      aliasOp: true,
      run: async (ctx) => {
        const alias = parseName(str(ctx.body, 'aliasName'), 'aliasName');
        ctx.allow('PUT /v1/aliases/{alias}', alias);
        const collection = collectionOf(ctx.body);
        const current = await lifecycle().getAlias(alias);
        try {
          await service.getCollection(collection);
        } catch (err) {
          if (err instanceof NotFoundError) {
            throw new MilvusUnsupportedError(err.message, MILVUS_CODES.collectionNotFound);
          }
          throw err;
        }
        await lifecycle().putAlias(alias, { collection, expectedRevision: current.revision }, await ctx.caller());
        return {};
      },
    },
    'aliases/describe': {
      notFound: 'alias',
      run: async (ctx) => {
        const alias = parseName(str(ctx.body, 'aliasName'), 'aliasName');
        ctx.allow('GET /v1/aliases/{alias}', alias);
        const view = await lifecycle().getAlias(alias);
        return { aliasName: view.name, collectionName: view.collection, dbName: DEFAULT_DB };
      },
    },
    'aliases/list': {
      run: async (ctx) => {
        ctx.allow('GET /v1/aliases');
        const of =
          typeof ctx.body.collectionName === 'string' && ctx.body.collectionName !== ''
            ? ctx.body.collectionName
            : undefined;
        return (await lifecycle().listAliases())
          .filter((a) => grantCovers(ctx.principal, a.name) && (of === undefined || a.collection === of))
          .map((a) => a.name);
      },
    },
    'aliases/drop': {
      notFound: 'alias',
      run: async (ctx) => {
        const alias = parseName(str(ctx.body, 'aliasName'), 'aliasName');
        ctx.allow('DELETE /v1/aliases/{alias}', alias);
        await lifecycle().deleteAlias(alias, await ctx.caller());
        return {};
      },
    },
    // --- indexes: the one index Shoal keeps on the vector field ---
    'indexes/list': { run: async (ctx) => [(await collectionTarget(ctx, READ)).schema.vector.name] },
    'indexes/describe': {
      run: async (ctx) => {
        const { info, schema } = await collectionTarget(ctx, READ);
        const indexName = ctx.body.indexName;
        if (indexName !== undefined && indexName !== '' && indexName !== schema.vector.name) {
          throw new MilvusUnsupportedError(
            `index ${JSON.stringify(indexName)} not found; the collection's index is ${schema.vector.name}`,
            MILVUS_CODES.indexNotFound,
          );
        }
        const stats = info.stats;
        return [
          {
            fieldName: schema.vector.name,
            indexName: schema.vector.name,
            indexType: info.index.engine.toUpperCase(),
            metricType: toMilvusMetric(info.metric),
            indexState: stats && stats.pending > 0 ? 'InProgress' : 'Finished',
            indexedRows: stats?.indexed ?? 0,
            pendingRows: stats?.pending ?? 0,
            totalRows: stats?.count ?? 0,
            failReason: '',
            params: { ...info.index },
          },
        ];
      },
    },
    // Creating "the" index asks for a build now, the v1 `POST .../index` (admin).
    'indexes/create': {
      run: async (ctx) => {
        const name = collectionOf(ctx.body);
        ctx.allow('POST /v1/collections/{name}/index', name);
        const { info, schema } = await target(name);
        const list = Array.isArray(ctx.body.indexParams) ? ctx.body.indexParams : [];
        list.forEach((raw, i) => {
          const p = (raw ?? {}) as Record<string, unknown>;
          if (p.fieldName !== schema.vector.name) {
            throw new ValidationError(`indexParams[${i}]: Shoal indexes only the vector field ${schema.vector.name}`, {
              field: `indexParams[${i}].fieldName`,
            });
          }
          if (
            p.metricType !== undefined &&
            toShoalMetric(p.metricType, `indexParams[${i}].metricType`) !== info.metric
          ) {
            throw new ValidationError(`indexParams[${i}].metricType differs from the collection's metric`, {
              field: `indexParams[${i}].metricType`,
            });
          }
        });
        await service.buildIndex(info.name, {}, await ctx.caller());
        return {};
      },
    },
    // --- partitions: one, _default ---
    'partitions/list': { run: async (ctx) => (await collectionTarget(ctx, READ), [DEFAULT_PARTITION]) },
    'partitions/has': {
      run: async (ctx) => {
        const name = collectionOf(ctx.body);
        ctx.allow(READ, name);
        await service.getCollection(name);
        return { has: ctx.body.partitionName === DEFAULT_PARTITION };
      },
    },
    'partitions/get_stats': {
      run: async (ctx) => ({ rowCount: (await collectionTarget(ctx, READ)).info.stats?.count ?? 0 }),
    },
  };

  const UNSUPPORTED_AREAS: Record<string, string> = {
    users: 'users are not supported: Shoal authenticates with API keys (docs/security.md)',
    roles: 'roles are not supported: Shoal API keys carry a role (read, write, admin; docs/security.md)',
    databases: 'databases are not supported: Shoal has only the default database',
    jobs: 'Milvus import jobs are not supported: use Shoal bulk imports (docs/imports.md)',
    resource_groups: 'resource groups are not supported by Shoal',
    privilege_groups: 'privilege groups are not supported by Shoal',
  };

  /** `context` learns the action, so that its failure maps to the right Milvus code. */
  async function dispatch(req: MilvusRequest, context: Partial<Action>): Promise<Record<string, unknown>> {
    const token = bearerToken(req.headers);
    const principal = await authenticate(token);
    if (principal.rateLimit) limiter.take(principal.bucket, principal.rateLimit);
    const q = req.path.indexOf('?');
    const action = (q === -1 ? req.path : req.path.slice(0, q)).slice(MILVUS_PATH_PREFIX.length).replace(/\/+$/, '');
    if (req.method.toUpperCase() !== 'POST') {
      throw new ValidationError(`Milvus REST v2 calls are POST requests (got ${req.method.toUpperCase()})`, {
        field: 'method',
      });
    }
    const body = parseBodyJson(req);
    const db = body.dbName;
    if (db !== undefined && db !== null && db !== '' && db !== DEFAULT_DB) {
      throw new MilvusUnsupportedError(
        `database ${JSON.stringify(db)} not found: Shoal has only the ${DEFAULT_DB} database`,
        MILVUS_CODES.databaseNotFound,
      );
    }
    const found = actions[action];
    if (!found) {
      const area = action.split('/')[0];
      throw new MilvusUnsupportedError(
        UNSUPPORTED_AREAS[area] ?? `${MILVUS_PATH_PREFIX}${action} is not supported by Shoal (docs/milvus.md)`,
      );
    }
    const ctx: Ctx = {
      body,
      principal,
      int64AsNumber: header(req.headers, 'accept-type-allow-int64')?.trim().toLowerCase() !== 'false',
      caller: async () => ({ actor: principal.keyId ?? (await deps.identify?.(token)) ?? principal.actor }),
      allow(route, name) {
        const policy = (ROUTE_POLICIES as Record<RouteKey, RoutePolicy>)[route] ?? { role: 'admin' as const };
        const params: Record<string, string> = name === undefined ? {} : { name, alias: name };
        const decision = decide(principal, policy, params);
        if (!decision.allowed) throw new ForbiddenError(decision.reason);
      },
    };
    context.notFound = found.notFound;
    context.aliasOp = found.aliasOp;
    const data = await found.run(ctx);
    // Search answers its hits flat, with one count per query (`topks`), which the SDK splits per query.
    if (action === 'entities/search') return data as Record<string, unknown>;
    return { data };
  }

  return {
    async handle(req) {
      const context: Partial<Action> = {};
      let envelope: Record<string, unknown>;
      try {
        envelope = { code: MILVUS_CODES.success, ...(await dispatch(req, context)) };
      } catch (err) {
        envelope = { ...toMilvusError(err, context) };
      }
      return {
        statusCode: 200,
        headers: { 'Content-Type': 'application/json' },
        body: `${JSON.stringify(envelope)}\n`,
      };
    },
  };
}
