/**
 * Mixed load at a fixed rate against the local stack, before, during and after a large index build
 * (issue 12): does a build hurt the searches served beside it, and by how much?
 *
 *   npm run bench:load                 # MNIST 20 000 × 784, 20 req/s, 60 s phases
 *   npm run bench:load -- --quick      # 3 000 rows, 10 s phases
 *
 * The stack runs as `npm start` does (infra/local/main.ts, a child process on loopback, a temporary
 * data dir, --quiet), with the batching policy's automatic builds off, so builds happen only when
 * the bench asks. The workload (autocannon, one body per request): 40 % strong search, 40 % eventual
 * search, 15 % upsert of one vector, 5 % delete of one id the workload wrote. Three phases:
 *
 * 1. no build running;
 * 2. while a large build runs: a candidate index line (other hnsw settings) over every row, started
 *    by `POST /v1/collections/{name}/index`; the phase ends when the candidate has a head (or after
 *    the phase length, whichever is first);
 * 3. the phase after the build: the candidate is promoted, so searches load its new shards.
 *
 * Rate: autocannon's `overallRate` is split over the connections, each sending its share per second
 * (closed loop within the second), so arrivals come in small bursts rather than evenly spaced.
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { DATASET_NAMES, datasetDir, loadDataset, type Dataset, type DatasetName } from '../shared/io/datasets.js';
import { machineLine, parseCli, type BenchCli, type BenchSpec } from './cli.js';
import { Progress } from './progress.js';

export const SPEC: BenchSpec = {
  name: 'load',
  summary:
    'Fixed-rate mixed load (search/upsert/delete) on the local stack: latency with no build, during a large build,' +
    ' and after it.',
  quick: '3 000 rows, 10 s phases',
  options: [
    { flag: '--dataset', arg: 'name', help: `one of ${DATASET_NAMES.join(', ')} (default mnist)` },
    { flag: '--rows', arg: 'n', help: 'base rows (default 20000; quick 3000)' },
    { flag: '--rate', arg: 'req/s', help: 'fixed request rate (default 20)' },
    { flag: '--duration', arg: 's', help: 'seconds per phase (default 60; quick 10)' },
    { flag: '--connections', arg: 'n', help: 'client connections (default 4)' },
  ],
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KEY = 'bench-load-key';
const COLLECTION = 'load';
const CANDIDATE = 'wide';
/** The candidate's settings: another graph than the serving default (m 16), so the build is a full one. */
const CANDIDATE_INDEX = { m: 24, efConstruction: 200 };
/** p99 during a build over p99 without one: issue 12's target. */
export const TARGET_RATIO = 3;

export const MIX = { strong: 0.4, eventual: 0.4, upsert: 0.15, delete: 0.05 } as const;
export type Op = keyof typeof MIX;
const OPS = Object.keys(MIX) as Op[];

export interface PhaseRow {
  phase: 'no build' | 'during build' | 'after build';
  duration_s: number;
  requests: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Per operation: requests and p99 (ms). */
  ops: Record<Op, { requests: number; p99_ms: number }>;
}

export interface LoadSummary {
  rows: PhaseRow[];
  /** p99 during the build / p99 with no build. */
  ratio: number;
  target: number;
  pass: boolean;
  build: { seconds: number; finishedInPhase: boolean; rows: number };
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The summary of the three phases: ratio and verdict against the target. */
export function summarize(rows: PhaseRow[], build: LoadSummary['build']): LoadSummary {
  const base = rows.find((r) => r.phase === 'no build');
  const during = rows.find((r) => r.phase === 'during build');
  const ratio = base && during && base.p99_ms > 0 ? during.p99_ms / base.p99_ms : NaN;
  const clean = rows.every((r) => r.errors === 0 && r.timeouts === 0 && r.non2xx === 0);
  return { rows, ratio, target: TARGET_RATIO, pass: ratio <= TARGET_RATIO && clean, build };
}

const LONG_BUILD = ' (longer than the phase, which saw its first part)';

/** The markdown report. */
export function formatReport(
  s: LoadSummary,
  info: { started: string; machine: string; command: string; parameters: Record<string, unknown> },
): string {
  const f = (x: number, d = 1) =>
    Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '—';
  const p = info.parameters;
  return [
    `# Load benchmark — ${info.started}`,
    '',
    `Machine: ${info.machine}. Command: \`${info.command}\`.`,
    `Dataset: ${String(p.dataset)} (${String(p.rows)} rows × ${String(p.dim)}, ${String(p.metric)}).` +
      ` Rate ${String(p.rate)} req/s over ${String(p.connections)} connections, ${String(p.duration_s)} s phases;` +
      ` mix ${OPS.map((o) => `${Math.round(MIX[o] * 100)} % ${o}`).join(', ')}; k ${String(p.k)}.`,
    'The local stack (`npm start`: embedded S3/DynamoDB/SQS, the builder in its own thread) runs as a child' +
      ' process on loopback; autocannon drives it from this one.',
    `Large build: candidate line \`${CANDIDATE}\` (${JSON.stringify(CANDIDATE_INDEX)}) over ${s.build.rows} rows,` +
      ` ${f(s.build.seconds)} s${s.build.finishedInPhase ? '' : LONG_BUILD};` +
      ' promoted before the third phase, whose searches load its shards.',
    '',
    '| phase | s | requests | req/s | p50 ms | p99 ms | max ms | errors | timeouts | non-2xx |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...s.rows.map(
      (r) =>
        `| ${r.phase} | ${f(r.duration_s)} | ${r.requests} | ${f(r.rps)} | ${f(r.p50_ms)} | ${f(r.p99_ms)} |` +
        ` ${f(r.max_ms)} | ${r.errors} | ${r.timeouts} | ${r.non2xx} |`,
    ),
    '',
    '| phase | ' + OPS.map((o) => `${o} p99 ms (n)`).join(' | ') + ' |',
    '|---|' + OPS.map(() => '---:').join('|') + '|',
    ...s.rows.map(
      (r) => `| ${r.phase} | ${OPS.map((o) => `${f(r.ops[o].p99_ms)} (${r.ops[o].requests})`).join(' | ')} |`,
    ),
    '',
    `p99 during the build / p99 with no build: **${f(s.ratio, 2)}×** (target ≤ ${s.target}×) —` +
      ` ${s.pass ? 'met' : 'NOT met'}.`,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------
// The run (only when executed, not when a test imports the report functions)

interface Server {
  url: string;
  child: ChildProcess;
  dataDir: string;
  /** Stops forwarding the stack's stderr. */
  mute(): void;
}

async function startServer(): Promise<Server> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-load-'));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'infra/local/main.ts', '--port', '0', '--s3-port', '0', '--data-dir', dataDir, '--quiet'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SHOAL_API_KEY: KEY,
        // Builds only when the bench asks: the batching policy would otherwise start delta builds mid-phase.
        SHOAL_BUILD_DELTA_MIN_ROWS: '10000000',
        SHOAL_BUILD_DELTA_MAX_AGE_S: '86400',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    },
  );
  // The stack's warnings show with the progress; once the bench stops it, its shutdown noise does not.
  const forward = (chunk: Buffer) => process.stderr.write(`[shoal] ${chunk.toString()}`);
  child.stderr?.on('data', forward);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the local stack did not start in 90 s:\n${out}`)), 90_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /API\s+(http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the local stack exited (code ${code}) before it was up:\n${out}`));
    });
  });
  return { url, child, dataDir, mute: () => child.stderr?.off('data', forward) };
}

async function stopServer(s: Server): Promise<void> {
  s.mute();
  if (s.child.exitCode === null) {
    const exited = new Promise<void>((resolve) => s.child.once('exit', () => resolve()));
    s.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  }
  await rm(s.dataDir, { recursive: true, force: true });
}

function loadAnyDataset(cli: BenchCli, wanted: DatasetName, maxBase: number): { ds: Dataset; note?: string } {
  const order = [wanted, ...DATASET_NAMES.filter((n) => n !== wanted)];
  const failures: string[] = [];
  for (const name of order) {
    try {
      const ds = loadDataset(name, { maxBase, maxQueries: 1000 });
      return name === wanted ? { ds } : { ds, note: `${wanted} is missing (${failures[0]}); using ${name}` };
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  return cli.fail(`no dataset found under ${datasetDir()} (set SHOAL_DATASETS):\n  ${failures.join('\n  ')}`);
}

/** A seeded PRNG for the operation mix (the same sequence of operations on every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

async function main(): Promise<void> {
  const cli = parseCli(SPEC);
  const quick = cli.quick;
  const wanted = (cli.value('--dataset') ?? 'mnist') as DatasetName;
  if (!DATASET_NAMES.includes(wanted)) cli.fail(`--dataset must be one of ${DATASET_NAMES.join(', ')}`);
  const rowsWanted = cli.int('--rows') ?? (quick ? 3000 : 20_000);
  const rate = cli.int('--rate') ?? 20;
  const phaseS = cli.int('--duration') ?? (quick ? 10 : 60);
  const connections = Math.min(cli.int('--connections') ?? 4, rate);
  const k = 10;

  const { ds, note } = loadAnyDataset(cli, wanted, rowsWanted);
  if (note) process.stderr.write(`bench:load: ${note}\n`);
  const { dim, baseCount: rows, metric } = ds;
  const progress = new Progress(7);
  const vec = (arr: Float32Array, i: number) => `[${Array.from(arr.subarray(i * dim, (i + 1) * dim)).join(',')}]`;

  progress.step('starting the local stack');
  const server = await startServer();
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const call = async (method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${server.url}${route}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
  };
  const must = async (method: string, route: string, body?: unknown) => {
    const r = await call(method, route, body);
    if (r.status >= 300) throw new Error(`${method} ${route}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  };
  const base = `/v1/collections/${COLLECTION}`;

  try {
    progress.step(`ingesting ${rows} × ${dim} (${ds.name})`);
    await must('POST', '/v1/collections', { name: COLLECTION, dimension: dim, metric });
    for (let start = 0; start < rows; start += 250) {
      const parts: string[] = [];
      for (let i = start; i < Math.min(rows, start + 250); i++)
        parts.push(`{"id":"b${i}","values":${vec(ds.base, i)},"metadata":{"i":${i}}}`);
      const res = await fetch(`${server.url}${base}/vectors`, {
        method: 'POST',
        headers,
        body: `{"vectors":[${parts.join(',')}]}`,
      });
      if (res.status !== 200) throw new Error(`ingest: ${res.status} ${await res.text()}`);
    }
    progress.step('initial build');
    await must('POST', `${base}/index`);
    await waitFor(async () => ((await must('GET', `${base}/versions`)) as { versions: unknown[] }).versions.length > 0);

    // --- The workload: bodies prepared up front so the client spends its time sending.
    const queries = Array.from({ length: ds.queryCount }, (_, q) => vec(ds.queries, q));
    const pool = Array.from({ length: Math.min(rows, 2000) }, (_, i) => vec(ds.base, (i * 7) % rows));
    const random = rng(12345);
    let written = 0;
    const live: string[] = [];
    const pick = (): Op => {
      let x = random();
      for (const op of OPS) if ((x -= MIX[op]) < 0) return op;
      return 'strong';
    };
    type Ctx = { op?: Op; t0?: number };
    const bodyFor = (op: Op): { path: string; body: string } => {
      if (op === 'strong' || op === 'eventual') {
        const q = queries[Math.floor(random() * queries.length)];
        return { path: `${base}/search`, body: `{"vector":${q},"k":${k},"consistency":"${op}"}` };
      }
      if (op === 'upsert' || live.length === 0) {
        const id = `w${written++}`;
        live.push(id);
        const v = pool[written % pool.length];
        return { path: `${base}/vectors`, body: `{"vectors":[{"id":"${id}","values":${v},"metadata":{"w":1}}]}` };
      }
      const id = live.splice(Math.floor(random() * live.length), 1)[0];
      return { path: `${base}/vectors/delete`, body: `{"ids":["${id}"]}` };
    };

    const runPhase = async (
      phase: PhaseRow['phase'],
      during?: (stop: () => void) => Promise<void>,
    ): Promise<PhaseRow> => {
      const samples = Object.fromEntries(OPS.map((o) => [o, [] as number[]])) as Record<Op, number[]>;
      let finish!: (err: Error | null, result: autocannon.Result) => void;
      const done = new Promise<autocannon.Result>((resolve, reject) => {
        finish = (err, result) => (err ? reject(err) : resolve(result));
      });
      const instance = autocannon(
        {
          url: server.url,
          connections,
          overallRate: rate,
          duration: phaseS,
          timeout: 30,
          headers,
          requests: [
            {
              method: 'POST',
              setupRequest: (req, context: Ctx) => {
                const op = pick();
                const { path: p, body } = bodyFor(op);
                context.op = op;
                context.t0 = performance.now();
                return { ...req, method: 'POST', path: p, body };
              },
              onResponse: (_status, _body, context: Ctx) => {
                if (context.op === undefined || context.t0 === undefined) return;
                const ms = performance.now() - context.t0;
                samples[context.op].push(ms);
              },
            },
          ],
        },
        (err, result) => finish(err, result),
      );
      const started = performance.now();
      if (during) await during(() => instance.stop());
      const result = await done;
      const seconds = (performance.now() - started) / 1000;
      const ops = Object.fromEntries(
        OPS.map((o) => {
          const s = samples[o].sort((a, b) => a - b);
          return [o, { requests: s.length, p99_ms: percentile(s, 99) }];
        }),
      ) as PhaseRow['ops'];
      return {
        phase,
        duration_s: seconds,
        requests: result.requests.total,
        rps: result.requests.total / seconds,
        p50_ms: result.latency.p50,
        p99_ms: result.latency.p99,
        max_ms: result.latency.max,
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
        ops,
      };
    };

    // Warm-up (not recorded): the first searches load the shards.
    for (let q = 0; q < 20; q++)
      await must('POST', `${base}/search`, { vector: Array.from(ds.queries.subarray(q * dim, (q + 1) * dim)), k });

    progress.step(`phase 1: no build (${phaseS} s at ${rate} req/s)`);
    const rowsOut: PhaseRow[] = [await runPhase('no build')];

    progress.step('phase 2: during a large build');
    let buildSeconds = NaN;
    let finishedInPhase = false;
    let built: Promise<void> = Promise.resolve();
    rowsOut.push(
      await runPhase('during build', async (stop) => {
        const t0 = performance.now();
        await must('POST', `${base}/index`, { index: CANDIDATE_INDEX, candidate: CANDIDATE });
        const deadline = t0 + phaseS * 1000;
        built = (async () => {
          await waitFor(
            async () => ((await must('GET', `${base}/candidates/${CANDIDATE}`)) as { head: unknown }).head !== null,
            30 * 60_000,
          );
          buildSeconds = (performance.now() - t0) / 1000;
          if (performance.now() < deadline) {
            finishedInPhase = true;
            stop();
          }
        })();
      }),
    );
    await built;

    progress.step('phase 3: after the build (candidate promoted)');
    await must('POST', `${base}/candidates/${CANDIDATE}/promote`, { force: true, reason: 'bench:load' });
    rowsOut.push(await runPhase('after build'));
    progress.done();

    const summary = summarize(rowsOut, { seconds: buildSeconds, finishedInPhase, rows });
    const parameters = {
      dataset: ds.name,
      rows,
      dim,
      metric,
      rate,
      connections,
      duration_s: phaseS,
      k,
      mix: MIX,
      candidate: CANDIDATE_INDEX,
    };
    cli.out({
      markdown: formatReport(summary, {
        started: cli.started.toISOString(),
        machine: machineLine(cli.machine),
        command: cli.command,
        parameters,
      }),
      parameters,
      rows: rowsOut,
      tables: { summary: { ratio: summary.ratio, target: summary.target, pass: summary.pass, build: summary.build } },
      // Recorded files of a non-default configuration say which.
      ...(cli.value('--dataset') || cli.value('--rows') || cli.value('--rate')
        ? { variant: `${ds.name}-${rows}-${rate}rps` }
        : {}),
    });
  } finally {
    await stopServer(server);
  }
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 10 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// Run when executed (`npm run bench:load`); a test imports the report functions only.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
