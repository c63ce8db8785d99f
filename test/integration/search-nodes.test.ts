/**
 * Resident search nodes (docs/architecture.md §7.7) against the emulators: the coordinator sends slot parts
 * over HTTP to real node servers, each with its own shard cache, and falls back to the slot's Lambda
 * (here: the function the Lambda runs) when a node is gone, stalls, or does not serve the slot.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { threadOf, threadPool } from '../../functions/search-node/pool.js';
import { startSearchNode, type SearchNode } from '../../functions/search-node/server.js';
import { ShoalCore } from '../../shared/core.js';
import { EngineError } from '../../shared/errors.js';
import { Indexer } from '../../shared/indexing/indexer.js';
import { SearchUnavailableError, slotOf } from '../../shared/search/coordinator.js';
import { nodeScatter, slotPath, type Scatter } from '../../shared/search/node-scatter.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { searchShards } from '../../shared/search/shard-searcher.js';
import type { SearchInput } from '../../shared/service.js';
import { traced } from '../../shared/storage/trace.js';
import { startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

const SLOTS = 3;
let stack: EmulatedStack;
const nodes: SearchNode[] = [];
const clock = Date.now();

function cache(): ShardCache {
  return new ShardCache({ objects: stack.objects, memoryBytes: 2 ** 28 });
}

/** A core scattering every indexed search over SLOTS slots through `scatter`. */
function core(scatter: Scatter): ShoalCore {
  return new ShoalCore({
    catalog: stack.catalog,
    records: stack.records,
    objects: stack.objects,
    cache: cache(),
    slots: SLOTS,
    scatterMinBytes: 0,
    scatter,
    codeVersion: 'test',
    now: () => clock,
    wake: async () => undefined,
  });
}

/** The slot's Lambda as the local stack runs it: its own cache, the request through JSON. */
function lambdas(): { scatter: Scatter; calls: number[] } {
  const calls: number[] = [];
  const caches = new Map<number, ShardCache>();
  return {
    calls,
    scatter: async (slot, request) => {
      calls.push(slot);
      if (!caches.has(slot)) caches.set(slot, cache());
      return searchShards(caches.get(slot)!, JSON.parse(JSON.stringify(request)));
    },
  };
}

const search = (q: Float32Array): SearchInput => ({
  queries: [q],
  k: 10,
  consistency: 'eventual',
  includeMetadata: false,
  includeValues: false,
});

const vectors = vectorInputs(400, 12, 71, 'n');

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-search-nodes', now: () => clock });
  const direct = core(lambdas().scatter);
  await direct.createCollection({ name: 'nodes', dimension: 12, metric: 'l2' });
  const indexer = new Indexer({
    catalog: stack.catalog,
    records: stack.records,
    objects: stack.objects,
    cache: cache(),
    codeVersion: 'test',
    now: () => clock,
  });
  // Four versions' worth of shards, so every slot gets some.
  for (let round = 0; round < 4; round++) {
    await direct.upsert('nodes', vectors.slice(round * 100, (round + 1) * 100));
    await indexer.buildNow('nodes');
  }
}, 60_000);

afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined);
  await stack?.stop();
});

async function node(slots?: number[]): Promise<SearchNode> {
  const n = await startSearchNode({ cache: cache(), slots: slots ? new Set(slots) : undefined });
  nodes.push(n);
  return n;
}

describe('search nodes', () => {
  it('answer every slot part over HTTP with the answers the Lambdas give, one traced call per slot', async () => {
    const n = await node();
    const lambda = lambdas();
    const viaNode = core(nodeScatter({ nodes: n.url, timeoutMs: 5000, fallback: lambda.scatter }));
    const viaLambda = core(lambdas().scatter);
    for (const i of [0, 150, 399]) {
      const q = vectors[i].values;
      const { result, trace } = await traced(() => viaNode.search('nodes', search(q)));
      expect(result.results).toEqual((await viaLambda.search('nodes', search(q))).results);
      expect(result.results[0][0].id).toBe(`n${i}`);
      const parts = trace.calls.filter((c) => c.service === 'SearchNode');
      expect(parts.length).toBeGreaterThan(1);
      expect(parts.length).toBeLessThanOrEqual(SLOTS);
    }
    expect(lambda.calls).toEqual([]);
    const health = (await (await fetch(`${n.url}/health`)).json()) as { status: string; cache: { misses: number } };
    expect(health).toMatchObject({ status: 'ok', slots: 'all' });
    expect(health.cache.misses).toBeGreaterThan(0);
  });

  it('send a slot the node does not serve, and every part of a stopped node, to the Lambda', async () => {
    // Which slots this search touches (shard ids are content hashes, so the spread differs run to run).
    const reference = lambdas();
    const expected = (await core(reference.scatter).search('nodes', search(vectors[7].values))).results;
    const used = [...new Set(reference.calls)].sort();
    const served = used[0];
    const n = await node([served]);
    const lambda = lambdas();
    const fallbacks: number[] = [];
    const viaNode = core(
      nodeScatter({ nodes: n.url, timeoutMs: 5000, fallback: lambda.scatter, onFallback: (s) => fallbacks.push(s) }),
    );
    expect((await viaNode.search('nodes', search(vectors[7].values))).results).toEqual(expected);
    // 421 for the other slots: those went to their Lambdas; the served one stayed on the node.
    const others = used.filter((s) => s !== served);
    expect([...new Set(fallbacks)].sort()).toEqual(others);
    expect([...new Set(lambda.calls)].sort()).toEqual(others);
    await n.stop();
    lambda.calls.length = 0;
    expect((await viaNode.search('nodes', search(vectors[7].values))).results).toEqual(expected);
    expect([...new Set(lambda.calls)].sort()).toEqual(used);
  });

  it('fall back when a node stalls past the timeout, and fail retryably without a fallback', async () => {
    // Accepts the connection and never answers.
    const stalled = http.createServer(() => undefined);
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
    try {
      const lambda = lambdas();
      const viaNode = core(nodeScatter({ nodes: url, timeoutMs: 200, fallback: lambda.scatter }));
      const t0 = performance.now();
      const out = await viaNode.search('nodes', search(vectors[3].values));
      expect(out.results[0][0].id).toBe('n3');
      expect(lambda.calls.length).toBeGreaterThan(0);
      expect(performance.now() - t0).toBeLessThan(3000);
      const alone = core(nodeScatter({ nodes: url, timeoutMs: 200 }));
      await expect(alone.search('nodes', search(vectors[3].values))).rejects.toBeInstanceOf(SearchUnavailableError);
    } finally {
      stalled.closeAllConnections();
      await new Promise((r) => stalled.close(r));
    }
  });

  it("type a node's own search failure as the Lambda's, without paying the part twice", async () => {
    const n = await node();
    const lambda = lambdas();
    const scatter = nodeScatter({ nodes: n.url, timeoutMs: 5000, fallback: lambda.scatter });
    // A shard that is not in the bucket: the node's searcher fails, as a slot Lambda would.
    const request = {
      metric: 'l2' as const,
      shards: [{ id: 'missing', key: 'collections/nodes/missing.shard', bytes: 100, rows: 1 }],
      queries: [[...vectors[0].values]],
      k: 1,
    };
    const failed = await scatter(1, request as never).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(EngineError);
    expect((failed as EngineError).message).toContain('NotFoundError');
    expect(lambda.calls).toEqual([]);
  });

  it('search a part on several threads, each with its own cache, with the one-thread answer', async () => {
    const head = await stack.catalog.latestManifest('nodes');
    const shards = head!.shards;
    expect(shards.length).toBeGreaterThan(1);
    // Enough threads that the shards spread over more than one (ids are content hashes, so the spread varies
    // run to run; with 2 threads all of 4 shards land on one an eighth of the time).
    const threads = [2, 3, 4, 5].find((t) => new Set(shards.map((r) => threadOf(r, t))).size > 1)!;
    expect(threads).toBeDefined();
    // Each thread builds its own searcher runtime from this environment (as the node's process has it).
    const { endpoints } = stack.emulators;
    const pool = threadPool(threads, {
      ...process.env,
      AWS_REGION: endpoints.region,
      SHOAL_BUCKET: 'shoal-search-nodes',
      SHOAL_CATALOG_TABLE: 'catalog',
      SHOAL_RECORDS_TABLE: 'records',
      SHOAL_BUILD_QUEUE_URL: `${endpoints.sqs}/000000000000/build`,
      SHOAL_S3_ENDPOINT: endpoints.s3,
      SHOAL_SHARD_CACHE_MB: '64',
    });
    const n = await startSearchNode({ searcher: pool });
    nodes.push(n);
    const scatter = nodeScatter({ nodes: n.url, timeoutMs: 10_000 });
    for (const i of [5, 250]) {
      const request = { metric: 'l2' as const, shards, queries: [Array.from(vectors[i].values)], k: 10 };
      const local = await searchShards(cache(), request);
      const remote = await scatter(0, request);
      expect(remote.results).toEqual(local.results);
      expect(remote.results[0][0].id).toBe(`n${i}`);
    }
    const health = (await (await fetch(`${n.url}/health`)).json()) as { cache: { misses: number; hits: number } };
    expect(health.cache.misses).toBe(shards.length);
    expect(health.cache.hits).toBe(shards.length);
  });

  it("spread one slot's shards over a node's threads (the slot hash does not decide the thread)", () => {
    const ids = Array.from({ length: 4000 }, (_, i) => ({ id: `shard-${i}` }));
    const slot0 = ids.filter((r) => slotOf({ ...r } as never, 64) === 0);
    expect(slot0.length).toBeGreaterThan(30);
    const perThread = [0, 1].map((t) => slot0.filter((r) => threadOf(r, 2) === t).length);
    expect(Math.min(...perThread)).toBeGreaterThan(slot0.length / 4);
  });

  it('refuse malformed parts with 400 naming the field', async () => {
    const n = await node();
    const post = (body: string) =>
      fetch(`${n.url}${slotPath(0)}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const bad = await post(JSON.stringify({ metric: 'l2', shards: [], queries: [[1]], k: 0 }));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ errorType: 'InvalidRequest', errorMessage: 'k: must be a positive integer' });
    expect((await post('{')).status).toBe(400);
    expect((await fetch(`${n.url}/v1/slots/x/search`, { method: 'POST', body: '{}' })).status).toBe(404);
  });
});
