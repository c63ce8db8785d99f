/**
 * The command line every benchmark shares.
 *
 *   npm run -s bench:<name> [-- [--quick] [--json] [--record] [bench options]]
 *
 * - default: the human report (markdown) on stdout; nothing is written to disk;
 * - `--json`: exactly one JSON document on stdout instead (`-s` keeps npm's banner off stdout):
 *   `{bench, date, command, quick, machine, parameters, rows, ...other tables}`;
 * - `--record`: also writes bench/results/<name>-<YYYY-MM-DD>[-<variant>][-quick].md and a .json
 *   beside it (the same document `--json` prints), to be committed on purpose;
 * - `--quick`: the bench's small configuration (minutes → seconds);
 * - `--help`: usage; an unknown option or a bad value is an error (exit code 2).
 *
 * Progress and logs go to stderr: once `parseCli` ran, console.log/info/debug write to stderr too, so
 * stdout carries the report alone.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A bench-specific option. Options without `arg` are boolean switches. */
export interface BenchOption {
  flag: `--${string}`;
  /** Name of the value (`--rows <n>`); absent for a switch. */
  arg?: string;
  help: string;
}

export interface BenchSpec {
  /** The `bench:<name>` script name, also the prefix of recorded files. */
  name: string;
  /** One line: what the bench measures. */
  summary: string;
  /** What `--quick` does for this bench. */
  quick: string;
  options?: BenchOption[];
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  arch: string;
}

/** What a bench hands to `out()`: its markdown report and the data behind it. */
export interface BenchReport {
  markdown: string;
  /** The knobs that shaped the run (datasets, sizes, k, ef list…). */
  parameters: Record<string, unknown>;
  /** The primary table, one object per row. */
  rows: unknown[];
  /** Other tables, by name (merged into the JSON document). */
  tables?: Record<string, unknown>;
  /** Distinguishes recorded files of a non-default configuration (e.g. `20000` rows). */
  variant?: string;
}

export interface BenchDocument {
  bench: string;
  date: string;
  command: string;
  quick: boolean;
  machine: MachineInfo;
  parameters: Record<string, unknown>;
  rows: unknown[];
  [table: string]: unknown;
}

export class UsageError extends Error {}

const COMMON: BenchOption[] = [
  { flag: '--quick', help: '' },
  { flag: '--json', help: 'print one JSON document of the results on stdout instead of the markdown report' },
  { flag: '--record', help: 'also write bench/results/<name>-<date>[-quick].md and .json (to commit)' },
  { flag: '--help', help: 'this text' },
];

export interface ParsedArgs {
  json: boolean;
  record: boolean;
  quick: boolean;
  help: boolean;
  /** Bench-specific options as given: `true` for a switch, the text for a valued option. */
  options: Map<string, string | true>;
  /** The options that shape the measurement (no --json/--record), to rebuild the command. */
  measured: string[];
}

/** Parses argv against the spec; throws UsageError on anything it does not know. */
export function parseArgs(spec: BenchSpec, argv: readonly string[]): ParsedArgs {
  const known = new Map([...COMMON, ...(spec.options ?? [])].map((o) => [o.flag, o]));
  const parsed: ParsedArgs = {
    json: false,
    record: false,
    quick: false,
    help: false,
    options: new Map(),
    measured: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const given = argv[i];
    const eq = given.indexOf('=');
    const flag = eq > 0 ? given.slice(0, eq) : given;
    const option = known.get(flag as `--${string}`);
    if (!option) throw new UsageError(`unknown option ${JSON.stringify(given)}`);
    if (option.arg === undefined) {
      if (eq > 0) throw new UsageError(`${flag} takes no value`);
      if (flag === '--json') parsed.json = true;
      else if (flag === '--record') parsed.record = true;
      else if (flag === '--help') parsed.help = true;
      else {
        if (flag === '--quick') parsed.quick = true;
        else parsed.options.set(flag, true);
        parsed.measured.push(flag);
      }
      continue;
    }
    const value = eq > 0 ? given.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) {
      throw new UsageError(`${flag} needs a value <${option.arg}>`);
    }
    parsed.options.set(flag, value);
    parsed.measured.push(flag, value);
  }
  return parsed;
}

export function usage(spec: BenchSpec): string {
  const all = [{ ...COMMON[0], help: spec.quick }, ...(spec.options ?? []), ...COMMON.slice(1)] satisfies BenchOption[];
  const left = (o: BenchOption) => (o.arg ? `${o.flag} <${o.arg}>` : o.flag);
  const width = Math.max(...all.map((o) => left(o).length));
  return [
    `npm run -s bench:${spec.name} -- [options]`,
    '',
    spec.summary,
    '',
    ...all.map((o) => `  ${left(o).padEnd(width)}  ${o.help}`),
    '',
    'Progress goes to stderr; stdout has the report only.',
    '',
  ].join('\n');
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown cpu',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: os.platform(),
    arch: os.arch(),
  };
}

/** The one-line machine description used in every markdown report. */
export function machineLine(m: MachineInfo = machineInfo()): string {
  return `${m.cpu} × ${m.cores}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform} ${m.arch}`;
}

export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

/** Writes `<name>-<date>[-<variant>][-quick].md` and `.json` under `dir`; returns the markdown path. */
export function record(
  name: string,
  markdown: string,
  json: BenchDocument,
  opts: { variant?: string; dir?: string } = {},
): string {
  const dir = opts.dir ?? RESULTS_DIR;
  mkdirSync(dir, { recursive: true });
  const base = [name, json.date.slice(0, 10), opts.variant, json.quick ? 'quick' : undefined]
    .filter((part) => part !== undefined && part !== '')
    .join('-');
  const md = path.join(dir, `${base}.md`);
  writeFileSync(md, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  writeFileSync(path.join(dir, `${base}.json`), `${JSON.stringify(json, null, 2)}\n`);
  return md;
}

export interface BenchCli {
  readonly name: string;
  readonly quick: boolean;
  readonly json: boolean;
  readonly record: boolean;
  readonly started: Date;
  readonly machine: MachineInfo;
  /** `npm run bench:<name> -- <options>` without --json/--record: how to reproduce the numbers. */
  readonly command: string;
  /** A switch was given. */
  has(flag: `--${string}`): boolean;
  /** A valued option, if given. */
  value(flag: `--${string}`): string | undefined;
  /** A positive integer option, if given; anything else is a usage error. */
  int(flag: `--${string}`): number | undefined;
  /** A comma-separated option restricted to `allowed`, else `fallback`. */
  list<T extends string>(flag: `--${string}`, allowed: readonly T[], fallback: readonly T[]): T[];
  /** Prints a usage error and exits with code 2. */
  fail(message: string): never;
  /** Prints the report (markdown, or the JSON document with --json) and records it with --record. */
  out(report: BenchReport): BenchDocument;
}

/** The process's real stdout writer, kept before console.log is pointed at stderr. */
const writeStdout = process.stdout.write.bind(process.stdout);

export function parseCli(spec: BenchSpec, argv: readonly string[] = process.argv.slice(2)): BenchCli {
  const fail = (message: string): never => {
    process.stderr.write(`bench:${spec.name}: ${message}\n(npm run -s bench:${spec.name} -- --help for usage)\n`);
    process.exit(2);
  };
  let args: ParsedArgs;
  try {
    args = parseArgs(spec, argv);
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message);
    throw err;
  }
  if (args.help) {
    writeStdout(usage(spec));
    process.exit(0);
  }
  // Shared code that logs must not mix into the report (above all not into --json's document).
  const toStderr = (...parts: unknown[]) => console.error(...parts);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;

  const started = new Date();
  const machine = machineInfo();
  const command = `npm run bench:${spec.name}${args.measured.length ? ` -- ${args.measured.join(' ')}` : ''}`;
  return {
    name: spec.name,
    quick: args.quick,
    json: args.json,
    record: args.record,
    started,
    machine,
    command,
    has: (flag) => args.options.get(flag) === true,
    value: (flag) => {
      const v = args.options.get(flag);
      return typeof v === 'string' ? v : undefined;
    },
    int: (flag) => {
      const v = args.options.get(flag);
      if (v === undefined) return undefined;
      const n = Number(v);
      return Number.isSafeInteger(n) && n > 0 ? n : fail(`${flag} must be a positive integer, not ${String(v)}`);
    },
    list: <T extends string>(flag: `--${string}`, allowed: readonly T[], fallback: readonly T[]): T[] => {
      const v = args.options.get(flag);
      if (typeof v !== 'string') return [...fallback];
      return v.split(',').map((s) => {
        const item = allowed.find((a) => a === s.trim());
        return item ?? fail(`${flag}: unknown ${JSON.stringify(s)} (one of ${allowed.join(', ')})`);
      });
    },
    fail,
    out: (report) => {
      const doc: BenchDocument = {
        bench: spec.name,
        date: started.toISOString(),
        command,
        quick: args.quick,
        machine,
        parameters: report.parameters,
        rows: report.rows,
        ...report.tables,
      };
      writeStdout(args.json ? `${JSON.stringify(doc, null, 2)}\n` : `${report.markdown.replace(/\n*$/, '')}\n`);
      if (args.record) {
        const file = record(spec.name, report.markdown, doc, { variant: report.variant });
        process.stderr.write(`recorded ${path.relative(process.cwd(), file)} (and .json)\n`);
      }
      return doc;
    },
  };
}
