/**
 * The HTTP API v1 as a plain function: `createApi(deps).handle(req)` matches a request against the
 * route table (`routes.ts`), checks the bearer key and the route's policy, validates the path
 * parameters, query and body with the route's schemas, calls its handler and shapes the JSON. It never
 * throws: every failure goes through `toErrorResponse`. Transport-agnostic: the Lambda handler and the
 * tests drive it directly; `handle` is the single entry for every path.
 */
import { createHash } from 'node:crypto';
import type { Principal } from '../auth/keys.js';
import { decide, type ApiRouteKey, type PublicRouteKey } from '../auth/policy.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../errors.js';
import { InvalidJsonError, MethodNotAllowedError, PayloadTooLargeError, toErrorResponse } from './http-errors.js';
import { consoleResponse, isConsolePath } from './console.js';
import { MILVUS_PATH_PREFIX, createMilvusApi } from './milvus/index.js';
import { openApiDocument } from './openapi.js';
import { PATH_PARAMS, PUBLIC_ROUTES, ROUTES, usesOf, type ApiDeps, type Result, type Route } from './routes.js';
import { LIMITS, jsonDepth } from '../validation.js';

export type { ApiDeps } from './routes.js';

/** The Lambda synchronous-invocation payload limit that API Gateway enforces in front of us. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

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

export interface Api {
  handle(req: ApiRequest): Promise<ApiResponse>;
  /**
   * Every keyed route served, as `METHOD /path/{param}` (the API Gateway route-key form; the policy's keys).
   * The public routes (`PUBLIC_ROUTE_KEYS`) are answered before the key check and are not listed here.
   */
  readonly routes: readonly ApiRouteKey[];
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

/** The unauthenticated liveness probe (`GET /healthz`); everything else but the OpenAPI document needs a key. */
export const LIVENESS_PATH = '/healthz';

/** The routes of one path, methods in table order (a 405's `Allow` list). */
interface PathGroup {
  segments: string[];
  methods: Map<string, Route>;
}

function groupByPath(routes: readonly Route[]): PathGroup[] {
  const groups = new Map<string, PathGroup>();
  for (const r of routes) {
    let g = groups.get(r.path);
    if (!g) {
      g = { segments: r.path.slice(1).split('/'), methods: new Map() };
      groups.set(r.path, g);
    }
    g.methods.set(r.method, r);
  }
  return [...groups.values()];
}

/** The first path group whose template matches; parameters raw (percent-encoded), in path order. */
function match(groups: PathGroup[], segments: string[]): { group: PathGroup; raw: [string, string][] } | undefined {
  outer: for (const group of groups) {
    if (group.segments.length !== segments.length) continue;
    const raw: [string, string][] = [];
    for (let i = 0; i < segments.length; i++) {
      const want = group.segments[i];
      if (want.startsWith('{')) {
        if (segments[i] === '') continue outer;
        raw.push([want.slice(1, -1), segments[i]]);
      } else if (want !== segments[i]) continue outer;
    }
    return { group, raw };
  }
  return undefined;
}

/** A query schema's input: the value, or when absent undefined if the schema takes it, else ''. */
function queryInput(schema: Route['query'][string], value: string | null): string | undefined {
  if (value !== null) return value;
  return schema.safeParse(undefined).success ? undefined : '';
}

/** The public route a request is for (trailing slash and query ignored), if any. */
function publicRoute(req: ApiRequest): PublicRouteKey | undefined {
  const method = req.method.toUpperCase();
  const q = req.path.indexOf('?');
  let p = q === -1 ? req.path : req.path.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return PUBLIC_ROUTES.find((r) => r.method === method && r.path === p)?.key;
}

export function createApi(deps: ApiDeps): Api {
  const use = usesOf(deps);
  const limiter = new RateLimiter();
  const served = ROUTES.filter((r) => r.onlyWith === undefined || deps[r.onlyWith] !== undefined);
  const groups = groupByPath(served);

  /**
   * Served before the key check: the liveness probe answers status and version only, no endpoints and no
   * credentials (unlike /v1/health, whose local extras name the emulators and their keys).
   */
  const publicBodies: Record<PublicRouteKey, () => unknown> = {
    'GET /healthz': () => ({ status: 'ok', version: deps.version }),
    'GET /v1/openapi.json': () => openApiDocument(deps.version),
  };

  async function authenticate(token: string | undefined): Promise<Principal> {
    const who = await deps.authorize(token);
    if (!who) throw new UnauthorizedError('a valid API key is required (Authorization: Bearer <key>)');
    if (who !== true) return who;
    const hash = createHash('sha256')
      .update(token ?? '')
      .digest('hex');
    return { role: 'admin', actor: `key:${hash.slice(0, 12)}`, bucket: hash };
  }

  /**
   * The order of the checks is part of the API (tests pin it): key → rate limit → route → method →
   * percent-decoding → policy → collection name → body size → the route's dependency → other path
   * parameters → query → body (`bodyFirst`: right after the body size) → handler.
   */
  async function dispatch(req: ApiRequest): Promise<Result> {
    const token = bearerToken(req.headers);
    const principal = await authenticate(token);
    // Before routing, so that a key over its limit costs no more than this check, whatever it asks for.
    if (principal.rateLimit) limiter.take(principal.bucket, principal.rateLimit);
    const segments = splitPath(req.path);
    const found = segments && match(groups, segments);
    if (!found) throw new NotFoundError(`no route for ${req.path}`);
    const method = req.method.toUpperCase();
    const route = found.group.methods.get(method);
    if (!route) throw new MethodNotAllowedError(method, [...found.group.methods.keys()]);

    const decoded: Record<string, string> = {};
    for (const [k, v] of found.raw) {
      try {
        decoded[k] = decodeURIComponent(v);
      } catch {
        throw new ValidationError(
          k === 'name'
            ? 'collection name in the path is not valid percent-encoding'
            : `${k} in the path is not valid percent-encoding`,
          { field: k },
        );
      }
    }
    // The same table the AWS authorizer applies (shared/auth/policy.ts).
    const decision = decide(principal, route.policy, decoded);
    if (!decision.allowed) throw new ForbiddenError(decision.reason);
    const params: Record<string, unknown> = {};
    if (decoded.name !== undefined) params.name = PATH_PARAMS.name.parse(decoded.name);
    const text = decodeBody(req);
    let body: unknown;
    const parseRequestBody = () => {
      if (!route.body) return;
      const empty = text === undefined || text.trim() === '';
      body = route.body.parse(route.body.optional && empty ? {} : parseJson(text), deps);
    };
    if (route.bodyFirst) parseRequestBody();
    // Reading a service the deployment lacks throws its 404 NOT_FOUND (`usesOf`).
    if (route.needs && !use[route.needs]) throw new NotFoundError(`${route.key} is not served here`);
    for (const k of route.params) if (k !== 'name') params[k] = PATH_PARAMS[k].parse(decoded[k]);
    const q = req.path.indexOf('?');
    const search = new URLSearchParams(req.query ?? (q === -1 ? '' : req.path.slice(q + 1)));
    const query: Record<string, unknown> = {};
    for (const [k, schema] of Object.entries(route.query)) query[k] = schema.parse(queryInput(schema, search.get(k)));
    if (!route.bodyFirst) parseRequestBody();
    return route.handler({
      params,
      query,
      body,
      principal,
      use,
      deps,
      caller: async () => ({ actor: principal.keyId ?? (await deps.identify?.(token)) ?? principal.actor }),
    });
  }

  const respond = (statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResponse => ({
    statusCode,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: jsonBody(body),
  });

  // Milvus REST v2 (docs/milvus.md): its own wire (HTTP 200 envelopes), the same services, policy and limiter.
  const milvus = createMilvusApi({ ...deps, limiter, ...(deps.milvusSchemas ? { objects: deps.milvusSchemas } : {}) });

  return {
    routes: served.map((r) => r.key),
    async handle(req) {
      if (req.path.startsWith(MILVUS_PATH_PREFIX)) return milvus.handle(req);
      // The console's static pages (docs/console.md): no key; the key is entered in the page. Checked
      // synchronously, so API requests take no extra await for it.
      if (isConsolePath(req.path)) return (await consoleResponse(req))!;
      try {
        const open = publicRoute(req);
        if (open) return respond(200, publicBodies[open]());
        const result = await dispatch(req);
        return respond(result.status, result.body);
      } catch (err) {
        const { statusCode, headers, body } = toErrorResponse(err);
        return respond(statusCode, body, headers);
      }
    },
  };
}
