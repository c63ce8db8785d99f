/**
 * The search node's container program (infra/search-node/bundle.ts, what the Dockerfile runs): bundled,
 * started as its own process against the emulators with the environment the CDK gives its task (here with
 * two search threads), it serves a shard search over HTTP with the in-process answer, and drains on SIGTERM
 * (ECS stopping the task).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleSearchNode } from '../../infra/search-node/bundle.js';
import { ShoalCore } from '../../shared/core.js';
import { Indexer } from '../../shared/indexing/indexer.js';
import { nodeScatter } from '../../shared/search/node-scatter.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { searchShards, type ShardSearchRequest } from '../../shared/search/shard-searcher.js';
import { startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

const BUCKET = 'shoal-node-bundle';
let outDir: string;
let stack: EmulatedStack;
let child: ChildProcess | undefined;
let url: string;
let request: ShardSearchRequest;
const vectors = vectorInputs(200, 8, 5, 'b');

beforeAll(async () => {
  outDir = mkdtempSync(path.join(tmpdir(), 'shoal-search-node-'));
  const main = await bundleSearchNode(outDir);
  const clock = Date.now();
  stack = await startEmulatedStack({ bucket: BUCKET, now: () => clock });
  const deps = {
    catalog: stack.catalog,
    records: stack.records,
    objects: stack.objects,
    cache: new ShardCache({ objects: stack.objects, memoryBytes: 2 ** 26 }),
    codeVersion: 'test',
    now: () => clock,
  };
  const core = new ShoalCore({ ...deps, slots: 1, wake: async () => undefined });
  await core.createCollection({ name: 'bundle', dimension: 8, metric: 'cosine' });
  await core.upsert('bundle', vectors);
  await new Indexer(deps).buildNow('bundle');
  const shards = (await stack.catalog.getManifest('bundle', 1)).shards;
  expect(shards.length).toBeGreaterThan(0);
  request = { metric: 'cosine', shards, queries: [Array.from(vectors[42].values)], k: 5 };

  const { endpoints } = stack.emulators;
  child = spawn(process.execPath, [main], {
    cwd: outDir,
    // What the stack gives the task (infra/cdk/constructs/search-nodes.ts), with the emulators' endpoints.
    env: {
      PATH: process.env.PATH,
      AWS_REGION: endpoints.region,
      AWS_ACCESS_KEY_ID: endpoints.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: endpoints.credentials.secretAccessKey,
      SHOAL_BUCKET: BUCKET,
      SHOAL_CATALOG_TABLE: 'catalog',
      SHOAL_RECORDS_TABLE: 'records',
      SHOAL_BUILD_QUEUE_URL: `${endpoints.sqs}/000000000000/build`,
      SHOAL_S3_ENDPOINT: endpoints.s3,
      SHOAL_SEARCH_NODE_PORT: '0',
      // Two search threads: the bundle must start search-worker.mjs beside main.mjs.
      SHOAL_SEARCH_NODE_THREADS: '2',
      SHOAL_SHARD_CACHE_MB: '64',
      SHOAL_SHARD_CACHE_DIR: path.join(outDir, 'cache'),
      SHOAL_LOG_FORMAT: 'json',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolve(m[1].replace('0.0.0.0', '127.0.0.1'));
    });
    child!.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    child!.once('exit', (code) => reject(new Error(`search node exited (${code}): ${out}`)));
    setTimeout(() => reject(new Error(`search node did not start in 20 s: ${out}`)), 20_000);
  });
}, 120_000);

afterAll(async () => {
  child?.kill('SIGKILL');
  await stack?.stop();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe('the search node container program', () => {
  it('answers a slot part over HTTP as the in-process searcher does', async () => {
    const scatter = nodeScatter({ nodes: url, timeoutMs: 10_000 });
    const remote = await scatter(2, request);
    const local = await searchShards(new ShardCache({ objects: stack.objects, memoryBytes: 2 ** 26 }), request);
    expect(remote.results).toEqual(local.results);
    expect(remote.results[0][0].id).toBe('b42');
    expect(remote.loaded).toBeGreaterThan(0);
    // Warm: the second part reads nothing from S3.
    expect((await scatter(2, request)).loaded).toBe(0);
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    child = undefined;
  });
});
