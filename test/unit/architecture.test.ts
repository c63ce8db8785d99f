/**
 * The dependency rules of the tree, checked on the source itself: the lint rule against import
 * cycles really fires, the service contract depends on no implementation, and every storage
 * key layout is spelled in `shared/storage/keys.ts` alone.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/repo.js';

/** Every module specifier a file imports or re-exports, `import type` and `export type` included. */
function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  const re = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (let m = re.exec(source); m; m = re.exec(source)) out.push(m[1]);
  // Dynamic imports and `typeof import(...)` also tie a module to another.
  for (const m of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]);
  return out;
}

/** Repository-relative path of a relative specifier (`.js` → `.ts`); undefined for packages. */
function resolveSpecifier(fromFile: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return relative(ROOT, resolve(ROOT, dirname(fromFile), spec)).replace(/\.js$/, '.ts');
}

/** The modules `entries` reach through relative imports (type-only ones too), entries included. */
function closure(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length) {
    const file = todo.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of importSpecifiers(readFileSync(join(ROOT, file), 'utf8'))) {
      const target = resolveSpecifier(file, spec);
      if (target) todo.push(target);
    }
  }
  return seen;
}

/** Code that implements the service; the contract must not depend on it, not even for a type. */
const IMPLEMENTATION = new RegExp(
  [
    '^shared/(lifecycle|indexing|search|ingest|import|api)/',
    '^shared/storage/(dynamo-|s3-|clients)',
    '^shared/(core|runtime)\\.ts$',
  ].join('|'),
);
const CONTRACT = ['shared/service.ts', 'shared/service-types.ts'];

describe('import cycles', () => {
  it('import-x/no-cycle reports a two-file value-import cycle with the repository config', async () => {
    // The fixture is ignored by `npm run lint`; linting it explicitly proves the rule is live.
    const eslint = new ESLint({ cwd: ROOT, ignore: false });
    const results = await eslint.lintFiles(['test/fixtures/cycle/a.ts', 'test/fixtures/cycle/b.ts']);
    expect(results).toHaveLength(2);
    for (const result of results) {
      const rules = result.messages.map((m) => m.ruleId);
      expect(rules, relative(ROOT, result.filePath)).toContain('import-x/no-cycle');
    }
  }, 120_000);
});

describe('the service contract', () => {
  it('sees type-only imports and re-exports (the check below cannot miss them)', () => {
    const sample = [
      "import type { Evaluation } from './lifecycle/types.js';",
      "import { type LineView, lineView } from './indexing/lines.js';",
      "export type { Manifest } from './storage/dynamo-catalog.js';",
      "type M = typeof import('./search/coordinator.js');",
    ].join('\n');
    const targets = importSpecifiers(sample).map((s) => resolveSpecifier('shared/service.ts', s));
    expect(targets).toEqual([
      'shared/lifecycle/types.ts',
      'shared/indexing/lines.ts',
      'shared/storage/dynamo-catalog.ts',
      'shared/search/coordinator.ts',
    ]);
    expect(targets.every((t) => IMPLEMENTATION.test(t as string))).toBe(true);
  });

  it('depends, even transitively and for types only, on no implementation module', () => {
    const reached = [...closure(CONTRACT)].sort();
    expect(reached).toEqual(expect.arrayContaining(CONTRACT));
    expect(reached.filter((f) => IMPLEMENTATION.test(f))).toEqual([]);
  });
});

// --- storage layouts -------------------------------------------------------------------------

const KEYS_MODULE = 'shared/storage/keys.ts';
const DYNAMO_PREFIXES = [
  'COL',
  'IDX',
  'PROMO',
  'EVAL',
  'IMPORT',
  'MIGRATION',
  'ALIAS',
  'MALIAS',
  'MALIASES',
  'EXP',
  'ARM',
  'QUERY',
  'MODEL',
  'APIKEY',
  'DRIFT',
  'H',
  'V',
];
const S3_PREFIXES = [
  'shards',
  'deletes',
  'imports',
  'reports',
  'models',
  'plans',
  'centroids',
  'manifests',
  'milvus',
  'inputs',
];
/** A string or template literal that starts with a key prefix: `'COL#`, `` `shards/ ``, `"APIKEY#`. */
const LAYOUT_LITERAL = new RegExp(`['"\`](?:(?:${DYNAMO_PREFIXES.join('|')})#|(?:${S3_PREFIXES.join('|')})/)`);

/** Source without comments (line numbers kept), so prose may still describe the layouts. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, '')).replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function layoutLiterals(file: string, source: string): string[] {
  return stripComments(source)
    .split('\n')
    .flatMap((line, i) => (LAYOUT_LITERAL.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : []));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

describe('storage layouts', () => {
  it('recognises prefix literals in every quoting, and not in comments', () => {
    const sample = [
      "const a = 'COL#' + name;",
      'const b = `IDX#${pad(v)}`;',
      'const c = "APIKEY#*";',
      "const d = { prefix: 'shards/' };",
      'const e = `models/${name}/${version}/artifact`;',
      '// pk=COL#<name>, objects under `shards/<ck>/`',
      '/**',
      ' * `imports/<collection>/` is watched',
      ' */',
      "const f = 'META';",
    ].join('\n');
    expect(layoutLiterals('sample.ts', sample)).toEqual([
      "sample.ts:1: const a = 'COL#' + name;",
      'sample.ts:2: const b = `IDX#${pad(v)}`;',
      'sample.ts:3: const c = "APIKEY#*";',
      "sample.ts:4: const d = { prefix: 'shards/' };",
      'sample.ts:5: const e = `models/${name}/${version}/artifact`;',
    ]);
  });

  it('spells DynamoDB key prefixes and S3 prefixes only in shared/storage/keys.ts', () => {
    // Generated modules are left out: the console's bundle embeds the SDK's minified API paths
    // (`/v1/models/…`), which are routes, not storage keys.
    const files = ['shared', 'functions', 'infra']
      .flatMap(sourceFiles)
      .filter((f) => f !== KEYS_MODULE && !f.endsWith('.gen.ts'));
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((f) => layoutLiterals(f, readFileSync(join(ROOT, f), 'utf8')));
    expect(found).toEqual([]);
  });

  it('keeps shared/storage/keys.ts dependency-free, so the CDK app and the authorizer can load it', () => {
    const source = readFileSync(join(ROOT, KEYS_MODULE), 'utf8');
    expect(importSpecifiers(source)).toEqual([]);
    // It does hold the layouts the check above keeps out of everywhere else.
    expect(layoutLiterals(KEYS_MODULE, source).length).toBeGreaterThan(DYNAMO_PREFIXES.length);
  });
});
