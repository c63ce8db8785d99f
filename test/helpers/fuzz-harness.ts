/**
 * The route fuzzer's harness: the real router (`createApi`) over the real services (`createServices`)
 * on the embedded emulators, in process; fixtures for the generators to aim at; the run loop that
 * checks every response; the summary. Used by test/integration/fuzz-routes.test.ts (a few hundred
 * cases in `npm test`) and `npm run fuzz` (test/helpers/fuzz-cli.ts, 10 000 by default).
 *
 * The property, per response: status < 500; a JSON body; every 4xx an `error` with a documented
 * `code` and a non-empty `message`; and the server still answers `GET /v1/health` afterwards.
 */
import { ApiKeys } from '../../shared/auth/keys.js';
import { DynamoApiKeyStore } from '../../shared/auth/dynamo-key-store.js';
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { createApi, type Api, type ApiResponse } from '../../shared/api/router.js';
import { logger } from '../../shared/log.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { TailCache } from '../../shared/search/tail-cache.js';
import { createServices, type Services } from '../../shared/services.js';
import { DynamoImportJobs } from '../../shared/storage/dynamo-import-jobs.js';
import { noQueues, startEmulatedStack } from './emulated-stack.js';
import {
  FIXTURES,
  roundArbitrary,
  routeKey,
  routeMethods,
  routerRoutes,
  type FuzzCase,
  type RouteInfo,
} from './fuzz-routes.js';

const F = FIXTURES;
const BUCKET = 'shoal-fuzz';

/**
 * The error codes of docs/api.md's table that a 4xx may carry (plus the import formats' own, which
 * the import routes pass through). A code outside this list is an undocumented, unstable answer.
 */
export const STABLE_4XX_CODES = new Set([
  'VALIDATION_ERROR',
  'FILTER_SYNTAX_ERROR',
  'INVALID_JSON',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'BACKPRESSURE',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'CONFLICT',
  'QUALITY_GATE',
  'MODEL_MISMATCH',
  'PAYLOAD_TOO_LARGE',
  'LIMIT_EXCEEDED',
  'UNREADABLE_FILE',
  'OBJECT_CHANGED',
]);

export interface FuzzStack {
  api: Api;
  services: Services;
  /** (Re)creates whatever fixture a fuzz case deleted or replaced. */
  ensureFixtures(): Promise<void>;
  stop(): Promise<void>;
}

interface Reply {
  status: number;
  json: unknown;
}

export async function startFuzzStack(): Promise<FuzzStack> {
  const emulated = await startEmulatedStack({ bucket: BUCKET, now: Date.now });
  try {
    const { aws, catalog, records, objects } = emulated;
    const cache = new ShardCache({
      objects,
      memoryBytes: 256 * 2 ** 20,
      diskDir: emulated.cacheDir,
      diskBytes: 256 * 2 ** 20,
    });
    // Builds run in process (below), never from a queue: the fuzzer's wake-ups go nowhere.
    const services = createServices({
      catalog,
      records,
      objects,
      cache,
      lifecycleStore: emulated.lifecycle,
      queues: noQueues,
      slots: 1,
      tails: new TailCache(catalog, records),
      codeVersion: 'fuzz',
      imports: {
        s3: aws.s3,
        bucket: BUCKET,
        jobs: new DynamoImportJobs({ ddb: aws.ddb, table: 'catalog' }),
        enqueue: true,
      },
    });
    // The real key admin, so `/v1/keys` is fuzzed too; the fuzz key is an environment (admin) key.
    const keys = new ApiKeys({ store: new DynamoApiKeyStore({ ddb: aws.ddb, table: 'catalog' }), envKeys: [F.apiKey] });
    const api = createApi({
      service: services.core,
      authorize: (token) => keys.authenticate(token),
      keys,
      version: 'fuzz',
      ...(services.imports ? { imports: services.imports } : {}),
      lifecycle: services.lifecycle,
    });
    const rows = Array.from({ length: F.rows }, (_, i) => `{"id":"r${i}","values":[${row(i)}],"metadata":{"n":${i}}}`);
    await aws.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: F.importKey, Body: `${rows.slice(0, 20).join('\n')}\n` }),
    );
    const stack: FuzzStack = {
      api,
      services,
      ensureFixtures: () => ensureFixtures(api, services),
      stop: async () => {
        cache.clear();
        await emulated.stop();
      },
    };
    await stack.ensureFixtures();
    return stack;
  } catch (err) {
    await emulated.stop().catch(() => undefined);
    throw err;
  }
}

/** Row i of the fixtures: a deterministic 4-vector. */
function row(i: number): number[] {
  return [Math.sin(i + 1), Math.cos(i * 0.7), ((i % 13) - 6) / 6, (i % 5) / 5 + 0.1].map(
    (x) => Math.round(x * 1e4) / 1e4,
  );
}

async function call(api: Api, method: string, route: string, body?: unknown): Promise<Reply> {
  const res = await api.handle({
    method,
    path: route,
    headers: { authorization: `Bearer ${F.apiKey}` },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (res.statusCode >= 500) throw new Error(`fixture setup: ${method} ${route} → ${res.statusCode} ${res.body}`);
  return { status: res.statusCode, json: JSON.parse(res.body) };
}

async function ensureCollection(api: Api, services: Services, name: string, n: number, candidate?: string) {
  const got = await call(api, 'GET', `/v1/collections/${name}`);
  const info = got.json as { dimension?: number; stats?: { version?: number } };
  if (got.status === 200 && info.dimension === F.dim && (info.stats?.version ?? 0) > 0) return;
  if (got.status === 200) await call(api, 'DELETE', `/v1/collections/${name}`);
  // A fuzz case may have taken the name for an alias.
  await call(api, 'DELETE', `/v1/aliases/${name}`);
  const created = await call(api, 'POST', '/v1/collections', { name, dimension: F.dim, metric: 'cosine' });
  if (created.status !== 201) throw new Error(`fixture ${name}: ${JSON.stringify(created.json)}`);
  for (let start = 0; start < n; start += 100) {
    const vectors = [];
    for (let i = start; i < Math.min(n, start + 100); i++) {
      vectors.push({ id: `r${i}`, values: row(i), metadata: { n: i, tag: ['a', 'b', 'c'][i % 3] } });
      if (i < 50) vectors.push({ id: i, values: row(i + 1000), metadata: { n: i + 1000, tag: 'num' } });
    }
    await call(api, 'POST', `/v1/collections/${name}/vectors`, { vectors });
  }
  if (candidate) await call(api, 'POST', `/v1/collections/${name}/index`, { index: { m: 8 }, candidate });
  await services.indexer.buildNow(name);
}

async function ensureFixtures(api: Api, services: Services): Promise<void> {
  await ensureCollection(api, services, F.collection, F.rows, F.candidate);
  await ensureCollection(api, services, F.other, 60);
  if ((await call(api, 'GET', `/v1/aliases/${F.alias}`)).status !== 200) {
    await call(api, 'DELETE', `/v1/collections/${F.alias}`);
    await call(api, 'PUT', `/v1/aliases/${F.alias}`, { collection: F.collection, force: true });
  }
  const model = await call(api, 'GET', `/v1/models/${F.model}/versions/1`);
  if (model.status !== 200) {
    const artifact = Buffer.from('fuzz model');
    await call(api, 'POST', `/v1/models/${F.model}/versions`, {
      dimension: F.dim,
      metric: 'cosine',
      artifact: artifact.toString('base64'),
    });
    await call(api, 'POST', `/v1/models/${F.model}/versions/1/commit`, {
      sha256: createHash('sha256').update(artifact).digest('hex'),
    });
  }
  if ((await call(api, 'GET', `/v1/models/${F.model}/aliases/${F.modelAlias}`)).status !== 200)
    await call(api, 'PUT', `/v1/models/${F.model}/aliases/${F.modelAlias}`, { version: 1 });
}

// ---------------------------------------------------------------------------------------
// The run

export interface Violation {
  /** 0-based case number in the run (the same seed replays the same sequence). */
  index: number;
  case: FuzzCase;
  problem: string;
  status?: number;
  body?: string;
  /** What the router logged at error level while answering (the 5xx's cause and stack). */
  logged: string[];
}

export interface RouteStats {
  cases: number;
  statuses: Record<number, number>;
}

export interface FuzzSummary {
  seed: number;
  runs: number;
  elapsedMs: number;
  routes: RouteInfo[];
  perRoute: Map<string, RouteStats>;
  statuses: Record<number, number>;
  codes: Record<string, number>;
  kinds: Record<string, number>;
  violations: Violation[];
  healthChecks: number;
}

export interface FuzzOptions {
  seed: number;
  runs: number;
  /** A case taking longer than this counts as a hang. */
  caseTimeoutMs?: number;
  /** Called every `progressEvery` cases. */
  onProgress?: (done: number, summary: FuzzSummary) => void;
  progressEvery?: number;
}

const truncate = (s: string | undefined, n = 300) =>
  s === undefined ? undefined : s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;

/** What is wrong with a response, if anything. */
export function checkResponse(res: ApiResponse): string | undefined {
  if (!Number.isInteger(res.statusCode)) return `status is not an integer: ${String(res.statusCode)}`;
  if (res.statusCode >= 500) return `status ${res.statusCode}`;
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    return 'body is not JSON';
  }
  if (res.statusCode < 400) return undefined;
  const error = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (typeof error?.code !== 'string') return 'a 4xx body without error.code';
  if (!STABLE_4XX_CODES.has(error.code)) return `undocumented error code ${error.code}`;
  if (typeof error.message !== 'string' || error.message.trim() === '') return 'a 4xx body without a message';
  if (res.statusCode === 405 && !res.headers.Allow) return '405 without an Allow header';
  return undefined;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function describeLogged(args: unknown[]): string {
  return args
    .map((a) => (a instanceof Error ? (a.stack ?? a.message) : typeof a === 'string' ? a : JSON.stringify(a)))
    .join(' ')
    .slice(0, 2000);
}

/** Runs `runs` generated requests against the stack, one at a time, and checks each answer. */
export async function runFuzz(stack: FuzzStack, opts: FuzzOptions): Promise<FuzzSummary> {
  const routes = routerRoutes();
  const summary: FuzzSummary = {
    seed: opts.seed,
    runs: 0,
    elapsedMs: 0,
    routes,
    perRoute: new Map(routes.flatMap((r) => r.methods.map((m) => [routeKey(m, r.path), { cases: 0, statuses: {} }]))),
    statuses: {},
    codes: {},
    kinds: {},
    violations: [],
    healthChecks: 0,
  };
  const started = performance.now();
  const timeout = opts.caseTimeoutMs ?? 20_000;
  const logged: string[] = [];
  // The router logs every 5xx's cause at error level: keep it with the violation.
  const originalError = logger.error.bind(logger);
  logger.error = ((...args: unknown[]) => {
    logged.push(describeLogged(args));
  }) as typeof logger.error;

  const health = async (index: number) => {
    summary.healthChecks++;
    const res = await withTimeout(
      stack.api.handle({ method: 'GET', path: '/v1/health', headers: { authorization: `Bearer ${F.apiKey}` } }),
      timeout,
      'health',
    ).catch((err: unknown) => ({ statusCode: -1, headers: {}, body: String(err) }));
    if (res.statusCode !== 200) {
      summary.violations.push({
        index,
        case: { route: 'GET /v1/health', kind: 'valid', method: 'GET', path: '/v1/health', headers: {} },
        problem: `health check after case ${index} failed`,
        status: res.statusCode,
        body: truncate(res.body),
        logged: [],
      });
    }
  };

  const rebuild = async (index: number) => {
    logged.length = 0;
    try {
      await stack.services.indexer.buildNow(F.collection);
    } catch (err) {
      // The collection may have just been deleted by a case; anything else is a finding.
      if ((err as { statusCode?: number }).statusCode === 404) return;
      summary.violations.push({
        index,
        case: { route: 'build (in process)', kind: 'valid', method: '-', path: F.collection, headers: {} },
        problem: `building ${F.collection} from the accepted writes failed: ${String(err)}`,
        logged: [...logged, err instanceof Error ? (err.stack ?? '') : ''],
      });
    }
  };

  let index = 0;
  const one = async (c: FuzzCase) => {
    const i = index++;
    logged.length = 0;
    const stats = summary.perRoute.get(c.route) ?? { cases: 0, statuses: {} };
    summary.perRoute.set(c.route, stats);
    stats.cases++;
    summary.kinds[c.kind] = (summary.kinds[c.kind] ?? 0) + 1;
    let res: ApiResponse;
    try {
      res = await withTimeout(stack.api.handle(c), timeout, `${c.method} ${c.path}`);
    } catch (err) {
      summary.violations.push({ index: i, case: c, problem: `handle() threw: ${String(err)}`, logged: [...logged] });
      return;
    }
    stats.statuses[res.statusCode] = (stats.statuses[res.statusCode] ?? 0) + 1;
    summary.statuses[res.statusCode] = (summary.statuses[res.statusCode] ?? 0) + 1;
    const problem = checkResponse(res);
    if (problem) {
      summary.violations.push({
        index: i,
        case: c,
        problem,
        status: res.statusCode,
        body: truncate(res.body),
        logged: [...logged],
      });
    } else if (res.statusCode >= 400) {
      const code = (JSON.parse(res.body) as { error: { code: string } }).error.code;
      summary.codes[code] = (summary.codes[code] ?? 0) + 1;
    }
    // Fixtures deleted or replaced by a case come back, so later cases still reach deep code.
    const method = c.method.toUpperCase();
    if ((res.statusCode < 300 && (method === 'DELETE' || method === 'PUT')) || i % 25 === 24) {
      await stack.ensureFixtures();
    }
    if (i % 200 === 199) await health(i);
    // Whatever the API accepted must also build: the fixture is rebuilt from the fuzzed writes.
    if (i % 250 === 249) await rebuild(i);
    if (opts.onProgress && (i + 1) % (opts.progressEvery ?? 500) === 0) opts.onProgress(i + 1, summary);
  };
  try {
    await fc.check(
      fc.asyncProperty(roundArbitrary(routes), async (round) => {
        for (const c of round) await one(c);
      }),
      // Whole rounds: `runs` rounded up to a multiple of the number of routes × methods.
      { seed: opts.seed, numRuns: Math.ceil(opts.runs / routeMethods(routes).length) },
    );
    await health(index);
  } finally {
    logger.error = originalError;
  }
  summary.runs = index;
  summary.elapsedMs = performance.now() - started;
  return summary;
}

// ---------------------------------------------------------------------------------------
// Report

function statusClass(stats: RouteStats, lo: number, hi: number): number {
  return Object.entries(stats.statuses)
    .filter(([s]) => Number(s) >= lo && Number(s) < hi)
    .reduce((a, [, n]) => a + n, 0);
}

/** The summary as markdown: cases per route, status and error-code histograms, violations. */
export function formatSummary(s: FuzzSummary): string {
  const lines = [
    `# Route fuzz — seed ${s.seed}, ${s.runs} cases, ${(s.elapsedMs / 1000).toFixed(1)} s`,
    '',
    `Reproduce: \`npm run fuzz -- --seed ${s.seed} --runs ${s.runs}\` ` +
      `(or \`SHOAL_FUZZ_SEED=${s.seed} SHOAL_FUZZ_RUNS=${s.runs}\`).`,
    '',
    '| route | cases | 2xx | 4xx | 5xx | statuses |',
    '|---|---:|---:|---:|---:|---|',
  ];
  for (const [route, st] of [...s.perRoute].sort(([a], [b]) => a.localeCompare(b))) {
    const statuses = Object.entries(st.statuses)
      .map(([k, n]) => `${k}×${n}`)
      .join(' ');
    lines.push(
      `| ${route} | ${st.cases} | ${statusClass(st, 200, 300)} | ${statusClass(st, 400, 500)} |` +
        ` ${statusClass(st, 500, 600)} | ${statuses} |`,
    );
  }
  const hist = (title: string, h: Record<string | number, number>) => [
    '',
    `| ${title} | cases |`,
    '|---|---:|',
    ...Object.entries(h)
      .sort(([, a], [, b]) => b - a)
      .map(([k, n]) => `| ${k} | ${n} |`),
  ];
  lines.push(...hist('status', s.statuses), ...hist('error code', s.codes), ...hist('kind', s.kinds));
  lines.push('', `Health checks: ${s.healthChecks}. Violations: ${s.violations.length}.`);
  for (const v of s.violations.slice(0, 20)) {
    lines.push(
      '',
      `- case ${v.index} (${v.case.kind}) ${v.case.method} ${truncate(v.case.path, 200)}` +
        `${v.case.query ? `?${truncate(v.case.query, 100)}` : ''}: ${v.problem}`,
      `  body sent: ${truncate(v.case.body, 400) ?? '(none)'}`,
      `  answer: ${v.body ?? '(none)'}`,
      ...v.logged.slice(0, 2).map((l) => `  logged: ${l.split('\n').slice(0, 6).join(' | ')}`),
    );
  }
  return lines.join('\n');
}
