/**
 * Request bodies of the HTTP API v1: zod schemas that validate the JSON and convert it
 * straight into the `ShoalService` input shapes (string ids, Float32Array vectors,
 * parsed filter AST). `parseBody` turns the first zod issue into a `ValidationError`
 * whose `field` is a JSON path (`vectors[3].values[7]`) and whose message names the rule.
 * The limits and the id / vector / metadata validators are shared with the import formats
 * (`shared/validation.ts`).
 */
import { z } from 'zod';
import type { CreateKeyInput } from '../auth/keys.js';
import { ROLES } from '../auth/policy.js';
import { ValidationError } from '../errors.js';
import type { FilterNode } from '../filter/ast.js';
import { parseFilter } from '../filter/index.js';
import { LINE_NAME } from '../indexing/lines.js';
import type { CreateCollectionInput, InputRow, ListVectorsInput, SearchInput, VectorInput } from '../service.js';
import type { IndexSpec } from '../service-types.js';
import {
  LIMITS,
  describe,
  fail,
  hasControlCharacter,
  hasLoneSurrogate,
  idSchema,
  metadataSchema,
  rawInputSchema,
  valuesSchema,
  type Ctx,
} from '../validation.js';

// ---------------------------------------------------------------------------------------
// Paths and messages
// ---------------------------------------------------------------------------------------

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `["vectors", 3, "values", 7]` → `vectors[3].values[7]`; odd keys → `metadata["a b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      out += IDENT.test(key) ? (out === '' ? key : `.${key}`) : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a JSON object',
  array: 'an array',
  string: 'a string',
  number: 'a finite number',
  int: 'an integer',
  boolean: 'a boolean',
};

function limitWord(origin: string | undefined): string {
  if (origin === 'array' || origin === 'set') return 'items';
  if (origin === 'string') return 'characters';
  return '';
}

/** The rule an issue broke, in words (the field is prefixed by the caller). */
function ruleOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      // parseBody asks zod to report inputs, so an absent field reads as `undefined`.
      if (issue.input === undefined) return 'is required';
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describe(issue.input)}`;
    }
    case 'too_small': {
      const unit = limitWord(issue.origin);
      if (unit) return `must have at least ${issue.minimum} ${unit}`;
      return `must be ${issue.inclusive ? '≥' : '>'} ${issue.minimum}, got ${describe(issue.input)}`;
    }
    case 'too_big': {
      const unit = limitWord(issue.origin);
      if (unit) return `must have at most ${issue.maximum} ${unit}`;
      return `must be ${issue.inclusive ? '≤' : '<'} ${issue.maximum}, got ${describe(issue.input)}`;
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(issue.input)}`;
    case 'unrecognized_keys':
      return `is not a known field`;
    case 'invalid_format':
      return `must match ${issue.pattern ?? issue.format}`;
    default:
      return issue.message;
  }
}

/**
 * Validates `body` with `schema` and returns the converted output. The first issue becomes
 * a `ValidationError` (field = JSON path, message = "<field> <rule>"); all issues (up to
 * 10) are listed in `details.issues`.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    // An unknown key is reported at the key itself, not at its parent object.
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
    const field = formatPath(path);
    const rule = ruleOf(issue);
    const params = issue.code === 'custom' ? (issue.params as Record<string, unknown> | undefined) : undefined;
    return { field, rule, params };
  });
  const first = issues[0];
  const subject = first.field === '' ? 'request body' : first.field;
  throw new ValidationError(`${subject} ${first.rule}`, {
    field: first.field === '' ? undefined : first.field,
    details: {
      ...first.params,
      issues: issues.slice(0, 10).map((i) => ({ field: i.field || undefined, message: i.rule })),
    },
  });
}

// ---------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------

function intIn(min: number, max: number) {
  return z.number().int().min(min).max(max);
}

/** A filter: expression string or filter object, parsed into the AST (FilterSyntaxError on failure). */
function toFilter(input: unknown): FilterNode | undefined {
  return parseFilter(input);
}

/** Rejects repeated ids (after number → string normalisation), naming both positions. */
function checkUnique(ids: readonly string[], ctx: Ctx, pathOf: (i: number) => PropertyKey[]): boolean {
  const seen = new Map<string, number>();
  for (let i = 0; i < ids.length; i++) {
    const first = seen.get(ids[i]);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: pathOf(i),
        message:
          `repeats the id ${JSON.stringify(ids[i])} of ${formatPath(pathOf(first))} ` +
          '(ids must be unique within a request)',
        params: { id: ids[i], first: formatPath(pathOf(first)), duplicate: formatPath(pathOf(i)) },
        input: undefined,
      });
      return false;
    }
    seen.set(ids[i], i);
  }
  return true;
}

const idList = z.array(idSchema).min(1).max(LIMITS.maxBatch);

// ---------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------

const hnswParam = (name: keyof typeof LIMITS.hnsw) => intIn(LIMITS.hnsw[name][0], LIMITS.hnsw[name][1]).optional();
const ivfParam = (name: keyof typeof LIMITS.ivf) => intIn(LIMITS.ivf[name][0], LIMITS.ivf[name][1]).optional();

/**
 * Index settings, flat (`{engine, m, efConstruction, efSearch, partitions, nprobe}`); hnsw parameters
 * refuse the flat engine, the IVF ones (`partitions`, `nprobe`) apply to both.
 */
const indexSpecSchema = z
  .strictObject({
    engine: z.enum(['hnsw', 'flat']).optional(),
    m: hnswParam('m'),
    efConstruction: hnswParam('efConstruction'),
    efSearch: hnswParam('efSearch'),
    partitions: ivfParam('partitions'),
    nprobe: ivfParam('nprobe'),
  })
  .transform((body, ctx): Partial<IndexSpec> => {
    const { engine, partitions, nprobe, ...rest } = body;
    for (const [key, value] of Object.entries(rest)) {
      if (value !== undefined && engine === 'flat') return fail(ctx, 'applies only to the hnsw engine', [key]);
    }
    const index: Partial<IndexSpec> = {};
    if (engine !== undefined) index.engine = engine;
    if (rest.m !== undefined) index.m = rest.m;
    if (rest.efConstruction !== undefined) index.efConstruction = rest.efConstruction;
    if (rest.efSearch !== undefined) index.efSearch = rest.efSearch;
    if (partitions !== undefined) index.partitions = partitions;
    if (nprobe !== undefined) index.nprobe = nprobe;
    return index;
  });

/** `POST /v1/collections`. */
export const createCollectionSchema = z
  .strictObject({
    name: z.string().regex(LIMITS.collectionName, { error: `must match ${LIMITS.collectionName.source}` }),
    /** Required unless `embedding` gives it (the core checks; the document says so). */
    dimension: intIn(1, LIMITS.maxDimension).optional(),
    metric: z.enum(['cosine', 'l2', 'ip']).optional(),
    index: indexSpecSchema.optional(),
  })
  .transform((body): CreateCollectionInput => {
    const out: CreateCollectionInput = { name: body.name };
    if (body.dimension !== undefined) out.dimension = body.dimension;
    if (body.metric !== undefined) out.metric = body.metric;
    if (body.index) out.index = body.index;
    return out;
  });

/** `POST /v1/collections/{name}/index` (body optional): `index` starts a candidate line. */
export const buildRequestSchema = z.strictObject({
  index: indexSpecSchema.optional(),
  candidate: z.string().optional(),
});

const vectorSchema = z.strictObject({
  id: idSchema,
  values: valuesSchema,
  metadata: metadataSchema.optional(),
});

const inputRowSchema = z.strictObject({
  id: idSchema,
  inputs: rawInputSchema,
  metadata: metadataSchema.optional(),
});

/** `POST /v1/collections/{name}/vectors` with raw model inputs (a collection with an embedding function). */
export const upsertInputsSchema = z
  .strictObject({ vectors: z.array(inputRowSchema).min(1).max(LIMITS.maxBatch) })
  .transform((body, ctx): InputRow[] => {
    if (
      !checkUnique(
        body.vectors.map((v) => v.id),
        ctx,
        (i) => ['vectors', i, 'id'],
      )
    )
      return z.NEVER;
    return body.vectors.map((v) => ({
      id: v.id,
      input: v.inputs,
      ...(v.metadata !== undefined ? { metadata: v.metadata } : {}),
    }));
  });

/** The upsert body as the document describes it: each row carries `values` or (embedding functions) `inputs`. */
export const upsertDocumentSchema = z.strictObject({
  vectors: z
    .array(z.union([vectorSchema, inputRowSchema]))
    .min(1)
    .max(LIMITS.maxBatch),
});

/** `POST /v1/collections/{name}/vectors`. */
export const upsertSchema = z
  .strictObject({ vectors: z.array(vectorSchema).min(1).max(LIMITS.maxBatch) })
  .transform((body, ctx): VectorInput[] => {
    if (
      !checkUnique(
        body.vectors.map((v) => v.id),
        ctx,
        (i) => ['vectors', i, 'id'],
      )
    )
      return z.NEVER;
    return body.vectors.map((v) =>
      v.metadata === undefined ? { id: v.id, values: v.values } : { id: v.id, values: v.values, metadata: v.metadata },
    );
  });

/** `POST /v1/collections/{name}/vectors/get`. */
export const getVectorsSchema = z.strictObject({ ids: idList }).transform((body, ctx): string[] => {
  if (!checkUnique(body.ids, ctx, (i) => ['ids', i])) return z.NEVER;
  return body.ids;
});

/** `POST /v1/collections/{name}/vectors/delete`: exactly one of `ids` and `filter`. */
export const deleteVectorsSchema = z
  .strictObject({ ids: idList.optional(), filter: z.unknown().optional() })
  .transform((body, ctx): { ids: string[] } | { filter: FilterNode } => {
    const hasFilter = body.filter !== undefined && body.filter !== null;
    if ((body.ids === undefined) === !hasFilter) {
      return fail(
        ctx,
        body.ids === undefined
          ? 'must contain exactly one of "ids" and "filter"'
          : 'must not be combined with "filter" (send exactly one)',
        body.ids === undefined ? [] : ['ids'],
      );
    }
    if (body.ids !== undefined) {
      if (!checkUnique(body.ids, ctx, (i) => ['ids', i])) return z.NEVER;
      return { ids: body.ids };
    }
    return { filter: toFilter(body.filter) as FilterNode };
  });

/** The parsed search request: the service input plus whether the caller sent one `vector`. */
export interface ParsedSearch {
  input: SearchInput;
  /** True for `{vector}` (results are one list), false for `{vectors}` (a list per query). */
  single: boolean;
}

/** `POST /v1/collections/{name}/search`. */
export const searchSchema = z
  .strictObject({
    vector: valuesSchema.optional(),
    vectors: z.array(valuesSchema).min(1).max(LIMITS.maxQueries).optional(),
    /** Raw model input(s) for a collection with an embedding function: embedded, then searched. */
    input: rawInputSchema.optional(),
    inputs: z.array(rawInputSchema).min(1).max(LIMITS.maxQueries).optional(),
    k: intIn(1, LIMITS.maxK).default(LIMITS.defaultK),
    filter: z.unknown().optional(),
    ef: intIn(1, LIMITS.maxEf).optional(),
    nprobe: ivfParam('nprobe'),
    consistency: z.enum(['strong', 'eventual']).default('strong'),
    include: z
      .array(z.enum(['metadata', 'values']))
      .max(2)
      .optional(),
    stickyKey: z.string().min(1).max(256).optional(),
  })
  .transform((body, ctx): ParsedSearch => {
    const sent = (['vector', 'vectors', 'input', 'inputs'] as const).filter((key) => body[key] !== undefined);
    if (sent.length !== 1) {
      return fail(
        ctx,
        sent.length === 0
          ? 'must contain exactly one of "vector", "vectors", "input" and "inputs"'
          : `must not be combined with "${sent[0]}" (send exactly one)`,
        sent.length === 0 ? [] : [sent[1]!],
      );
    }
    const include = new Set(body.include ?? []);
    const raw = body.input !== undefined ? [body.input] : body.inputs;
    const input: SearchInput = {
      queries: body.vector !== undefined ? [body.vector] : (body.vectors ?? []),
      k: body.k,
      consistency: body.consistency,
      includeMetadata: include.has('metadata'),
      includeValues: include.has('values'),
    };
    const filter = toFilter(body.filter);
    if (filter !== undefined) input.filter = filter;
    if (body.ef !== undefined) input.ef = body.ef;
    if (body.nprobe !== undefined) input.nprobe = body.nprobe;
    if (body.stickyKey !== undefined) input.stickyKey = body.stickyKey;
    if (raw !== undefined) input.inputs = raw;
    return { input, single: body.vector !== undefined || body.input !== undefined };
  });

/** A collection name taken from the path (validated like the create body's `name`). */
export function parseCollectionName(name: string): string {
  if (!LIMITS.collectionName.test(name)) {
    throw new ValidationError(`collection name must match ${LIMITS.collectionName.source}`, { field: 'name' });
  }
  return name;
}

/** S3 bucket names (general purpose buckets) and the longest S3 key. */
const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const S3_MAX_KEY_BYTES = 1024;

/**
 * `POST /v1/collections/{name}/imports`: the object to import, and optional per-job limits (the
 * configured defaults otherwise; docs/imports.md): `maxRows` (rows read), `maxDurationSeconds`
 * (wall time from the first claim, 60 s–30 days), `maxRejectRatio` (0–1).
 */
export const createImportSchema = z.strictObject({
  uri: z
    .string()
    .max(2048)
    .refine((s) => !hasControlCharacter(s), { error: 'must not contain control characters' })
    .refine((s) => !hasLoneSurrogate(s), { error: 'must be valid Unicode (it contains a lone surrogate)' })
    .regex(/^s3:\/\/[^/]+\/.+$/, { error: 'must look like s3://bucket/key' })
    // S3's own rules, checked here so a request S3 would refuse is a 400 on `uri`, not a failed call.
    .refine((s) => S3_BUCKET.test(s.slice(5, s.indexOf('/', 5))), {
      error: 'must name a valid S3 bucket (3–63 characters: a–z, 0–9, dots and hyphens)',
    })
    .refine((s) => Buffer.byteLength(s.slice(s.indexOf('/', 5) + 1), 'utf8') <= S3_MAX_KEY_BYTES, {
      error: `must name a key of at most ${S3_MAX_KEY_BYTES} UTF-8 bytes (S3's limit)`,
    }),
  maxRows: intIn(1, 1e12).optional(),
  maxDurationSeconds: intIn(60, 30 * 86_400).optional(),
  maxRejectRatio: z.number().min(0).max(1).optional(),
});

// ---------------------------------------------------------------------------------------
// Lifecycle (aliases, evaluation, models)
// ---------------------------------------------------------------------------------------

const nameRule = z.string().regex(LIMITS.collectionName, { error: `must match ${LIMITS.collectionName.source}` });
const versionNumber = intIn(1, 9_999_999_999);
/** An index line name (`main`, or a candidate's). */
const lineRule = z.string().regex(LINE_NAME, { error: `must match ${LINE_NAME.source}` });
const reasonSchema = z.string().max(1000);
const modelRef = z.strictObject({ name: nameRule, version: versionNumber });

/** A name from the path (alias, model) — the same rule as collection names. */
export function parseName(value: string, field: string): string {
  if (!LIMITS.collectionName.test(value))
    throw new ValidationError(`${field} must match ${LIMITS.collectionName.source}`, { field });
  return value;
}

/** A version number from the path. */
export function parseVersion(value: string, field = 'version'): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new ValidationError(`${field} must be a positive integer, got ${describe(value)}`, { field });
  return n;
}

/** `PUT /v1/aliases/{alias}`. */
export const putAliasSchema = z
  .strictObject({
    collection: nameRule,
    version: versionNumber.optional(),
    line: lineRule.optional(),
    expectedRevision: intIn(0, Number.MAX_SAFE_INTEGER).optional(),
    reason: reasonSchema.optional(),
    force: z.boolean().optional(),
  })
  .superRefine((b, ctx) => {
    if (b.version !== undefined && b.line !== undefined)
      ctx.addIssue({ code: 'custom', message: 'pins a version or follows a line, not both', path: ['line'] });
  });

/** `POST /v1/aliases/{alias}/rollback` (body optional). */
export const rollbackAliasSchema = z.strictObject({
  reason: reasonSchema.optional(),
  expectedRevision: intIn(1, Number.MAX_SAFE_INTEGER).optional(),
});

/** `POST /v1/collections/{name}/candidates/{candidate}/promote` (body optional). */
export const promoteCandidateSchema = z.strictObject({
  reason: reasonSchema.optional(),
  force: z.boolean().optional(),
});

/**
 * A collection's `minRecall`: a fraction in [0, 1]. It is stored as a DynamoDB number, whose smallest
 * magnitude is 1e-130, so a denormal like 5e-324 would fail the write; no recall measured on ≤ 1000
 * hits per query is that fine-grained, hence 0 or at least 1e-9.
 */
const minRecallSchema = z
  .number()
  .min(0)
  .max(1)
  .refine((x) => x === 0 || x >= 1e-9, { error: 'must be 0 or at least 1e-9' });

/** `PATCH /v1/collections/{name}`. */
export const patchCollectionSchema = z.strictObject({ minRecall: minRecallSchema.nullable() });

/** Create-collection fields of the lifecycle, accepted next to the data-path ones. */
export const embeddingRequestSchema = z
  .strictObject({
    model: nameRule,
    version: versionNumber.optional(),
    alias: nameRule.optional(),
    input: z.string().min(1).max(256).optional(),
    output: z.string().min(1).max(256).optional(),
  })
  .refine((e) => (e.version === undefined) !== (e.alias === undefined), {
    error: 'must name exactly one of "version" and "alias"',
  });

export const createCollectionLifecycleSchema = z.object({
  minRecall: minRecallSchema.optional(),
  model: modelRef.optional(),
  embedding: embeddingRequestSchema.optional(),
});

/** `POST /v1/collections` with the lifecycle fields (`minRecall`, `model`). */
export function parseCreateCollection(body: unknown): CreateCollectionInput {
  const isObj = typeof body === 'object' && body !== null && !Array.isArray(body);
  if (!isObj) return parseBody(createCollectionSchema, body);
  const { minRecall, model, embedding, ...rest } = body as Record<string, unknown>;
  const out = parseBody(createCollectionSchema, rest);
  const extra = parseBody(createCollectionLifecycleSchema, { minRecall, model, embedding });
  if (extra.minRecall !== undefined) out.minRecall = extra.minRecall;
  if (extra.model !== undefined) out.model = extra.model;
  if (extra.embedding !== undefined) out.embedding = extra.embedding;
  return out;
}

/** `POST /v1/collections/{name}/vectors` with an optional `modelVersion` claim. */
export function parseUpsert(
  body: unknown,
): { vectors: VectorInput[]; modelVersion?: { name: string; version: number } } | { inputs: InputRow[] } {
  const isObj = typeof body === 'object' && body !== null && !Array.isArray(body);
  const rows = isObj ? (body as { vectors?: unknown }).vectors : undefined;
  const first: unknown = Array.isArray(rows) ? rows[0] : undefined;
  // Rows of raw inputs: the collection's embedding function names the model, so no claim goes with them.
  if (typeof first === 'object' && first !== null && 'inputs' in first) {
    return { inputs: parseBody(upsertInputsSchema, body) };
  }
  if (!isObj || !('modelVersion' in body)) return { vectors: parseBody(upsertSchema, body) };
  const { modelVersion, ...rest } = body as Record<string, unknown>;
  const vectors = parseBody(upsertSchema, rest);
  const claim = parseBody(z.strictObject({ modelVersion: modelRef }), { modelVersion });
  return { vectors, modelVersion: claim.modelVersion };
}

/** `POST /v1/collections/{name}/versions/{v}/evaluate`. */
export const evaluateSchema = z.strictObject({
  queries: z.array(valuesSchema).min(1).max(1000).optional(),
  sample: intIn(1, 1000).default(100),
  k: intIn(1, 100).default(10),
  ef: intIn(1, LIMITS.maxEf).optional(),
  nprobe: ivfParam('nprobe'),
});

/** `POST /v1/collections/{name}/versions/{v}/tune`. */
export const tuneSchema = z
  .strictObject({
    targetRecall: z.number().gt(0).max(1),
    k: intIn(1, 100).default(10),
    /**
     * Held-out queries sampled from the version (default 100): more give a less noisy recall estimate
     * (the standard error shrinks with √sample) and take proportionally more time.
     */
    sample: intIn(20, 2000).optional(),
    /**
     * The caller's own queries (20–2000), e.g. from its query log, instead of `sample`: sampled rows are
     * members of the index and overstate recall a little (docs/lifecycle.md); real queries do not.
     */
    queries: z.array(valuesSchema).min(20).max(2000).optional(),
    /** Run as a tune job on a build worker (15 min): 202 with the job (`GET …/tune-jobs/{jobId}`). */
    async: z.boolean().default(false),
    graph: z
      .strictObject({
        sample: intIn(100, 20_000).optional(),
        candidate: z.union([z.boolean(), z.string()]).optional(),
      })
      .optional(),
  })
  .superRefine((b, ctx) => {
    if (b.queries && b.sample !== undefined)
      ctx.addIssue({ code: 'custom', message: 'send `queries` or `sample`, not both', path: ['sample'] });
  });

const base64Artifact = z.string().transform((value, ctx): Uint8Array => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return fail(ctx, 'must be base64');
  return new Uint8Array(Buffer.from(value, 'base64'));
});

/**
 * A free-form JSON object (e.g. training parameters), bounded in serialized size so the item that
 * stores it stays well inside DynamoDB's 400 KB (the body's depth is bounded by the router).
 */
const freeFormObject = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (bytes > LIMITS.maxFreeFormBytes) {
    ctx.addIssue({
      code: 'custom',
      message: `is ${bytes} bytes as JSON; the limit is ${LIMITS.maxFreeFormBytes}`,
      params: { bytes, limit: LIMITS.maxFreeFormBytes },
    });
  }
});

/** A string-keyed map of at most LIMITS.maxMapEntries entries with keys of at most 128 characters. */
function boundedMap<T extends z.ZodType>(value: T) {
  return z.record(z.string().min(1).max(128), value).refine((m) => Object.keys(m).length <= LIMITS.maxMapEntries, {
    error: `must have at most ${LIMITS.maxMapEntries} entries`,
  });
}

/** `POST /v1/collections/{name}/migrations` (docs/models.md): re-embed into a new collection with another version. */
export const createMigrationSchema = z.strictObject({
  to: z
    .strictObject({ model: nameRule, version: versionNumber.optional(), alias: nameRule.optional() })
    .refine((t) => (t.version === undefined) !== (t.alias === undefined), {
      error: 'must name exactly one of "version" and "alias"',
    }),
  target: nameRule.optional(),
  labelField: z.string().min(1).max(256).optional(),
  k: intIn(1, 100).optional(),
  sample: intIn(1, 1000).optional(),
});

/** `POST /v1/models/{name}/versions`. */
export const registerModelSchema = z.strictObject({
  dimension: intIn(1, LIMITS.maxDimension),
  metric: z.enum(['cosine', 'l2', 'ip']),
  framework: z.string().max(200).optional(),
  /** `onnx`: validated at commit (it must load) and usable as an embedding function (docs/models.md). */
  format: z.literal('onnx').optional(),
  /** A text model's WordPiece tokenizer (docs/models.md); checked further at registration. */
  tokenizer: z
    .strictObject({
      type: z.literal('wordpiece'),
      vocab: z.array(z.string().min(1).max(100)).min(2).max(50_000),
      maxLength: intIn(1, 2048),
      lowercase: z.boolean().optional(),
      unknown: z.string().min(1).max(100).optional(),
      pad: z.string().min(1).max(100).optional(),
      cls: z.string().min(1).max(100).optional(),
      sep: z.string().min(1).max(100).optional(),
      continuation: z.string().max(10).optional(),
    })
    .optional(),
  description: z.string().max(4000).optional(),
  params: freeFormObject.optional(),
  metrics: boundedMap(z.number()).optional(),
  tags: boundedMap(z.string().max(256)).optional(),
  artifact: base64Artifact.optional(),
});

/** `PUT /v1/models/{name}/versions/{v}/artifact`. */
export const uploadArtifactSchema = z.strictObject({ artifact: base64Artifact });

/** An S3 multipart upload id: it goes into signed request URLs, so it must be encodable. */
const uploadIdSchema = z
  .string()
  .min(1)
  .max(1024)
  .refine((s) => !hasLoneSurrogate(s), { error: 'must be valid Unicode (it contains a lone surrogate)' });

/**
 * `POST /v1/models/{name}/versions/{v}/upload` (body optional): `{}` = one presigned PUT;
 * `parts` = presigned part URLs firstPart…firstPart+parts−1 of a new multipart upload, or of
 * `uploadId`. `expiresIn` in seconds (default 900). Bounds: shared/lifecycle/models.ts.
 */
export const modelUploadSchema = z.strictObject({
  parts: intIn(1, 1000).optional(),
  firstPart: intIn(1, 10_000).optional(),
  uploadId: uploadIdSchema.optional(),
  expiresIn: intIn(60, 12 * 3600).optional(),
});

/** `POST /v1/models/{name}/versions/{v}/upload/abort`. */
export const abortModelUploadSchema = z.strictObject({ uploadId: uploadIdSchema });

/** `POST /v1/models/{name}/versions/{v}/commit`; `uploadId` + `parts` complete a multipart upload first. */
export const commitModelSchema = z
  .strictObject({
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, { error: 'must be 64 hex digits' }),
    uploadId: uploadIdSchema.optional(),
    parts: z
      .array(z.strictObject({ partNumber: intIn(1, 10_000), etag: z.string().min(1).max(256) }))
      .min(1)
      .max(10_000)
      .optional(),
  })
  .transform(({ sha256, uploadId, parts }, ctx) => {
    if (uploadId === undefined && parts === undefined) return { sha256 };
    if (uploadId === undefined) return fail(ctx, 'is required with parts', ['uploadId']);
    if (parts === undefined)
      return fail(ctx, 'is required with uploadId (partNumber and etag of every part)', ['parts']);
    // S3 wants the parts in ascending order; accept any order, refuse a part number twice.
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    const dup = sorted.findIndex((p, i) => i > 0 && p.partNumber === sorted[i - 1].partNumber);
    if (dup >= 0) return fail(ctx, `lists part ${sorted[dup].partNumber} twice`, ['parts']);
    return { sha256, multipart: { uploadId, parts: sorted } };
  });

/** `PUT /v1/models/{name}/aliases/{alias}`. */
export const putModelAliasSchema = z.strictObject({
  version: versionNumber,
  expectedRevision: intIn(0, Number.MAX_SAFE_INTEGER).optional(),
  reason: reasonSchema.optional(),
});

const aliasTargetSchema = z
  .strictObject({ collection: nameRule, version: versionNumber.optional(), line: lineRule.optional() })
  .transform((t, ctx) => {
    if (t.version !== undefined && t.line !== undefined)
      return fail(ctx, 'pins a version or follows a line, not both', ['line']);
    return {
      collection: t.collection,
      ...(t.version !== undefined ? { version: t.version } : {}),
      ...(t.line !== undefined ? { line: t.line } : {}),
    };
  });

/** `POST /v1/aliases/{alias}/experiment`. */
export const startExperimentSchema = z
  .strictObject({
    challenger: aliasTargetSchema,
    mode: z.enum(['split', 'shadow']),
    weight: intIn(1, 99).optional(),
    overlapSample: z.number().min(0).max(1).optional(),
    // τ² of the always-valid test: ~ the squared effect size expected (1e-3 ≈ 3 points of rate).
    tau2: z.number().min(1e-6).max(0.25).optional(),
    guardrails: z
      .strictObject({
        maxErrorRateDelta: z.number().min(0).max(1).optional(),
        maxP95Ratio: z.number().gt(0).max(1000).optional(),
        minSamples: intIn(1, 1_000_000_000).optional(),
      })
      .optional(),
  })
  .transform((body, ctx) => {
    if (body.mode === 'shadow' && body.weight !== undefined) return fail(ctx, 'applies to split mode only', ['weight']);
    if (body.mode === 'shadow' && body.overlapSample !== undefined)
      return fail(ctx, 'applies to split mode only (shadow measures every request)', ['overlapSample']);
    if (body.mode === 'shadow' && body.tau2 !== undefined)
      return fail(ctx, 'applies to split mode only (shadow collects no feedback to test)', ['tau2']);
    const guardrails: { maxErrorRateDelta?: number; maxP95Ratio?: number; minSamples?: number } = {};
    for (const [k, v] of Object.entries(body.guardrails ?? {}))
      if (v !== undefined) guardrails[k as keyof typeof guardrails] = v;
    return {
      challenger: body.challenger,
      mode: body.mode,
      ...(body.weight !== undefined ? { weight: body.weight } : {}),
      ...(body.overlapSample !== undefined ? { overlapSample: body.overlapSample } : {}),
      ...(body.tau2 !== undefined ? { tau2: body.tau2 } : {}),
      guardrails,
    };
  });

/** `POST /v1/aliases/{alias}/experiment/promote` (body optional). */
export const promoteExperimentSchema = z.strictObject({
  reason: reasonSchema.optional(),
  force: z.boolean().optional(),
});

/** `POST /v1/aliases/{alias}/experiment/abort` (body optional). */
export const abortExperimentSchema = z.strictObject({ reason: reasonSchema.optional() });

/** `POST /v1/feedback`. */
export const feedbackSchema = z.strictObject({
  queryId: z.string().min(1).max(128),
  id: z.union([z.string().min(1).max(512), z.number().int().nonnegative()]).transform((v) => String(v)),
  event: z.enum(['click', 'convert']),
});

// ---------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------

/** Collections one key may be scoped to: enough for a team's set, small enough for the key item. */
const MAX_KEY_COLLECTIONS = 100;

/** `POST /v1/keys`. `rateLimit.burst` defaults to twice the rate (at least 1). */
export const createKeySchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(128)
      .refine((s) => !hasControlCharacter(s), { error: 'must not contain control characters' }),
    role: z.enum(ROLES),
    collections: z.array(nameRule).min(1).max(MAX_KEY_COLLECTIONS).optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    rateLimit: z
      .strictObject({ perSecond: z.number().gt(0).max(100_000), burst: intIn(1, 1_000_000).optional() })
      .optional(),
  })
  .transform(
    (body): CreateKeyInput => ({
      name: body.name,
      role: body.role,
      ...(body.collections ? { collections: body.collections } : {}),
      ...(body.expiresAt !== undefined ? { expiresAt: body.expiresAt } : {}),
      ...(body.rateLimit
        ? {
            rateLimit: {
              perSecond: body.rateLimit.perSecond,
              burst: body.rateLimit.burst ?? Math.max(1, Math.ceil(2 * body.rateLimit.perSecond)),
            },
          }
        : {}),
    }),
  );

// ---------------------------------------------------------------------------------------
// Listing, reject reports, import uploads, metadata patches
// ---------------------------------------------------------------------------------------

/** Items per page of the paged listings (vectors, rejects). */
export const PAGE_LIMIT = { default: 100, max: 1000 } as const;

/** `limit` of a paged listing's query string: 1–1000, default 100. */
function pageLimit(query: URLSearchParams): number {
  const raw = query.get('limit');
  if (raw === null) return PAGE_LIMIT.default;
  const n = Number(raw);
  if (!/^[0-9]{1,7}$/.test(raw) || n < 1 || n > PAGE_LIMIT.max) {
    throw new ValidationError(`limit must be an integer from 1 to ${PAGE_LIMIT.max}, got ${describe(raw)}`, {
      field: 'limit',
    });
  }
  return n;
}

/** `cursor` of a paged listing's query string, as received (the service decodes it). */
function pageCursor(query: URLSearchParams): string | undefined {
  const raw = query.get('cursor');
  if (raw === null) return undefined;
  if (raw === '' || raw.length > 2048) {
    throw new ValidationError('cursor must be the nextCursor of the previous page', { field: 'cursor' });
  }
  return raw;
}

/** `GET /v1/collections/{name}/vectors?limit=&cursor=&filter=&include=`. */
export function parseListVectorsQuery(query: URLSearchParams): ListVectorsInput {
  const include = new Set<string>();
  const rawInclude = query.get('include');
  for (const part of rawInclude === null || rawInclude === '' ? [] : rawInclude.split(',')) {
    const item = part.trim();
    if (item !== 'values' && item !== 'metadata') {
      throw new ValidationError(`include must list "values" and/or "metadata", got ${describe(item)}`, {
        field: 'include',
      });
    }
    include.add(item);
  }
  const rawFilter = query.get('filter');
  const filter = rawFilter === null ? undefined : toFilter(queryFilter(rawFilter));
  const cursor = pageCursor(query);
  return {
    limit: pageLimit(query),
    ...(cursor !== undefined ? { cursor } : {}),
    ...(filter !== undefined ? { filter } : {}),
    includeValues: include.has('values'),
    includeMetadata: include.has('metadata'),
  };
}

/**
 * A filter in a query string: an expression, or a filter object as JSON (no expression starts with `{`, so
 * the two never overlap) — the same two forms a search body takes.
 */
function queryFilter(raw: string): unknown {
  if (!raw.trimStart().startsWith('{')) return raw;
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ValidationError(
      `filter looks like a JSON filter object but is not valid JSON: ${(err as Error).message}`,
      {
        field: 'filter',
      },
    );
  }
}

/** `GET /v1/collections/{name}/imports/{jobId}/rejects?limit=&cursor=`. */
export function parseRejectsQuery(query: URLSearchParams): { limit: number; cursor?: string } {
  const cursor = pageCursor(query);
  return { limit: pageLimit(query), ...(cursor !== undefined ? { cursor } : {}) };
}

/** A vector id from the path (`PATCH …/vectors/{id}`), by the same rules as ids in bodies. */
export function parseVectorId(value: string): string {
  return parseBody(z.strictObject({ id: idSchema }), { id: value }).id;
}

/** `PATCH /v1/collections/{name}/vectors/{id}`: top-level keys to set; null removes one. */
export const patchVectorSchema = z.strictObject({ metadata: metadataSchema });

/** A MIME type as a `content-type` header carries it (`type/subtype`, parameters allowed). */
const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;\s*[^\s;=]+=[^\s;]+)*$/;

/** `POST /v1/collections/{name}/imports/uploads` (the filename's own rules are the import service's). */
export const importUploadSchema = z.strictObject({
  filename: z.string().min(1).max(255),
  contentType: z.string().max(255).regex(CONTENT_TYPE, { error: 'must be a MIME type such as text/csv' }).optional(),
});
