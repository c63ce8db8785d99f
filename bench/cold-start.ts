/**
 * Cold start of every Lambda function: each `functions/<name>/handler.ts` is bundled with the options
 * the CDK uses (SHOAL_BUNDLING in infra/cdk/constructs/shoal-function.ts, mapped onto esbuild's API as
 * aws-cdk-lib maps them onto its CLI), then a fresh `node` imports the bundle with the environment the
 * synthesized stack gives that function (tokens replaced by dummy names, credentials dummy, region
 * us-east-1). Init = `performance.now()` (ms since the process started) once the module is evaluated,
 * median over the runs; beside it the same for a bare `node -e` started in between, the same number of
 * times. Not measured: the Lambda runtime's own bootstrap, and the nodejs22.x SDK copy (the SDK is
 * external, loaded here from node_modules).
 *
 * What ran at load is observed in the child, not guessed: the AWS SDK packages required (require.cache),
 * the SDK client objects alive after init (v8.queryObjects per `*Client` class), WASM instances, and any
 * socket connect (Socket.prototype.connect is wrapped; a connect during init is a finding). A second
 * child per function runs without SHOAL_CATALOG_TABLE: the import must throw (config fails the cold start).
 *
 *   npm run bench:cold-start               # 9 runs per function
 *   npm run bench:cold-start -- --quick    # 5 runs
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { build } from 'esbuild';
import { PROJECT_ROOT, SHOAL_BUNDLING, type ShoalFunction } from '../infra/cdk/constructs/shoal-function.js';
import { createShoal } from '../infra/cdk/shoal.js';
import { machineLine, parseCli } from './cli.js';
import { Progress } from './progress.js';

const cli = parseCli({
  name: 'cold-start',
  summary: 'Bundle size and module init time of every Lambda function, with what runs at load',
  quick: '5 runs per function instead of 9',
  options: [{ flag: '--runs', arg: 'n', help: 'init runs per function (default 9, --quick 5)' }],
});
const RUNS = cli.int('--runs') ?? (cli.quick ? 5 : 9);
/** How long a child waits after init for late (fire-and-forget) network calls of the module. */
const LATE_NETWORK_MS = 100;
const MARK = '__cold_start__';

/** The child: imports one bundle and reports what init did. Plain .mjs so no loader is involved. */
const PROBE = `
import net from 'node:net';
import v8 from 'node:v8';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
const bundle = process.argv[2];
const connects = [];
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const o = args[0];
  connects.push(o && typeof o === 'object' ? (o.path ?? \`\${o.host ?? 'localhost'}:\${o.port}\`) : String(o));
  return connect.apply(this, args);
};
let error;
try {
  await import(pathToFileURL(bundle).href);
} catch (err) {
  error = String(err?.message ?? err).slice(0, 200);
}
const initMs = performance.now();
await new Promise((r) => setTimeout(r, ${LATE_NETWORK_MS}));
const require = createRequire(bundle);
const files = Object.keys(require.cache);
const pkgOf = (f) => /.*node_modules\\/(@aws-sdk\\/[^/]+)\\//.exec(f)?.[1];
const sdk = [...new Set(files.map(pkgOf).filter(Boolean))].sort();
const clients = {};
for (const pkg of sdk.filter((p) => /\\/(client-|lib-)/.test(p))) {
  const classes = Object.entries(require(pkg)).filter(([, v]) => typeof v === 'function' && v.prototype);
  for (const [name, value] of classes) {
    if (!/^[A-Z]\\w*Client$/.test(name)) continue;
    // queryObjects also counts the prototypes of subclasses (the aggregated \`DynamoDB extends DynamoDBClient\`).
    const subclasses = classes.filter(([, c]) => c !== value && value.prototype.isPrototypeOf(c.prototype)).length;
    const count = v8.queryObjects(value, { format: 'count' }) - subclasses;
    if (count) clients[name] = count;
  }
}
const wasm = v8.queryObjects(WebAssembly.Instance, { format: 'count' });
const report = { initMs, error, sdk, clients, wasm, connects, cjsFiles: files.length };
process.stdout.write('\\n${MARK}' + JSON.stringify(report));
process.exit(0);
`;

interface Probe {
  initMs: number;
  error?: string;
  sdk: string[];
  clients: Record<string, number>;
  wasm: number;
  connects: string[];
  cjsFiles: number;
}

/** The functions, by their directory under functions/, and the construct that deploys each. */
const CONSTRUCTS: Record<string, (c: ReturnType<typeof createShoal>['service']['compute']) => ShoalFunction> = {
  api: (c) => c.api,
  authorizer: (c) => c.authorizer,
  'build-worker': (c) => c.buildWorker,
  import: (c) => c.importer,
  'index-builder': (c) => c.indexBuilder,
  'shard-search': (c) => c.shardSearch[0],
};

/** A deployed value for a CloudFormation token (a cross-stack table, bucket or queue reference). */
function dummy(key: string): string {
  return key.endsWith('_URL')
    ? `https://sqs.us-east-1.amazonaws.com/123456789012/shoal-cold-start-${key.toLowerCase()}`
    : `shoal-cold-start-${key.toLowerCase().replaceAll('_', '-')}`;
}

/** Each function's environment and memory as the stack deploys them (synthesized without bundling). */
function deployedFunctions(): Map<string, { env: Record<string, string>; memoryMb: number }> {
  const context = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: object })
    .context;
  const stacks = createShoal(new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } }));
  const resources = Template.fromStack(stacks.service).toJSON().Resources as Record<
    string,
    { Properties: { Environment?: { Variables?: Record<string, unknown> }; MemorySize: number } }
  >;
  const out = new Map<string, { env: Record<string, string>; memoryMb: number }>();
  for (const [name, pick] of Object.entries(CONSTRUCTS)) {
    const fn = pick(stacks.service.compute).fn;
    const props = resources[Stack.of(fn).getLogicalId(fn.node.defaultChild as never)].Properties;
    const env = Object.entries(props.Environment?.Variables ?? {}).map(([k, v]) => [
      k,
      typeof v === 'string' ? v : dummy(k),
    ]);
    out.set(name, { env: Object.fromEntries(env), memoryMb: props.MemorySize });
  }
  return out;
}

/** What the Lambda runtime adds to every function's environment (credentials dummy: init must not use them). */
function lambdaEnv(name: string, memoryMb: number, dir: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TZ: ':UTC',
    LANG: 'en_US.UTF-8',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'ASIACOLDSTARTDUMMY',
    AWS_SECRET_ACCESS_KEY: 'cold-start-dummy-secret',
    AWS_SESSION_TOKEN: 'cold-start-dummy-token',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: `shoal-cold-start-${name}`,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
    AWS_LAMBDA_LOG_FORMAT: 'JSON',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/shoal-cold-start-${name}`,
    LAMBDA_TASK_ROOT: dir,
    _HANDLER: 'index.handler',
  };
}

/** esbuild with the CDK's options (aws-lambda-nodejs/lib/bundling.js, buildEsbuildArgs), then its hooks. */
async function bundle(entry: string, outDir: string): Promise<{ file: string; staticSdk: string[] }> {
  const b = SHOAL_BUNDLING;
  const result = await build({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    bundle: true,
    platform: 'node',
    target: b.target,
    format: b.format,
    outfile: path.join(outDir, 'index.mjs'),
    minify: b.minify,
    sourcemap: b.sourceMap ? b.sourceMapMode : false,
    sourcesContent: b.sourcesContent,
    external: b.externalModules,
    banner: { js: b.banner },
    mainFields: b.mainFields,
    metafile: true,
    logLevel: 'warning',
  });
  for (const cmd of b.commandHooks.afterBundling(PROJECT_ROOT, outDir)) execFileSync('bash', ['-c', cmd]);
  const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined);
  const staticSdk = (output?.imports ?? [])
    .filter((i) => i.external && i.kind === 'import-statement' && i.path.startsWith('@aws-sdk/'))
    .map((i) => i.path);
  return { file: path.join(outDir, 'index.mjs'), staticSdk: [...new Set(staticSdk)].sort() };
}

function run(args: string[], env: Record<string, string>): Probe {
  const res = spawnSync(process.execPath, args, { env, encoding: 'utf8', timeout: 60_000 });
  const line = res.stdout.split('\n').find((l) => l.startsWith(MARK));
  if (!line) throw new Error(`child exited ${res.status}: ${res.stderr.slice(0, 500)}`);
  return JSON.parse(line.slice(MARK.length)) as Probe;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const kb = (bytes: number) => round(bytes / 1024);

async function main(): Promise<void> {
  const names = readdirSync(path.join(PROJECT_ROOT, 'functions'))
    .filter((d) => statSync(path.join(PROJECT_ROOT, 'functions', d, 'handler.ts'), { throwIfNoEntry: false }))
    .sort();
  const unknown = names.filter((n) => !(n in CONSTRUCTS));
  if (unknown.length) throw new Error(`functions without a construct in bench/cold-start.ts: ${unknown.join(', ')}`);
  const progress = new Progress(names.length + 1);
  const deployed = deployedFunctions();
  progress.step('synthesized the service stack (environments)');

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'shoal-cold-start-'));
  try {
    // The SDK is external (the runtime ships it); the bundles find it through this link.
    await symlink(path.join(PROJECT_ROOT, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');
    const probe = path.join(tmp, 'probe.mjs');
    await writeFile(probe, PROBE);
    const bareMs: number[] = [];
    const bare = () => {
      const env = { PATH: process.env.PATH ?? '', NODE_OPTIONS: '--enable-source-maps' };
      const code = `process.stdout.write('\\n${MARK}' + JSON.stringify({ initMs: performance.now() }))`;
      bareMs.push(run(['-e', code], env).initMs);
    };

    const measured = [];
    for (const name of names) {
      const dir = path.join(tmp, name);
      await mkdir(dir);
      const { file, staticSdk } = await bundle(`functions/${name}/handler.ts`, dir);
      const bytes = readFileSync(file);
      const { env: fnEnv, memoryMb } = deployed.get(name)!;
      // The shard cache's disk tier goes under the temp dir, not the machine's /tmp/shoal-shards.
      const env = { ...lambdaEnv(name, memoryMb, dir), ...fnEnv };
      if (env.SHOAL_SHARD_CACHE_DIR) env.SHOAL_SHARD_CACHE_DIR = path.join(dir, 'shards');
      const probes: Probe[] = [];
      for (let i = 0; i < RUNS; i++) {
        bare();
        probes.push(run([probe, file], env));
      }
      const failed = probes.find((p) => p.error);
      if (failed) throw new Error(`${name}: init failed: ${failed.error}`);
      const { SHOAL_CATALOG_TABLE: _dropped, ...withoutTable } = env;
      const unconfigured = run([probe, file], withoutTable);
      const last = probes[probes.length - 1];
      measured.push({
        name,
        bytes: bytes.length,
        gzip: gzipSync(bytes).length,
        initMs: median(probes.map((p) => p.initMs)),
        staticSdk,
        last,
        failsFast: unconfigured.error !== undefined && /SHOAL_CATALOG_TABLE/.test(unconfigured.error),
      });
      const m = measured[measured.length - 1];
      progress.step(`${name}: ${kb(m.bytes)} KB, init p50 ${round(m.initMs)} ms`);
    }
    progress.done();

    const bareP50 = median(bareMs);
    const rows = measured.map((m) => {
      const clients = Object.entries(m.last.clients).map(([c, n]) => (n > 1 ? `${c}×${n}` : c));
      const notes = [
        `SDK at load: ${m.last.sdk.filter((p) => /\/(client-|lib-)/.test(p)).join(', ') || 'none'}`,
        `clients at load: ${clients.join(', ') || 'none'}`,
        ...(m.last.wasm ? [`WASM instances: ${m.last.wasm}`] : []),
        `network at load: ${m.last.connects.join(', ') || 'none'}`,
        `config fails fast: ${m.failsFast ? 'yes' : 'NO'}`,
      ];
      return {
        function: m.name,
        bundleBytes: m.bytes,
        gzipBytes: m.gzip,
        initMsP50: round(m.initMs),
        initMsMinusBare: round(m.initMs - bareP50),
        sdkImportedStatically: m.staticSdk,
        sdkPackagesLoaded: m.last.sdk,
        clientsAtLoad: m.last.clients,
        wasmInstancesAtLoad: m.last.wasm,
        networkAtLoad: m.last.connects,
        cjsModulesLoaded: m.last.cjsFiles,
        configFailsFast: m.failsFast,
        notes: notes.join('; '),
      };
    });
    const markdown = [
      '# Cold start: bundle size and module init per function',
      '',
      `Machine: ${machineLine(cli.machine)}. Init = ms from process start until the bundle is evaluated ` +
        `(\`performance.now()\` after \`await import(bundle)\`, NODE_OPTIONS=--enable-source-maps as deployed), ` +
        `median of ${RUNS} runs; bare \`node -e\` p50 ${round(bareP50)} ms (${bareMs.length} runs, interleaved). ` +
        'The AWS SDK is external (the runtime ships it) and not in the bundle bytes, but its loading is in init. ' +
        'Every bundle also ships shoal-hnsw.wasm beside it (not counted).',
      '',
      '| function | bundle KB | gzip KB | init ms p50 | init ms minus bare node | notes |',
      '|---|---:|---:|---:|---:|---|',
      ...rows.map((r) => {
        const cells = [r.function, kb(r.bundleBytes), kb(r.gzipBytes), r.initMsP50, r.initMsMinusBare, r.notes];
        return `| ${cells.join(' | ')} |`;
      }),
      '',
      `Reproduce: \`${cli.command}\``,
    ].join('\n');
    cli.out({
      markdown,
      parameters: { runs: RUNS, lateNetworkWaitMs: LATE_NETWORK_MS, target: SHOAL_BUNDLING.target },
      rows,
      tables: { bare: { runs: bareMs.length, initMsP50: round(bareP50) } },
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
