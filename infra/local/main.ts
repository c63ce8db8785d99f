/**
 * `npm start`: the whole of Shoal on a laptop (see `shoal.ts` for the wiring).
 *
 *   npm start -- [--port 8787] [--s3-port 8788] [--data-dir .data/] [--quiet]
 *
 * State (S3 objects, DynamoDB tables, the API key) persists in the data dir across restarts.
 * While running, `<data-dir>/shoal.pid` holds this process's id (the server's, not npm's).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalShoal, type LocalShoal } from './shoal.js';

const HELP = `Usage: npm start -- [options]

Runs Shoal locally: the HTTP API, the index builder (SQS + a 30 s schedule) and the shard
searchers, on embedded S3, DynamoDB and SQS emulators.

Options:
  --port <n>        HTTP port (env PORT, default 8787; 0 = any free port)
  --s3-port <n>     S3 emulator port (env SHOAL_S3_PORT, default 8788; 0 = any free port)
  --data-dir <dir>  where S3 objects, DynamoDB tables and the API key persist
                    (env SHOAL_DATA_DIR, default .data/)
  --quiet           no request log, and handler logs at WARN and above only
  -h, --help        show this help

Environment:
  SHOAL_API_KEY     API key(s), comma-separated; default: <data-dir>/api-key, created on first start

While running, <data-dir>/shoal.pid holds the server's process id (kill it to stop Shoal).
The server also stops when the npm/tsx process that launched it goes away.
`;

function usageError(message: string): never {
  console.error(`${message}\n\n${HELP}`);
  process.exit(2);
}

function parsePort(raw: string, source: string): number {
  const port = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    usageError(`invalid ${source}: ${raw} (expected an integer in [0, 65535])`);
  }
  return port;
}

// --- Parent watch --------------------------------------------------------------------------------
// `npm start` runs npm → sh -c → tsx (node) → this process. A signal to npm (the PID a script gets
// from `npm start &`) kills npm and sh but is not passed on, so tsx and this server lived on,
// orphaned. The launcher chain is recorded at start and polled: once any link of it breaks (a
// launcher exited and its child was re-parented), the server shuts down as on SIGTERM. The top
// launcher's own parent (the user's shell) is not watched, so `nohup npm start &` survives a logout.
// Run directly (`node --import tsx infra/local/main.ts`) there is no launcher chain and no watch.

const LAUNCHERS = new Set(['npm', 'npx', 'pnpm', 'yarn', 'tsx', 'npm-cli.js', 'npx-cli.js']);

interface ProcessInfo {
  ppid: number;
  command: string;
}

/** ppid and command line of `pid`, or undefined when it is gone or cannot be read (then nothing is watched). */
function processInfo(pid: number): ProcessInfo | undefined {
  try {
    if (process.platform === 'linux') {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // `pid (comm) state ppid …`: comm may itself contain spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      return { ppid, command };
    }
    if (process.platform === 'win32') return undefined;
    const out = execFileSync('ps', ['-o', 'ppid=,command=', '-p', String(pid)], { encoding: 'utf8', timeout: 2_000 });
    const match = /^\s*(\d+)\s+(.*)$/.exec(out.trim());
    return match ? { ppid: Number(match[1]), command: match[2] } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a command line is one of the launchers `npm start` goes through (`sh -c "tsx …"` included). */
function isLauncher(command: string): boolean {
  let tokens = command.split(/\s+/);
  if (['sh', 'bash', 'dash', 'zsh'].includes(path.basename(tokens[0])) && tokens[1] === '-c') tokens = tokens.slice(2);
  const [exe, script] = tokens.map((t) => path.basename(t));
  return LAUNCHERS.has(exe) || (/^node(\.exe)?$/.test(exe) && script !== undefined && LAUNCHERS.has(script));
}

/** Calls `onOrphaned` once the launcher chain above this process breaks; returns the stop function. */
function watchLaunchers(onOrphaned: (launcher: string) => void): () => void {
  const links: Array<{ pid: number; ppid: number; parentCommand: string }> = [];
  let pid = process.pid;
  let ppid = process.ppid;
  for (let depth = 0; depth < 8 && ppid > 1; depth++) {
    const parent = processInfo(ppid);
    if (!parent || !isLauncher(parent.command)) break;
    links.push({ pid, ppid, parentCommand: parent.command });
    pid = ppid;
    ppid = parent.ppid;
  }
  if (links.length === 0) return () => undefined;
  const timer = setInterval(() => {
    for (const link of links) {
      const current = link.pid === process.pid ? process.ppid : processInfo(link.pid)?.ppid;
      if (current !== link.ppid) {
        clearInterval(timer);
        onOrphaned(link.parentCommand);
        return;
      }
    }
  }, 1_000);
  timer.unref();
  return () => clearInterval(timer);
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  let values: { port?: string; 's3-port'?: string; 'data-dir'?: string; quiet?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        's3-port': { type: 'string' },
        'data-dir': { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }

  const port =
    values.port !== undefined
      ? parsePort(values.port, '--port')
      : parsePort(process.env.PORT ?? '8787', 'PORT (environment)');
  const s3Port =
    values['s3-port'] !== undefined
      ? parsePort(values['s3-port'], '--s3-port')
      : parsePort(process.env.SHOAL_S3_PORT ?? '8788', 'SHOAL_S3_PORT (environment)');
  if (port !== 0 && port === s3Port) usageError(`--port and --s3-port are both ${port}; they must differ`);
  const dataDir = values['data-dir'] ?? process.env.SHOAL_DATA_DIR ?? '.data/';
  const quiet = values.quiet === true;
  // Before the runtime exists: the handlers' Powertools loggers read the level when they are created.
  if (quiet) process.env.POWERTOOLS_LOG_LEVEL = 'WARN';

  let shoal: LocalShoal;
  try {
    shoal = await startLocalShoal({ port, s3Port, dataDir, requestLog: quiet ? false : undefined });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (e.code === 'EADDRINUSE') {
      const flag = e.port === s3Port ? '--s3-port / SHOAL_S3_PORT' : e.port === port ? '--port / PORT' : 'a port';
      console.error(`Shoal failed to start: port ${e.port ?? '?'} is in use (${flag}; 0 = any free port)`);
    } else {
      console.error('Shoal failed to start:', err);
    }
    process.exit(1);
  }

  const pidFile = path.join(shoal.dataDir, 'shoal.pid');
  writeFileSync(pidFile, `${process.pid}\n`);
  const removePidFile = (): void => {
    try {
      // A newer server on the same data dir may have written its own id since.
      if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile);
    } catch {
      // Already gone.
    }
  };

  let stopWatch = (): void => undefined;
  let shuttingDown = false;
  const shutdown = (reason: string): void => {
    if (shuttingDown) {
      console.error(`\n${reason} again: exiting without a clean shutdown`);
      removePidFile();
      process.exit(1);
    }
    shuttingDown = true;
    stopWatch();
    console.log(`\n${reason}: stopping Shoal…`);
    shoal.stop().then(
      () => {
        removePidFile();
        process.exit(0);
      },
      (err: unknown) => {
        console.error('clean shutdown failed:', err);
        removePidFile();
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // An orphaned server may have lost the terminal or pipe it printed to: a failed write must not
  // crash it before the clean shutdown.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  stopWatch = watchLaunchers((launcher) => shutdown(`launcher exited (${launcher})`));
}

await main();
