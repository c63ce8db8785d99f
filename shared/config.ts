/**
 * Configuration, read once from the environment and validated: a missing or malformed
 * variable fails the cold start with a message naming it, never a request later.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { DEFAULT_IMPORT_LIMITS, DEFAULT_SWEEP_STALE_MS, type ImportLimits } from './import/job.js';
import { parseFaults, type Faults } from './storage/faults.js';

const csv = z
  .string()
  .optional()
  .transform((s) =>
    s
      ? s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : [],
  );

const int = <D extends number | undefined>(def: D, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined || s === '') return def;
      const n: number = Number(s);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be an integer in [${min}, ${max}]` });
        return z.NEVER;
      }
      return n;
    });

const url = z.string().url().optional();

/** The port a search node listens on unless SHOAL_SEARCH_NODE_PORT says otherwise (the CDK's too). */
export const DEFAULT_SEARCH_NODE_PORT = 7300;

/** A number in [0, 1] (a ratio), or the default when unset. */
const ratio = (def: number) =>
  z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined || s === '') return def;
      const n = Number(s);
      if (!Number.isFinite(n) || n < 0 || n > 1) {
        ctx.addIssue({ code: 'custom', message: 'must be a number in [0, 1]' });
        return z.NEVER;
      }
      return n;
    });

const schema = z.object({
  AWS_REGION: z.string().min(1).default('us-east-1'),
  SHOAL_BUCKET: z.string().min(3),
  SHOAL_CATALOG_TABLE: z.string().min(3),
  SHOAL_RECORDS_TABLE: z.string().min(3),
  SHOAL_BUILD_QUEUE_URL: z.string().url(),
  /** Import queue (S3 events, API imports, continuations); optional: without it explicit imports are refused. */
  SHOAL_IMPORT_QUEUE_URL: url,
  /**
   * Build-task queue of the builder workers (docs/architecture.md §6.5); optional: without it every build
   * runs in the index-builder invocation.
   */
  SHOAL_BUILD_TASK_QUEUE_URL: url,
  /** Layouts of at least this many rows become build plans (default 50,000; needs the build-task queue). */
  SHOAL_PLAN_MIN_ROWS: int(50_000, 1, 1e12),
  /** A plan stage without progress this long is redriven, then abandoned (default 1200 s). */
  SHOAL_PLAN_STALL_S: int(1200, 1, 86_400),
  /** Time left for checkpointing when an import invocation stops (default 30 s). */
  SHOAL_IMPORT_SAFETY_MARGIN_S: int(30, 1, 600),
  /** The import queue's maxReceiveCount: on that receive a failing job is marked failed (default 5). */
  SHOAL_IMPORT_MAX_RECEIVE: int(5, 1, 1000),
  /** Endpoints of the embedded emulators (local mode only). */
  SHOAL_S3_ENDPOINT: url,
  SHOAL_DYNAMODB_ENDPOINT: url,
  SHOAL_SQS_ENDPOINT: url,
  SHOAL_LAMBDA_ENDPOINT: url,
  /** Searcher function name; `{slot}` is replaced by the slot number (0..SHOAL_SEARCH_SLOTS-1). */
  SHOAL_SHARD_SEARCH_FUNCTION: z.string().default('shoal-shard-search-{slot}'),
  /** JSON shown by GET /v1/health in local mode (endpoint and credentials of the embedded S3). */
  SHOAL_LOCAL_INFO: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s) return undefined;
      try {
        return JSON.parse(s) as Record<string, unknown>;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON' });
        return z.NEVER;
      }
    }),
  SHOAL_GIT_SHA: z.string().optional(),
  /**
   * Faults the local stack injects to behave like AWS where the emulators are kinder, e.g. `gsi-lag=500`
   * (shared/storage/faults.ts). Local mode only; default none.
   */
  SHOAL_FAULTS: z
    .string()
    .optional()
    .transform((s, ctx) => {
      const faults = parseFaults(s);
      if (typeof faults === 'string') {
        ctx.addIssue({ code: 'custom', message: faults });
        return z.NEVER;
      }
      return faults;
    }),
  /**
   * Below this many shard bytes per search the coordinator searches the shards itself; above, it
   * scatters them over the searcher slots. Default: half of SHOAL_SHARD_CACHE_MB (884 MiB on the
   * 1,769 MB api function → 442 MiB, e.g. 60k × 784 or 130k × 768 rows). Why so high: a searcher
   * invoke is a round trip of ~10 ms on AWS and locally more than the whole in-process search of
   * 10 shards of 6,000 × 784 (4.5 ms), so scattering pays only for shard sets that would crowd the
   * coordinator's cache (or need more CPU than one function has). Lower = more scatter (more
   * invokes, less memory per api container); 0 = always scatter.
   */
  SHOAL_SCATTER_MIN_MB: int(undefined, 0, 1_000_000),
  /**
   * Resident search nodes (docs/architecture.md §7.7): the URL of a slot's node, `{slot}` replaced by the
   * slot number (e.g. `http://slot-{slot}.search.shoal.internal:7300`; without `{slot}` one node serves every
   * slot). Set, the coordinator sends each slot's part to its node over keep-alive HTTP (~1 ms in a VPC)
   * instead of invoking the slot's Lambda (~10 ms, and a search waits for the slowest of its invokes); a
   * node that does not answer falls back to the Lambda. Unset (default): Lambdas only, nothing resident.
   */
  SHOAL_SEARCH_NODES: z
    .string()
    .optional()
    .refine((s) => s === undefined || s === '' || /^https?:\/\/[^\s]+$/.test(s.replaceAll('{slot}', '0')), {
      message: 'must be an http(s) URL, optionally with {slot}',
    }),
  /**
   * How long a part may take on a node before it goes to the slot's Lambda instead (default 5000 ms).
   * Lower = a stalled node costs less, but a node loading large shards cold may be abandoned mid-load
   * and the part paid twice; higher = fewer double loads, longer stalls when a node hangs.
   */
  SHOAL_SEARCH_NODE_TIMEOUT_MS: int(5000, 50, 60_000),
  /**
   * Threads a search node searches its shards on (default 1): each its own WASM heap and shard cache of
   * SHOAL_SHARD_CACHE_MB, a request's shards split between them. More = a slot's shards searched in parallel
   * (one per vCPU pays) and more shards resident per node, at a thread's memory each.
   */
  SHOAL_SEARCH_NODE_THREADS: int(1, 1, 64),
  /** A search node's listening port (default 7300). */
  SHOAL_SEARCH_NODE_PORT: int(DEFAULT_SEARCH_NODE_PORT, 0, 65_535),
  /** Slots a search node serves, e.g. `0,3,5-7` (default: every slot); others get 421 and go to their Lambda. */
  SHOAL_SEARCH_NODE_SLOTS: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined || s.trim() === '') return undefined;
      const slots = new Set<number>();
      for (const part of s.split(',')) {
        const m = /^\s*(\d{1,4})\s*(?:-\s*(\d{1,4})\s*)?$/.exec(part);
        const from = m ? Number(m[1]) : NaN;
        const to = m?.[2] !== undefined ? Number(m[2]) : from;
        if (!m || to < from) {
          ctx.addIssue({ code: 'custom', message: `"${part.trim()}": must be a slot or a range like 3-7` });
          return z.NEVER;
        }
        for (let slot = from; slot <= to; slot++) slots.add(slot);
      }
      return slots as ReadonlySet<number>;
    }),
  /** Unindexed writes that trigger a delta shard (default 1000): lower = fresher shards, more of them. */
  SHOAL_BUILD_DELTA_MIN_ROWS: int(1000, 1, 10_000_000),
  /** Age of the last index version after which any pending write triggers a build (default 60 s). */
  SHOAL_BUILD_DELTA_MAX_AGE_S: int(60, 1, 86_400),
  /**
   * Artifacts above this many MiB are verified (sha256) by the builder function after commit
   * instead of inside the API request (default 256; 0 = always asynchronously). See
   * DEFAULT_SYNC_VERIFY_BYTES in shared/lifecycle/models.ts for the trade-off.
   */
  SHOAL_ARTIFACT_SYNC_VERIFY_MB: int(256, 0, 5120),
  /**
   * The largest version a synchronous tune takes, in live rows at its default 100 queries (default
   * 200,000; rows × sample ≤ this × 100). Larger ones answer 422 ASYNC_REQUIRED: send `async: true`. See
   * TUNE_SYNC_MAX_ROWS in shared/lifecycle/service.ts.
   */
  SHOAL_TUNE_SYNC_MAX_ROWS: int(200_000, 1, 100_000_000),
  /** Plain API keys accepted by the local gateway (AWS uses the hashed keys in the catalog). */
  SHOAL_API_KEY: csv,
  /**
   * Default per-key rate limit, requests per second per container (default 50; 0 = none), for catalog keys
   * without their own `rateLimit`. In memory per container, so on AWS a key gets up to this × warm api
   * containers; a DynamoDB-backed bucket would be exact but cost a write per request (docs/security.md).
   */
  SHOAL_RATE_LIMIT_RPS: int(50, 0, 100_000),
  /** Burst of the default rate limit (default 100): requests a quiet key may send at once before it is paced. */
  SHOAL_RATE_LIMIT_BURST: int(100, 1, 1_000_000),
  /**
   * Searcher slots for scatter-gather (default 4): more slots = more shards cached warm in parallel, more
   * invocations per query.
   */
  SHOAL_SEARCH_SLOTS: int(4, 1, 64),
  /**
   * In-memory shard cache budget in MiB (default 512), counted in shard file bytes; hnsw indexes live in the 4 GiB
   * WASM heap (held once). More = more shards warm, more memory.
   */
  SHOAL_SHARD_CACHE_MB: int(512, 16, 1536),
  /** Disk tier for shard bytes (default /tmp/shoal-shards; Lambda gives 512 MB–10 GB of /tmp). */
  SHOAL_SHARD_CACHE_DIR: z.string().default('/tmp/shoal-shards'),
  /** Disk tier budget in MiB (default 1024). */
  SHOAL_SHARD_DISK_MB: int(1024, 0, 10240),
  /**
   * Cap on a collection's unindexed tail, in MiB of vector data (pending writes × dimension × 4; default 64,
   * ≈ 21k rows at 768-d, 130k at 128-d). Above it upserts get 429 BACKPRESSURE and imports pause until the
   * builder catches up. The in-memory scan of 64 MiB takes a few ms per query; the cold read from DynamoDB
   * is what the cap really bounds. Higher = fewer 429s under bursts, slower strong reads while the builder
   * is behind. 0 = no cap.
   */
  SHOAL_TAIL_CAP_MB: int(64, 0, 4096),
  /**
   * Time a strong search (or stats) may spend reading the unindexed tail (default 10 000 ms, a third of the
   * api function's 30 s timeout). Past it the request is a 503 TAIL_BUDGET_EXCEEDED instead of running into
   * the function timeout. The tail shrinks as the builder indexes it (the tail cap bounds its growth).
   */
  SHOAL_STRONG_READ_BUDGET_MS: int(10_000, 1, 600_000),
  /**
   * How often each api container adds its drift counters to the catalog and emits the drift metrics (default
   * 10 000 ms; docs/drift.md). One UpdateItem per collection × model × kind with traffic per interval per
   * container: shorter = fresher drift reports and metrics, more writes; longer = fewer writes, more counts lost
   * with a container that dies before flushing. 0 = every request flushes (tests).
   */
  SHOAL_DRIFT_FLUSH_MS: int(10_000, 0, 3_600_000),
  /**
   * Default per-job row limit of imports (50 000 000): a job reading more rows fails `ROW_LIMIT`. Higher
   * admits bigger single files; lower stops a gzip bomb of tiny rows sooner. A request's `maxRows` overrides it.
   */
  SHOAL_IMPORT_MAX_ROWS: int(DEFAULT_IMPORT_LIMITS.maxRows, 1, 1e12),
  /**
   * Default per-job wall-time limit of imports in seconds (21 600 = 6 h), from the first claim: a longer
   * job fails `TIME_LIMIT`. Higher lets huge files finish on few import slots; lower frees a slot held by a
   * pathological file sooner. A request's `maxDurationSeconds` overrides it.
   */
  SHOAL_IMPORT_MAX_DURATION_S: int(DEFAULT_IMPORT_LIMITS.maxDurationSeconds, 60, 30 * 86_400),
  /**
   * Default reject ratio above which an import fails `REJECT_RATIO` (0.5), checked once
   * SHOAL_IMPORT_REJECT_RATIO_MIN_ROWS rows were read. Lower fails dirty files sooner; 1 never fails
   * on rejects. A request's `maxRejectRatio` overrides it.
   */
  SHOAL_IMPORT_MAX_REJECT_RATIO: ratio(DEFAULT_IMPORT_LIMITS.maxRejectRatio),
  /**
   * Rows read before the reject ratio is checked (default 1000): fewer give a noisy ratio (a bad first
   * line fails a file), more let a broken file write more rows before it stops.
   */
  SHOAL_IMPORT_REJECT_RATIO_MIN_ROWS: int(DEFAULT_IMPORT_LIMITS.rejectRatioMinRows, 1, 1e9),
  /**
   * Seconds a queued or running import without a lease may stay quiet before the sweeper (the index builder's
   * tick) re-announces it (default 300). Lower recovers a lost continuation sooner but may duplicate a message
   * still waiting behind busy import slots (harmless: its claim fails). Jobs whose lease expired are re-queued
   * on the next tick regardless.
   */
  SHOAL_IMPORT_SWEEP_STALE_S: int(DEFAULT_SWEEP_STALE_MS / 1000, 1, 86_400),
  /**
   * Which ONNX runtime runs embedding functions (docs/models.md): `node` (default; onnxruntime-node's
   * prebuilt native library, ~3× the throughput of `wasm` in `npm run bench:models`) or `wasm`
   * (onnxruntime-web's WebAssembly backend: no native code, any platform, slower).
   */
  SHOAL_ONNX_RUNTIME: z.enum(['node', 'wasm']).default('node'),
  /**
   * Model bytes kept loaded per process, in MiB. Default: a quarter of the Lambda function's memory
   * (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), 512 MiB elsewhere. More keeps more model versions warm (a migration
   * runs two); less leaves more to shards and requests. A model larger than it is refused (413).
   */
  SHOAL_MODEL_MEMORY_MB: int(0, 0, 10_240),
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: int(0, 0, 10_240),
});

export interface ShoalConfig {
  region: string;
  bucket: string;
  catalogTable: string;
  recordsTable: string;
  buildQueueUrl: string;
  importQueueUrl?: string;
  buildTaskQueueUrl?: string;
  planMinRows: number;
  planStallMs: number;
  importSafetyMarginMs: number;
  importMaxReceive: number;
  endpoints?: { s3?: string; dynamodb?: string; sqs?: string; lambda?: string };
  shardSearchFunction: string;
  scatterMinBytes: number;
  /** Resident search nodes' URL template (SHOAL_SEARCH_NODES); undefined = Lambdas only. */
  searchNodes?: string;
  searchNodeTimeoutMs: number;
  /** A node process: its port, the slots it serves (undefined = all), its search threads. */
  searchNode: { port: number; slots?: ReadonlySet<number>; threads: number };
  buildDeltaMinRows: number;
  buildDeltaMaxAgeMs: number;
  artifactSyncVerifyBytes: number;
  tuneSyncMaxRows: number;
  localInfo?: Record<string, unknown>;
  gitSha?: string;
  /** Injected faults (local mode only). */
  faults: Faults;
  apiKeys: string[];
  /** Default per-key token bucket; undefined = no default limit. */
  rateLimit?: { perSecond: number; burst: number };
  searchSlots: number;
  shardCacheBytes: number;
  shardCacheDir: string;
  shardDiskBytes: number;
  tailCapBytes: number;
  strongReadBudgetMs: number;
  /** Drift counters' flush interval (docs/drift.md). */
  driftFlushMs: number;
  /** Import limits of jobs whose request sets none. */
  importLimits: ImportLimits;
  importSweepStaleMs: number;
  onnxRuntime: 'node' | 'wasm';
  /** Model bytes kept loaded per process (SHOAL_MODEL_MEMORY_MB, or its default). */
  modelMemoryBytes: number;
}

export function parseConfig(env: Record<string, string | undefined>): ShoalConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid Shoal configuration: ${problems}`, {
      field: String(parsed.error.issues[0]?.path[0] ?? ''),
    });
  }
  const e = parsed.data;
  const local = e.SHOAL_S3_ENDPOINT || e.SHOAL_DYNAMODB_ENDPOINT || e.SHOAL_SQS_ENDPOINT || e.SHOAL_LAMBDA_ENDPOINT;
  if (!local && Object.keys(e.SHOAL_FAULTS).length > 0) {
    throw new ConfigError('invalid Shoal configuration: SHOAL_FAULTS: faults are for the local stack only', {
      field: 'SHOAL_FAULTS',
    });
  }
  return {
    region: e.AWS_REGION,
    bucket: e.SHOAL_BUCKET,
    catalogTable: e.SHOAL_CATALOG_TABLE,
    recordsTable: e.SHOAL_RECORDS_TABLE,
    buildQueueUrl: e.SHOAL_BUILD_QUEUE_URL,
    importQueueUrl: e.SHOAL_IMPORT_QUEUE_URL,
    buildTaskQueueUrl: e.SHOAL_BUILD_TASK_QUEUE_URL,
    planMinRows: e.SHOAL_PLAN_MIN_ROWS,
    planStallMs: e.SHOAL_PLAN_STALL_S * 1000,
    importSafetyMarginMs: e.SHOAL_IMPORT_SAFETY_MARGIN_S * 1000,
    importMaxReceive: e.SHOAL_IMPORT_MAX_RECEIVE,
    endpoints: local
      ? {
          s3: e.SHOAL_S3_ENDPOINT,
          dynamodb: e.SHOAL_DYNAMODB_ENDPOINT,
          sqs: e.SHOAL_SQS_ENDPOINT,
          lambda: e.SHOAL_LAMBDA_ENDPOINT,
        }
      : undefined,
    shardSearchFunction: e.SHOAL_SHARD_SEARCH_FUNCTION,
    scatterMinBytes: (e.SHOAL_SCATTER_MIN_MB ?? Math.floor(e.SHOAL_SHARD_CACHE_MB / 2)) * 2 ** 20,
    searchNodes: e.SHOAL_SEARCH_NODES || undefined,
    searchNodeTimeoutMs: e.SHOAL_SEARCH_NODE_TIMEOUT_MS,
    searchNode: {
      port: e.SHOAL_SEARCH_NODE_PORT,
      slots: e.SHOAL_SEARCH_NODE_SLOTS,
      threads: e.SHOAL_SEARCH_NODE_THREADS,
    },
    buildDeltaMinRows: e.SHOAL_BUILD_DELTA_MIN_ROWS,
    buildDeltaMaxAgeMs: e.SHOAL_BUILD_DELTA_MAX_AGE_S * 1000,
    artifactSyncVerifyBytes: e.SHOAL_ARTIFACT_SYNC_VERIFY_MB * 2 ** 20,
    tuneSyncMaxRows: e.SHOAL_TUNE_SYNC_MAX_ROWS,
    localInfo: e.SHOAL_LOCAL_INFO,
    gitSha: e.SHOAL_GIT_SHA,
    faults: e.SHOAL_FAULTS,
    apiKeys: e.SHOAL_API_KEY,
    rateLimit:
      e.SHOAL_RATE_LIMIT_RPS > 0 ? { perSecond: e.SHOAL_RATE_LIMIT_RPS, burst: e.SHOAL_RATE_LIMIT_BURST } : undefined,
    searchSlots: e.SHOAL_SEARCH_SLOTS,
    shardCacheBytes: e.SHOAL_SHARD_CACHE_MB * 2 ** 20,
    shardCacheDir: e.SHOAL_SHARD_CACHE_DIR,
    shardDiskBytes: e.SHOAL_SHARD_DISK_MB * 2 ** 20,
    tailCapBytes: e.SHOAL_TAIL_CAP_MB * 2 ** 20,
    strongReadBudgetMs: e.SHOAL_STRONG_READ_BUDGET_MS,
    driftFlushMs: e.SHOAL_DRIFT_FLUSH_MS,
    importLimits: {
      maxRows: e.SHOAL_IMPORT_MAX_ROWS,
      maxDurationSeconds: e.SHOAL_IMPORT_MAX_DURATION_S,
      maxRejectRatio: e.SHOAL_IMPORT_MAX_REJECT_RATIO,
      rejectRatioMinRows: e.SHOAL_IMPORT_REJECT_RATIO_MIN_ROWS,
    },
    importSweepStaleMs: e.SHOAL_IMPORT_SWEEP_STALE_S * 1000,
    onnxRuntime: e.SHOAL_ONNX_RUNTIME,
    modelMemoryBytes:
      (e.SHOAL_MODEL_MEMORY_MB ||
        (e.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ? Math.floor(e.AWS_LAMBDA_FUNCTION_MEMORY_SIZE / 4) : 512)) *
      2 ** 20,
  };
}

let cached: ShoalConfig | undefined;

/** The process's configuration, parsed on first use. */
export function config(): ShoalConfig {
  cached ??= parseConfig(process.env);
  return cached;
}

/** For tests and the local runtime, which set the environment after import. */
export function resetConfig(): void {
  cached = undefined;
}
