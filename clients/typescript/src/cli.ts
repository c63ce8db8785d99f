/**
 * `shoal`: the command line over the SDK. `main` takes argv and the streams and returns the exit code
 * (0 ok, 1 the API or the network said no, 2 the command line or an input file is wrong), so it runs the
 * same from the bin and from a test.
 */
import { parseArgs } from 'node:util';
import { Shoal } from './node.js';
import { ShoalApiError, ShoalError } from './errors.js';
import { COMMANDS, type Command } from './cli/commands.js';
import { resolveConfig } from './cli/config.js';
import { UsageError, type Io } from './cli/output.js';

export const VERSION = '0.1.0';

const GLOBAL_OPTIONS = {
  url: { type: 'string', help: 'API base URL (env SHOAL_URL; default http://localhost:8787)' },
  key: { type: 'string', help: 'API key (env SHOAL_API_KEY; default .data/api-key of npm start)' },
  json: { type: 'boolean', help: 'print one JSON document on stdout' },
  progress: { type: 'boolean', help: 'progress on stderr even when it is not a terminal' },
  timeout: { type: 'string', help: 'per-request timeout, seconds (default 30)' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} as const;

type OptionSpec = NonNullable<Command['options']>[string];

function optionLines(options: Record<string, OptionSpec>): string[] {
  return Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' <v>' : ''}`;
    return `  ${flag.padEnd(30)} ${o.help}`;
  });
}

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    `shoal ${VERSION}: the Shoal vector database from the command line`,
    '',
    'usage: shoal <command> [arguments] [options]    (shoal <command> --help for its options)',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`),
    '',
    'options of every command:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'config: --url/--key > SHOAL_URL/SHOAL_API_KEY > SHOAL_CONFIG or ~/.config/shoal/config.json',
    '        ({"url": "...", "apiKey": "..."}) > http://localhost:8787 and .data/api-key',
    'exit codes: 0 ok, 1 API or network error, 2 usage error. Docs: docs/cli.md',
    '',
  ].join('\n');
}

function commandHelp(name: string, c: Command): string {
  return [
    `usage: shoal ${c.usage} [options]`,
    '',
    c.summary,
    '',
    ...(c.options ? ['options:', ...optionLines(c.options), ''] : []),
    'global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
  ].join('\n');
}

export async function main(argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const name = argv[0];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`shoal: unknown command ${JSON.stringify(name)}; shoal --help lists them\n`);
    return 2;
  }
  const json = argv.includes('--json');
  try {
    const { values, positionals } = parseArgs({
      args: argv.slice(1),
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      io.stdout.write(commandHelp(name, command));
      return 0;
    }
    const config = resolveConfig({ url: values.url, key: values.key }, env, process.cwd());
    const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
    if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout must be > 0 seconds`);
    const shoal = new Shoal({
      url: config.url,
      apiKey: config.apiKey,
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
      userAgent: `shoal-cli/${VERSION}`,
    });
    const progress = values.progress === true || Boolean(io.stderr.isTTY);
    await command.run({ shoal, io, json: values.json === true, progress }, positionals, values);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return report(err, io, json, name, command);
  }
}

function report(err: unknown, io: Io, json: boolean, name: string, command: Command): number {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    io.stderr.write(`shoal ${name}: ${(err as Error).message}\nusage: shoal ${command.usage} (--help for options)\n`);
    return 2;
  }
  if (err instanceof ShoalApiError) {
    const where = err.field ? ` (field: ${err.field})` : '';
    const message = err.message.replace(`${err.code}: `, '').replace(where, '');
    io.stderr.write(`shoal ${name}: ${err.status} ${err.code}${where}: ${message}\n`);
    if (json) {
      const error = { status: err.status, code: err.code, message, field: err.field, details: err.details };
      io.stdout.write(`${JSON.stringify({ error })}\n`);
    }
    return 1;
  }
  if (err instanceof ShoalError) {
    io.stderr.write(`shoal ${name}: ${err.message}\n`);
    if (json) io.stdout.write(`${JSON.stringify({ error: { code: err.name, message: err.message } })}\n`);
    return 1;
  }
  throw err;
}
