/**
 * `npm start` as a newcomer runs it: a real child process (infra/local/main.ts under tsx), driven over
 * HTTP and stopped with signals. Covers the PID file, SIGTERM and a killed npm launcher (the server
 * must not outlive it), the request log and --quiet, the fixed S3 port, /healthz and flag validation.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/repo.js';
import { freePort } from '../helpers/ports.js';

const REQUEST_LINE = /^GET \/v1\/collections 200 \d+\.\dms req=[0-9a-f-]{36}$/m;

interface Cli {
  child: ChildProcess;
  dataDir: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Cli[] = [];
const dirs: string[] = [];

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of ['SHOAL_API_KEY', 'PORT', 'SHOAL_DATA_DIR', 'SHOAL_S3_PORT', 'POWERTOOLS_LOG_LEVEL']) {
    if (!(k in extra)) delete env[k];
  }
  return env;
}

async function launch(
  args: string[],
  opts: { viaNpm?: boolean; env?: Record<string, string>; dataDir?: string } = {},
): Promise<Cli> {
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'shoal-cli-')));
  dirs.push(dataDir);
  const full = ['--data-dir', dataDir, ...args];
  const child = opts.viaNpm
    ? spawn('npm', ['start', '--silent', '--', ...full], { cwd: ROOT, env: cleanEnv(opts.env) })
    : spawn(process.execPath, ['--import', 'tsx', 'infra/local/main.ts', ...full], {
        cwd: ROOT,
        env: cleanEnv(opts.env),
      });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const cli = { child, dataDir, output: () => out, exited };
  started.push(cli);
  return cli;
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForUrl(cli: Cli): Promise<string> {
  return waitFor(`the API URL in:\n${cli.output()}`, () => /API\s+(http:\/\/\S+)/.exec(cli.output())?.[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether nothing listens on the port: a new server can bind it. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function serverPid(dataDir: string): Promise<number> {
  return Number((await readFile(path.join(dataDir, 'shoal.pid'), 'utf8')).trim());
}

afterEach(async () => {
  // A failed test must not leave servers behind: the ones this file started, and nothing else.
  for (const cli of started.splice(0)) {
    const pid = await serverPid(cli.dataDir).catch(() => undefined);
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
  }
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('npm start (infra/local/main.ts)', () => {
  it('writes shoal.pid, logs requests, serves /healthz, uses --s3-port, and SIGTERM frees both ports', async () => {
    const s3Port = await freePort();
    const cli = await launch(['--port', '0', '--s3-port', String(s3Port)]);
    const url = await waitForUrl(cli);
    const port = Number(new URL(url).port);
    expect(await serverPid(cli.dataDir)).toBe(cli.child.pid);
    const key = (await readFile(path.join(cli.dataDir, 'api-key'), 'utf8')).trim();

    const live = await fetch(`${url}/healthz`);
    expect(live.status).toBe(200);
    const liveBody = await live.text();
    expect(liveBody).toMatch(/^\{"status":"ok","version":"[^"]+"\}\n$/);

    expect((await fetch(`${url}/v1/health`)).status).toBe(401);
    const health = await fetch(`${url}/v1/health`, { headers: { authorization: `Bearer ${key}` } });
    const healthBody = await health.text();
    expect(healthBody.endsWith('\n')).toBe(true);
    expect((JSON.parse(healthBody) as { local: { s3Endpoint: string } }).local.s3Endpoint).toBe(
      `http://127.0.0.1:${s3Port}`,
    );
    expect(await canBind(s3Port)).toBe(false);

    expect((await fetch(`${url}/v1/collections`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    await waitFor('a request-log line', () => (REQUEST_LINE.test(cli.output()) ? true : undefined), 10_000);

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(path.join(cli.dataDir, 'shoal.pid'))).toBe(false);
    expect(await canBind(port)).toBe(true);
    expect(await canBind(s3Port)).toBe(true);
  });

  it('stops the server when the npm process a script started is killed; --quiet logs no requests', async () => {
    const cli = await launch(['--port', '0', '--s3-port', '0', '--quiet'], { viaNpm: true });
    const url = await waitForUrl(cli);
    const port = Number(new URL(url).port);
    const pid = await serverPid(cli.dataDir);
    expect(pid).not.toBe(cli.child.pid);
    const key = (await readFile(path.join(cli.dataDir, 'api-key'), 'utf8')).trim();
    expect((await fetch(`${url}/v1/collections`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    // The gateway logs on 'finish', right after the client has its response; give a line time to show.
    await new Promise((r) => setTimeout(r, 300));
    expect(cli.output()).not.toMatch(/^GET \/v1\/collections/m);

    cli.child.kill('SIGTERM'); // npm's PID, the one `npm start &` hands a script
    await cli.exited;
    await waitFor('the server to exit after npm', () => (alive(pid) ? undefined : true), 30_000);
    expect(existsSync(path.join(cli.dataDir, 'shoal.pid'))).toBe(false);
    expect(await canBind(port)).toBe(true);
  });

  it('rejects bad ports naming the flag or variable, and names --s3-port when it is taken', async () => {
    const cases: Array<{ args: string[]; env?: Record<string, string>; message: RegExp }> = [
      { args: ['--s3-port', 'abc'], message: /invalid --s3-port: abc/ },
      { args: ['--s3-port=-1'], message: /invalid --s3-port: -1/ },
      { args: [], env: { SHOAL_S3_PORT: '70000' }, message: /invalid SHOAL_S3_PORT \(environment\): 70000/ },
      { args: ['--port', '8.5'], message: /invalid --port: 8\.5/ },
      { args: ['--port', '9123', '--s3-port', '9123'], message: /--port and --s3-port are both 9123/ },
    ];
    for (const c of cases) {
      const cli = await launch(c.args, { env: c.env });
      expect(await cli.exited, c.args.join(' ')).toEqual({ code: 2, signal: null });
      expect(cli.output()).toMatch(c.message);
    }

    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      const taken = (blocker.address() as { port: number }).port;
      const cli = await launch(['--port', '0', '--s3-port', String(taken)]);
      expect(await cli.exited).toEqual({ code: 1, signal: null });
      expect(cli.output()).toContain(`port ${taken} is in use (--s3-port / SHOAL_S3_PORT; 0 = any free port)`);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
