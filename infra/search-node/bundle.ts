/**
 * Bundles the search node (functions/search-node/main.ts) into `<out>/main.mjs`, its search threads into
 * `<out>/search-worker.mjs`, with the engine's WASM beside them: what the container image runs
 * (infra/search-node/Dockerfile calls this) and what test/infra/search-node-bundle.test.ts starts. Unlike
 * the Lambda bundles the AWS SDK is bundled too: a plain Node image ships no SDK.
 *
 *   npx tsx infra/search-node/bundle.ts [outDir]   (default dist/search-node)
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { ENGINE_WASM, ESM_REQUIRE_BANNER, PROJECT_ROOT } from '../cdk/constructs/shoal-function.js';

export async function bundleSearchNode(outDir: string): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  await build({
    // The node and its search threads' code (functions/search-node/pool.ts starts search-worker.mjs beside main.mjs).
    entryPoints: {
      main: path.join(PROJECT_ROOT, 'functions/search-node/main.ts'),
      'search-worker': path.join(PROJECT_ROOT, 'functions/search-node/search-worker.ts'),
    },
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    minify: true,
    sourcemap: 'external',
    sourcesContent: false,
    outdir: outDir,
    logLevel: 'warning',
  });
  copyFileSync(path.join(PROJECT_ROOT, ENGINE_WASM), path.join(outDir, path.basename(ENGINE_WASM)));
  return path.join(outDir, 'main.mjs');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = path.resolve(process.argv[2] ?? path.join(PROJECT_ROOT, 'dist/search-node'));
  console.log(`search node bundled: ${await bundleSearchNode(out)}`);
}
