/**
 * Generators of hostile HTTP requests for every route of the API v1 (shared/api/routes.ts), one set
 * shared by the vitest property (test/integration/fuzz-routes.test.ts) and `npm run fuzz`.
 *
 * The route list is the router's own table, so a new route is fuzzed (with arbitrary bodies)
 * the day it lands; `BODY_SPECS` adds, per route, a generator of valid bodies built from its zod schema
 * (shared/api/schemas.ts), which `nearValid` then breaks in exactly one place. Path parameters come
 * mostly from the fixtures the harness creates (collection `fz`, alias `fa`, model `fm` …) so
 * near-valid requests reach the service and storage code, where 5xx bugs hide.
 */
import fc from 'fast-check';
import { ROUTES } from '../../shared/api/routes.js';

// ---------------------------------------------------------------------------------------
// Fixtures the harness creates (test/helpers/fuzz-harness.ts) and the generators aim at

export const FIXTURES = {
  collection: 'fz',
  /** A second collection (an experiment's challenger, an alias target). */
  other: 'fz2',
  dim: 4,
  alias: 'fa',
  model: 'fm',
  modelAlias: 'prod',
  candidate: 'c1',
  /** Row ids in `fz`: `r0`…`r199` and the integers 0…49. */
  rows: 200,
  importKey: 'imports/fz/rows.jsonl',
  apiKey: 'fuzz-key',
} as const;

// ---------------------------------------------------------------------------------------
// Routes, from the router's source

export interface RouteInfo {
  /** `/v1/collections/:name/search` */
  path: string;
  methods: string[];
}

/**
 * The routes of the router's table (shared/api/routes.ts), grouped by path, methods in table order.
 * Reading the table (instead of a second hand-kept list) keeps the fuzzer complete as routes are added.
 */
export function routerRoutes(): RouteInfo[] {
  const byPath = new Map<string, RouteInfo>();
  for (const r of ROUTES) {
    const path = r.path.replace(/\{(\w+)\}/g, ':$1');
    const info = byPath.get(path) ?? { path, methods: [] };
    info.methods.push(r.method);
    byPath.set(path, info);
  }
  return [...byPath.values()];
}

/** `METHOD /path/template`: the key of the per-route tables. */
export type RouteKey = string;

export const routeKey = (method: string, path: string): RouteKey => `${method} ${path}`;

// ---------------------------------------------------------------------------------------
// Hostile values

/** A token written verbatim into the JSON text (`1e999`, deep nesting): things JSON.stringify cannot produce. */
export class Raw {
  constructor(readonly text: string) {}
}

/** JSON text of `value`; `Raw` leaves are inserted verbatim, own `__proto__` keys are kept. */
export function encode(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(encode).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    // Like JSON.stringify, a key whose value is undefined is left out.
    const parts = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${encode((value as Record<string, unknown>)[k])}`);
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Sets `key` as an own data property, also for `__proto__` (a plain assignment would swap the prototype). */
function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const nested = (depth: number, open: string, close: string, inner = '1') =>
  new Raw(`${open.repeat(depth)}${inner}${close.repeat(depth)}`);

export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

const hostileString = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'NaN',
    'Infinity',
    '-Infinity',
    '1e999',
    '0x10',
    ' 1',
    '1_000',
    'null',
    'true',
    '\u0000',
    'a\nb',
    '\u007f',
    '\u202eevil',
    '\ud800',
    '\udfff\ud800',
    '😀',
    'e\u0301',
    'ß',
    '%00',
    '%zz',
    '../../etc/passwd',
    's3://',
    's3://b/',
    's3://shoal-fuzz/imports/fz/rows.jsonl',
    's3://no-such-bucket/x.jsonl',
    's3://UPPER_bad..bucket/k.csv',
    's3://shoal-fuzz/imports/fz/x.npy.ids.jsonl',
    's3://shoal-fuzz/imports/fz/\ud800.jsonl',
    `s3://shoal-fuzz/imports/${'k'.repeat(1100)}.jsonl`,
    'main',
    'c1',
    'fz',
    'fa',
    ...PROTO_KEYS,
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('\u0000', '\u001f', '\t', '\r', '\ud83d', '"', '\\', '/'), maxLength: 10 }),
  fc.constantFrom(513, 1025, 4097, 70_000).map((n) => 'a'.repeat(n)),
  fc.constantFrom(171, 300).map((n) => '€'.repeat(n)),
);

const hostileNumber = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    -1,
    0.5,
    1.5,
    1e-300,
    5e-324,
    1e21,
    1e308,
    -1e308,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2,
    4.1e38,
    3.4028235e38,
    1001,
    4097,
    100_001,
    9_999_999_999,
    10_000_000_000,
  ),
  fc.double(),
  fc.integer(),
  // Tokens JSON.parse accepts but that are not finite or lose precision.
  fc.constantFrom('1e999', '-1e999', '1e-400', '123456789012345678901234567890', '-0.0', '1E+2').map((t) => new Raw(t)),
);

/** Anything, with a bias to what breaks validators. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constantFrom(null, true, false, [], {}), weight: 3 },
  { arbitrary: hostileNumber, weight: 4 },
  { arbitrary: hostileString, weight: 4 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 2 },
  {
    arbitrary: fc
      .constantFrom(8, 63, 64, 65, 200, 5000)
      .chain((d) => fc.constantFrom(nested(d, '[', ']'), nested(d, '{"a":', '}'))),
    weight: 1,
  },
  {
    // Huge arrays: batch, dimension and query limits, and a plain large one.
    arbitrary: fc
      .constantFrom(5, 101, 1001, 4097, 20_000)
      .chain((n) =>
        fc.constantFrom<unknown>(
          new Raw(`[${Array(n).fill('0').join(',')}]`),
          new Raw(`[${Array(n).fill('"x"').join(',')}]`),
          new Raw(`[${Array(n).fill('[0.1,0.2,0.3,0.4]').join(',')}]`),
        ),
      ),
    weight: 1,
  },
  {
    arbitrary: fc
      .tuple(fc.constantFrom(...PROTO_KEYS), fc.jsonValue({ maxDepth: 2 }))
      .map(([k, v]) => new Raw(`{${JSON.stringify(k)}:${encode(v)}}`)),
    weight: 1,
  },
);

// ---------------------------------------------------------------------------------------
// Mutations: a valid body broken in one place

type Path = Array<string | number>;

function paths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (value instanceof Raw) return out;
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object')
    for (const k of Object.keys(value)) paths((value as Record<string, unknown>)[k], [...prefix, k], out);
  return out;
}

function clone(value: unknown): unknown {
  if (value instanceof Raw) return value;
  if (Array.isArray(value)) return value.map(clone);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value)) setKey(out, k, clone((value as Record<string, unknown>)[k]));
    return out;
  }
  return value;
}

export type Mutation =
  | { op: 'replace'; value: unknown }
  | { op: 'delete' }
  | { op: 'addKey'; key: string; value: unknown }
  | { op: 'wrap' }
  | { op: 'repeat'; times: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: hostileValue.map((value) => ({ op: 'replace' as const, value })), weight: 8 },
  { arbitrary: fc.constant({ op: 'delete' as const }), weight: 2 },
  {
    arbitrary: fc
      .tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS, 'extra', ''), fc.string({ maxLength: 8 })), hostileValue)
      .map(([key, value]) => ({ op: 'addKey' as const, key, value })),
    weight: 2,
  },
  { arbitrary: fc.constant({ op: 'wrap' as const }), weight: 1 },
  { arbitrary: fc.constantFrom(2, 1001).map((times) => ({ op: 'repeat' as const, times })), weight: 1 },
);

/** Applies `m` at the `pick`-th node of `body` (pre-order; 0 is the body itself). */
export function mutate(body: unknown, pick: number, m: Mutation): unknown {
  const root = clone(body);
  const all = paths(root);
  const at = all[pick % all.length];
  const get = (p: Path): unknown =>
    p.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k as keyof typeof v], root);
  const current = get(at);
  let next: unknown;
  switch (m.op) {
    case 'replace':
      next = m.value;
      break;
    case 'wrap':
      next = [current];
      break;
    case 'repeat':
      next = Array.isArray(current) && current.length ? Array(m.times).fill(current[0]) : Array(m.times).fill(current);
      break;
    case 'addKey': {
      // Onto the nearest object (the node itself, else its parent).
      const target = [at, at.slice(0, -1), []]
        .map(get)
        .find((v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw));
      if (target) setKey(target as Record<string, unknown>, m.key, m.value);
      return root;
    }
    case 'delete': {
      if (at.length === 0) return undefined;
      const parent = get(at.slice(0, -1));
      const key = at[at.length - 1];
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as Record<string, unknown>)[key];
      return root;
    }
  }
  if (at.length === 0) return next;
  const parent = get(at.slice(0, -1)) as Record<string | number, unknown>;
  const key = at[at.length - 1];
  if (Array.isArray(parent)) parent[key as number] = next;
  else setKey(parent, String(key), next);
  return root;
}

// ---------------------------------------------------------------------------------------
// Valid bodies, per route (from shared/api/schemas.ts)

const F = FIXTURES;
const component = fc.double({ min: -10, max: 10, noNaN: true, noDefaultInfinity: true });
const vector = (dim: number = F.dim) => fc.array(component, { minLength: dim, maxLength: dim });
/** Mostly the collection's dimension; sometimes another (a 400 from the service, not the schema). */
const queryVector = fc.oneof({ arbitrary: vector(), weight: 9 }, { arbitrary: vector(3), weight: 1 });
const rowId = fc.oneof(
  fc.integer({ min: 0, max: F.rows - 1 }).map((i) => `r${i}`),
  fc.integer({ min: 0, max: 60 }),
  fc.string({ minLength: 1, maxLength: 12 }),
);
const metadata = fc.oneof(
  fc.record({ n: fc.integer({ min: 0, max: 300 }), tag: fc.constantFrom('a', 'b', 'c') }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
);
const filter = fc.oneof(
  fc.constantFrom(
    'n < 100',
    "tag == 'a'",
    "tag in ('a', 'b') and n >= 3",
    'not (n > 5)',
    'n <',
    "tag like 'a%'",
    'missing.field == 1',
  ),
  fc.constantFrom<unknown>(
    { n: { $lt: 100 } },
    { tag: 'a' },
    { $and: [{ n: { $gte: 1 } }, { tag: { $in: ['a', 'b'] } }] },
    { $or: [] },
    { n: { $bogus: 1 } },
  ),
);
/** hnsw parameters with the hnsw engine (or none named); `flat` alone (the schema refuses flat + params). */
const indexSpec = fc.oneof(
  fc.record(
    {
      engine: fc.constant('hnsw'),
      m: fc.integer({ min: 2, max: 128 }),
      efConstruction: fc.integer({ min: 8, max: 400 }),
      efSearch: fc.integer({ min: 1, max: 400 }),
    },
    { requiredKeys: [] },
  ),
  fc.constant({ engine: 'flat' }),
);
const version = fc.oneof(
  { arbitrary: fc.constant(1), weight: 4 },
  { arbitrary: fc.integer({ min: 1, max: 5 }), weight: 1 },
);
const reason = fc.string({ maxLength: 30 });
/** A recall threshold: mostly round fractions, sometimes any double in [0, 1] (fc.double favours tiny ones). */
const recall = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000), weight: 4 },
  fc.double({ min: 0, max: 1, noNaN: true }),
);
const freshName = fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/);
/** A collection, optionally pinned to a version or following a line (not both). */
const aliasTarget = fc.oneof(
  fc.record({ collection: fc.constantFrom(F.collection, F.other, 'nope') }),
  fc.record({ collection: fc.constantFrom(F.collection, F.other), version }),
  fc.record({ collection: fc.constantFrom(F.collection, F.other), line: fc.constantFrom('main', F.candidate, 'zz') }),
);
const base64 = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64'));
const sha256 = fc.oneof(
  fc.constantFrom('0'.repeat(64), 'f'.repeat(64)),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
);
const uploadId = fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constantFrom('nope', 'a\ud83d', '%2F..'));

/** Valid bodies by route; routes not listed get arbitrary bodies only. */
export const BODY_SPECS: Record<RouteKey, fc.Arbitrary<unknown>> = {
  'POST /v1/collections': fc.record(
    {
      name: fc.oneof({ arbitrary: freshName, weight: 4 }, fc.constantFrom(F.collection, F.alias)),
      dimension: fc.oneof({ arbitrary: fc.constant(F.dim), weight: 3 }, fc.integer({ min: 1, max: 64 })),
      metric: fc.constantFrom('cosine', 'l2', 'ip'),
      index: indexSpec,
      minRecall: recall,
      model: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 3 },
        fc.record({ name: fc.constantFrom(F.model, 'nomodel'), version }),
      ),
    },
    { requiredKeys: ['name', 'dimension', 'metric'] },
  ),
  'PATCH /v1/collections/:name': fc.record({ minRecall: fc.option(recall) }),
  'POST /v1/collections/:name/vectors': fc.record(
    {
      vectors: fc.array(fc.record({ id: rowId, values: vector(), metadata }, { requiredKeys: ['id', 'values'] }), {
        minLength: 1,
        maxLength: 5,
      }),
      modelVersion: fc.record({ name: fc.constantFrom(F.model, 'nomodel'), version }),
    },
    { requiredKeys: ['vectors'] },
  ),
  'POST /v1/collections/:name/vectors/get': fc.record({ ids: fc.array(rowId, { minLength: 1, maxLength: 5 }) }),
  'POST /v1/collections/:name/vectors/delete': fc.oneof(
    fc.record({ ids: fc.array(rowId, { minLength: 1, maxLength: 3 }) }),
    fc.record({ filter }),
  ),
  'POST /v1/collections/:name/search': fc
    .record(
      {
        vector: queryVector,
        vectors: fc.array(queryVector, { minLength: 1, maxLength: 3 }),
        k: fc.integer({ min: 1, max: 1000 }),
        filter,
        ef: fc.integer({ min: 1, max: 4096 }),
        consistency: fc.constantFrom('strong', 'eventual'),
        include: fc.subarray(['metadata', 'values']),
        stickyKey: fc.string({ minLength: 1, maxLength: 20 }),
      },
      { requiredKeys: [] },
    )
    .map((b) => {
      // Exactly one of vector / vectors, as the schema wants (the mutation may then break it).
      const out: Record<string, unknown> = { ...b };
      if ('vector' in out && 'vectors' in out) delete out.vectors;
      if (!('vector' in out) && !('vectors' in out)) out.vector = [0.1, 0.2, 0.3, 0.4];
      return out;
    }),
  'POST /v1/collections/:name/index': fc.record(
    { index: indexSpec, candidate: fc.constantFrom(F.candidate, 'c2', 'fresh-line', 'main') },
    { requiredKeys: [] },
  ),
  'POST /v1/collections/:name/candidates/:candidate/promote': fc.record(
    { reason, force: fc.boolean() },
    { requiredKeys: [] },
  ),
  'POST /v1/collections/:name/imports': fc.record({
    uri: fc.constantFrom(
      `s3://shoal-fuzz/${F.importKey}`,
      's3://shoal-fuzz/imports/fz/missing.csv',
      's3://shoal-fuzz/imports/fz/rows.txt',
      's3://other-bucket/rows.jsonl',
    ),
  }),
  'POST /v1/collections/:name/versions/:v/evaluate': fc.record(
    {
      queries: fc.array(vector(), { minLength: 1, maxLength: 3 }),
      sample: fc.integer({ min: 1, max: 50 }),
      k: fc.integer({ min: 1, max: 100 }),
      ef: fc.integer({ min: 1, max: 4096 }),
    },
    { requiredKeys: [] },
  ),
  'POST /v1/collections/:name/versions/:v/tune': fc.record(
    {
      targetRecall: fc.double({ min: 0.01, max: 1, noNaN: true }),
      k: fc.integer({ min: 1, max: 20 }),
      sample: fc.integer({ min: 20, max: 50 }),
      graph: fc.record(
        {
          sample: fc.integer({ min: 100, max: 300 }),
          candidate: fc.oneof(fc.boolean(), fc.constantFrom('g1', 'main')),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['targetRecall'] },
  ),
  'PUT /v1/aliases/:alias': fc.record(
    {
      collection: fc.constantFrom(F.collection, F.other, 'nope'),
      version,
      expectedRevision: fc.integer({ min: 0, max: 5 }),
      reason,
      force: fc.boolean(),
    },
    { requiredKeys: ['collection'] },
  ),
  'POST /v1/aliases/:alias/rollback': fc.record(
    { reason, expectedRevision: fc.integer({ min: 1, max: 5 }) },
    { requiredKeys: [] },
  ),
  'POST /v1/aliases/:alias/experiment': fc.record(
    {
      challenger: aliasTarget,
      mode: fc.constantFrom('split', 'shadow'),
      weight: fc.integer({ min: 1, max: 99 }),
      overlapSample: fc.double({ min: 0, max: 1, noNaN: true }),
      tau2: fc.double({ min: 1e-6, max: 0.25, noNaN: true }),
      guardrails: fc.record(
        {
          maxErrorRateDelta: fc.double({ min: 0, max: 1, noNaN: true }),
          maxP95Ratio: fc.double({ min: 0.1, max: 1000, noNaN: true }),
          minSamples: fc.integer({ min: 1, max: 1000 }),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['challenger', 'mode'] },
  ),
  'POST /v1/aliases/:alias/experiment/promote': fc.record({ reason, force: fc.boolean() }, { requiredKeys: [] }),
  'POST /v1/aliases/:alias/experiment/abort': fc.record({ reason }, { requiredKeys: [] }),
  'POST /v1/keys': fc.record(
    {
      name: fc.string({ minLength: 1, maxLength: 40 }),
      role: fc.constantFrom('read', 'write', 'admin'),
      collections: fc.array(fc.constantFrom(F.collection, F.other, 'other'), { minLength: 1, maxLength: 3 }),
      expiresAt: fc.constantFrom('2099-01-01T00:00:00Z', '2000-01-01T00:00:00+02:00'),
      rateLimit: fc.record({ perSecond: fc.double({ min: 0.5, max: 1000, noNaN: true }) }),
    },
    { requiredKeys: ['name', 'role'] },
  ),
  'POST /v1/feedback': fc.record({
    queryId: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.constant('q-1')),
    id: rowId,
    event: fc.constantFrom('click', 'convert'),
  }),
  'POST /v1/models/:model/versions': fc.record(
    {
      dimension: fc.oneof(fc.constant(F.dim), fc.integer({ min: 1, max: 4096 })),
      metric: fc.constantFrom('cosine', 'l2', 'ip'),
      framework: fc.string({ maxLength: 20 }),
      description: fc.string({ maxLength: 40 }),
      params: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
      metrics: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), component, { maxKeys: 5 }),
      tags: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 10 }), { maxKeys: 5 }),
      artifact: base64,
    },
    { requiredKeys: ['dimension', 'metric'] },
  ),
  'PUT /v1/models/:model/versions/:v/artifact': fc.record({ artifact: base64 }),
  'POST /v1/models/:model/versions/:v/commit': fc.record(
    {
      sha256,
      uploadId,
      parts: fc.array(
        fc.record({
          partNumber: fc.integer({ min: 1, max: 10_000 }),
          etag: fc.string({ minLength: 1, maxLength: 34 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    },
    { requiredKeys: ['sha256'] },
  ),
  'POST /v1/models/:model/versions/:v/upload': fc.record(
    {
      parts: fc.integer({ min: 1, max: 5 }),
      firstPart: fc.integer({ min: 1, max: 10_000 }),
      uploadId,
      expiresIn: fc.integer({ min: 60, max: 43_200 }),
    },
    { requiredKeys: [] },
  ),
  'POST /v1/models/:model/versions/:v/upload/abort': fc.record({ uploadId }),
  'PUT /v1/models/:model/aliases/:alias': fc.record(
    { version, expectedRevision: fc.integer({ min: 0, max: 5 }), reason },
    { requiredKeys: ['version'] },
  ),
};

/** Query strings the routes read; other routes get arbitrary ones (which they must ignore). */
export const QUERY_SPECS: Record<RouteKey, fc.Arbitrary<string>> = {
  'DELETE /v1/aliases/:alias': fc
    .option(fc.integer({ min: 0, max: 5 }))
    .map((r) => (r === null ? '' : `expectedRevision=${r}`)),
  'GET /v1/models/:model/compare': fc.tuple(version, version).map(([a, b]) => `a=${a}&b=${b}`),
};

// ---------------------------------------------------------------------------------------
// Path parameters

const hostileSegment = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2E%2E%2F',
    '%2F',
    'a%2Fb',
    '%',
    '%zz',
    '%00',
    '%0A',
    '%C0%AF',
    '%ED%A0%80',
    '%F0%9F%98%80',
    '%E2%80%AE',
    'a%20b',
    'a+b',
    '-a',
    '_a',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'NaN',
    '0',
    '-1',
    '1.5',
    '1e3',
    '01',
    '9007199254740993',
    '99999999999999999999',
    '0x1',
    'main',
    '%6D%61%69%6E',
    'f%7Az',
  ),
  fc.constantFrom(63, 64, 65, 300, 10_000).map((n) => 'a'.repeat(n)),
  fc.webSegment(),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).map((s) => encodeURIComponent(s)),
);

/** Values for each `:param` of a route template, weighted toward the fixtures. */
const PARAMS: Record<string, fc.Arbitrary<string>> = {
  name: fc.oneof(
    { arbitrary: fc.constant(F.collection), weight: 8 },
    { arbitrary: fc.constantFrom(F.other, F.alias, 'nope'), weight: 3 },
  ),
  alias: fc.oneof(
    { arbitrary: fc.constant(F.alias), weight: 6 },
    { arbitrary: fc.constantFrom('fb', F.collection, F.modelAlias, 'nope'), weight: 3 },
  ),
  model: fc.oneof(
    { arbitrary: fc.constant(F.model), weight: 6 },
    { arbitrary: fc.constantFrom('fm2', 'nope'), weight: 2 },
  ),
  v: fc.oneof({ arbitrary: fc.constant('1'), weight: 6 }, { arbitrary: fc.constantFrom('2', '3', '1000'), weight: 2 }),
  candidate: fc.oneof(
    { arbitrary: fc.constant(F.candidate), weight: 4 },
    { arbitrary: fc.constantFrom('main', 'c2', 'nope'), weight: 2 },
  ),
  jobId: fc.oneof(
    fc.constantFrom('0123456789abcdef01234567', 'nope'),
    fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 24, maxLength: 24 }),
  ),
};

/** A request as the router receives it (shared/api/router.ts `ApiRequest`), plus the route it aims at. */
export interface FuzzCase {
  /** The route template this case was generated for (`METHOD /path`), for the summary. */
  route: RouteKey;
  /** What kind of hostility: valid, near-valid, arbitrary body, hostile path, query, transport. */
  kind: 'valid' | 'near-valid' | 'arbitrary-body' | 'hostile-path' | 'hostile-query' | 'transport';
  method: string;
  path: string;
  query?: string;
  headers: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
}

// ---------------------------------------------------------------------------------------
// Whole requests

const AUTH = `Bearer ${F.apiKey}`;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** 7 MB of JSON: over the 6 MB API Gateway limit. */
const OVERSIZED = `{"vectors":"${'a'.repeat(7 * 2 ** 20)}"}`;

const arbitraryBody: fc.Arbitrary<string | undefined> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 4 }).map(encode), weight: 4 },
  { arbitrary: hostileValue.map(encode), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
  {
    arbitrary: fc.constantFrom<string | undefined>(
      undefined,
      '',
      '   ',
      '{',
      '\ufeff{}',
      'null',
      '[]',
      '"x"',
      '0',
      '{"a":1}{',
      '{"vectors":[{"id":"a","values":[1,2,3,4]}],}',
      OVERSIZED,
    ),
    weight: 2,
  },
);

const hostileQuery = fc.oneof(
  fc.webQueryParameters(),
  fc.constantFrom(
    'expectedRevision=-1',
    'expectedRevision=1e3',
    'expectedRevision=',
    'expectedRevision=0',
    'expectedRevision=9007199254740993',
    'expectedRevision=%zz',
    'a=&b=',
    'a=0&b=-1',
    'a=1&b=99999999999999999999',
    'a=%zz&b=1',
    '%',
    '&&&=',
    'a=1&a=2&b=1',
    '__proto__=1&constructor=2',
    `x=${'a'.repeat(10_000)}`,
  ),
);

interface Transport {
  method?: (m: string, allowed: string[]) => string;
  authorization?: string | undefined;
  dropAuth?: boolean;
  base64?: 'valid' | 'garbage';
  path?: (p: string) => string;
}

const transport: fc.Arbitrary<Transport> = fc.oneof(
  fc.constantFrom<Transport>(
    { method: (m) => m.toLowerCase() },
    { method: () => 'HEAD' },
    { method: () => 'OPTIONS' },
    { method: () => 'PROPFIND' },
    { method: (_m, allowed) => ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].find((x) => !allowed.includes(x)) ?? 'TRACE' },
    { dropAuth: true },
    { authorization: 'Bearer' },
    { authorization: 'Bearer wrong-key' },
    { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    { authorization: `Bearer ${'k'.repeat(600)}` },
    { authorization: `bearer   ${F.apiKey}  ` },
    { authorization: `Bearer ${F.apiKey} extra` },
    { base64: 'valid' },
    { base64: 'garbage' },
    { path: (p) => `${p}/` },
    { path: (p) => p.replace('/v1/', '/v1//') },
    { path: (p) => `${p}?x=1&y=%zz` },
    { path: (p) => p.slice(1) },
    { path: (p) => p.toUpperCase() },
    { path: (p) => `${p}/extra` },
    { path: (p) => p.replace(/\/[^/]*$/, '/%2e%2e') },
  ),
);

function fillPath(template: string, params: Record<string, string>): string {
  return template.replace(/:([A-Za-z]+)/g, (_m, p: string) => params[p] ?? p);
}

function paramNames(template: string): string[] {
  return [...template.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]);
}

/** Every request the fuzzer sends for one route and method. */
function routeCase(route: RouteInfo, method: string): fc.Arbitrary<FuzzCase> {
  const key = routeKey(method, route.path);
  const names = paramNames(route.path);
  const params = fc.record(Object.fromEntries(names.map((n) => [n, PARAMS[n] ?? hostileSegment])));
  const spec = BODY_SPECS[key];
  const hasBody = BODY_METHODS.has(method);
  const validBody: fc.Arbitrary<unknown> = spec ?? (hasBody ? fc.constant({}) : fc.constant(undefined));
  const validQuery = QUERY_SPECS[key] ?? fc.constant('');
  const headers = (authorization: string | undefined = AUTH) => ({
    authorization,
    'content-type': 'application/json',
  });
  const make = (
    kind: FuzzCase['kind'],
    p: Record<string, string>,
    body: string | undefined,
    query: string,
  ): FuzzCase => ({
    route: key,
    kind,
    method,
    path: fillPath(route.path, p),
    query,
    headers: headers(),
    ...(body !== undefined ? { body } : {}),
  });
  const encodeBody = (b: unknown) => (b === undefined ? undefined : encode(b));

  const valid = fc.tuple(params, validBody, validQuery).map(([p, b, q]) => make('valid', p, encodeBody(b), q));
  const nearValid = fc
    .tuple(params, validBody, fc.nat(), mutation, validQuery)
    .map(([p, b, pick, m, q]) => make('near-valid', p, encodeBody(mutate(b ?? {}, pick, m)), q));
  const arbitrary = fc.tuple(params, arbitraryBody, validQuery).map(([p, b, q]) => make('arbitrary-body', p, b, q));
  const hostilePath = fc
    .tuple(
      params,
      names.length ? fc.constantFrom(...names) : fc.constant(undefined),
      hostileSegment,
      validBody,
      validQuery,
    )
    .map(([p, which, seg, b, q]) => {
      // Routes without parameters get a hostile extra segment instead.
      if (which === undefined) return { ...make('hostile-path', p, encodeBody(b), q), path: `${route.path}/${seg}` };
      return make('hostile-path', { ...p, [which]: seg }, encodeBody(b), q);
    });
  const query = fc
    .tuple(params, validBody, hostileQuery)
    .map(([p, b, q]) => make('hostile-query', p, encodeBody(b), q));
  const odd = fc.tuple(params, validBody, validQuery, transport).map(([p, b, q, t]) => {
    const c = make('transport', p, encodeBody(b), q);
    if (t.method) c.method = t.method(method, route.methods);
    if (t.dropAuth) c.headers = { 'content-type': 'application/json' };
    if (t.authorization !== undefined) c.headers = headers(t.authorization);
    if (t.path) c.path = t.path(c.path);
    if (t.base64 === 'valid') {
      c.body = Buffer.from(c.body ?? '{}', 'utf8').toString('base64');
      c.isBase64Encoded = true;
    } else if (t.base64 === 'garbage') {
      c.body = '%%%not base64***';
      c.isBase64Encoded = true;
    }
    return c;
  });
  return fc.oneof(
    { arbitrary: valid, weight: 15 },
    { arbitrary: spec ? nearValid : arbitrary, weight: 45 },
    { arbitrary: arbitrary, weight: 15 },
    { arbitrary: hostilePath, weight: 15 },
    { arbitrary: query, weight: 5 },
    { arbitrary: odd, weight: 5 },
  );
}

/** Every route and method of the router. */
export function routeMethods(routes: RouteInfo[] = routerRoutes()): Array<{ route: RouteInfo; method: string }> {
  return routes.flatMap((route) => route.methods.map((method) => ({ route, method })));
}

/**
 * One round: a request for every route and method, in a random order. Rounds rather than one
 * request per run, so every route gets the same share of cases whatever the seed, and the order
 * still mixes (a delete before a search, an upsert before a build …).
 */
export function roundArbitrary(routes: RouteInfo[] = routerRoutes()): fc.Arbitrary<FuzzCase[]> {
  const pairs = routeMethods(routes).map(({ route, method }) => routeCase(route, method));
  const order = pairs.map((_, i) => i);
  return fc
    .tuple(fc.tuple(...pairs), fc.shuffledSubarray(order, { minLength: order.length, maxLength: order.length }))
    .map(([cases, perm]) => perm.map((i) => cases[i]));
}
