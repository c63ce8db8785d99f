/**
 * Response bodies of the HTTP API v1, as zod schemas: what each route of the route table (`routes.ts`)
 * answers, for the OpenAPI document (`openapi.ts`) and the tests that validate real responses against it.
 * They describe the service's return shapes (`shared/service.ts`, `shared/service-types.ts`,
 * `shared/import/job.ts`, `shared/auth/keys.ts`); nothing validates responses at run time.
 *
 * Objects are open (a client must tolerate fields added later); open-ended maps (metadata, engine
 * parameters, model params and tags) are records. The tests validate strictly: a field the service
 * returns that is not described here fails them (test/helpers/openapi-validate.ts).
 */
import { z } from 'zod';
import { ROLES } from '../auth/policy.js';

// ---------------------------------------------------------------------------------------
// Errors

/** Every stable error code and its HTTP status (docs/api.md lists them). */
export const ERROR_STATUS = {
  VALIDATION_ERROR: 400,
  FILTER_SYNTAX_ERROR: 400,
  INVALID_JSON: 400,
  MODEL_MISMATCH: 400,
  UNREADABLE_FILE: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  QUALITY_GATE: 409,
  OBJECT_CHANGED: 409,
  PAYLOAD_TOO_LARGE: 413,
  LIMIT_EXCEEDED: 413,
  ASYNC_REQUIRED: 422,
  RATE_LIMITED: 429,
  BACKPRESSURE: 429,
  INTERNAL: 500,
  CORRUPT_DATA: 500,
  UNSUPPORTED_FORMAT: 500,
  ENGINE_ERROR: 500,
  CONFIG_ERROR: 500,
  TAIL_BUDGET_EXCEEDED: 503,
  STORAGE_UNAVAILABLE: 503,
  SEARCH_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

/** `{"error": {code, message, field?, details?}}`, with `code` one of `codes` (any stable code by default). */
export function errorBodySchema(codes: readonly ErrorCode[] = ERROR_CODES) {
  return z.object({
    error: z.object({
      code: z.enum(codes as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      /** The JSON path of the offending field (`vectors[3].values[7]`), or a path parameter's name. */
      field: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  });
}

/**
 * The response schemas, built on first use: ~150 zod objects cost tens of milliseconds to construct, which
 * the api function's cold start should not pay for a document only `GET /v1/openapi.json` and the tests
 * read.
 */
function define() {
  const errorBody = errorBodySchema();

  // ---------------------------------------------------------------------------------------
  // Building blocks

  const int = () => z.number().int();
  const count = () => z.number().int().min(0);
  const isoTime = () => z.string();
  const metric = z.enum(['cosine', 'l2', 'ip']);
  const engine = z.enum(['hnsw', 'flat']);
  const jsonObject = z.record(z.string(), z.unknown());
  const modelRef = z.object({ name: z.string(), version: int() });

  const deleted = z.object({ deleted: z.literal(true) });

  /** Index settings, flat: the engine and its numeric parameters (`m`, `efConstruction`, `efSearch`, `seed`, …). */
  const indexSpec = z.object({ engine }).catchall(z.number());

  // ---------------------------------------------------------------------------------------
  // Health

  const liveness = z.object({ status: z.literal('ok'), version: z.string() });
  /** Local mode adds `local` (the embedded S3's endpoint and credentials). */
  const health = z.looseObject({ status: z.literal('ok'), version: z.string() });
  const openApiDocument = z.looseObject({ openapi: z.string(), info: jsonObject, paths: jsonObject });

  // ---------------------------------------------------------------------------------------
  // Collections and vectors

  const collectionStats = z.object({
    count: count(),
    indexed: count(),
    pending: count(),
    shards: count(),
    partitions: count().optional(),
    version: count(),
    watermark: count(),
    /** Present (false) when `count` is an upper bound: the tail's ids could not all be checked within 1 s. */
    countExact: z.literal(false).optional(),
  });

  const collection = z.object({
    name: z.string(),
    dimension: int(),
    metric,
    index: indexSpec,
    createdAt: isoTime(),
    stats: collectionStats.optional(),
    minRecall: z.number().optional(),
    model: modelRef.optional(),
    /** The embedding function: the ONNX model version Shoal runs on raw inputs (docs/models.md). */
    embedding: z
      .object({
        model: z.string(),
        version: int(),
        alias: z.string().optional(),
        input: z.string(),
        output: z.string(),
        inputLength: int(),
        /** Text models: raw inputs are strings, tokenized into `input` (and `mask`). */
        text: z.object({ mask: z.string().optional() }).optional(),
      })
      .optional(),
    /** Set when `{name}` was an alias. */
    alias: z.object({ name: z.string(), version: int().optional(), revision: int() }).optional(),
    indexLine: z.string().optional(),
    candidates: z.array(z.string()).optional(),
  });

  const collectionList = z.object({ collections: z.array(collection) });

  const metadata = z.record(z.string(), z.unknown());

  const upserted = z.object({ upserted: count() });
  const vectorList = z.object({
    vectors: z.array(
      z.object({ id: z.string(), values: z.array(z.number()).optional(), metadata: metadata.optional() }),
    ),
  });
  const vectorsDeleted = z.object({ deleted: count() });
  /** `GET …/vectors`: a page of the listing; `nextCursor` is null only at its end. */
  const vectorPage = z.object({
    vectors: z.array(
      z.object({ id: z.string(), values: z.array(z.number()).optional(), metadata: metadata.optional() }),
    ),
    nextCursor: z.string().nullable(),
  });

  const hit = z.object({
    id: z.string(),
    score: z.number(),
    metadata: metadata.optional(),
    values: z.array(z.number()).optional(),
  });

  /** `results` is one list for `vector`, a list per query for `vectors`. */
  const searchResult = z.object({
    results: z.union([z.array(hit), z.array(z.array(hit))]),
    servedBy: z.object({
      collection: z.string(),
      version: count(),
      line: z.string().optional(),
      alias: z.string().optional(),
      arm: z.enum(['champion', 'challenger']).optional(),
      experiment: z.string().optional(),
    }),
    /** Set on every search through an alias; `POST /v1/feedback` refers to it. */
    queryId: z.string().optional(),
    stats: z.object({
      shardsSearched: count(),
      shardsTotal: count(),
      partitionsProbed: z.number().optional(),
      partitionsTotal: count().optional(),
      nprobe: count().optional(),
    }),
  });

  // ---------------------------------------------------------------------------------------
  // Index versions and lines

  const latency = z.object({ p50: z.number(), p95: z.number() });

  const lineView = z.object({
    line: z.string(),
    serving: z.boolean(),
    index: indexSpec,
    createdAt: isoTime().optional(),
    createdBy: z.string().optional(),
    head: z
      .object({
        version: count(),
        watermark: count(),
        liveRows: count(),
        shards: count(),
        bytes: count(),
        createdAt: isoTime(),
        parent: count(),
      })
      .nullable(),
    lagSeq: count(),
    evaluation: z
      .object({ version: count(), recall: z.number(), k: int(), ef: int().optional(), latencyMs: latency })
      .optional(),
  });

  const buildFields = {
    version: count(),
    built: z.boolean(),
    queued: z.boolean().optional(),
    kind: z.enum(['initial', 'delta', 'compaction', 'deletes', 'candidate']).optional(),
    shards: count(),
    watermark: count(),
    reason: z.string().optional(),
    line: z.string().optional(),
  };

  const buildOutput = z.object({
    ...buildFields,
    /** The candidate line this request started (`index` settings given). */
    candidate: lineView.optional(),
    candidates: z.array(z.object(buildFields)).optional(),
  });

  const linePromotion = z.object({
    rev: int(),
    generation: int(),
    from: z.string(),
    to: z.string(),
    version: count(),
    at: isoTime(),
    by: z.string().optional(),
    reason: z.string().optional(),
    forced: z.boolean(),
  });

  const lineList = z.object({
    serving: lineView,
    candidates: z.array(lineView),
    /** The last 20 switches of the serving line, newest first. */
    promotions: z.array(linePromotion),
  });

  const promoteCandidateResult = z.object({
    collection: z.string(),
    serving: lineView,
    previous: z.string(),
    forced: z.boolean(),
    reason: z.string().optional(),
  });

  const graphTrial = z.object({
    m: int(),
    efConstruction: int(),
    ef: int(),
    recall: z.number(),
    p50: z.number(),
    p95: z.number(),
    buildMs: z.number(),
    bytesPerVector: z.number(),
    meetsTarget: z.boolean(),
    searchCost: z.number(),
    pareto: z.boolean(),
  });

  const evaluation = z.object({
    collection: z.string(),
    generation: int(),
    version: count(),
    k: int(),
    ef: int().optional(),
    nprobe: int().optional(),
    queries: count(),
    source: z.enum(['sample', 'supplied']),
    recall: z.number(),
    latencyMs: z.object({ p50: z.number(), p95: z.number(), mean: z.number() }),
    rows: count(),
    evaluatedAt: isoTime(),
    by: z.string().optional(),
    tuning: z
      .object({
        targetRecall: z.number(),
        k: int(),
        chosenEf: int().optional(),
        chosenNprobe: int().optional(),
        table: z.array(
          z.object({ ef: int(), nprobe: int().optional(), recall: z.number(), p50: z.number(), p95: z.number() }),
        ),
        graph: z
          .object({
            sample: count(),
            queries: count(),
            table: z.array(graphTrial),
            recommendation: z.object({ m: int(), efConstruction: int(), efSearch: int() }),
            candidate: z.string().optional(),
          })
          .optional(),
      })
      .optional(),
  });

  /** An asynchronous tune (`POST …/tune {async: true}`), run by the index-builder function. */
  const tuneJob = z.object({
    id: z.string(),
    collection: z.string(),
    version: count(),
    status: z.enum(['queued', 'running', 'succeeded', 'failed']),
    createdAt: isoTime(),
    updatedAt: isoTime(),
    /** Rows of the sweep table measured so far; `of`: the most the sweep can measure (it stops at the target). */
    progress: z.object({ measured: count(), of: count().optional() }),
    input: z.object({
      targetRecall: z.number(),
      k: int(),
      /** Queries drawn from the version, or (with `queries: true`) how many the caller supplied. */
      sample: int(),
      queries: z.boolean().optional(),
      graph: z
        .object({ sample: int().optional(), candidate: z.union([z.boolean(), z.string()]).optional() })
        .optional(),
    }),
    by: z.string().optional(),
    evaluation: evaluation.optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  });

  const shardRef = z.object({
    id: z.string(),
    key: z.string(),
    bytes: count(),
    count: count(),
    live: count(),
    engine,
    sha256: z.string(),
    minSeq: count(),
    maxSeq: count(),
    deletes: z.object({ key: z.string(), count: count(), sha256: z.string() }).optional(),
    partition: count().optional(),
  });

  /** An index version's manifest (and its evaluation, when one was run). */
  const manifest = z.object({
    collection: z.string(),
    generation: int(),
    version: count(),
    line: z.string().optional(),
    parent: count(),
    watermark: count(),
    engine,
    params: z.record(z.string(), z.number()),
    shards: z.array(shardRef),
    partitions: z
      .object({
        count: count(),
        dim: int(),
        key: z.string(),
        sha256: z.string(),
        fairShare: z.number(),
        layoutRows: count().optional(),
      })
      .optional(),
    createdAt: isoTime(),
    codeVersion: z.string(),
    model: modelRef.optional(),
    stats: z.object({
      rows: count(),
      liveRows: count(),
      bytes: count(),
      buildMs: z.number(),
      kind: z.enum(['initial', 'delta', 'compaction', 'deletes', 'candidate']),
    }),
    evaluation: evaluation.optional(),
  });

  const versionList = z.object({ versions: z.array(manifest) });

  // ---------------------------------------------------------------------------------------
  // Imports

  const importLimits = z.object({
    maxRows: count(),
    maxDurationSeconds: count(),
    maxRejectRatio: z.number(),
    rejectRatioMinRows: count(),
  });

  const importJob = z.object({
    jobId: z.string(),
    collection: z.string(),
    uri: z.string(),
    format: z.enum(['jsonl', 'jsonl.gz', 'csv', 'csv.gz', 'parquet', 'npy']).nullable(),
    state: z.enum(['queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled']),
    rowsRead: count(),
    rowsWritten: count(),
    rowsRejected: count(),
    bytesRead: count(),
    bytesTotal: count(),
    percent: z.number(),
    createdAt: isoTime(),
    startedAt: isoTime().nullable(),
    finishedAt: isoTime().nullable(),
    error: z.string().nullable(),
    reason: z
      .enum([
        'CANCELLED',
        'ROW_LIMIT',
        'TIME_LIMIT',
        'REJECT_RATIO',
        'ALL_REJECTED',
        'UNSUPPORTED_FILE',
        'UNREADABLE_FILE',
        'OBJECT_CHANGED',
        'COLLECTION_GONE',
        'GAVE_UP',
      ])
      .nullable(),
    report: z.string().nullable(),
    limits: importLimits,
    requeues: count(),
  });

  const importJobList = z.object({ jobs: z.array(importJob) });

  const modelVersionRef = z.object({ model: z.string(), version: int() });
  /** A re-embedding migration (docs/models.md). */
  const migration = z.object({
    id: z.string(),
    source: z.string(),
    target: z.string(),
    from: modelVersionRef,
    to: modelVersionRef,
    state: z.enum(['queued', 'running', 'evaluating', 'done', 'failed', 'cancelled']),
    phase: z.enum(['copy', 'catch-up', 'evaluate', 'finished']),
    settings: z.object({ k: int(), sample: int(), labelField: z.string().optional(), seed: int() }),
    createdAt: isoTime(),
    updatedAt: isoTime(),
    createdBy: z.string(),
    progress: z.object({ rowsRead: count(), embedded: count(), rejected: count(), deleted: count(), steps: count() }),
    rejects: z.array(z.object({ id: z.string(), reason: z.string() })),
    report: z
      .object({
        k: int(),
        queries: count(),
        overlapAtK: z.number(),
        labelAgreement: z
          .object({ field: z.string(), rows: count(), source: z.number(), target: z.number() })
          .optional(),
      })
      .optional(),
    error: z.string().optional(),
  });
  const migrationResult = z.object({ migration });
  const migrationList = z.object({ migrations: z.array(migration) });
  /** `GET …/imports/{jobId}/rejects`: entries as the report stores them (line for text formats, row else). */
  const rejectPage = z.object({
    rejects: z.array(
      z.object({
        line: int().optional(),
        row: int().optional(),
        id: z.string().optional(),
        code: z.string(),
        reason: z.string(),
      }),
    ),
    nextCursor: z.string().nullable(),
    rowsRejected: count(),
    reported: count(),
  });
  /** `POST …/imports/uploads`: a presigned PUT into the collection's drop folder. */
  const importUpload = z.object({
    uploadUrl: z.string(),
    method: z.literal('PUT'),
    headers: z.record(z.string(), z.string()),
    uri: z.string(),
    expiresAt: isoTime(),
  });

  // ---------------------------------------------------------------------------------------
  // Aliases and experiments

  const aliasTarget = z.object({ collection: z.string(), version: int().optional(), line: z.string().optional() });
  const moveAction = z.enum(['create', 'move', 'rollback', 'promote']);

  const experimentSummary = z.object({
    id: z.string(),
    mode: z.enum(['split', 'shadow']),
    weight: z.number(),
    state: z.enum(['running', 'promoted', 'aborted']),
    champion: aliasTarget,
    challenger: aliasTarget,
    createdAt: isoTime(),
  });

  const alias = z.object({
    name: z.string(),
    collection: z.string(),
    /** The pinned index version, or null for the collection's (or line's) latest. */
    version: int().nullable(),
    line: z.string().optional(),
    revision: int(),
    createdAt: isoTime(),
    updatedAt: isoTime(),
    experiment: experimentSummary.nullable(),
  });

  const aliasList = z.object({ aliases: z.array(alias) });

  function moveOf<T extends z.ZodType>(target: T) {
    return z.object({
      revision: int(),
      at: isoTime(),
      by: z.string(),
      action: moveAction,
      from: target.nullable(),
      to: target,
      reason: z.string().optional(),
      forced: z.boolean().optional(),
    });
  }

  const aliasHistory = z.object({ history: z.array(moveOf(aliasTarget)) });

  const proportion = z.object({
    successes: count(),
    trials: count(),
    rate: z.number().nullable(),
    ci95: z.tuple([z.number(), z.number()]).nullable(),
  });

  const armResult = z.object({
    target: aliasTarget,
    requests: count(),
    errors: count(),
    errorRate: z.number().nullable(),
    latencyMs: z.object({ p50: z.number().nullable(), p95: z.number().nullable(), mean: z.number().nullable() }),
    overlapAtK: z.object({ mean: z.number().nullable(), samples: count() }),
    clicks: count(),
    converts: count(),
    clickRate: proportion,
    convertRate: proportion,
  });

  const rateTest = z.object({
    difference: z.number().nullable(),
    fixedHorizon: z.object({ z: z.number(), p: z.number(), validity: z.string() }).nullable(),
    sequential: z.object({
      p: z.number(),
      ci95: z.tuple([z.number(), z.number()]),
      tau2: z.number(),
      minTrials: count(),
    }),
    significant: z.boolean(),
    verdict: z.enum(['challenger', 'champion', 'inconclusive']),
  });

  const experimentResults = z.object({
    experiment: z.object({
      id: z.string(),
      alias: z.string(),
      mode: z.enum(['split', 'shadow']),
      weight: z.number(),
      champion: aliasTarget,
      challenger: aliasTarget,
      guardrails: z.object({ maxErrorRateDelta: z.number(), maxP95Ratio: z.number(), minSamples: count() }),
      overlapSample: z.number(),
      tau2: z.number().optional(),
      state: z.enum(['running', 'promoted', 'aborted']),
      createdAt: isoTime(),
      createdBy: z.string(),
      endedAt: isoTime().optional(),
      endedBy: z.string().optional(),
      reason: z.string().optional(),
    }),
    arms: z.object({ champion: armResult, challenger: armResult }),
    overlapAtK: z.object({ mean: z.number().nullable(), samples: count() }),
    /** Null in shadow mode. */
    tests: z.object({ click: rateTest.nullable(), convert: rateTest.nullable() }),
  });

  const feedbackResult = z.object({
    attributed: z.boolean(),
    experiment: z.string().optional(),
    alias: z.string().optional(),
    arm: z.enum(['champion', 'challenger']).optional(),
  });

  // ---------------------------------------------------------------------------------------
  // Models

  const tensorInfo = z.object({
    name: z.string(),
    dtype: z.string(),
    shape: z.array(z.union([z.number().int(), z.string()])),
  });
  const modelVersion = z.object({
    name: z.string(),
    version: int(),
    state: z.enum(['pending', 'verifying', 'ready']),
    dimension: int(),
    metric,
    framework: z.string().optional(),
    format: z.literal('onnx').optional(),
    tokenizer: z
      .object({
        type: z.literal('wordpiece'),
        vocab: z.array(z.string()),
        maxLength: int(),
        lowercase: z.boolean().optional(),
        unknown: z.string().optional(),
        pad: z.string().optional(),
        cls: z.string().optional(),
        sep: z.string().optional(),
        continuation: z.string().optional(),
      })
      .optional(),
    /** Read from an `onnx` artifact at commit. */
    signature: z
      .object({
        irVersion: int(),
        opsets: z.array(z.object({ domain: z.string(), version: int() })),
        producer: z.string().optional(),
        inputs: z.array(tensorInfo),
        outputs: z.array(tensorInfo),
        ops: z.array(z.string()),
        parameters: count(),
      })
      .optional(),
    description: z.string().optional(),
    params: jsonObject,
    metrics: z.record(z.string(), z.number()),
    tags: z.record(z.string(), z.string()),
    artifact: z.object({ key: z.string(), sha256: z.string().optional(), bytes: count().optional() }),
    createdAt: isoTime(),
    createdBy: z.string(),
    committedAt: isoTime().optional(),
    verification: z
      .object({
        sha256: z.string(),
        bytes: count(),
        requestedAt: isoTime(),
        error: z.string().optional(),
        finishedAt: isoTime().optional(),
      })
      .optional(),
  });

  const modelList = z.object({
    models: z.array(z.object({ name: z.string(), versions: count(), latest: int().nullable() })),
  });

  const modelAliasRef = z.object({ name: z.string(), version: int(), revision: int() });

  const model = z.object({
    name: z.string(),
    versions: z.array(modelVersion),
    aliases: z.array(modelAliasRef),
  });

  const modelVersionList = z.object({ versions: z.array(modelVersion) });

  const singleUploadFields = {
    method: z.literal('PUT'),
    url: z.string(),
    expiresAt: isoTime(),
    /** Headers the PUT must carry (none today: only `host` is signed). */
    headers: z.record(z.string(), z.string()),
    maxBytes: count(),
  };

  const singleUpload = z.object(singleUploadFields);

  const multipartUpload = z.object({
    method: z.literal('PUT'),
    uploadId: z.string(),
    parts: z.array(z.object({ partNumber: int(), url: z.string() })),
    expiresAt: isoTime(),
    headers: z.record(z.string(), z.string()),
    minPartBytes: count(),
    maxBytes: count(),
  });

  const modelUpload = z.union([singleUpload, multipartUpload]);

  const registeredModel = z.object({
    model: modelVersion,
    /** A presigned PUT of the artifact, and where to upload, commit or send it inline. */
    upload: z.object({
      uploaded: z.boolean(),
      ...singleUploadFields,
      paths: z.object({ upload: z.string(), commit: z.string(), inline: z.string() }),
      maxInlineBytes: count(),
    }),
  });

  const uploadAborted = z.object({ aborted: z.literal(true), uploadId: z.string() });

  const nullableNumber = z.number().nullable();

  const modelComparison = z.object({
    name: z.string(),
    a: int(),
    b: int(),
    dimension: z.object({ a: int(), b: int() }).nullable(),
    metric: z.object({ a: metric, b: metric }).nullable(),
    params: z.record(z.string(), z.object({ a: z.unknown(), b: z.unknown() })),
    metrics: z.record(z.string(), z.object({ a: nullableNumber, b: nullableNumber, delta: nullableNumber })),
    tags: z.record(z.string(), z.object({ a: z.string().nullable(), b: z.string().nullable() })),
  });

  const modelAlias = z.object({ name: z.string(), model: z.string(), version: int(), revision: int() });

  const modelAliasHistory = z.object({
    history: z.array(moveOf(z.object({ model: z.string(), version: int() }))),
  });

  // ---------------------------------------------------------------------------------------
  // Embedding drift (docs/drift.md)

  const driftWindow = z.object({
    kind: z.enum(['query', 'ingest']),
    /** Start of the hour. */
    start: isoTime(),
    count: count(),
    meanNorm: z.number(),
    /** Mean PSI over the random projections. */
    psi: z.number(),
    psiMax: z.number(),
    normPsi: z.number(),
    centroidPsi: z.number(),
    meanShift: z.number(),
    status: z.enum(['ok', 'warn', 'alert', 'insufficient']),
  });
  const driftReferenceInfo = z.object({ rows: count(), createdAt: isoTime() }).nullable();
  const driftReport = z.object({
    collection: z.string(),
    model: modelRef.nullable(),
    reference: driftReferenceInfo,
    unreferenced: count(),
    windows: z.array(driftWindow),
    current: z.object({ query: driftWindow.nullable(), ingest: driftWindow.nullable() }),
    status: z.enum(['ok', 'warn', 'alert', 'insufficient', 'unreferenced']),
  });
  /** `reference` null: the collection has too few live rows for one yet. */
  const driftReference = z.object({ collection: z.string(), reference: driftReferenceInfo });

  // ---------------------------------------------------------------------------------------
  // API keys

  const keyFields = {
    id: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    collections: z.array(z.string()).optional(),
    createdBy: z.string(),
    createdAt: isoTime(),
    expiresAt: isoTime().optional(),
    rateLimit: z.object({ perSecond: z.number(), burst: int() }).optional(),
    lastUsedAt: isoTime().optional(),
  };

  const apiKey = z.object(keyFields);
  /** `POST /v1/keys`: the record and, this once, the key itself. */
  const createdKey = z.object({ ...keyFields, key: z.string() });
  const keyList = z.object({ keys: z.array(apiKey) });

  return {
    errorBody,
    deleted,
    indexSpec,
    liveness,
    health,
    openApiDocument,
    collectionStats,
    collection,
    collectionList,
    upserted,
    vectorList,
    vectorsDeleted,
    vectorPage,
    hit,
    searchResult,
    lineView,
    buildOutput,
    linePromotion,
    lineList,
    promoteCandidateResult,
    graphTrial,
    evaluation,
    tuneJob,
    shardRef,
    manifest,
    versionList,
    importJob,
    importJobList,
    migration,
    migrationResult,
    migrationList,
    rejectPage,
    importUpload,
    aliasTarget,
    experimentSummary,
    alias,
    aliasList,
    aliasHistory,
    proportion,
    armResult,
    rateTest,
    experimentResults,
    feedbackResult,
    modelVersion,
    modelList,
    model,
    modelVersionList,
    singleUpload,
    multipartUpload,
    modelUpload,
    registeredModel,
    uploadAborted,
    modelComparison,
    modelAlias,
    modelAliasHistory,
    apiKey,
    createdKey,
    keyList,
    driftWindow,
    driftReport,
    driftReference,
  };
}

export type ResponseSchemas = ReturnType<typeof define>;
/** A response schema by name (`'collection'`): what the route table refers to. */
export type ResponseName = keyof ResponseSchemas;

let built: ResponseSchemas | undefined;

export function responseSchemas(): ResponseSchemas {
  built ??= define();
  return built;
}

/**
 * The shapes named in the OpenAPI document's `components.schemas` (every other response schema is
 * named after its operation). Keys are the component names.
 */
export const RESPONSE_COMPONENTS = {
  Error: 'errorBody',
  Deleted: 'deleted',
  IndexSpec: 'indexSpec',
  Collection: 'collection',
  CollectionStats: 'collectionStats',
  SearchResult: 'searchResult',
  SearchHit: 'hit',
  BuildOutput: 'buildOutput',
  LineView: 'lineView',
  LinePromotion: 'linePromotion',
  Evaluation: 'evaluation',
  TuneJob: 'tuneJob',
  GraphTrial: 'graphTrial',
  Manifest: 'manifest',
  ShardRef: 'shardRef',
  ImportJob: 'importJob',
  Migration: 'migration',
  Alias: 'alias',
  AliasTarget: 'aliasTarget',
  ExperimentSummary: 'experimentSummary',
  ExperimentResults: 'experimentResults',
  ArmResult: 'armResult',
  RateTest: 'rateTest',
  Proportion: 'proportion',
  ModelVersion: 'modelVersion',
  SingleUpload: 'singleUpload',
  MultipartUpload: 'multipartUpload',
  ModelAlias: 'modelAlias',
  ApiKey: 'apiKey',
  CreatedKey: 'createdKey',
  DriftWindow: 'driftWindow',
} as const satisfies Record<string, ResponseName>;
