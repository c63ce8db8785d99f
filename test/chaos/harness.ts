/**
 * The crash harness: runs the local server (`infra/local/main.ts`, the process `npm start` runs) as a
 * child, drives upserts, deletes, builds and S3-triggered imports at it, SIGKILLs it at a random
 * moment, restarts it on the same data dir, and repeats. At the end it checks what every database
 * must promise after crashes:
 *   - lost:        acknowledged upserts (not deleted since) missing from `vectors/get`
 *   - resurrected: acknowledged deletes (not rewritten since) visible again
 *   - phantoms:    rows that count, get, search and delete disagree on — `stats.count` ≠ the rows
 *                  `get` returns; a row `get` returns that a strong search for its own vector misses;
 *                  a row `get` does not return that a strong search finds
 *   - stuck jobs:  imports not in a final state once the sweeper's period has passed
 *   - import rows: rows of succeeded imports missing
 * Writes in flight at a kill were never acknowledged: they may or may not have landed, but each
 * must land entirely or not at all as far as the checks above can tell.
 *
 * Used by `test/e2e/chaos.test.ts` (CI, a few kills) and `npm run chaos` (test/chaos/cli.ts, ≥ 50).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mulberry32 } from '../helpers/random.js';
import { freePort } from '../helpers/ports.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KEY = 'chaos-key';
const COLLECTION = 'chaos';

export interface ChaosOptions {
  kills: number;
  seed: number;
  dim?: number;
  /** Longest a round runs before its kill (ms); each round picks a random moment below it. */
  maxRoundMs?: number;
  /** Upload an import file every this many rounds (0 = never). */
  importEvery?: number;
  /** Rows per import file. */
  importRows?: number;
  /** How long to wait, after the last restart, for every job to end (≥ the sweeper's period). */
  settleMs?: number;
  /** Extra environment for the server (e.g. SHOAL_FAULTS). */
  env?: Record<string, string>;
  progress?: (line: string) => void;
}

export interface ChaosReport {
  kills: number;
  seed: number;
  elapsedMs: number;
  acknowledged: { upserts: number; deletes: number; imports: number };
  inFlightAtKill: number;
  lost: string[];
  resurrected: string[];
  phantoms: string[];
  countMismatch?: { count: number; visible: number };
  stuckJobs: string[];
  /** Answers other than 200 from a live server during the workload. */
  errors: string[];
  importRowsMissing: number;
  builds: number;
}

/** The vector of an id: derived from the id, so any check can rebuild it. */
export function vectorOf(id: string, dim: number): number[] {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  const rand = mulberry32(h);
  return Array.from({ length: dim }, () => rand() * 2 - 1);
}

interface Server {
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
}

async function startServer(
  dataDir: string,
  port: number,
  s3Port: number,
  env: Record<string, string>,
): Promise<Server> {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    // Short import invocations and a fast tick: a killed import's lease expires and the sweeper
    // re-queues its job within about a minute and a half (the AWS values give ~6 minutes).
    SHOAL_LOCAL_IMPORT_TIMEOUT_S: '40',
    SHOAL_LOCAL_TICK_S: '5',
    SHOAL_IMPORT_SWEEP_STALE_S: '20',
    ...env,
    SHOAL_API_KEY: KEY,
  };
  for (const k of ['PORT', 'SHOAL_DATA_DIR', 'SHOAL_S3_PORT']) delete childEnv[k];
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'infra/local/main.ts',
      '--data-dir',
      dataDir,
      '--port',
      String(port),
      '--s3-port',
      String(s3Port),
    ],
    { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  child.stderr!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited on start:\n${out}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url, exited };
}

type Json = Record<string, unknown>;

async function call(
  url: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Json) : {} };
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const dim = opts.dim ?? 16;
  const maxRoundMs = opts.maxRoundMs ?? 2_500;
  const importEvery = opts.importEvery ?? 3;
  const importRows = opts.importRows ?? 3_000;
  const log = opts.progress ?? (() => {});
  const rand = mulberry32(opts.seed);
  const started = Date.now();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shoal-chaos-'));
  const [port, s3Port] = [await freePort(), await freePort()];
  const env = opts.env ?? {};

  // What the server acknowledged, and what was in flight at a kill (never acknowledged).
  const live = new Set<string>(); // acknowledged upserts not deleted since (by an acknowledged delete)
  const deleted = new Set<string>(); // acknowledged deletes not rewritten since
  const attempted = new Set<string>();
  const maybe = new Set<string>(); // touched by a request in flight at a kill
  const importIds: Array<{ file: string; ids: string[] }> = [];
  const errors: string[] = [];
  let inFlightAtKill = 0;
  let upserts = 0;
  let deletes = 0;
  let builds = 0;
  let nextId = 0;
  let server: Server | undefined;

  try {
    server = await startServer(dataDir, port, s3Port, env);
    const created = await call(server.url, 'POST', '/v1/collections', {
      name: COLLECTION,
      dimension: dim,
      metric: 'l2',
    });
    if (created.status !== 201) throw new Error(`create collection: ${created.status} ${JSON.stringify(created.json)}`);

    for (let round = 0; round < opts.kills; round++) {
      const url = server.url;
      let stop = false;
      const inFlight = new Set<string>();

      const upsertLoop = async (): Promise<void> => {
        while (!stop) {
          const ids = Array.from({ length: 25 }, () => `u${nextId++}`);
          ids.forEach((id) => (attempted.add(id), inFlight.add(id)));
          try {
            const res = await call(url, 'POST', `/v1/collections/${COLLECTION}/vectors`, {
              vectors: ids.map((id) => ({ id, values: vectorOf(id, dim), metadata: { round } })),
            });
            if (res.status !== 200) {
              errors.push(`upsert answered ${res.status}: ${JSON.stringify(res.json)}`);
              return;
            }
            for (const id of ids) {
              live.add(id);
              deleted.delete(id);
              inFlight.delete(id);
            }
            upserts += ids.length;
          } catch {
            return; // the server is gone: what was in flight stays in `inFlight`
          }
        }
      };
      const deleteLoop = async (): Promise<void> => {
        while (!stop) {
          const pool = [...live];
          if (pool.length < 50) {
            await new Promise((r) => setTimeout(r, 20));
            continue;
          }
          const ids = [...new Set(Array.from({ length: 5 }, () => pool[Math.floor(rand() * pool.length)]))];
          ids.forEach((id) => inFlight.add(id));
          try {
            const res = await call(url, 'POST', `/v1/collections/${COLLECTION}/vectors/delete`, { ids });
            if (res.status !== 200) {
              errors.push(`delete answered ${res.status}: ${JSON.stringify(res.json)}`);
              return;
            }
            for (const id of ids) {
              live.delete(id);
              deleted.add(id);
              inFlight.delete(id);
            }
            deletes += ids.length;
          } catch {
            return;
          }
        }
      };
      const buildLoop = async (): Promise<void> => {
        while (!stop) {
          await new Promise((r) => setTimeout(r, 200 + rand() * 600));
          try {
            await call(url, 'POST', `/v1/collections/${COLLECTION}/index`);
            builds++;
          } catch {
            return;
          }
        }
      };
      if (importEvery > 0 && round % importEvery === 0) {
        const ids = Array.from({ length: importRows }, (_, i) => `i${round}_${i}`);
        const file = `round-${round}.jsonl`;
        await uploadImport(url, ids, dim, file);
        importIds.push({ file, ids });
      }

      const loops = Promise.all([upsertLoop(), deleteLoop(), buildLoop()]);
      await new Promise((r) => setTimeout(r, 200 + rand() * maxRoundMs));
      server.child.kill('SIGKILL');
      await server.exited;
      stop = true;
      await loops;
      for (const id of inFlight) maybe.add(id);
      inFlightAtKill += inFlight.size;
      log(
        `kill ${round + 1}/${opts.kills}: ${upserts} upserts, ${deletes} deletes acknowledged; ` +
          `${inFlight.size} in flight`,
      );
      server = await startServer(dataDir, port, s3Port, env);
    }

    // Let imports finish and the sweeper pick up any job a kill stranded.
    const stuckJobs = await settleImports(server.url, opts.settleMs ?? 180_000, log);
    return {
      kills: opts.kills,
      seed: opts.seed,
      elapsedMs: Date.now() - started,
      acknowledged: { upserts, deletes, imports: importIds.length },
      inFlightAtKill,
      builds,
      stuckJobs,
      errors,
      ...(await verify(server.url, dim, { live, deleted, attempted, maybe, importIds }, log)),
    };
  } finally {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function uploadImport(url: string, ids: string[], dim: number, name: string): Promise<void> {
  const health = await call(url, 'GET', '/v1/health');
  const local = health.json.local as {
    s3Endpoint: string;
    bucket: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  };
  const s3 = new S3Client({
    endpoint: local.s3Endpoint,
    region: local.region,
    forcePathStyle: true,
    credentials: { accessKeyId: local.accessKeyId, secretAccessKey: local.secretAccessKey },
  });
  try {
    const body = ids.map((id) => JSON.stringify({ id, values: vectorOf(id, dim) })).join('\n');
    await s3.send(new PutObjectCommand({ Bucket: local.bucket, Key: `imports/${COLLECTION}/${name}`, Body: body }));
  } finally {
    s3.destroy();
  }
}

const FINAL = new Set(['succeeded', 'partial', 'failed', 'cancelled']);

async function settleImports(url: string, ms: number, log: (s: string) => void): Promise<string[]> {
  const deadline = Date.now() + ms;
  let open: string[] = [];
  for (;;) {
    const res = await call(url, 'GET', `/v1/collections/${COLLECTION}/imports`);
    const jobs = (res.json.jobs ?? []) as Array<{ jobId: string; state: string; uri: string }>;
    open = jobs.filter((j) => !FINAL.has(j.state)).map((j) => `${j.jobId} ${j.state} ${j.uri}`);
    if (open.length === 0 || Date.now() > deadline) return open;
    log(`waiting for ${open.length} import job(s) to end`);
    await new Promise((r) => setTimeout(r, 2_000));
  }
}

interface Ledger {
  live: Set<string>;
  deleted: Set<string>;
  attempted: Set<string>;
  maybe: Set<string>;
  importIds: Array<{ file: string; ids: string[] }>;
}

async function getIds(url: string, ids: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 1000) {
    const res = await call(url, 'POST', `/v1/collections/${COLLECTION}/vectors/get`, { ids: ids.slice(i, i + 1000) });
    if (res.status !== 200) throw new Error(`get answered ${res.status}: ${JSON.stringify(res.json)}`);
    for (const v of res.json.vectors as Array<{ id: string }>) found.add(v.id);
  }
  return found;
}

/**
 * A strong read as a client makes it: a typed 503 (the tail could not be read within the strong-read
 * budget while the builder catches up after the kills) is retried for up to two minutes.
 */
async function strongRead(url: string, method: string, route: string, body?: unknown): ReturnType<typeof call> {
  let res = await call(url, method, route, body);
  for (let attempt = 0; res.status === 503 && attempt < 60; attempt++) {
    await new Promise((r) => setTimeout(r, 2_000));
    res = await call(url, method, route, body);
  }
  return res;
}

async function topIds(url: string, vectors: number[][]): Promise<string[]> {
  const body = { vectors, k: 1, consistency: 'strong' };
  const res = await strongRead(url, 'POST', `/v1/collections/${COLLECTION}/search`, body);
  if (res.status !== 200) throw new Error(`search answered ${res.status}: ${JSON.stringify(res.json)}`);
  return (res.json.results as Array<Array<{ id: string }>>).map((l) => l[0]?.id ?? '');
}

async function verify(
  url: string,
  dim: number,
  ledger: Ledger,
  log: (s: string) => void,
): Promise<Pick<ChaosReport, 'lost' | 'resurrected' | 'phantoms' | 'countMismatch' | 'importRowsMissing'>> {
  const imported = ledger.importIds.flatMap((f) => f.ids);
  const all = [...ledger.attempted, ...imported];
  log(`verifying ${all.length} ids`);
  const visible = await getIds(url, all);
  const lost = [...ledger.live].filter((id) => !ledger.maybe.has(id) && !visible.has(id));
  const resurrected = [...ledger.deleted].filter((id) => !ledger.maybe.has(id) && visible.has(id));

  // Imports: a job that ended `succeeded` wrote every row of its file.
  const jobs = ((await call(url, 'GET', `/v1/collections/${COLLECTION}/imports`)).json.jobs ?? []) as Array<{
    state: string;
    uri: string;
  }>;
  let importRowsMissing = 0;
  for (const { file, ids } of ledger.importIds) {
    const job = jobs.find((j) => j.uri.endsWith(`/${file}`));
    if (job?.state === 'succeeded') importRowsMissing += ids.filter((id) => !visible.has(id)).length;
  }

  // Count, get, search and delete agree.
  const info = await strongRead(url, 'GET', `/v1/collections/${COLLECTION}`);
  if (info.status !== 200) throw new Error(`stats answered ${info.status}: ${JSON.stringify(info.json)}`);
  const count = (info.json.stats as { count: number }).count;
  const phantoms: string[] = [];
  const visibleList = [...visible];
  for (let i = 0; i < visibleList.length; i += 100) {
    const ids = visibleList.slice(i, i + 100);
    const tops = await topIds(
      url,
      ids.map((id) => vectorOf(id, dim)),
    );
    ids.forEach((id, j) => {
      if (tops[j] !== id) phantoms.push(`${id}: visible to get, strong search for its vector returned ${tops[j]}`);
    });
  }
  const invisible = [...ledger.maybe].filter((id) => !visible.has(id));
  for (let i = 0; i < invisible.length; i += 100) {
    const ids = invisible.slice(i, i + 100);
    const tops = await topIds(
      url,
      ids.map((id) => vectorOf(id, dim)),
    );
    ids.forEach((id, j) => {
      if (tops[j] === id) phantoms.push(`${id}: absent from get, found by strong search`);
    });
    const del = await call(url, 'POST', `/v1/collections/${COLLECTION}/vectors/delete`, { ids });
    if ((del.json.deleted as number) !== 0)
      phantoms.push(`delete of ${ids.length} ids absent from get deleted ${String(del.json.deleted)}`);
  }
  return {
    lost,
    resurrected,
    phantoms,
    importRowsMissing,
    ...(count !== visible.size ? { countMismatch: { count, visible: visible.size } } : {}),
  };
}
