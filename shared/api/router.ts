/**
 * The HTTP API v1 as a plain function: `createApi(deps).handle(req)` routes a request,
 * checks the bearer key, validates the body (`schemas.ts`), calls the `ShoalService` and
 * shapes the JSON. It never throws: every failure goes through `toErrorResponse`.
 * Transport-agnostic: the Lambda handler and the tests drive it directly.
 */
import { NotFoundError, UnauthorizedError, ValidationError } from '../errors.js';
import type { ImportApi } from '../import/service.js';
import type { ShoalService } from '../service.js';
import { InvalidJsonError, MethodNotAllowedError, PayloadTooLargeError, toErrorResponse } from './http-errors.js';
import {
  createCollectionSchema,
  createImportSchema,
  deleteVectorsSchema,
  getVectorsSchema,
  parseBody,
  parseCollectionName,
  searchSchema,
  upsertSchema,
} from './schemas.js';

/** The Lambda synchronous-invocation payload limit that API Gateway enforces in front of us. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

export interface ApiDeps {
  service: ShoalService;
  /** Whether the bearer token (undefined when absent or not a Bearer header) is a valid key. */
  authorize: (token: string | undefined) => Promise<boolean> | boolean;
  /** Extra fields for `GET /v1/health` (the local runtime adds its emulator endpoints). */
  healthExtra?: () => Record<string, unknown>;
  version: string;
  /** Bulk imports; without it the import routes answer 404. */
  imports?: ImportApi;
}

export interface ApiRequest {
  method: string;
  /** The request path, percent-encoded as received (query string, if any, is ignored). */
  path: string;
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
}

interface RouteContext {
  /** The collection name from the path, validated. */
  name: string;
  /** Other path parameters (`:jobId`), percent-decoded. */
  params: Record<string, string>;
  /** The parsed JSON body (INVALID_JSON is thrown lazily, only by routes that read a body). */
  json(): unknown;
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
  if (text === undefined || text.trim() === '') throw new InvalidJsonError('request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidJsonError(`request body is not valid JSON: ${(err as Error).message}`);
  }
}

function splitPath(path: string): string[] | undefined {
  const q = path.indexOf('?');
  let p = q === -1 ? path : path.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (!p.startsWith('/')) return undefined;
  return p.slice(1).split('/');
}

export function createApi(deps: ApiDeps): Api {
  const { service } = deps;
  const imports = (): ImportApi => {
    if (!deps.imports) throw new NotFoundError('imports are not enabled on this deployment');
    return deps.imports;
  };

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
        GET: async () => ok({ collections: await service.listCollections() }),
        POST: async (ctx) => ok(await service.createCollection(parseBody(createCollectionSchema, ctx.json())), 201),
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
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'vectors'],
      methods: {
        POST: async (ctx) => ok(await service.upsert(ctx.name, parseBody(upsertSchema, ctx.json()))),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'vectors', 'get'],
      methods: {
        POST: async (ctx) => ok({ vectors: await service.getVectors(ctx.name, parseBody(getVectorsSchema, ctx.json())) }),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'vectors', 'delete'],
      methods: {
        POST: async (ctx) => ok(await service.deleteVectors(ctx.name, parseBody(deleteVectorsSchema, ctx.json()))),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'search'],
      methods: {
        POST: async (ctx) => {
          const { input, single } = parseBody(searchSchema, ctx.json());
          const out = await service.search(ctx.name, input);
          return ok({ results: single ? (out.results[0] ?? []) : out.results, servedBy: out.servedBy });
        },
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'index'],
      methods: {
        POST: async (ctx) => ok(await service.buildIndex(ctx.name), 202),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'imports'],
      methods: {
        GET: async (ctx) => ok({ jobs: await imports().listImports(ctx.name) }),
        POST: async (ctx) => {
          const { uri } = parseBody(createImportSchema, ctx.json());
          const { job, created } = await imports().createImport(ctx.name, uri);
          return ok(job, created ? 202 : 200);
        },
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'imports', ':jobId'],
      methods: {
        GET: async (ctx) => ok(await imports().getImport(ctx.name, ctx.params.jobId)),
      },
    },
    {
      segments: ['v1', 'collections', ':name', 'versions'],
      methods: {
        GET: async (ctx) => ok({ versions: await service.listVersions(ctx.name) }),
      },
    },
  ];

  function match(segments: string[]): { route: Route; name: string | undefined; params: Record<string, string> } | undefined {
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

  async function dispatch(req: ApiRequest): Promise<Result> {
    if (!(await deps.authorize(bearerToken(req.headers)))) {
      throw new UnauthorizedError('a valid API key is required (Authorization: Bearer <key>)');
    }
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
      parseCollectionName(name);
    }
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(found.params)) {
      try {
        params[k] = decodeURIComponent(v);
      } catch {
        throw new ValidationError(`${k} in the path is not valid percent-encoding`, { field: k });
      }
    }
    const text = decodeBody(req);
    let parsed: { value: unknown } | undefined;
    return handler({
      name,
      params,
      json: () => {
        parsed ??= { value: parseJson(text) };
        return parsed.value;
      },
    });
  }

  return {
    async handle(req) {
      try {
        const result = await dispatch(req);
        return {
          statusCode: result.status,
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(result.body),
        };
      } catch (err) {
        const { statusCode, headers, body } = toErrorResponse(err);
        return { statusCode, headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) };
      }
    },
  };
}
