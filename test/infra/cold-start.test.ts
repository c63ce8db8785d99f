/**
 * Cold start (docs/operations.md, "Cold start"): what a function loads and builds at init is only what
 * every request of its role needs. The searcher's bundle imports the S3 SDK alone; no bundle imports the
 * Lambda SDK statically; the runtime creates its Lambda client on the first scatter, not at init. The
 * bundles are built with the CDK's own options (SHOAL_BUNDLING); the client is counted on the heap.
 */
import { queryObjects } from 'node:v8';
import path from 'node:path';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { build, type Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, SHOAL_BUNDLING } from '../../infra/cdk/constructs/shoal-function.js';
import { startLambdaEmulator, type LambdaEmulator } from '../../infra/local/lambda-emulator.js';
import { config, resetConfig } from '../../shared/config.js';
import { getRuntime, lambdaScatter, resetRuntime } from '../../shared/runtime.js';
import type { ShardSearchRequest } from '../../shared/search/shard-searcher.js';

/** The SDK packages a function's bundle imports statically (loaded at init) and dynamically (on use). */
async function sdkImports(fn: string): Promise<{ atInit: string[]; onUse: string[] }> {
  const b = SHOAL_BUNDLING;
  const result = await build({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [path.join(PROJECT_ROOT, `functions/${fn}/handler.ts`)],
    bundle: true,
    write: false,
    platform: 'node',
    target: b.target,
    format: b.format,
    outfile: path.join(PROJECT_ROOT, 'cdk.out', 'cold-start-test', fn, 'index.mjs'),
    minify: b.minify,
    external: b.externalModules,
    banner: { js: b.banner },
    mainFields: b.mainFields,
    metafile: true,
    logLevel: 'error',
  });
  const imports = Object.values((result.metafile as Metafile).outputs).flatMap((o) => o.imports);
  const sdk = (kind: string) =>
    [...new Set(imports.filter((i) => i.kind === kind && i.path.startsWith('@aws-sdk/')).map((i) => i.path))].sort();
  return { atInit: sdk('import-statement'), onUse: sdk('dynamic-import') };
}

describe('cold start: what each function loads at init', () => {
  it('the searcher loads the S3 SDK only', async () => {
    const { atInit } = await sdkImports('shard-search');
    expect(atInit).toEqual(['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner']);
  });

  it.each(['api', 'index-builder', 'build-worker', 'import', 'shard-search'])(
    '%s imports the Lambda SDK on first use, not at init',
    async (fn) => {
      const { atInit, onUse } = await sdkImports(fn);
      expect(atInit).not.toContain('@aws-sdk/client-lambda');
      if (fn !== 'shard-search') expect(onUse).toContain('@aws-sdk/client-lambda');
    },
  );
});

describe('cold start: the runtime creates its Lambda client on the first scatter', () => {
  const saved = { ...process.env };
  let emulator: LambdaEmulator;
  const lambdaClients = () => queryObjects(LambdaClient, { format: 'count' });

  beforeAll(async () => {
    emulator = await startLambdaEmulator({
      functions: { 'cold-start-searcher-0': async (payload) => ({ results: [], echo: payload }) },
    });
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'cold-start',
      AWS_SECRET_ACCESS_KEY: 'cold-start',
      SHOAL_BUCKET: 'cold-start-bucket',
      SHOAL_CATALOG_TABLE: 'cold-start-catalog',
      SHOAL_RECORDS_TABLE: 'cold-start-records',
      SHOAL_BUILD_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/cold-start-build',
      SHOAL_LAMBDA_ENDPOINT: emulator.endpoint,
      SHOAL_SHARD_SEARCH_FUNCTION: 'cold-start-searcher-{slot}',
    });
    resetConfig();
    resetRuntime();
  });

  afterAll(async () => {
    resetRuntime();
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
    resetConfig();
    await emulator?.stop();
  });

  it('builds the runtime without a Lambda client; one is made on the first scatter and reused', async () => {
    const before = lambdaClients();
    const runtime = await getRuntime();
    expect(runtime.service).toBeDefined();
    expect(lambdaClients()).toBe(before);

    const scatter = lambdaScatter(config());
    expect(lambdaClients()).toBe(before);
    const request = { slot: 0 } as unknown as ShardSearchRequest;
    expect(await scatter(0, request)).toEqual({ results: [], echo: request });
    expect(lambdaClients()).toBe(before + 1);
    await scatter(0, request);
    expect(lambdaClients()).toBe(before + 1);
  });
});
