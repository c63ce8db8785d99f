/**
 * `npm start`: the whole of Shoal on a laptop (see `shoal.ts` for the wiring).
 *
 *   npm start -- [--port 8787] [--data-dir .data/]
 *
 * State (S3 objects, DynamoDB tables, the API key) persists in the data dir across restarts.
 */
import { parseArgs } from 'node:util';
import { startLocalShoal, type LocalShoal } from './shoal.js';

const HELP = `Usage: npm start -- [options]

Runs Shoal locally: the HTTP API, the index builder (SQS + a 30 s schedule) and the shard
searchers, on embedded S3, DynamoDB and SQS emulators.

Options:
  --port <n>        HTTP port (env PORT, default 8787; 0 = any free port)
  --data-dir <dir>  where S3 objects, DynamoDB tables and the API key persist
                    (env SHOAL_DATA_DIR, default .data/)
  -h, --help        show this help

Environment:
  SHOAL_API_KEY     API key(s), comma-separated; default: <data-dir>/api-key, created on first start
`;

async function main(): Promise<void> {
  let values: { port?: string; 'data-dir'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }

  const rawPort = values.port ?? process.env.PORT ?? '8787';
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`invalid port: ${rawPort} (expected an integer in [0, 65535])`);
    process.exit(2);
  }
  const dataDir = values['data-dir'] ?? process.env.SHOAL_DATA_DIR ?? '.data/';

  let shoal: LocalShoal;
  try {
    shoal = await startLocalShoal({ port, dataDir });
  } catch (err) {
    console.error('Shoal failed to start:', err);
    process.exit(1);
  }

  let shuttingDown = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      console.error(`\n${signal} again: exiting without a clean shutdown`);
      process.exit(1);
    }
    shuttingDown = true;
    console.log(`\n${signal}: stopping Shoal…`);
    shoal.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('clean shutdown failed:', err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

await main();
