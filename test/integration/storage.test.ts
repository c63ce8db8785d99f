/**
 * The storage adapters (DynamoCatalog, DynamoRecordStore, S3ObjectStore) against the embedded
 * emulators, through the same client factory and schema bootstrap the local runtime uses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BatchGetCommand,
  BatchWriteCommand,
  PutCommand,
  QueryCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { startEmulators, type Emulators } from '../../infra/local/emulators.js';
import { parseConfig } from '../../shared/config.js';
import { ConflictError, CorruptDataError, NotFoundError } from '../../shared/errors.js';
import { makeAwsClients, type AwsClients } from '../../shared/storage/clients.js';
import { DynamoCatalog } from '../../shared/storage/dynamo-catalog.js';
import { DynamoImportJobs } from '../../shared/storage/dynamo-import-jobs.js';
import { DynamoLifecycleStore } from '../../shared/storage/dynamo-lifecycle.js';
import { DynamoRecordStore } from '../../shared/storage/dynamo-records.js';
import { S3ObjectStore } from '../../shared/storage/s3-objects.js';
import { ensureBucket, ensureTables } from '../../shared/storage/tables.js';
import { colPk, logPk, logSk } from '../../shared/storage/keys.js';
import { MAIN_LINE, type CollectionMeta, type Manifest, type StoredRecord } from '../../shared/storage/types.js';
import { mulberry32, randomVectors } from '../helpers/random.js';

const CATALOG = 'shoal-catalog';
const RECORDS = 'shoal-records';
const BUCKET = 'shoal-objects';

/** Settles a call now and returns what it threw, or undefined. */
function errorOf(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => undefined,
    (err: unknown) => err,
  );
}

async function collect<T>(it: AsyncIterable<T[]>): Promise<{ pages: T[][]; all: T[] }> {
  const pages: T[][] = [];
  for await (const page of it) pages.push(page);
  return { pages, all: pages.flat() };
}

function bytesOf(v: Float32Array): number[] {
  return [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)];
}

const INDEX: CollectionMeta['index'] = { engine: 'hnsw', params: { m: 16, efConstruction: 200 } };

function manifest(collection: string, version: number, overrides: Partial<Manifest> = {}): Manifest {
  return {
    collection,
    generation: 1,
    version,
    parent: Math.max(0, version - 1),
    watermark: version * 10,
    engine: 'flat',
    params: {},
    shards: [
      {
        id: `shard${version}`,
        key: `shards/${collection}/1/shard${version}.shard`,
        bytes: 1024,
        count: 10,
        live: 9,
        engine: 'flat',
        sha256: 'ab'.repeat(32),
        minSeq: 1,
        maxSeq: version * 10,
        deletes: { key: `deletes/${collection}/${version}/shard${version}.bits`, count: 1, sha256: 'cd'.repeat(32) },
      },
    ],
    createdAt: '2030-01-01T00:00:00.000Z',
    codeVersion: '0.1.0',
    stats: { rows: 10, liveRows: 9, bytes: 1024, buildMs: 12, kind: version === 1 ? 'initial' : 'delta' },
    ...overrides,
  };
}

describe('storage adapters on the emulators', () => {
  let emulators: Emulators;
  let clients: AwsClients;
  let clock = 1_000_000;
  let catalog: DynamoCatalog;
  let records: DynamoRecordStore;
  let objects: S3ObjectStore;

  beforeAll(async () => {
    emulators = await startEmulators({});
    // Credentials come from the environment, as under the local runtime.
    process.env.AWS_ACCESS_KEY_ID = emulators.endpoints.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = emulators.endpoints.credentials.secretAccessKey;
    const cfg = parseConfig({
      AWS_REGION: emulators.endpoints.region,
      SHOAL_BUCKET: BUCKET,
      SHOAL_CATALOG_TABLE: CATALOG,
      SHOAL_RECORDS_TABLE: RECORDS,
      SHOAL_BUILD_QUEUE_URL: `${emulators.endpoints.sqs}/000000000000/shoal-build`,
      SHOAL_S3_ENDPOINT: emulators.endpoints.s3,
      SHOAL_DYNAMODB_ENDPOINT: emulators.endpoints.dynamodb,
      SHOAL_SQS_ENDPOINT: emulators.endpoints.sqs,
    });
    clients = makeAwsClients(cfg);
    expect(makeAwsClients(cfg)).toBe(clients);
    await ensureTables(clients.ddb, { catalog: CATALOG, records: RECORDS });
    await ensureBucket(clients.s3, BUCKET);
    catalog = new DynamoCatalog({ ddb: clients.ddb, table: CATALOG, now: () => clock });
    records = new DynamoRecordStore({ ddb: clients.ddb, table: RECORDS, logTable: CATALOG });
    objects = new S3ObjectStore({ s3: clients.s3, bucket: BUCKET });
  });

  afterAll(async () => {
    clients?.s3.destroy();
    clients?.ddb.destroy();
    clients?.sqs.destroy();
    await emulators?.stop();
  });

  describe('schema bootstrap', () => {
    it('ensureTables and ensureBucket are idempotent', async () => {
      // Act
      const again = await Promise.all([
        errorOf(ensureTables(clients.ddb, { catalog: CATALOG, records: RECORDS })),
        errorOf(ensureBucket(clients.s3, BUCKET)),
      ]);

      // Assess
      expect(again).toEqual([undefined, undefined]);
    });
  });

  describe('DynamoCatalog: collections', () => {
    it('creates, gets, lists and deletes a collection', async () => {
      // Prepare
      clock = Date.UTC(2030, 0, 2);

      // Act
      const created = await catalog.createCollection({ name: 'books', dimension: 8, metric: 'cosine', index: INDEX });
      await catalog.createCollection({
        name: 'articles',
        dimension: 4,
        metric: 'l2',
        index: { engine: 'flat', params: {} },
      });
      const got = await catalog.getCollection('books');
      const listed = await catalog.listCollections();
      await catalog.deleteCollection('articles');
      const afterDelete = await catalog.listCollections();
      const getDeleted = await errorOf(catalog.getCollection('articles'));
      const deleteMissing = await errorOf(catalog.deleteCollection('articles'));

      // Assess
      expect(created).toEqual({
        name: 'books',
        dimension: 8,
        metric: 'cosine',
        index: INDEX,
        createdAt: '2030-01-02T00:00:00.000Z',
        generation: 1,
      });
      expect(got).toEqual(created);
      expect(listed.map((c) => c.name)).toEqual(['articles', 'books']);
      expect(afterDelete.map((c) => c.name)).toEqual(['books']);
      expect(getDeleted).toBeInstanceOf(NotFoundError);
      expect(deleteMissing).toBeInstanceOf(NotFoundError);
    });

    it(
      'refuses a duplicate create with ConflictError and ' + 'gives a re-created collection a higher generation',
      async () => {
        // Prepare
        const first = await catalog.createCollection({ name: 'dup', dimension: 3, metric: 'ip', index: INDEX });
        await catalog.commitManifest(manifest('dup', 1));
        await catalog.leaseSeqs('dup', 5, 60_000);

        // Act
        const duplicate = await errorOf(
          catalog.createCollection({ name: 'dup', dimension: 9, metric: 'l2', index: INDEX }),
        );
        const unchanged = await catalog.getCollection('dup');
        await catalog.deleteCollection('dup');
        const second = await catalog.createCollection({ name: 'dup', dimension: 9, metric: 'l2', index: INDEX });

        // Assess
        expect(duplicate).toBeInstanceOf(ConflictError);
        expect(duplicate).toMatchObject({ code: 'CONFLICT', field: 'name' });
        expect(unchanged).toEqual(first);
        expect(second.generation).toBeGreaterThan(first.generation);
        expect(second.dimension).toBe(9);
        // The old collection's counter and manifests are gone.
        expect(await catalog.latestManifest('dup')).toBeUndefined();
        expect(await catalog.stableSeq('dup')).toBe(0);
      },
    );

    it('throws CorruptDataError for a malformed meta item or manifest', async () => {
      // Prepare: raw items that bypass the adapter
      await clients.ddb.send(
        new PutCommand({
          TableName: CATALOG,
          Item: { pk: 'COL#broken', sk: 'META', name: 'broken', dimension: 'eight', metric: 'cosine' },
        }),
      );
      await catalog.createCollection({ name: 'badmanifest', dimension: 2, metric: 'l2', index: INDEX });
      await clients.ddb.send(
        new PutCommand({
          TableName: CATALOG,
          Item: { pk: 'COL#badmanifest', sk: 'IDX#0000000001', version: 1, doc: '{"collection":"badmanifest"' },
        }),
      );
      await clients.ddb.send(
        new PutCommand({
          TableName: CATALOG,
          Item: {
            pk: 'COL#badmanifest',
            sk: 'IDX#0000000002',
            version: 2,
            doc: JSON.stringify({ ...manifest('badmanifest', 2), shards: [{ id: 'x' }] }),
          },
        }),
      );

      // Act
      const meta = await errorOf(catalog.getCollection('broken'));
      const badJson = await errorOf(catalog.getManifest('badmanifest', 1));
      const badShape = await errorOf(catalog.latestManifest('badmanifest'));

      // Assess
      expect(meta).toBeInstanceOf(CorruptDataError);
      expect(meta).toMatchObject({ code: 'CORRUPT_DATA' });
      expect(badJson).toBeInstanceOf(CorruptDataError);
      expect(badShape).toBeInstanceOf(CorruptDataError);
    });
    it('deleteCollection removes every item of the collection, whichever store wrote it', async () => {
      // Prepare: one item of each per-collection type, written through its owning store.
      const lifecycle = new DynamoLifecycleStore({ ddb: clients.ddb, table: CATALOG });
      const imports = new DynamoImportJobs({ ddb: clients.ddb, table: CATALOG });
      const meta = await catalog.createCollection({ name: 'owned', dimension: 4, metric: 'l2', index: INDEX });
      await catalog.updateCollectionSettings('owned', meta.generation, { minRecall: 0.5 });
      await catalog.leaseSeqs('owned', 2, 60_000);
      await catalog.commitManifest(manifest('owned', 1, { generation: meta.generation }));
      await catalog.updateLines('owned', {
        op: 'add',
        generation: meta.generation,
        line: 'cand',
        settings: { engine: 'flat', params: {}, createdAt: '2030-01-03T00:00:00.000Z' },
        maxCandidates: 2,
      });
      await catalog.commitManifest(manifest('owned', 2, { generation: meta.generation, line: 'cand' }));
      await catalog.updateLines('owned', {
        op: 'promote',
        generation: meta.generation,
        line: 'cand',
        expectedServing: MAIN_LINE,
        at: '2030-01-03T00:00:00.000Z',
        version: 2,
        forced: true,
      });
      await lifecycle.putEvaluation({
        collection: 'owned',
        generation: meta.generation,
        version: 1,
        k: 10,
        queries: 5,
        source: 'sample',
        recall: 0.9,
        latencyMs: { p50: 1, p95: 2, mean: 1 },
        rows: 10,
        evaluatedAt: '2030-01-03T00:00:00.000Z',
      });
      await imports.create({
        jobId: 'job-1',
        collection: 'owned',
        generation: meta.generation,
        bucket: BUCKET,
        key: 'imports/owned/rows.jsonl',
        etag: 'e1',
        size: 10,
        format: 'jsonl',
        state: 'queued',
        createdAt: '2030-01-03T00:00:00.000Z',
        invocations: 0,
        rowsRead: 0,
        rowsWritten: 0,
        rowsRejected: 0,
        bytesRead: 0,
        checkpoint: { rows: 0 },
        reportParts: [],
      });
      const partition = async (): Promise<string[]> => {
        const out = await clients.ddb.send(
          new QueryCommand({
            TableName: CATALOG,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': colPk('owned') },
            ConsistentRead: true,
          }),
        );
        return (out.Items ?? []).map((i) => String(i.sk).replace(/#.*/, '#'));
      };
      const before = await partition();

      // Act
      await catalog.deleteCollection('owned');

      // Assess: every item type was there, and none survives the delete.
      expect(new Set(before)).toEqual(new Set(['META', 'SEQ', 'IDX#', 'PROMO#', 'EVAL#', 'IMPORT#']));
      expect(await partition()).toEqual([]);
      expect(await lifecycle.listEvaluations('owned')).toEqual([]);
      expect(await imports.list('owned')).toEqual([]);
      await expect(catalog.getCollection('owned')).rejects.toBeInstanceOf(NotFoundError);
    });
  });

  describe('DynamoCatalog: sequence leases', () => {
    it('hands out consecutive, non-overlapping blocks under 20 concurrent leases', async () => {
      // Prepare
      const sizes = Array.from({ length: 20 }, (_, i) => (i % 5) + 1);

      // Act
      const leases = await Promise.all(sizes.map((n) => catalog.leaseSeqs('seqs', n, 60_000)));

      // Assess
      const total = sizes.reduce((a, b) => a + b, 0);
      leases.forEach((lease, i) => expect(lease.last - lease.first + 1).toBe(sizes[i]));
      const sorted = [...leases].sort((a, b) => a.first - b.first);
      expect(sorted[0].first).toBe(1);
      for (let i = 1; i < sorted.length; i++) expect(sorted[i].first).toBe(sorted[i - 1].last + 1);
      expect(sorted.at(-1)!.last).toBe(total);
      expect(new Set(leases.map((l) => l.token)).size).toBe(20);
    });

    it('keeps stableSeq below an unreleased lease and advances it after release', async () => {
      // Prepare
      const a = await catalog.leaseSeqs('stable', 3, 60_000); // 1..3
      const b = await catalog.leaseSeqs('stable', 4, 60_000); // 4..7
      const c = await catalog.leaseSeqs('stable', 2, 60_000); // 8..9

      // Act
      const initial = await catalog.stableSeq('stable');
      const releasedB = await catalog.releaseSeqs('stable', b);
      const afterB = await catalog.stableSeq('stable');
      const releasedA = await catalog.releaseSeqs('stable', a);
      const afterA = await catalog.stableSeq('stable');
      await catalog.releaseSeqs('stable', c);
      const afterAll = await catalog.stableSeq('stable');
      const releasedTwice = await catalog.releaseSeqs('stable', a);

      // Assess
      expect([a.first, b.first, c.first, c.last]).toEqual([1, 4, 8, 9]);
      expect(initial).toBe(0);
      expect([releasedA, releasedB]).toEqual([true, true]);
      expect(afterB).toBe(0);
      expect(afterA).toBe(7);
      expect(afterAll).toBe(9);
      expect(releasedTwice).toBe(false);
      expect(await catalog.stableSeq('never-leased')).toBe(0);
    });

    it('ignores an expired lease and refuses its release once dropped', async () => {
      // Prepare
      clock = 5_000_000;
      const stale = await catalog.leaseSeqs('expiry', 5, 1_000); // 1..5, expires at 5_001_000
      const live = await catalog.leaseSeqs('expiry', 5, 60_000); // 6..10

      // Act
      const beforeExpiry = await catalog.stableSeq('expiry');
      clock = 5_001_000;
      const afterExpiry = await catalog.stableSeq('expiry');
      const dropped = await catalog.dropExpiredLeases('expiry');
      const releaseStale = await catalog.releaseSeqs('expiry', stale);
      const releaseLive = await catalog.releaseSeqs('expiry', live);
      const final = await catalog.stableSeq('expiry');

      // Assess
      expect(stale.expiresAt).toBe(5_001_000);
      expect(beforeExpiry).toBe(0);
      expect(afterExpiry).toBe(5);
      expect(dropped).toBe(1);
      expect(releaseStale).toBe(false);
      expect(releaseLive).toBe(true);
      expect(final).toBe(10);
    });
  });

  describe('DynamoCatalog: manifests', () => {
    it('commits a version once: a second commit returns false and leaves the first', async () => {
      // Prepare
      const first = manifest('m1', 1);
      const rival = manifest('m1', 1, { watermark: 999, codeVersion: 'rival' });

      // Act
      const won = await catalog.commitManifest(first);
      const lost = await catalog.commitManifest(rival);
      const stored = await catalog.getManifest('m1', 1);

      // Assess
      expect(won).toBe(true);
      expect(lost).toBe(false);
      expect(stored).toEqual(first);
    });

    it('lets exactly one of two concurrent commits of a version win', async () => {
      // Prepare
      const a = manifest('m2', 1, { codeVersion: 'a' });
      const b = manifest('m2', 1, { codeVersion: 'b' });

      // Act
      const results = await Promise.all([catalog.commitManifest(a), catalog.commitManifest(b)]);
      const stored = await catalog.getManifest('m2', 1);

      // Assess
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(stored.codeVersion).toBe(results[0] ? 'a' : 'b');
    });

    it('returns the latest manifest and lists newest first', async () => {
      // Prepare
      const before = await catalog.latestManifest('m3');
      for (const v of [1, 2, 9, 10, 11]) await catalog.commitManifest(manifest('m3', v));

      // Act
      const latest = await catalog.latestManifest('m3');
      const all = await catalog.listManifests('m3');
      const top2 = await catalog.listManifests('m3', 2);
      const missing = await errorOf(catalog.getManifest('m3', 3));

      // Assess
      expect(before).toBeUndefined();
      expect(latest?.version).toBe(11);
      expect(all.map((m) => m.version)).toEqual([11, 10, 9, 2, 1]);
      expect(top2.map((m) => m.version)).toEqual([11, 10]);
      expect(missing).toBeInstanceOf(NotFoundError);
    });
  });

  describe('DynamoRecordStore', () => {
    it('round-trips vectors bit-exactly, metadata exactly and tombstones', async () => {
      // Prepare
      const special = new Float32Array([0, -0, 1.5, -3.25e-38, 1e-45, 3.4028234663852886e38, Infinity, -Infinity, NaN]);
      const metadata = { genre: 'sci-fi', year: 1965, tags: ['a', 'b'], nested: { ok: true, none: null }, ratio: 0.1 };
      const input: StoredRecord[] = [
        { collection: 'rt@1', id: 'special', seq: 1, vector: special, metadata, deleted: false },
        { collection: 'rt@1', id: 'plain', seq: 2, vector: new Float32Array([1, 2, 3]), deleted: false },
        { collection: 'rt@1', id: 'gone', seq: 3, deleted: true },
        { collection: 'rt@1', id: 'with#hash and ünïcode', seq: 4, vector: new Float32Array([7]), deleted: false },
      ];

      // Act
      await records.put(input);
      const got = await records.get('rt@1', ['special', 'plain', 'gone', 'with#hash and ünïcode', 'missing']);
      const otherCollection = await records.get('rt@2', ['special']);

      // Assess
      expect([...got.keys()].sort()).toEqual(['gone', 'plain', 'special', 'with#hash and ünïcode']);
      const s = got.get('special')!;
      expect(s.vector).toBeInstanceOf(Float32Array);
      expect(bytesOf(s.vector!)).toEqual(bytesOf(special));
      expect(s.metadata).toEqual(metadata);
      expect(s).toMatchObject({ collection: 'rt@1', id: 'special', seq: 1, deleted: false });
      expect(got.get('plain')!.metadata).toBeUndefined();
      expect([...got.get('plain')!.vector!]).toEqual([1, 2, 3]);
      expect(got.get('gone')).toEqual({ collection: 'rt@1', id: 'gone', seq: 3, deleted: true });
      expect([...got.get('with#hash and ünïcode')!.vector!]).toEqual([7]);
      expect(otherCollection.size).toBe(0);
    });

    it('writes 1 000 records and reads them back', async () => {
      // Prepare
      const dim = 16;
      const vectors = randomVectors(mulberry32(42), 1000, dim);
      const input: StoredRecord[] = Array.from({ length: 1000 }, (_, i) => ({
        collection: 'bulk@1',
        id: `id-${i}`,
        seq: i + 1,
        vector: vectors.subarray(i * dim, (i + 1) * dim),
        metadata: { i },
        deleted: false,
      }));

      // Act
      await records.put(input);
      const got = await records.get(
        'bulk@1',
        input.map((r) => r.id),
      );
      const scanned = await collect(records.scan('bulk@1'));

      // Assess
      expect(got.size).toBe(1000);
      for (const r of input) {
        const back = got.get(r.id)!;
        expect(back.seq).toBe(r.seq);
        expect(back.metadata).toEqual(r.metadata);
        expect(bytesOf(back.vector!)).toEqual(bytesOf(r.vector!));
      }
      // The GSI plus the log's recent entries: every id, some twice.
      expect(new Set(scanned.all.map((r) => r.id)).size).toBe(1000);
    });

    it('re-sends unprocessed batch items and keys until all are written and read', async () => {
      // Prepare: a client that leaves the second half of every first batch call unprocessed (dynalite never does)
      const calls = { write: 0, get: 0 };
      const flaky = {
        send: async (cmd: unknown): Promise<unknown> => {
          if (cmd instanceof BatchWriteCommand && calls.write++ === 0) {
            const [table, reqs] = Object.entries(cmd.input.RequestItems!)[0];
            const half = Math.ceil(reqs.length / 2);
            await clients.ddb.send(new BatchWriteCommand({ RequestItems: { [table]: reqs.slice(0, half) } }));
            return { UnprocessedItems: { [table]: reqs.slice(half) } };
          }
          if (cmd instanceof BatchGetCommand && calls.get++ === 0) {
            const [table, req] = Object.entries(cmd.input.RequestItems!)[0];
            const half = Math.ceil(req.Keys!.length / 2);
            const res = await clients.ddb.send(
              new BatchGetCommand({ RequestItems: { [table]: { ...req, Keys: req.Keys!.slice(0, half) } } }),
            );
            return { ...res, UnprocessedKeys: { [table]: { ...req, Keys: req.Keys!.slice(half) } } };
          }
          return clients.ddb.send(cmd as never);
        },
      } as unknown as DynamoDBDocumentClient;
      const store = new DynamoRecordStore({ ddb: flaky, table: RECORDS, logTable: CATALOG });
      const input: StoredRecord[] = Array.from({ length: 10 }, (_, i) => ({
        collection: 'flaky@1',
        id: `f${i}`,
        seq: i + 1,
        vector: new Float32Array([i]),
        deleted: false,
      }));

      // Act
      await store.put(input);
      const viaFlaky = await store.get(
        'flaky@1',
        input.map((r) => r.id),
      );
      const viaReal = await records.get(
        'flaky@1',
        input.map((r) => r.id),
      );

      // Assess
      // The log batch (sent twice), then the records batch; the get batch (sent twice).
      expect(calls).toEqual({ write: 3, get: 2 });
      expect(viaFlaky.size).toBe(10);
      expect(viaReal.size).toBe(10);
    });

    it('tails in ascending seq order within bounds', async () => {
      // Prepare: written out of order, one id overwritten by a later seq and one deleted
      const seqs = [5, 3, 9, 1, 7, 2, 8, 6, 4];
      await records.put(
        seqs.map((seq) => ({
          collection: 'tail@1',
          id: `r${seq}`,
          seq,
          vector: new Float32Array([seq]),
          deleted: false,
        })),
      );
      await records.put([
        { collection: 'tail@1', id: 'r2', seq: 10, vector: new Float32Array([10]), deleted: false },
        { collection: 'tail@1', id: 'r4', seq: 11, deleted: true },
      ]);
      await records.put([{ collection: 'tail@2', id: 'other', seq: 6, vector: new Float32Array([0]), deleted: false }]);

      // Act
      const everything = await collect(records.tail('tail@1', 0));
      const after5 = await collect(records.tail('tail@1', 5));
      const window = await collect(records.tail('tail@1', 3, 8));
      const empty = await collect(records.tail('tail@1', 8, 8));
      const beyond = await collect(records.tail('tail@1', 11));

      // Assess
      expect(everything.all.map((r) => r.seq)).toEqual([1, 3, 5, 6, 7, 8, 9, 10, 11]);
      expect(after5.all.map((r) => r.id)).toEqual(['r6', 'r7', 'r8', 'r9', 'r2', 'r4']);
      expect(after5.all.at(-1)).toEqual({ collection: 'tail@1', id: 'r4', seq: 11, deleted: true });
      expect(window.all.map((r) => r.seq)).toEqual([5, 6, 7, 8]);
      expect(empty.pages).toEqual([]);
      expect(beyond.pages).toEqual([]);
    });

    it('purges an item only while its seq is unchanged', async () => {
      // Prepare
      await records.put([
        { collection: 'purge@1', id: 'a', seq: 1, deleted: true },
        { collection: 'purge@1', id: 'b', seq: 2, deleted: true },
        { collection: 'purge@1', id: 'c', seq: 3, vector: new Float32Array([1]), deleted: false },
      ]);

      // Act: 'b' was rewritten at seq 4 since the caller saw it at seq 2
      await records.put([{ collection: 'purge@1', id: 'b', seq: 4, vector: new Float32Array([2]), deleted: false }]);
      await records.purge('purge@1', [
        { id: 'a', seq: 1 },
        { id: 'b', seq: 2 },
        { id: 'missing', seq: 9 },
      ]);
      const left = await records.get('purge@1', ['a', 'b', 'c']);

      // Assess
      expect([...left.keys()].sort()).toEqual(['b', 'c']);
      expect(left.get('b')!.seq).toBe(4);
    });

    it('throws CorruptDataError for a malformed record item', async () => {
      // Prepare
      await clients.ddb.send(
        new PutCommand({
          TableName: RECORDS,
          Item: { pk: 'bad@1#x', ck: 'bad@1', id: 'x', seq: 1, v: new Uint8Array([1, 2, 3]), del: false },
        }),
      );
      await clients.ddb.send(
        new PutCommand({ TableName: CATALOG, Item: { pk: logPk('bad@1', 1), sk: logSk(1), id: 'x' } }),
      );

      // Act
      const viaGet = await errorOf(records.get('bad@1', ['x']));
      const viaTail = await errorOf(collect(records.tail('bad@1', 0)));

      // Assess
      expect(viaGet).toBeInstanceOf(CorruptDataError);
      expect(viaTail).toBeInstanceOf(CorruptDataError);
    });
  });

  describe('S3ObjectStore', () => {
    it('keeps the first bytes of an immutable key, lists and deletes', async () => {
      // Prepare
      const first = new Uint8Array([1, 2, 3, 4]);
      const keys = ['shards/c@1/a.shard', 'shards/c@1/b.shard', 'shards/c@1/c.shard', 'shards/d@1/x.shard'];

      // Act
      await objects.putImmutable(keys[0], first);
      await objects.putImmutable(keys[0], new Uint8Array([9, 9]));
      await Promise.all(keys.slice(1).map((k, i) => objects.putImmutable(k, new Uint8Array(10 + i))));
      const stored = await objects.get(keys[0]);
      const listed = await collect(objects.list('shards/c@1/'));
      await objects.delete([keys[0], keys[1], 'shards/c@1/never-existed.shard']);
      const afterDelete = await collect(objects.list('shards/'));
      const missing = await errorOf(objects.get(keys[0]));

      // Assess
      expect([...stored]).toEqual([1, 2, 3, 4]);
      expect(listed.all.map((o) => [o.key, o.size])).toEqual([
        [keys[0], 4],
        [keys[1], 10],
        [keys[2], 11],
      ]);
      expect(listed.all.every((o) => o.lastModified instanceof Date)).toBe(true);
      expect(afterDelete.all.map((o) => o.key)).toEqual([keys[2], keys[3]]);
      expect(missing).toBeInstanceOf(NotFoundError);
    });

    it('lets exactly one of concurrent immutable puts of a key land', async () => {
      // Act
      await Promise.all(
        [1, 2, 3, 4].map((b) => objects.putImmutable('models/m/1/weights.bin', new Uint8Array([b, b]))),
      );
      const stored = await objects.get('models/m/1/weights.bin');

      // Assess
      expect(stored).toHaveLength(2);
      expect(stored[0]).toBe(stored[1]);
    });
  });
});
