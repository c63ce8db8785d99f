/**
 * Deployment settings, read from CDK context (`-c key=value` or `cdk.json`), validated once.
 * Nothing here looks anything up in an AWS account: `cdk synth` runs offline.
 */
import { Duration } from 'aws-cdk-lib';
import type { Node } from 'constructs';

export type Stage = 'dev' | 'prod';

export interface ShoalSettings {
  stage: Stage;
  /** Resource-name prefix, e.g. `shoal-dev`. */
  prefix: string;
  /** Searcher slots: one shard-search function per slot (`<prefix>-shard-search-{slot}`). */
  searchSlots: number;
  /** Optional e-mail subscribed to the alarm topic. */
  alarmEmail?: string;
  /** Stamped into SHOAL_GIT_SHA (CI passes `-c gitSha=$GITHUB_SHA`). */
  gitSha?: string;
  /** Allowed CORS origins (comma-separated context `corsOrigins`; default `*`: bearer keys, no cookies). */
  corsOrigins: string[];
  /** HTTP API stage throttling. */
  throttle: { rateLimit: number; burstLimit: number };
  /** Builder-lag alarm threshold in rows (seq − watermark). */
  builderLagAlarmRows: number;
  /** Log retention for function and access logs. */
  logRetentionDays: number;
  /**
   * Reserved concurrency of the build-worker function (context `buildWorkers`, default 10): how many
   * build-plan tasks run at once. More = faster large layouts (docs/operations.md §6), more DynamoDB
   * read and S3 request rate at once, and that many fewer concurrent executions for the account.
   */
  buildWorkers: number;
  /**
   * Resident search nodes (context `searchNodes=true`; docs/architecture.md §7.7): one Fargate service per
   * searcher slot in a VPC the api function joins, reached over HTTP instead of a Lambda invoke (~1 ms
   * instead of ~10 ms per slot, which is what takes a 10M × 768 search under 15 ms: docs/operations.md
   * §6). Off by default: they cost money while idle (a task per slot, VPC interface endpoints) and the
   * api function then runs in the VPC. `cpu` in Fargate units (1024 = 1 vCPU, default 1024; a node searches
   * on one thread per whole vCPU, splitting a part's shards between them, so more vCPU is a faster part and
   * more resident shards, at a thread's memory each), `memoryMiB`
   * (default 4096: the node's shard cache is half, so a slot's shards should fit in it), `perSlot` tasks per
   * slot (default 1; the slot's Lambda answers while a task restarts).
   */
  searchNodes?: { cpu: number; memoryMiB: number; perSlot: number };
}

/**
 * Function timeouts in seconds. Plain numbers, so the local server (infra/local/shoal.ts) uses the very
 * same values without CDK types. The import function works until 30 s before its timeout, checkpoints
 * and continues.
 */
export const FUNCTION_TIMEOUT_SECONDS = {
  api: 30,
  indexBuilder: 5 * 60,
  /** Build-plan tasks are sized to finish within a third of it (shared/indexing/plan.ts). */
  buildWorker: 15 * 60,
  shardSearch: 20,
  importer: 5 * 60,
  authorizer: 5,
} as const;

/** The import function's timeout. */
export const IMPORT_FUNCTION_TIMEOUT = Duration.seconds(FUNCTION_TIMEOUT_SECONDS.importer);

/** Per-role function sizing. Memory ≤ 3008 MB so a new account (whose quota is 3008 MB) can deploy. */
export const FUNCTION_SIZING = {
  api: { memoryMb: 1769, timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS.api), ephemeralMb: 2048 },
  indexBuilder: { memoryMb: 3008, timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS.indexBuilder), ephemeralMb: 2048 },
  buildWorker: { memoryMb: 3008, timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS.buildWorker), ephemeralMb: 2048 },
  shardSearch: { memoryMb: 2048, timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS.shardSearch), ephemeralMb: 2048 },
  importer: { memoryMb: 2048, timeout: IMPORT_FUNCTION_TIMEOUT, ephemeralMb: 1024 },
  authorizer: { memoryMb: 256, timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS.authorizer), ephemeralMb: 512 },
} as const;

/** AWS: an SQS event source's visibility timeout should be at least 6× the function timeout. */
export const VISIBILITY_FACTOR = 6;

/** The queues' settings as plain numbers (seconds, counts), for the local server; QUEUE_SETTINGS is the CDK form. */
export const QUEUE_SETTINGS_PLAIN = {
  maxReceiveCount: 5,
  /** DLQs keep messages for the SQS maximum, 14 days. */
  dlqRetentionSeconds: 14 * 24 * 3600,
  build: { visibilityTimeoutSeconds: FUNCTION_TIMEOUT_SECONDS.indexBuilder * VISIBILITY_FACTOR },
  import: { visibilityTimeoutSeconds: FUNCTION_TIMEOUT_SECONDS.importer * VISIBILITY_FACTOR },
  buildTask: { visibilityTimeoutSeconds: FUNCTION_TIMEOUT_SECONDS.buildWorker * VISIBILITY_FACTOR },
} as const;

export const QUEUE_SETTINGS = {
  maxReceiveCount: QUEUE_SETTINGS_PLAIN.maxReceiveCount,
  dlqRetention: Duration.seconds(QUEUE_SETTINGS_PLAIN.dlqRetentionSeconds),
  build: { visibilityTimeout: Duration.seconds(QUEUE_SETTINGS_PLAIN.build.visibilityTimeoutSeconds) },
  import: { visibilityTimeout: Duration.seconds(QUEUE_SETTINGS_PLAIN.import.visibilityTimeoutSeconds) },
  buildTask: { visibilityTimeout: Duration.seconds(QUEUE_SETTINGS_PLAIN.buildTask.visibilityTimeoutSeconds) },
} as const;

/** The builder's SQS event source: batch size and the most concurrent builders it may start. */
export const BUILDER_EVENT_SOURCE = { batchSize: 10, maxConcurrency: 2 } as const;

/**
 * The import function's SQS event source: one job per invocation (a job runs until the deadline,
 * so a second message in the batch would only get the leftovers), at most 4 imports at once so bulk
 * loads do not starve the API of DynamoDB write capacity.
 */
export const IMPORTER_EVENT_SOURCE = { batchSize: 1, maxConcurrency: 4 } as const;

/** SHOAL_IMPORT_SAFETY_MARGIN_S: time an import invocation keeps for its checkpoint. */
export const IMPORT_SAFETY_MARGIN_S = 30;

/** The builder's catch-up tick. */
export const BUILD_TICK = Duration.minutes(1);

/** HTTP API authorizer cache. */
export const AUTHORIZER_CACHE_TTL = Duration.minutes(5);

/** Shard-cache memory budget (SHOAL_SHARD_CACHE_MB) for a function of `memoryMb`: half of it, within [16, 1536]. */
export function shardCacheMb(memoryMb: number): number {
  return Math.max(16, Math.min(1536, Math.floor(memoryMb / 2)));
}

/** Disk tier (SHOAL_SHARD_DISK_MB) for `ephemeralMb` of /tmp: three quarters of it. */
export function shardDiskMb(ephemeralMb: number): number {
  return Math.floor((ephemeralMb * 3) / 4);
}

function str(node: Node, key: string): string | undefined {
  const v: unknown = node.tryGetContext(key);
  if (v === undefined || v === null || v === '') return undefined;
  return String(v);
}

function intIn(node: Node, key: string, def: number, min: number, max: number): number {
  const raw = str(node, key);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`context ${key}=${raw}: must be an integer in [${min}, ${max}]`);
  return n;
}

function searchNodesOn(node: Node): boolean {
  const raw = str(node, 'searchNodes') ?? 'false';
  if (raw !== 'true' && raw !== 'false') throw new Error(`context searchNodes=${raw}: must be true or false`);
  return raw === 'true';
}

export function readSettings(node: Node): ShoalSettings {
  const stageRaw = str(node, 'stage') ?? 'dev';
  if (stageRaw !== 'dev' && stageRaw !== 'prod') throw new Error(`context stage=${stageRaw}: must be dev or prod`);
  const stage: Stage = stageRaw;
  const prod = stage === 'prod';
  const alarmEmail = str(node, 'alarmEmail');
  const gitSha = str(node, 'gitSha');
  return {
    stage,
    prefix: `shoal-${stage}`,
    // SHOAL_SEARCH_SLOTS accepts 1..64 (shared/config.ts).
    searchSlots: intIn(node, 'searchSlots', 4, 1, 64),
    ...(alarmEmail ? { alarmEmail } : {}),
    ...(gitSha ? { gitSha } : {}),
    corsOrigins: (str(node, 'corsOrigins') ?? '*')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    throttle: {
      rateLimit: intIn(node, 'throttleRate', prod ? 500 : 50, 1, 10_000),
      burstLimit: intIn(node, 'throttleBurst', prod ? 1000 : 100, 1, 5_000),
    },
    builderLagAlarmRows: intIn(node, 'builderLagAlarmRows', 100_000, 1, 1_000_000_000),
    // ≥ 2: an SQS event source's maximum concurrency cannot go below 2, and it must not exceed the reservation.
    buildWorkers: intIn(node, 'buildWorkers', 10, 2, 1000),
    logRetentionDays: prod ? 90 : 14,
    ...(searchNodesOn(node)
      ? {
          searchNodes: {
            cpu: intIn(node, 'searchNodeCpu', 1024, 256, 16_384),
            memoryMiB: intIn(node, 'searchNodeMemoryMiB', 4096, 512, 122_880),
            perSlot: intIn(node, 'searchNodesPerSlot', 1, 1, 10),
          },
        }
      : {}),
  };
}

/** Function roles, and the `service` dimension (POWERTOOLS_SERVICE_NAME) each one's EMF metrics carry. */
export type FunctionRole = keyof typeof FUNCTION_SIZING;
const ROLE_SLUGS: Record<FunctionRole, string> = {
  api: 'api',
  indexBuilder: 'index-builder',
  buildWorker: 'build-worker',
  shardSearch: 'shard-search',
  importer: 'import',
  authorizer: 'authorizer',
};
export function serviceName(settings: ShoalSettings, role: FunctionRole): string {
  return `${settings.prefix}-${ROLE_SLUGS[role]}`;
}
