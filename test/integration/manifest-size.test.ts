/**
 * Manifests past DynamoDB's 400 KB item limit (docs/architecture.md §4.1): at 100M vectors a version has
 * 4,096 partitions and more shards, over 1 MiB of JSON. The catalog stores small manifests inline as before,
 * larger ones brotli-compressed, and those still over the item budget as an S3 object the item names —
 * against dynalite, which refuses items over 400 KB as DynamoDB does.
 */
import { createHash } from 'node:crypto';
import { brotliCompressSync, constants as zlib } from 'node:zlib';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, CorruptDataError } from '../../shared/errors.js';
import { DynamoCatalog, MANIFEST_ITEM } from '../../shared/storage/dynamo-catalog.js';
import {
  centroidsKey,
  collectionKey,
  colPk,
  deletesKey,
  idxSk,
  manifestDocKey,
  manifestDocPrefix,
  shardKey,
} from '../../shared/storage/keys.js';
import { traced } from '../../shared/storage/trace.js';
import type { Manifest, ShardRef } from '../../shared/storage/types.js';
import { startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';

const BUCKET = 'shoal-manifest-size';
let stack: EmulatedStack;
const clock = Date.parse('2025-01-01T00:00:00Z');
const now = (): number => clock;

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * A manifest shaped as the builder writes a partitioned version (shared/indexing/builder.ts): content-addressed
 * shard ids and keys, full sha256s, seq ranges, every `bitmapEvery`-th shard with a deletion bitmap.
 */
function manifestOf(
  collection: string,
  generation: number,
  version: number,
  shards: number,
  opts: { bitmapEvery?: number; createdAt?: string } = {},
): Manifest {
  const ck = collectionKey({ name: collection, generation });
  const refs: ShardRef[] = [];
  let seq = 1;
  for (let i = 0; i < shards; i++) {
    const hash = hex(`${ck}/${version}/shard/${i}`);
    const count = 20_000 + ((i * 7919) % 5_000);
    const ref: ShardRef = {
      id: hash.slice(0, 32),
      key: shardKey(ck, hash.slice(0, 32)),
      bytes: 70_000_000 + ((i * 104_729) % 9_000_000),
      count,
      live: count,
      engine: 'hnsw',
      sha256: hash,
      minSeq: seq,
      maxSeq: seq + count - 1,
      partition: i % 4_096,
    };
    seq += count;
    if (opts.bitmapEvery && i % opts.bitmapEvery === 0) {
      const bits = hex(`${ck}/${version}/bits/${i}`);
      const gone = 1 + (i % 900);
      ref.live = count - gone;
      ref.deletes = { key: deletesKey(ck, ref.id, bits.slice(0, 32)), count: gone, sha256: bits };
    }
    refs.push(ref);
  }
  const centroids = hex(`${ck}/centroids`);
  const rows = seq - 1;
  return {
    collection,
    generation,
    version,
    line: 'main',
    parent: version - 1,
    watermark: rows,
    engine: 'hnsw',
    params: { M: 16, efConstruction: 200, nprobe: 64 },
    shards: refs,
    partitions: {
      count: Math.min(shards, 4_096),
      dim: 768,
      key: centroidsKey(ck, centroids.slice(0, 32)),
      sha256: centroids,
      fairShare: 24_414,
    },
    createdAt: opts.createdAt ?? new Date(clock).toISOString(),
    codeVersion: '0.1.0+abcdef1',
    stats: { rows, liveRows: rows, bytes: refs.reduce((n, r) => n + r.bytes, 0), buildMs: 123_456, kind: 'delta' },
  };
}

async function rawItem(collection: string, version: number): Promise<Record<string, unknown>> {
  const res = await stack.aws.ddb.send(
    new GetCommand({ TableName: 'catalog', Key: { pk: colPk(collection), sk: idxSk(version) }, ConsistentRead: true }),
  );
  expect(res.Item, `item ${collection}/${version}`).toBeDefined();
  return res.Item!;
}

/** Which of the three forms an item holds. */
function formOf(item: Record<string, unknown>): 'doc' | 'docz' | 'docRef' {
  const forms = (['doc', 'docz', 'docRef'] as const).filter((f) => item[f] !== undefined);
  expect(forms).toHaveLength(1);
  return forms[0];
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const page of stack.objects.list(prefix)) out.push(...page.map((o) => o.key));
  return out;
}

/** A catalog on its own client, as a new container has (empty caches). */
const freshCatalog = (objects = true): DynamoCatalog =>
  new DynamoCatalog({ ddb: stack.aws.ddb, table: 'catalog', now, ...(objects ? { objects: stack.objects } : {}) });

const s3Gets = (calls: ReadonlyArray<{ service: string; op: string }>): number =>
  calls.filter((c) => c.service === 'S3' && c.op === 'GetObjectCommand').length;

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: BUCKET, now });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('manifest size', () => {
  // The sizes docs/architecture.md §4.1 quotes, measured on the builder-shaped manifests above and printed.
  it.each([
    [4_096, 0, 'compressed'],
    [4_096, 4, 'compressed'],
    [4_096, 1, 'spilled'],
    [16_384, 0, 'spilled'],
  ] as const)('sizes %i shards (every %i-th with a bitmap; 0 = none): %s', (shards, bitmapEvery, form) => {
    const json = Buffer.from(JSON.stringify(manifestOf('sizes', 1, 1, shards, bitmapEvery ? { bitmapEvery } : {})));
    const br = brotliCompressSync(json, { params: { [zlib.BROTLI_PARAM_QUALITY]: MANIFEST_ITEM.BROTLI_QUALITY } });
    process.stdout.write(
      `manifest ${shards} shards, bitmaps 1/${bitmapEvery || '∞'}: JSON ${(json.length / 1024).toFixed(0)} KiB, ` +
        `brotli q${MANIFEST_ITEM.BROTLI_QUALITY} ${(br.length / 1024).toFixed(0)} KiB\n`,
    );
    expect(json.length).toBeGreaterThan(MANIFEST_ITEM.INLINE_BYTES);
    expect(br.length > MANIFEST_ITEM.BUDGET_BYTES ? 'spilled' : 'compressed').toBe(form);
  });

  it('is bounded by the item limit: dynalite refuses a 4,096-shard manifest stored inline', async () => {
    const m = manifestOf('inline-limit', 1, 1, 4_096);
    const doc = JSON.stringify(m);
    expect(doc.length).toBeGreaterThan(1_000_000);
    const put = stack.aws.ddb.send(
      new PutCommand({
        TableName: 'catalog',
        Item: { pk: colPk(m.collection), sk: idxSk(m.version), version: m.version, doc },
      }),
    );
    await expect(put).rejects.toThrow(/Item size has exceeded the maximum allowed size/);
  });

  it.each([
    { shards: 40, bitmapEvery: 0, form: 'doc' },
    { shards: 100, bitmapEvery: 0, form: 'docz' },
    { shards: 4_096, bitmapEvery: 0, form: 'docz' },
    { shards: 4_096, bitmapEvery: 1, form: 'docRef' },
    { shards: 16_384, bitmapEvery: 4, form: 'docRef' },
  ] as const)(
    'commits and reads back $shards shards (bitmaps every $bitmapEvery) as $form',
    async ({ shards, bitmapEvery, form }) => {
      const { catalog } = stack;
      const name = `size-${shards}-${bitmapEvery}`;
      const m = manifestOf(name, 1, 1, shards, { bitmapEvery });
      const json = Buffer.byteLength(JSON.stringify(m));

      expect(await catalog.commitManifest(m)).toBe(true);

      const item = await rawItem(name, 1);
      expect(formOf(item)).toBe(form);
      if (form === 'doc') expect(json).toBeLessThanOrEqual(MANIFEST_ITEM.INLINE_BYTES);
      if (form === 'docz') expect((item.docz as Uint8Array).byteLength).toBeLessThanOrEqual(MANIFEST_ITEM.BUDGET_BYTES);
      if (form === 'docRef') {
        const ref = item.docRef as { key: string; sha256: string; bytes: number };
        expect(ref.key).toBe(manifestDocKey(collectionKey({ name, generation: 1 }), 1, ref.sha256.slice(0, 32)));
        expect(ref.bytes).toBeGreaterThan(MANIFEST_ITEM.BUDGET_BYTES);
        expect(await keysUnder(manifestDocPrefix(collectionKey({ name, generation: 1 })))).toEqual([ref.key]);
      }
      const reader = freshCatalog();
      expect(await reader.getManifest(name, 1)).toEqual(m);
      expect(await reader.listManifests(name)).toEqual([m]);
      expect(await reader.latestManifest(name, 'main')).toEqual(m);
      expect(await reader.manifestAt(name, 1, 1)).toEqual(m);
    },
  );

  it('recognises a resent commit of a spilled manifest as its own, and a racing one as not', async () => {
    const { catalog } = stack;
    const name = 'resend';
    const ck = collectionKey({ name, generation: 1 });
    const m = manifestOf(name, 1, 7, 16_384);
    expect(await catalog.commitManifest(m)).toBe(true);
    const ref = (await rawItem(name, 7)).docRef as { key: string };

    // The same manifest again (a retry after a lost answer): the item holds this commit.
    expect(await catalog.commitManifest(m)).toBe(true);
    // A racing builder's manifest of the same version differs (createdAt): it lost, and its object is dropped.
    const rival = manifestOf(name, 1, 7, 16_384, { createdAt: new Date(clock + 1).toISOString() });
    expect(await catalog.commitManifest(rival)).toBe(false);
    expect(await keysUnder(manifestDocPrefix(ck))).toEqual([ref.key]);
    expect(await freshCatalog().getManifest(name, 7)).toEqual(m);
  });

  it('survives the SDK resending a spilled commit whose response was lost', async () => {
    const dynamo = new DynamoDBClient({
      region: stack.emulators.endpoints.region,
      endpoint: stack.emulators.endpoints.dynamodb,
    });
    let lost = 0;
    // Inside the retry loop (as shared/storage/faults.ts injects): the put is applied, its answer lost once.
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const first = context.commandName === 'PutItemCommand' && lost++ === 0;
        const out = await next(args);
        if (first) {
          throw Object.assign(new Error('socket hang up (test: response lost)'), { code: 'ECONNRESET', $metadata: {} });
        }
        return out;
      },
      { step: 'deserialize', priority: 'high', name: 'loseFirstPutResponse' },
    );
    const catalog = new DynamoCatalog({
      ddb: DynamoDBDocumentClient.from(dynamo),
      table: 'catalog',
      now,
      objects: stack.objects,
    });
    const m = manifestOf('lost-answer', 1, 3, 16_384);
    try {
      expect(await catalog.commitManifest(m)).toBe(true);
    } finally {
      dynamo.destroy();
    }
    expect(lost).toBe(2); // the first send and its resend
    expect(formOf(await rawItem('lost-answer', 3))).toBe('docRef');
    expect(await freshCatalog().getManifest('lost-answer', 3)).toEqual(m);
  });

  it('throws CorruptDataError for a spilled object that was overwritten or is missing', async () => {
    const name = 'corrupt';
    const m = manifestOf(name, 1, 1, 16_384);
    expect(await stack.catalog.commitManifest(m)).toBe(true);
    const ref = (await rawItem(name, 1)).docRef as { key: string };
    await stack.aws.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: ref.key, Body: Buffer.from('{"not":"it"}') }));

    await expect(freshCatalog().getManifest(name, 1)).rejects.toBeInstanceOf(CorruptDataError);
    await expect(freshCatalog().listManifests(name)).rejects.toThrow(/does not match its sha256/);

    await stack.objects.delete([ref.key]);
    // Not "no such version": the object is written before the item, so its absence is damage.
    await expect(freshCatalog().manifestAt(name, 1, 1)).rejects.toBeInstanceOf(CorruptDataError);
  });

  it('still reads items written inline before compression existed, whatever their size', async () => {
    const name = 'old-items';
    const small = manifestOf(name, 1, 1, 3);
    const large = manifestOf(name, 1, 2, 200); // ≈ 60 KiB: inline then, compressed now
    for (const m of [small, large]) {
      await stack.aws.ddb.send(
        new PutCommand({
          TableName: 'catalog',
          Item: { pk: colPk(name), sk: idxSk(m.version), version: m.version, doc: JSON.stringify(m) },
        }),
      );
    }
    const reader = freshCatalog(false);
    expect(await reader.getManifest(name, 2)).toEqual(large);
    expect(await reader.listManifests(name)).toEqual([large, small]);
  });

  it('serves a spilled head through manifestAt, fetching it from S3 once per process', async () => {
    const { catalog } = stack;
    const meta = await catalog.createCollection({
      name: 'heads',
      dimension: 768,
      metric: 'cosine',
      index: { engine: 'hnsw', params: {} },
    });
    const m = manifestOf('heads', meta.generation, 5, 16_384);
    expect(await catalog.commitManifest(m)).toBe(true);
    expect(await catalog.setHead('heads', meta.generation, 'main', 5)).toBe(true);

    const reader = freshCatalog();
    const first = await traced(async () => {
      const head = (await reader.getCollection('heads')).heads?.main;
      return reader.manifestAt('heads', meta.generation, head!);
    });
    expect(first.result).toEqual(m);
    expect(s3Gets(first.trace.calls)).toBe(1);

    const second = await traced(() => reader.manifestAt('heads', meta.generation, 5));
    expect(second.result).toBe(first.result);
    expect(second.trace.calls).toEqual([]);

    // Listing passes the same item: the spilled doc comes from the process's copy, not S3.
    const listed = await traced(() => reader.listManifests('heads'));
    expect(listed.result).toEqual([m]);
    expect(s3Gets(listed.trace.calls)).toBe(0);
  });

  it('keeps the per-process manifest cache under its shard budget (65,536 refs: four of 16k shards)', async () => {
    const { catalog } = stack;
    const meta = await catalog.createCollection({
      name: 'budget',
      dimension: 768,
      metric: 'cosine',
      index: { engine: 'hnsw', params: {} },
    });
    for (let v = 1; v <= 5; v++)
      expect(await catalog.commitManifest(manifestOf('budget', meta.generation, v, 16_384))).toBe(true);
    const reader = freshCatalog();
    for (let v = 1; v <= 5; v++) await reader.manifestAt('budget', meta.generation, v);
    // Versions 2–5 fill the budget; version 1, the least recently used, went.
    for (const v of [2, 3, 4, 5]) {
      const again = await traced(() => reader.manifestAt('budget', meta.generation, v));
      expect(again.trace.calls, `v${v}`).toEqual([]);
    }
    const evicted = await traced(() => reader.manifestAt('budget', meta.generation, 1));
    expect(evicted.result?.version).toBe(1);
    expect(evicted.trace.calls.length).toBeGreaterThan(0);
  });

  it('deletes spilled manifests with their collection', async () => {
    const { catalog } = stack;
    const meta = await catalog.createCollection({
      name: 'doomed',
      dimension: 768,
      metric: 'l2',
      index: { engine: 'hnsw', params: {} },
    });
    const prefix = manifestDocPrefix(collectionKey(meta));
    for (const v of [1, 2])
      expect(await catalog.commitManifest(manifestOf('doomed', meta.generation, v, 16_384))).toBe(true);
    expect(await keysUnder(prefix)).toHaveLength(2);

    await catalog.deleteCollection('doomed');

    expect(await keysUnder(prefix)).toEqual([]);
    expect(await catalog.listManifests('doomed')).toEqual([]);
  });

  it('refuses to spill, with a clear error, from a catalog without an object store', async () => {
    const catalog = freshCatalog(false);
    expect(await catalog.commitManifest(manifestOf('no-s3', 1, 1, 4_096))).toBe(true); // compressed fits
    await expect(catalog.commitManifest(manifestOf('no-s3', 1, 2, 16_384))).rejects.toBeInstanceOf(ConfigError);
    await expect(catalog.getManifest('no-s3', 2)).rejects.toThrow(/not found/);
    expect(await stack.catalog.commitManifest(manifestOf('no-s3', 1, 3, 16_384))).toBe(true);
    await expect(catalog.getManifest('no-s3', 3)).rejects.toBeInstanceOf(ConfigError);
  });
});
