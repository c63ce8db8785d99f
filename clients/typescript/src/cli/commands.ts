/**
 * The `shoal` commands. Each gets its positionals and parsed options, and prints either a table (people)
 * or one JSON document (`--json`, scripts); docs/cli.md shows every one.
 */
import { access } from 'node:fs/promises';
import type { Shoal } from '../node.js';
import type { ImportProgress } from '../import.js';
import type { Filter, ImportJob, ImportReject, Include, IndexSpec, Metric, Role, Vector } from '../types.js';
import { openRows } from './files.js';
import { Progress, UsageError, printJson, table, type Io } from './output.js';

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Ctx {
  shoal: Shoal;
  io: Io;
  json: boolean;
  /** Draw progress (stderr is a terminal, or `--progress`). */
  progress: boolean;
}

export interface Command {
  /** `collections create <name>`: the words after `shoal` and the positionals. */
  usage: string;
  summary: string;
  options?: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean; help: string }>;
  run(ctx: Ctx, args: string[], values: Values): Promise<void>;
}

// --- argument helpers -------------------------------------------------------------------

function need(args: string[], i: number, what: string): string {
  const v = args[i];
  if (v === undefined || v === '') throw new UsageError(`missing <${what}>`);
  return v;
}

function noMore(args: string[], n: number): void {
  if (args.length > n) throw new UsageError(`unexpected argument ${JSON.stringify(args[n])}`);
}

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

function int(values: Values, name: string, min = 0): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
}

function num(values: Values, name: string): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${v}`);
  return n;
}

/** A vector as `0.1,0.2,0.3`, `0.1 0.2 0.3` or a JSON array. */
function vectorArg(text: string, name = 'vector'): number[] {
  const t = text.trim();
  const parts = t.startsWith('[') ? (JSON.parse(t) as unknown[]) : t.split(/[\s,;]+/).filter((s) => s !== '');
  const out = parts.map(Number);
  if (out.length === 0 || out.some((x) => !Number.isFinite(x))) {
    throw new UsageError(`--${name} must be numbers like 0.1,0.2,0.3, got ${JSON.stringify(text)}`);
  }
  return out;
}

/** A filter: a JSON object when it parses as one, else an expression (`lang == "en"`). */
function filterArg(text: string | undefined): Filter | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t.startsWith('{')) {
    try {
      return JSON.parse(t) as Record<string, unknown>;
    } catch {
      // Not JSON after all: let the server's expression parser say what is wrong.
    }
  }
  return text;
}

function includeArg(values: Values): Include[] | undefined {
  const v = str(values, 'include');
  if (v === undefined) return undefined;
  const list = v.split(',').map((s) => s.trim());
  for (const x of list) {
    if (x !== 'metadata' && x !== 'values') throw new UsageError(`--include takes metadata,values; got ${x}`);
  }
  return list as Include[];
}

function sub(args: string[], names: string[], fallback: string): [string, string[]] {
  const first = args[0];
  if (first === undefined) return [fallback, []];
  if (!names.includes(first)) throw new UsageError(`unknown subcommand ${JSON.stringify(first)} (${names.join(', ')})`);
  return [first, args.slice(1)];
}

function done(ctx: Ctx, value: unknown, human: () => void): void {
  if (ctx.json) printJson(ctx.io, value);
  else human();
}

function say(ctx: Ctx, line: string): void {
  ctx.io.stdout.write(`${line}\n`);
}

// --- commands -------------------------------------------------------------------------

const collections: Command = {
  usage: 'collections [list | create <name> | get <name> | update <name> | delete <name>]',
  summary: 'list, create, inspect (stats), update and delete collections',
  options: {
    dimension: { type: 'string', help: 'create: vector dimension (1–4096)' },
    metric: { type: 'string', help: 'create: cosine | l2 | ip' },
    engine: { type: 'string', help: 'create: hnsw (default) | flat' },
    m: { type: 'string', help: 'create: HNSW m' },
    'ef-construction': { type: 'string', help: 'create: HNSW efConstruction' },
    'ef-search': { type: 'string', help: 'create: HNSW efSearch' },
    'min-recall': { type: 'string', help: 'create/update: alias quality gate (0–1; update: "none" removes it)' },
  },
  async run(ctx, args, values) {
    const [action, rest] = sub(args, ['list', 'create', 'get', 'update', 'delete'], 'list');
    if (action === 'list') {
      noMore(rest, 0);
      const list = await ctx.shoal.collections.list();
      done(ctx, { collections: list }, () =>
        table(
          ctx.io,
          ['NAME', 'DIMENSION', 'METRIC', 'ENGINE', 'CREATED'],
          list.map((c) => [c.name, c.dimension, c.metric, c.index.engine, c.createdAt]),
        ),
      );
      return;
    }
    const name = need(rest, 0, 'name');
    noMore(rest, 1);
    if (action === 'create') {
      const dimension = int(values, 'dimension', 1);
      const metric = str(values, 'metric');
      if (dimension === undefined || metric === undefined)
        throw new UsageError('create needs --dimension and --metric');
      const index: IndexSpec = {};
      const engine = str(values, 'engine');
      if (engine !== undefined) index.engine = engine as IndexSpec['engine'];
      index.m = int(values, 'm', 1);
      index.efConstruction = int(values, 'ef-construction', 1);
      index.efSearch = int(values, 'ef-search', 1);
      const hasIndex = Object.values(index).some((v) => v !== undefined);
      const created = await ctx.shoal.collections.create({
        name,
        dimension,
        metric: metric as Metric,
        ...(hasIndex ? { index } : {}),
        minRecall: num(values, 'min-recall'),
      });
      done(ctx, created, () => say(ctx, `created ${created.name} (${created.dimension}-d, ${created.metric})`));
    } else if (action === 'get') {
      const info = await ctx.shoal.collections.get(name);
      done(ctx, info, () => {
        const s = info.stats;
        table(
          ctx.io,
          ['NAME', 'DIMENSION', 'METRIC', 'COUNT', 'INDEXED', 'PENDING', 'SHARDS', 'VERSION', 'WATERMARK'],
          [
            [
              info.name,
              info.dimension,
              info.metric,
              s?.count,
              s?.indexed,
              s?.pending,
              s?.shards,
              s?.version,
              s?.watermark,
            ],
          ],
        );
      });
    } else if (action === 'update') {
      const raw = str(values, 'min-recall');
      if (raw === undefined) throw new UsageError('update needs --min-recall <0–1 | none>');
      const updated = await ctx.shoal.collections.update(name, {
        minRecall: raw === 'none' ? null : (num(values, 'min-recall') as number),
      });
      done(ctx, updated, () => say(ctx, `${name}: minRecall ${updated.minRecall ?? 'none'}`));
    } else {
      const out = await ctx.shoal.collections.delete(name);
      done(ctx, out, () => say(ctx, `deleted ${name}`));
    }
  },
};

const upsert: Command = {
  usage: 'upsert <collection> (--file <rows.jsonl|.csv|.npy> | --data <json>)',
  summary: 'upsert vectors from a file (batched, with progress) or inline JSON',
  options: {
    file: { type: 'string', short: 'f', help: 'JSONL, CSV or .npy file (rules in docs/cli.md)' },
    format: { type: 'string', help: 'jsonl | csv | npy (default: from the extension)' },
    data: { type: 'string', help: 'inline JSON: one vector object or an array of them' },
    'id-prefix': { type: 'string', help: '.npy: ids are <prefix><row number>' },
    'batch-size': { type: 'string', help: 'rows per request (1–1000, default 500)' },
    concurrency: { type: 'string', help: 'requests in flight (default 2)' },
  },
  async run(ctx, args, values) {
    const name = need(args, 0, 'collection');
    noMore(args, 1);
    const collection = ctx.shoal.collection(name);
    const file = str(values, 'file');
    const data = str(values, 'data');
    if ((file === undefined) === (data === undefined)) throw new UsageError('give exactly one of --file and --data');
    const batchSize = int(values, 'batch-size', 1);
    if (batchSize !== undefined && batchSize > 1000) throw new UsageError('--batch-size must be ≤ 1000');
    const concurrency = int(values, 'concurrency', 1);
    if (data !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch (err) {
        throw new UsageError(`--data is not JSON: ${(err as Error).message}`);
      }
      const rows = (Array.isArray(parsed) ? parsed : [parsed]) as Parameters<typeof collection.upsertAll>[0];
      const out = await collection.upsertAll(rows as never, { batchSize, concurrency });
      done(ctx, out, () => say(ctx, `upserted ${out.upserted} into ${name}`));
      return;
    }
    const path = file as string;
    await access(path).catch(() => {
      throw new UsageError(`cannot read ${path}`);
    });
    const source = openRows(path, { format: str(values, 'format'), idPrefix: str(values, 'id-prefix') });
    const bar = new Progress(ctx.io, { enabled: ctx.progress, label: `upsert ${name}`, unit: 'rows' });
    if (ctx.progress) bar.total = await source.total();
    const out = await collection.upsertAll(source.rows(), {
      batchSize,
      concurrency,
      onProgress: (p) => bar.update(p.rows),
    });
    bar.update(out.upserted);
    bar.finish();
    done(ctx, { ...out, file: path, format: source.format }, () =>
      say(ctx, `upserted ${out.upserted} rows into ${name} in ${out.batches} requests`),
    );
  },
};

const importCmd: Command = {
  usage: 'import <collection> (<file> | --job <jobId>)',
  summary: 'upload a file to the import prefix, follow the job live, summarize its rejects',
  options: {
    job: { type: 'string', help: 'follow an existing job instead of uploading' },
    'max-rows': { type: 'string', help: 'job limit: rows read' },
    'max-duration': { type: 'string', help: 'job limit: seconds (60–2592000)' },
    'max-reject-ratio': { type: 'string', help: 'job limit: rejected share (0–1)' },
    'no-wait': { type: 'boolean', help: 'start the job and return' },
    rejects: { type: 'string', help: 'rejects to show (default 10)' },
  },
  async run(ctx, args, values) {
    const name = need(args, 0, 'collection');
    const collection = ctx.shoal.collection(name);
    const jobId = str(values, 'job');
    if (jobId === undefined) need(args, 1, 'file');
    noMore(args, jobId === undefined ? 2 : 1);
    const upload = new Progress(ctx.io, { enabled: ctx.progress, label: 'upload', unit: 'bytes' });
    const rows = new Progress(ctx.io, { enabled: ctx.progress, label: `import ${name}`, unit: 'rows' });
    let uploading = true;
    const onProgress = (p: ImportProgress): void => {
      if (p.phase === 'upload') {
        upload.total = p.bytesTotal;
        upload.update(p.bytesSent);
        return;
      }
      if (uploading) {
        uploading = false;
        if (jobId === undefined) upload.finish();
      }
      const j = p.job;
      rows.total = j.bytesTotal > 0 && j.percent > 0 ? Math.round(j.rowsRead / (j.percent / 100)) : undefined;
      rows.update(j.rowsRead, `${j.state}, ${j.rowsWritten} written, ${j.rowsRejected} rejected`);
    };
    const wait = values['no-wait'] !== true;
    let job: ImportJob;
    if (jobId !== undefined) {
      job = wait ? await collection.followImport(jobId, { onProgress }) : await collection.imports.get(jobId);
    } else {
      job = await collection.importFile(args[1], {
        maxRows: int(values, 'max-rows', 1),
        maxDurationSeconds: int(values, 'max-duration', 60),
        maxRejectRatio: num(values, 'max-reject-ratio'),
        follow: wait,
        onProgress,
      });
    }
    if (wait) rows.finish(`${job.state}, ${job.rowsWritten} written, ${job.rowsRejected} rejected`);
    const show = int(values, 'rejects', 0) ?? 10;
    const rejects: ImportReject[] = [];
    let rejectsError: string | undefined;
    if (job.rowsRejected > 0 && show > 0) {
      try {
        for await (const r of collection.imports.rejects(job.jobId, { limit: Math.min(show, 1000) })) {
          rejects.push(r);
          if (rejects.length >= show) break;
        }
      } catch (err) {
        rejectsError = (err as Error).message;
      }
    }
    done(ctx, { job, rejects }, () => {
      say(ctx, `job ${job.jobId}: ${job.state}${job.reason ? ` (${job.reason})` : ''}`);
      say(ctx, `rows read ${job.rowsRead}, written ${job.rowsWritten}, rejected ${job.rowsRejected}`);
      if (job.error) say(ctx, `error: ${job.error}`);
      if (rejects.length > 0) {
        table(
          ctx.io,
          ['LINE/ROW', 'ID', 'CODE', 'REASON'],
          rejects.map((r) => [r.line ?? r.row, r.id, r.code, r.reason]),
        );
      }
      if (rejectsError) say(ctx, `rejects: ${rejectsError}${job.report ? ` (report: ${job.report})` : ''}`);
    });
    if (job.state === 'failed' || job.state === 'cancelled') process.exitCode = 1;
  },
};

const search: Command = {
  usage: 'search <collection|alias> --vector <v>',
  summary: 'k nearest neighbours, optionally filtered',
  options: {
    vector: { type: 'string', short: 'v', help: 'the query: 0.1,0.2,… or a JSON array' },
    k: { type: 'string', short: 'k', help: 'results (1–1000, default 10)' },
    filter: { type: 'string', help: 'expression (lang == "en") or JSON object' },
    include: { type: 'string', help: 'metadata,values' },
    ef: { type: 'string', help: 'HNSW efSearch for this query' },
    nprobe: { type: 'string', help: 'IVF partitions to probe' },
    eventual: { type: 'boolean', help: 'shards only (skip the unindexed tail)' },
    'sticky-key': { type: 'string', help: 'experiment arm key (through an alias)' },
  },
  async run(ctx, args, values) {
    const name = need(args, 0, 'collection');
    noMore(args, 1);
    const v = str(values, 'vector');
    if (v === undefined) throw new UsageError('search needs --vector');
    const include = includeArg(values) ?? (ctx.json ? undefined : ['metadata']);
    const out = await ctx.shoal.collection(name).search({
      vector: vectorArg(v),
      k: int(values, 'k', 1),
      filter: filterArg(str(values, 'filter')),
      include,
      ef: int(values, 'ef', 1),
      nprobe: int(values, 'nprobe', 1),
      consistency: values.eventual === true ? 'eventual' : undefined,
      stickyKey: str(values, 'sticky-key'),
    });
    done(ctx, out, () => {
      const withValues = include?.includes('values');
      table(
        ctx.io,
        ['ID', 'SCORE', 'METADATA', ...(withValues ? ['VALUES'] : [])],
        out.results.map((r) => [r.id, r.score, r.metadata, ...(withValues ? [r.values] : [])]),
      );
    });
  },
};

const get: Command = {
  usage: 'get <collection|alias> <id>...',
  summary: 'vectors by id (missing ids are left out)',
  async run(ctx, args) {
    const name = need(args, 0, 'collection');
    need(args, 1, 'id');
    const vectors = await ctx.shoal.collection(name).get(args.slice(1));
    done(ctx, { vectors }, () =>
      table(
        ctx.io,
        ['ID', 'VALUES', 'METADATA'],
        vectors.map((v) => [v.id, v.values, v.metadata]),
      ),
    );
  },
};

const del: Command = {
  usage: 'delete <collection> (<id>... | --filter <f>)',
  summary: 'delete vectors by id or by filter',
  options: { filter: { type: 'string', help: 'expression or JSON object' } },
  async run(ctx, args, values) {
    const name = need(args, 0, 'collection');
    const filter = filterArg(str(values, 'filter'));
    const ids = args.slice(1);
    if ((filter === undefined) === (ids.length === 0)) throw new UsageError('give ids or --filter, not both');
    const out = await ctx.shoal.collection(name).delete(filter !== undefined ? { filter } : { ids });
    done(ctx, out, () => say(ctx, `deleted ${out.deleted}`));
  },
};

const list: Command = {
  usage: 'list <collection>',
  summary: 'every vector (paged), optionally filtered',
  options: {
    filter: { type: 'string', help: 'expression or JSON object' },
    include: { type: 'string', help: 'metadata,values' },
    limit: { type: 'string', help: 'stop after this many' },
    'page-size': { type: 'string', help: 'per request (1–1000)' },
  },
  async run(ctx, args, values) {
    const name = need(args, 0, 'collection');
    noMore(args, 1);
    const max = int(values, 'limit', 1) ?? Infinity;
    // The API lists ids only by default; a table of bare ids says little, so people get the metadata too.
    const include = includeArg(values) ?? (ctx.json ? undefined : ['metadata']);
    const vectors: Vector[] = [];
    for await (const v of ctx.shoal.collection(name).list({
      filter: filterArg(str(values, 'filter')),
      include,
      limit: int(values, 'page-size', 1),
    })) {
      vectors.push(v);
      if (vectors.length >= max) break;
    }
    const withMetadata = include?.includes('metadata') === true;
    const withValues = include?.includes('values') === true;
    done(ctx, { vectors }, () =>
      table(
        ctx.io,
        ['ID', ...(withMetadata ? ['METADATA'] : []), ...(withValues ? ['VALUES'] : [])],
        vectors.map((v) => [v.id, ...(withMetadata ? [v.metadata] : []), ...(withValues ? [v.values] : [])]),
      ),
    );
  },
};

const index: Command = {
  usage: 'index <collection>',
  summary: 'build an index version now and wait until every write is indexed',
  options: {
    'no-wait': { type: 'boolean', help: 'ask for the build and return' },
    'wait-timeout': { type: 'string', help: 'seconds to wait for the index (default 600)' },
  },
  async run(ctx, args, values) {
    const name = need(args, 0, 'collection');
    noMore(args, 1);
    const collection = ctx.shoal.collection(name);
    const build = await collection.index();
    if (values['no-wait'] === true) {
      done(ctx, { build }, () => say(ctx, `build queued for ${name} (current version ${build.version})`));
      return;
    }
    const bar = new Progress(ctx.io, { enabled: ctx.progress, label: `index ${name}`, unit: 'ids' });
    const stats = await collection.waitForIndex({
      timeoutMs: (int(values, 'wait-timeout', 1) ?? 600) * 1000,
      onProgress: (p) => {
        bar.total = p.initialPending;
        bar.update(p.initialPending - p.stats.pending, `version ${p.stats.version}`);
      },
    });
    bar.finish(`version ${stats.version}`);
    done(ctx, { build, stats }, () =>
      say(ctx, `${name}: version ${stats.version}, ${stats.indexed} indexed, ${stats.shards} shards, 0 pending`),
    );
  },
};

const versions: Command = {
  usage: 'versions <collection|alias>',
  summary: 'index versions, newest first',
  async run(ctx, args) {
    const name = need(args, 0, 'collection');
    noMore(args, 1);
    const list = await ctx.shoal.collection(name).versions();
    done(ctx, { versions: list }, () =>
      table(
        ctx.io,
        ['VERSION', 'LINE', 'KIND', 'ROWS', 'LIVE', 'SHARDS', 'WATERMARK', 'RECALL', 'CREATED'],
        list.map((m) => [
          m.version,
          m.line ?? 'main',
          m.stats.kind,
          m.stats.rows,
          m.stats.liveRows,
          m.shards.length,
          m.watermark,
          m.evaluation?.recall,
          m.createdAt,
        ]),
      ),
    );
  },
};

function target(t: { collection: string; version?: number | null; line?: string } | null | undefined): string {
  if (!t) return '-';
  if (t.version !== undefined && t.version !== null) return `${t.collection}@${t.version}`;
  return t.line ? `${t.collection}:${t.line}` : t.collection;
}

const aliases: Command = {
  usage:
    'aliases [list | get <alias> | set <alias> <collection> | rollback <alias> | history <alias> | delete <alias>]',
  summary: 'aliases: point, roll back, show the history',
  options: {
    version: { type: 'string', help: 'set: pin this index version' },
    line: { type: 'string', help: 'set: follow this index line' },
    reason: { type: 'string', help: 'set/rollback: recorded in the history' },
    force: { type: 'boolean', help: 'set: override the quality gate' },
    'expected-revision': { type: 'string', help: 'set/rollback/delete: fail if the alias moved since' },
  },
  async run(ctx, args, values) {
    const [action, rest] = sub(args, ['list', 'get', 'set', 'rollback', 'history', 'delete'], 'list');
    const api = ctx.shoal.aliases;
    const row = (a: Awaited<ReturnType<typeof api.get>>) => [
      a.name,
      target(a),
      a.revision,
      a.experiment ? `${a.experiment.mode} vs ${target(a.experiment.challenger)}` : '-',
      a.updatedAt,
    ];
    const heads = ['ALIAS', 'TARGET', 'REVISION', 'EXPERIMENT', 'UPDATED'];
    if (action === 'list') {
      noMore(rest, 0);
      const all = await api.list();
      done(ctx, { aliases: all }, () => table(ctx.io, heads, all.map(row)));
      return;
    }
    const alias = need(rest, 0, 'alias');
    const expectedRevision = int(values, 'expected-revision', 0);
    if (action === 'set') {
      const collection = need(rest, 1, 'collection');
      noMore(rest, 2);
      const a = await api.set(alias, {
        collection,
        version: int(values, 'version', 1),
        line: str(values, 'line'),
        reason: str(values, 'reason'),
        force: values.force === true ? true : undefined,
        expectedRevision,
      });
      done(ctx, a, () => table(ctx.io, heads, [row(a)]));
      return;
    }
    noMore(rest, 1);
    if (action === 'get' || action === 'rollback') {
      const a =
        action === 'get'
          ? await api.get(alias)
          : await api.rollback(alias, { reason: str(values, 'reason'), expectedRevision });
      done(ctx, a, () => table(ctx.io, heads, [row(a)]));
    } else if (action === 'history') {
      const history = await api.history(alias);
      done(ctx, { history }, () =>
        table(
          ctx.io,
          ['REVISION', 'AT', 'BY', 'ACTION', 'FROM', 'TO', 'REASON'],
          history.map((h) => [
            h.revision,
            h.at,
            h.by,
            h.forced ? `${h.action} (forced)` : h.action,
            target(h.from),
            target(h.to),
            h.reason,
          ]),
        ),
      );
    } else {
      const out = await api.delete(alias, { expectedRevision });
      done(ctx, out, () => say(ctx, `deleted alias ${alias}`));
    }
  },
};

function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${(x * 100).toFixed(2)}%`;
}

function ci(range: [number, number] | null | undefined): string {
  return range ? `[${pct(range[0])}, ${pct(range[1])}]` : '-';
}

const experiments: Command = {
  usage: 'experiments (results <alias> | start <alias> --challenger <c[@v]> | promote <alias> | abort <alias>)',
  summary: 'champion/challenger experiments on an alias; results with 95 % intervals',
  options: {
    challenger: { type: 'string', help: 'start: collection, collection@version or collection:line' },
    mode: { type: 'string', help: 'start: split (default) | shadow' },
    weight: { type: 'string', help: 'start: percent of traffic to the challenger (1–99)' },
    reason: { type: 'string', help: 'promote/abort: recorded' },
    force: { type: 'boolean', help: 'promote: override the quality gate' },
  },
  async run(ctx, args, values) {
    const [action, rest] = sub(args, ['results', 'start', 'promote', 'abort'], '');
    if (action === '') throw new UsageError('experiments needs a subcommand: results, start, promote or abort');
    const alias = need(rest, 0, 'alias');
    noMore(rest, 1);
    const api = ctx.shoal.experiments;
    let out;
    if (action === 'start') {
      const c = str(values, 'challenger');
      if (!c) throw new UsageError('start needs --challenger <collection[@version|:line]>');
      const m = /^([^@:]+)(?:@(\d+)|:(.+))?$/.exec(c);
      if (!m) throw new UsageError(`--challenger ${c}: use collection, collection@version or collection:line`);
      out = await api.start(alias, {
        challenger: { collection: m[1], version: m[2] ? Number(m[2]) : undefined, line: m[3] },
        mode: (str(values, 'mode') ?? 'split') as 'split' | 'shadow',
        weight: int(values, 'weight', 1),
      });
    } else if (action === 'promote') {
      out = await api.promote(alias, { reason: str(values, 'reason'), force: values.force === true || undefined });
    } else if (action === 'abort') {
      out = await api.abort(alias, { reason: str(values, 'reason') });
    } else {
      out = await api.results(alias);
    }
    const r = out;
    done(ctx, r, () => {
      const e = r.experiment;
      say(ctx, `experiment ${e.id} on ${alias}: ${e.mode}${e.mode === 'split' ? ` ${e.weight}%` : ''}, ${e.state}`);
      table(
        ctx.io,
        [
          'ARM',
          'TARGET',
          'REQUESTS',
          'ERRORS',
          'P50 MS',
          'P95 MS',
          'CLICK RATE',
          'CLICK 95% CI',
          'CONVERT RATE',
          'CONVERT 95% CI',
        ],
        (['champion', 'challenger'] as const).map((arm) => {
          const a = r.arms[arm];
          return [
            arm,
            target(a.target),
            a.requests,
            a.errors,
            a.latencyMs.p50,
            a.latencyMs.p95,
            pct(a.clickRate.rate),
            ci(a.clickRate.ci95),
            pct(a.convertRate.rate),
            ci(a.convertRate.ci95),
          ];
        }),
      );
      const tests = (['click', 'convert'] as const).filter((t) => r.tests[t]);
      if (tests.length > 0) {
        say(ctx, '');
        table(
          ctx.io,
          ['TEST', 'DIFFERENCE', 'SEQUENTIAL P', 'DIFFERENCE 95% CI', 'VERDICT'],
          tests.map((t) => {
            const x = r.tests[t]!;
            return [
              t,
              pct(x.difference),
              x.sequential.p,
              ci(x.sequential.ci95),
              x.significant ? x.verdict : 'inconclusive',
            ];
          }),
        );
      }
      say(ctx, `overlap@k ${r.overlapAtK.mean ?? '-'} over ${r.overlapAtK.samples} samples`);
    });
  },
};

const keys: Command = {
  usage: 'keys [list | create --name <n> --role <r> | revoke <id>]',
  summary: 'API keys (admin key needed)',
  options: {
    name: { type: 'string', help: 'create: a label' },
    role: { type: 'string', help: 'create: read | write | admin' },
    collections: { type: 'string', help: 'create: comma-separated collection scope' },
    'expires-at': { type: 'string', help: 'create: ISO 8601 time' },
    'rate-limit': { type: 'string', help: 'create: requests per second' },
  },
  async run(ctx, args, values) {
    const [action, rest] = sub(args, ['list', 'create', 'revoke'], 'list');
    if (action === 'list') {
      noMore(rest, 0);
      const all = await ctx.shoal.keys.list();
      done(ctx, { keys: all }, () =>
        table(
          ctx.io,
          ['ID', 'NAME', 'ROLE', 'COLLECTIONS', 'CREATED', 'EXPIRES', 'LAST USED'],
          all.map((k) => [k.id, k.name, k.role, k.collections?.join(','), k.createdAt, k.expiresAt, k.lastUsedAt]),
        ),
      );
    } else if (action === 'create') {
      noMore(rest, 0);
      const name = str(values, 'name');
      const role = str(values, 'role');
      if (!name || !role) throw new UsageError('create needs --name and --role');
      const perSecond = num(values, 'rate-limit');
      const created = await ctx.shoal.keys.create({
        name,
        role: role as Role,
        collections: str(values, 'collections')?.split(','),
        expiresAt: str(values, 'expires-at'),
        rateLimit: perSecond === undefined ? undefined : { perSecond },
      });
      done(ctx, created, () => {
        say(ctx, created.key);
        ctx.io.stderr.write(`key ${created.id} (${created.role}): the secret above is shown once\n`);
      });
    } else {
      const id = need(rest, 0, 'id');
      noMore(rest, 1);
      const out = await ctx.shoal.keys.revoke(id);
      done(ctx, out, () => say(ctx, `revoked ${id}`));
    }
  },
};

const health: Command = {
  usage: 'health',
  summary: 'server version (and the local emulator endpoints)',
  async run(ctx, args) {
    noMore(args, 0);
    const h = await ctx.shoal.health();
    done(ctx, h, () => say(ctx, `${h.status} ${h.version} at ${ctx.shoal.url}`));
  },
};

export const COMMANDS: Record<string, Command> = {
  collections,
  upsert,
  import: importCmd,
  search,
  get,
  delete: del,
  list,
  index,
  versions,
  aliases,
  experiments,
  keys,
  health,
};
