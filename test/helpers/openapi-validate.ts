/**
 * Responses checked against the OpenAPI document (shared/api/openapi.ts) with a real JSON Schema 2020-12
 * validator (ajv): the status must be one the operation declares, and the body must match its schema.
 *
 * Strictly: the document's objects are open (clients must tolerate new fields), but here every object
 * schema that lists its properties and says nothing about others gets `unevaluatedProperties: false`, so
 * a field the service returns and the document does not describe fails the check.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { buildOpenApi } from '../../shared/api/openapi.js';

type Json = Record<string, unknown>;

const BASE = 'https://shoal.invalid/openapi.json';

/** A deep copy of `node` where every listed-properties object schema refuses unlisted properties. */
export function strictify<T>(node: T): T {
  if (Array.isArray(node)) return node.map(strictify) as T;
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) out[k] = strictify(v);
  if (
    typeof out.properties === 'object' &&
    out.properties !== null &&
    out.type === 'object' &&
    out.additionalProperties === undefined &&
    out.unevaluatedProperties === undefined
  ) {
    out.unevaluatedProperties = false;
  }
  return out as T;
}

export interface OpenApiValidator {
  readonly doc: Json;
  /** The document's path template for a concrete path (`/v1/collections/docs?x=1` → `/v1/collections/{name}`). */
  templateOf(path: string): string | undefined;
  /**
   * What is wrong with a response (empty when nothing): a status the operation does not declare, or a
   * body its schema refuses. Requests that match no operation (unknown path, other method) must answer
   * with the `Error` schema.
   */
  check(method: string, path: string, status: number, body: unknown): string[];
}

export function createOpenApiValidator(doc: Json = buildOpenApi('test')): OpenApiValidator {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const components = strictify((doc.components ?? {}) as Json);
  ajv.addSchema({ $id: BASE, components });
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const templates = Object.keys(paths).map((t) => ({ t, segments: t.split('/') }));
  const compiled = new Map<string, ValidateFunction>();

  const validatorFor = (schema: Json): ValidateFunction => {
    const ref = schema.$ref;
    const key = typeof ref === 'string' ? ref : JSON.stringify(schema);
    let fn = compiled.get(key);
    if (!fn) {
      fn =
        typeof ref === 'string' ? (ajv.getSchema(`${BASE}${ref}`) as ValidateFunction) : ajv.compile(strictify(schema));
      if (!fn) throw new Error(`the document has no ${String(ref)}`);
      compiled.set(key, fn);
    }
    return fn;
  };

  const deref = (node: Json): Json => {
    const ref = node.$ref;
    if (typeof ref !== 'string') return node;
    const [, , kind, name] = ref.split('/');
    return ((doc.components as Record<string, Record<string, Json>>)[kind] ?? {})[name];
  };

  function templateOf(path: string): string | undefined {
    const q = path.indexOf('?');
    let p = q === -1 ? path : path.slice(0, q);
    if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    const segments = p.split('/');
    return templates.find(
      ({ segments: want }) =>
        want.length === segments.length &&
        want.every((w, i) => (w.startsWith('{') ? segments[i] !== '' : w === segments[i])),
    )?.t;
  }

  function check(method: string, path: string, status: number, body: unknown): string[] {
    const template = templateOf(path);
    const op = template ? paths[template][method.toLowerCase()] : undefined;
    const where = `${method.toUpperCase()} ${template ?? path} → ${status}`;
    let schema: Json;
    if (!op) {
      schema = { $ref: '#/components/schemas/Error' };
    } else {
      const response = (op.responses as Record<string, Json>)[String(status)];
      if (!response) return [`${where}: status not in the document (${Object.keys(op.responses as Json)})`];
      const content = deref(response).content as Record<string, { schema: Json }>;
      schema = content['application/json'].schema;
    }
    const validate = validatorFor(schema);
    if (validate(body)) return [];
    return (validate.errors ?? []).map(
      (e) => `${where}: ${e.instancePath || '(body)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
    );
  }

  return { doc, templateOf, check };
}

let shared: OpenApiValidator | undefined;

/** One validator per process over the document the router serves. */
export function openApiValidator(): OpenApiValidator {
  shared ??= createOpenApiValidator();
  return shared;
}
