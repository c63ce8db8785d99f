/**
 * The OpenAPI 3.1 document of the HTTP API v1, built from the route table (`routes.ts`) with zod's own
 * JSON Schema output (draft 2020-12, the dialect of OpenAPI 3.1): paths, operations, parameters, request
 * bodies, success and error responses, the bearer security scheme. Served at `GET /v1/openapi.json`
 * (no key) and committed as docs/openapi.json by `npm run openapi` (a test keeps the two equal).
 */
import { z } from 'zod';
import { LIMITS, idSchema, metadataSchema, rawInputSchema, valuesSchema } from '../validation.js';
import * as R from './responses.js';
import type { ErrorCode } from './responses.js';
import {
  PARAM_DOCS,
  PATH_PARAMS,
  PUBLIC_ROUTES,
  ROUTES,
  TAGS,
  errorsOf,
  type PublicRoute,
  type Route,
} from './routes.js';

type Json = Record<string, unknown>;

/** Where the router serves the document (`PUBLIC_ROUTE_KEYS` in shared/auth/policy.ts). */
export const OPENAPI_PATH = '/v1/openapi.json';

export const OPENAPI_VERSION = '3.1.0';
const TARGET = 'draft-2020-12';
const SCHEMAS = '#/components/schemas/';
const RESPONSES = '#/components/responses/';
const SECURITY_SCHEME = 'apiKey';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  400: 'Bad request',
  401: 'No valid API key',
  403: "The key's role or collection scope does not cover the route",
  404: 'Not found',
  409: 'Conflict',
  413: 'Too large',
  429: 'Too many requests (Retry-After gives the seconds to wait)',
  500: 'Server error (the message is generic; the details are in the logs)',
  503: 'Unavailable for now: retry with backoff',
};

/**
 * What zod cannot see through: the validators shared with the import formats are `unknown` →
 * transform (their rules live in code), so their wire shape is written here.
 */
function describeOpaque(ctx: { zodSchema: unknown; jsonSchema: Json; path: (string | number)[] }): void {
  if (ctx.zodSchema === valuesSchema) {
    Object.assign(ctx.jsonSchema, {
      type: 'array',
      items: { type: 'number' },
      minItems: 1,
      maxItems: LIMITS.maxDimension,
      description: 'Finite numbers representable as float32, as many as the dimension.',
    });
  } else if (ctx.zodSchema === rawInputSchema) {
    Object.assign(ctx.jsonSchema, {
      anyOf: [
        { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: LIMITS.maxInputValues },
        { type: 'string', minLength: 1, maxLength: LIMITS.maxTextChars },
      ],
      description: "A raw model input: the model's input tensor flattened, or a text for a model with a tokenizer.",
    });
  } else if (ctx.zodSchema === idSchema) {
    Object.assign(ctx.jsonSchema, {
      anyOf: [
        { type: 'string', minLength: 1, description: '1 – 512 UTF-8 bytes' },
        { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
      ],
      description: 'A string, or a non-negative safe integer (kept as its decimal string).',
    });
  } else if (ctx.zodSchema === metadataSchema) {
    Object.assign(ctx.jsonSchema, {
      type: 'object',
      additionalProperties: {},
      description: 'A JSON object: ≤ 40 KB serialized, ≤ 64 top-level keys, nesting ≤ 8.',
    });
  } else if (ctx.path.at(-1) === 'filter' && Object.keys(ctx.jsonSchema).length === 0) {
    Object.assign(ctx.jsonSchema, {
      anyOf: [{ type: 'string' }, { type: 'object' }],
      description: 'A Milvus-style expression string or a JSON filter object (docs/architecture.md §5.4).',
    });
  }
}

const toJson = (schema: z.ZodType): Json => {
  const { $schema: _, ...json } = z.toJSONSchema(schema, {
    target: TARGET,
    io: 'input',
    unrepresentable: 'any',
    override: describeOpaque,
  }) as Json;
  return json;
};

const pascal = (s: string): string =>
  s
    .toLowerCase()
    .split(/[_\s-]+/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** The component name of a set of error codes answered with one status. */
function errorResponseName(status: number, codes: readonly ErrorCode[]): string {
  if (status === 500) return 'ServerError';
  return codes.map(pascal).join('Or');
}

function parameter(name: string, where: 'path' | 'query', schema: z.ZodType, required: boolean): Json {
  const { description, ...json } = PARAM_DOCS.get(schema) ?? toJson(schema);
  return { name, in: where, required, ...(description ? { description } : {}), schema: json };
}

const jsonContent = (schema: Json): Json => ({ 'application/json': { schema } });

/** Builds the document; `version` is the API's (the package version, plus the git sha when deployed). */
export function buildOpenApi(version: string): Json {
  // Every named schema goes through one registry, so shared shapes are $refs to components.schemas.
  const registry = z.registry<{ id: string }>();
  const ids = new Map<z.ZodType, string>();
  const name = (schema: z.ZodType, id: string): string => {
    let have = ids.get(schema);
    if (have === undefined) {
      have = id;
      registry.add(schema, { id });
      ids.set(schema, id);
    }
    return have;
  };
  const responses = R.responseSchemas();
  for (const [id, schema] of Object.entries(R.RESPONSE_COMPONENTS)) name(responses[schema], id);

  const errorResponses: Record<string, Json> = {};
  const errorRef = (status: number, codes: ErrorCode[]): Json => {
    const id = errorResponseName(status, codes);
    errorResponses[id] ??= {
      description: `${STATUS_TEXT[status] ?? 'Error'}: ${codes.join(', ')}`,
      content: jsonContent(toJson(R.errorBodySchema(codes))),
    };
    return { $ref: `${RESPONSES}${id}` };
  };

  const successResponses = (r: Route | PublicRoute): Json =>
    Object.fromEntries(
      Object.entries(r.responses).map(([status, schema]) => [
        status,
        {
          description: STATUS_TEXT[Number(status)] ?? 'OK',
          content: jsonContent({
            $ref: `${SCHEMAS}${name(responses[schema], `${capitalize(r.operationId)}Response`)}`,
          }),
        },
      ]),
    );

  const paths: Record<string, Record<string, Json>> = {};
  const add = (path: string, method: string, op: Json) => {
    paths[path] ??= {};
    paths[path][method.toLowerCase()] = op;
  };

  for (const r of PUBLIC_ROUTES) {
    add(r.path, r.method, {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      security: [],
      responses: successResponses(r),
    });
  }

  for (const r of ROUTES) {
    const parameters = [
      ...r.params.map((p) => parameter(p, 'path', PATH_PARAMS[p], true)),
      ...Object.entries(r.query).map(([q, schema]) =>
        parameter(q, 'query', schema, !schema.safeParse(undefined).success),
      ),
    ];
    const byStatus = new Map<number, ErrorCode[]>();
    for (const code of errorsOf(r)) {
      const status = R.ERROR_STATUS[code];
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    const errors = Object.fromEntries(
      [...byStatus].sort(([a], [b]) => a - b).map(([status, codes]) => [String(status), errorRef(status, codes)]),
    );
    add(r.path, r.method, {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.tag],
      ...(parameters.length ? { parameters } : {}),
      ...(r.body
        ? {
            requestBody: {
              required: !r.body.optional,
              ...(r.body.optional ? { description: 'Optional: an empty body counts as {}.' } : {}),
              content: jsonContent({
                $ref: `${SCHEMAS}${name(r.body.schema(), `${capitalize(r.operationId)}Request`)}`,
              }),
            },
          }
        : {}),
      responses: { ...successResponses(r), ...errors },
      // Who may call it (shared/auth/policy.ts): the role, and the path parameter a scoped key must cover.
      'x-shoal-policy': r.policy,
    });
  }

  const converted = z.toJSONSchema(registry, {
    target: TARGET,
    io: 'input',
    unrepresentable: 'any',
    uri: (id) => `${SCHEMAS}${id}`,
    override: describeOpaque,
  }) as { schemas: Record<string, Json> };
  const schemas = Object.fromEntries(
    Object.entries(converted.schemas).map(([id, { $schema: _s, $id: _i, ...json }]) => [id, json]),
  );

  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: 'Shoal HTTP API',
      version,
      description:
        'Serverless vector database for AWS with model and index lifecycle built in. Every route but ' +
        '`GET /healthz` and this document needs `Authorization: Bearer <key>`; errors are ' +
        '`{"error": {code, message, field?, details?}}` (docs/api.md).',
    },
    tags: Object.entries(TAGS).map(([tag, description]) => ({ name: tag, description })),
    security: [{ [SECURITY_SCHEME]: [] }],
    paths,
    components: {
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API key (`shoal_…`): role read, write or admin, optionally scoped to collections.',
        },
      },
      schemas,
      responses: errorResponses,
    },
  };
}

let cached: { version: string; doc: Json } | undefined;

/** The document for `version`, built once per process (on the first request for it). */
export function openApiDocument(version: string): Json {
  if (cached?.version !== version) cached = { version, doc: buildOpenApi(version) };
  return cached.doc;
}
