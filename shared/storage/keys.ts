/**
 * Every storage layout in one place: the key of each DynamoDB item (Catalog and Records
 * tables) and each S3 object Shoal writes. Stores, functions and the CDK stacks (IAM
 * conditions, bucket notifications, lifecycle rules) all spell keys through this module, so a
 * layout can be read, and reasoned about, here alone (`test/unit/architecture.test.ts` fails on
 * a prefix literal anywhere else). It imports nothing: the CDK app loads it as it is.
 *
 * Stored data depends on these strings byte for byte; changing one orphans what is stored.
 *
 * Catalog table (`pk`, `sk`), with the store that writes each item type:
 *
 *   COL#<name>                META                 collection meta                      DynamoCatalog
 *   COL#<name>                SEQ                  seq counter + leases                 DynamoCatalog
 *   COL#<name>                IDX#<version>        manifest (inline, brotli, or S3 ref) DynamoCatalog
 *   COL#<name>                PROMO#<rev>          promotion history                    DynamoCatalog
 *   COL#<name>                EVAL#<version>       evaluation of an index version       DynamoLifecycleStore
 *   COL#<name>                IMPORT#<jobId>       import job                           DynamoImportJobStore
 *   COL#<name>                MIGRATION#<id>       re-embedding migration (JSON doc)    DynamoMigrationStore
 *   COL#<name>                TUNE#<jobId>         asynchronous tune job (JSON doc, TTL) DynamoLifecycleStore
 *   COL#<name>                DRIFT#REF#<modelKey> drift reference (edges, centroids)   DynamoDriftStore
 *   COL#<name>                DRIFT#<modelKey>#<kind>#<hour>#<ref>
 *                                                  drift window counters (ADD, TTL)     DynamoDriftStore
 *   GEN                       <name>               generation counter                   DynamoCatalog
 *   ALIAS#<name>              META / H#<rev>       alias and its moves                  DynamoLifecycleStore
 *   ALIAS#<name>              EXPERIMENT           the alias's experiment               DynamoLifecycleStore
 *   ALIASES                   <name>               registry of alias names              DynamoLifecycleStore
 *   MALIAS#<model>#<alias>    META / H#<rev>       model alias and its moves            DynamoLifecycleStore
 *   MALIASES#<model>          <alias>              registry of a model's aliases        DynamoLifecycleStore
 *   MODEL#<name>              COUNTER / V#<v>      model version counter, versions      DynamoLifecycleStore
 *   MODELS                    <name>               registry of model names              DynamoLifecycleStore
 *   EXP#<id>                  ARM#<arm> / SEQ      experiment counters, sequential test DynamoLifecycleStore
 *   QUERY#<queryId>           META                 query → arm attribution (TTL)        DynamoLifecycleStore
 *   APIKEY#<sha256>           META                 API key: role, scope, rate limit     DynamoApiKeyStore
 *   APIKEYS                   <keyId>              registry of keys (hash, lastUsedAt)  DynamoApiKeyStore
 *   LOG#<ck>#<bucket>         <seq, 16 digits>     write log: which id each seq wrote   DynamoRecordStore
 *   LOG#<ck>                  TRIM                 how far the write log was trimmed    DynamoRecordStore
 *
 * The COL#<name> partition is the collection's: DynamoCatalog.deleteCollection drops all of
 * it, whichever store wrote an item there. Numbers in sort keys are zero-padded so that
 * string order is numeric order.
 */

// --- Catalog table ---------------------------------------------------------------------------

export const META_SK = 'META';
export const SEQ_SK = 'SEQ';
export const GEN_PK = 'GEN';
export const EXPERIMENT_SK = 'EXPERIMENT';
export const COUNTER_SK = 'COUNTER';
export const ALIASES_PK = 'ALIASES';
export const MODELS_PK = 'MODELS';
/** Registry of the keys made through the API (`POST /v1/keys`): list, revoke by id, `lastUsedAt`. */
export const APIKEYS_PK = 'APIKEYS';

export const COL_PREFIX = 'COL#';
export const IDX_PREFIX = 'IDX#';
export const PROMO_PREFIX = 'PROMO#';
export const EVAL_PREFIX = 'EVAL#';
export const IMPORT_PREFIX = 'IMPORT#';
export const ALIAS_PREFIX = 'ALIAS#';
export const MODEL_ALIAS_PREFIX = 'MALIAS#';
export const MODEL_ALIASES_PREFIX = 'MALIASES#';
export const HISTORY_PREFIX = 'H#';
export const EXP_PREFIX = 'EXP#';
export const ARM_PREFIX = 'ARM#';
export const QUERY_PREFIX = 'QUERY#';
export const MODEL_PREFIX = 'MODEL#';
export const MODEL_VERSION_PREFIX = 'V#';
export const APIKEY_PREFIX = 'APIKEY#';
export const LOG_PREFIX = 'LOG#';
export const LOG_TRIM_SK = 'TRIM';
export const PLAN_PREFIX = 'PLAN#';
export const BUILD_LEASE_PREFIX = 'BUILDING#';
export const MIGRATION_PREFIX = 'MIGRATION#';
export const TUNE_JOB_PREFIX = 'TUNE#';
/** A tune job's supplied queries (float32 bytes), beside the job item so its progress writes stay small. */
export const TUNE_QUERIES_PREFIX = 'TUNEQ#';
export const DRIFT_PREFIX = 'DRIFT#';
export const DRIFT_REF_PREFIX = 'DRIFT#REF#';

/** Ten digits: versions, revisions and promotion numbers sort as strings in numeric order. */
export function padNumber(n: number): string {
  return String(n).padStart(10, '0');
}

export const colPk = (name: string): string => `${COL_PREFIX}${name}`;
export const idxSk = (version: number): string => `${IDX_PREFIX}${padNumber(version)}`;
export const promoSk = (rev: number): string => `${PROMO_PREFIX}${padNumber(rev)}`;
export const evalSk = (version: number): string => `${EVAL_PREFIX}${padNumber(version)}`;
export const importSk = (jobId: string): string => `${IMPORT_PREFIX}${jobId}`;
export const migrationSk = (id: string): string => `${MIGRATION_PREFIX}${id}`;
/** An asynchronous tune job (docs/architecture.md §8.7), in the collection's partition: `TUNE#<jobId>`. */
export const tuneJobSk = (jobId: string): string => `${TUNE_JOB_PREFIX}${jobId}`;
export const tuneQueriesSk = (jobId: string): string => `${TUNE_QUERIES_PREFIX}${jobId}`;
export const aliasPk = (name: string): string => `${ALIAS_PREFIX}${name}`;
export const modelAliasPk = (model: string, alias: string): string => `${MODEL_ALIAS_PREFIX}${model}#${alias}`;
export const modelAliasRegistryPk = (model: string): string => `${MODEL_ALIASES_PREFIX}${model}`;
export const historySk = (revision: number): string => `${HISTORY_PREFIX}${padNumber(revision)}`;
export const experimentPk = (experimentId: string): string => `${EXP_PREFIX}${experimentId}`;
export const armSk = (arm: string): string => `${ARM_PREFIX}${arm}`;
export const queryPk = (queryId: string): string => `${QUERY_PREFIX}${queryId}`;
export const modelPk = (name: string): string => `${MODEL_PREFIX}${name}`;
/** A line's active build plan (docs/architecture.md §6.5), in the collection's partition: `PLAN#<line>`. */
export const planSk = (line: string): string => `${PLAN_PREFIX}${line}`;
/** Who is building a line right now (plan.ts claimLine), beside its plan: `BUILDING#<line>`. */
export const buildLeaseSk = (line: string): string => `${BUILD_LEASE_PREFIX}${line}`;
export const modelVersionSk = (version: number): string => `${MODEL_VERSION_PREFIX}${padNumber(version)}`;
/**
 * Drift monitoring (docs/architecture.md §8.8), in the collection's partition so dropping the collection drops
 * it. `modelKey` is `<model>@<version>` or `none` (never `REF`: a bound key has an `@`).
 */
export const driftRefSk = (modelKey: string): string => `${DRIFT_REF_PREFIX}${modelKey}`;
/** Everything after it is `<hour>#<ref>`: the windows of one model key and kind sort by hour. */
export const driftWindowPrefix = (modelKey: string, kind: string): string => `${DRIFT_PREFIX}${modelKey}#${kind}#`;
/**
 * One hour's counters of one kind (`query` | `ingest`), binned against reference `ref` (its revision): windows
 * binned against an earlier reference are never added to, or compared with, a newer one.
 */
export const driftWindowSk = (modelKey: string, kind: string, hour: string, ref: string): string =>
  `${driftWindowPrefix(modelKey, kind)}${hour}#${ref}`;
/** The key item of an API key, by the hex sha256 of the bearer token. */
export const apiKeyPk = (sha256Hex: string): string => `${APIKEY_PREFIX}${sha256Hex}`;
/** The registry entry of an API key, by key id (pk = APIKEYS_PK). */
export const apiKeyRegistrySk = (keyId: string): string => keyId;

/**
 * Write-log partitions per collection (docs/architecture.md §6.1). Seq `s` goes to bucket `s % LOG_BUCKETS`,
 * so consecutive writes spread over the buckets: one DynamoDB partition key takes ≤ 1,000 WCU/s, and a
 * log entry is 1 WCU, so 8 buckets carry ≈ 8,000 rows/s per collection (a bulk load needs ≥ 5,000).
 * More buckets raise that ceiling but make every tail read query more partitions. Changing it
 * needs a migration: readers must query every bucket a writer may have used.
 */
export const LOG_BUCKETS = 8;
/** The partition of one bucket of a collection's write log. */
export const logPk = (ck: string, bucket: number): string => `${LOG_PREFIX}${ck}#${bucket}`;
/** Log sort key: the seq, 16 digits (any safe integer), so string order is seq order. */
export const logSk = (seq: number): string => String(seq).padStart(16, '0');
/** The item recording a collection's log trimming (`trimmed`, and the pending `bound` with its time). */
export const logTrimPk = (ck: string): string => `${LOG_PREFIX}${ck}`;

// --- Records table ---------------------------------------------------------------------------

/**
 * A collection's generation-scoped key: the Records table's `ck` and the S3 folder of its
 * index objects. A re-created collection gets a new generation, so it never sees the rows or
 * objects of the one deleted before it.
 */
export function collectionKey(meta: { name: string; generation: number }): string {
  return `${meta.name}@${meta.generation}`;
}

/** Records `pk`: `<collectionKey>#<id>`. */
export function recordPk(ck: string, id: string): string {
  return `${ck}#${id}`;
}

// --- S3 bucket -------------------------------------------------------------------------------

/** Index shards: `shards/<collectionKey>/<hash>.shard`. */
export const SHARDS_PREFIX = 'shards/';
/** Deletion bitmaps of shards: `deletes/<collectionKey>/<shardId>/<hash>.bits`. */
export const DELETES_PREFIX = 'deletes/';
/** Files to import, dropped by users: `imports/<collection>/<anything>`. */
export const IMPORTS_PREFIX = 'imports/';
/** Import reports: `reports/imports/<jobId>.jsonl` and its parts. */
export const REPORTS_PREFIX = 'reports/';
/** Model artifacts: staging `models/<name>/<v>/artifact`, committed `models/<name>/<v>/<sha256>`. */
export const MODELS_OBJECT_PREFIX = 'models/';
/** Build plans' intermediate objects (row chunks, samples, results): `plans/<ck>/<planId>/…`. */
export const PLANS_PREFIX = 'plans/';
export const planObjectPrefix = (ck: string, planId: string): string => `${PLANS_PREFIX}${ck}/${planId}/`;
/** What the builder writes and collects. */
/** Centroid tables of partitioned versions: `centroids/<ck>/<sha256[:32]>.f32`. */
/**
 * The Milvus REST layer's schema of a collection (shared/api/milvus): one immutable object per
 * incarnation of the collection, told apart by its creation time (`stamp`, digits only).
 */
export const MILVUS_SCHEMAS_PREFIX = 'milvus/';
export const milvusSchemaKey = (collection: string, stamp: string): string =>
  `${MILVUS_SCHEMAS_PREFIX}${collection}/${stamp}.json`;
export const CENTROIDS_PREFIX = 'centroids/';
/**
 * Raw model inputs of collections with an embedding function (docs/models.md), kept so a later model version
 * can re-embed them: `inputs/<ck>/<sha256>.f32`, one object per upsert batch, content-addressed (a retried
 * batch writes the same key, which `putImmutable` leaves alone). A record names its row as `<sha256>/<row>`.
 */
export const INPUTS_PREFIX = 'inputs/';
export const inputsKey = (ck: string, hash: string): string => `${INPUTS_PREFIX}${ck}/${hash}.f32`;
export const INDEX_PREFIXES: readonly string[] = [SHARDS_PREFIX, DELETES_PREFIX, CENTROIDS_PREFIX];

export const shardKey = (ck: string, hash: string): string => `${SHARDS_PREFIX}${ck}/${hash}.shard`;
export const deletesKey = (ck: string, shardId: string, hash: string): string =>
  `${DELETES_PREFIX}${ck}/${shardId}/${hash}.bits`;
/** The folders holding a collection generation's index objects (what garbage collection lists). */
export const centroidsKey = (ck: string, hash: string): string => `${CENTROIDS_PREFIX}${ck}/${hash}.f32`;
export const indexObjectPrefixes = (ck: string): string[] => INDEX_PREFIXES.map((p) => `${p}${ck}/`);

/**
 * Manifests too large for their catalog item even compressed (docs/architecture.md §4.1), as brotli JSON:
 * `manifests/<ck>/<version, 10 digits>-<sha256[:32]>.json.br`. The hash tells racing builders' manifests of
 * one version apart. Not an INDEX_PREFIXES folder on purpose: garbage collection keeps only recent versions'
 * objects, but every manifest item is kept (version history), so its object must be too; they go when the
 * collection is deleted (DynamoCatalog.deleteCollection lists the folder).
 */
export const MANIFESTS_PREFIX = 'manifests/';
export const manifestDocKey = (ck: string, version: number, hash: string): string =>
  `${MANIFESTS_PREFIX}${ck}/${padNumber(version)}-${hash}.json.br`;
/** The folder of a collection generation's spilled manifests. */
export const manifestDocPrefix = (ck: string): string => `${MANIFESTS_PREFIX}${ck}/`;

const IMPORT_OBJECT = new RegExp(`^${IMPORTS_PREFIX}([^/]+)/(.+)$`);
/** The collection an `imports/<collection>/...` key belongs to. */
export function collectionOfImportKey(key: string): string | undefined {
  return IMPORT_OBJECT.exec(key)?.[1];
}
/**
 * The key of a file uploaded through a presigned URL (`POST …/imports/uploads`): a folder of its own
 * per upload (`<unique>`), so two uploads of one filename never replace each other.
 */
export const importUploadKey = (collection: string, unique: string, filename: string): string =>
  `${IMPORTS_PREFIX}${collection}/${unique}/${filename}`;
/** How the import folder of a collection is shown to users. */
export const IMPORTS_FOLDER_PATTERN = `${IMPORTS_PREFIX}<collection>/`;

export const importReportKey = (jobId: string): string => `${REPORTS_PREFIX}imports/${jobId}.jsonl`;
export const importReportPartKey = (jobId: string, fromRows: number, token: string): string =>
  `${REPORTS_PREFIX}imports/${jobId}/${String(fromRows).padStart(12, '0')}-${token.slice(0, 8)}.jsonl`;

/** The staging key every upload path writes; commit copies it away. */
export const modelArtifactKey = (name: string, version: number): string =>
  `${MODELS_OBJECT_PREFIX}${name}/${version}/artifact`;
/** The content-addressed key of a committed artifact; never signed for a client. */
export const committedArtifactKey = (name: string, version: number, sha256: string): string =>
  `${MODELS_OBJECT_PREFIX}${name}/${version}/${sha256}`;
