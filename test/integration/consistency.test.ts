/**
 * Strong reads never depend on the eventually consistent bySeq GSI (docs/architecture.md §6.1, §7.5).
 * The stack runs with the `gsi-lag` fault, so the GSI hides every item written during the test:
 * whatever still sees the writes reads the base tables. SHOAL_CONSISTENCY_PAIRS sets how many
 * write→read pairs run (CI: 300; `npm run test:consistency`: 10,000).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { parseFilter } from '../../shared/filter/index.js';
import type { ShoalCore } from '../../shared/core.js';
import type { Indexer } from '../../shared/indexing/indexer.js';
import { settled } from '../../shared/ingest/ingest.js';
import { parseConfig } from '../../shared/config.js';
import { DynamoRecordStore, LOG_TRIM_GRACE_MS } from '../../shared/storage/dynamo-records.js';
import { parseFaults, describeFaults } from '../../shared/storage/faults.js';
import { collectionKey, logPk, logSk, LOG_BUCKETS } from '../../shared/storage/keys.js';
import { BY_SEQ_INDEX } from '../../shared/storage/tables.js';
import type { StoredRecord } from '../../shared/storage/types.js';
import { lifecycleCores, searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

/** Longer than the test runs: the GSI shows none of its writes. */
const LAG_MS = 10 * 60_000;
const PAIRS = Number(process.env.SHOAL_CONSISTENCY_PAIRS ?? 300);

let stack: EmulatedStack;
let core: ShoalCore;
let indexer: Indexer;
const clock = () => Date.now();

async function collect(it: AsyncIterable<StoredRecord[]>): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for await (const batch of it) out.push(...batch);
  return out;
}

async function gsiCount(ck: string): Promise<number> {
  const { ddb } = stack.aws;
  const out = await ddb.send(
    new QueryCommand({
      TableName: 'records',
      IndexName: BY_SEQ_INDEX,
      KeyConditionExpression: 'ck = :ck',
      ExpressionAttributeValues: { ':ck': ck },
    }),
  );
  return out.Items?.length ?? 0;
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-consistency', now: clock, faults: `gsi-lag=${LAG_MS}` });
  ({ core, indexer } = lifecycleCores(stack, clock));
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('SHOAL_FAULTS', () => {
  it('parses known faults and names the rule of a bad one', () => {
    expect(parseFaults('gsi-lag=250')).toEqual({ gsiLagMs: 250 });
    expect(parseFaults(undefined)).toEqual({});
    expect(parseFaults('gsi-lag=soon')).toMatch(/gsi-lag.*milliseconds/);
    expect(parseFaults('disk-full=1')).toMatch(/unknown fault "disk-full"/);
    expect(describeFaults({ gsiLagMs: 250 })).toEqual(['gsi-lag=250']);
  });

  it('is refused outside local mode', () => {
    const env = {
      SHOAL_BUCKET: 'b-1',
      SHOAL_CATALOG_TABLE: 'cat',
      SHOAL_RECORDS_TABLE: 'rec',
      SHOAL_BUILD_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q',
    };
    expect(() => parseConfig({ ...env, SHOAL_FAULTS: 'gsi-lag=5' })).toThrow(/SHOAL_FAULTS.*local stack only/);
    expect(parseConfig(env).faults).toEqual({});
  });
});

describe('strong reads with a lagging GSI', () => {
  it('the fault is real: the GSI does not show a fresh write that get and strong search do', async () => {
    await core.createCollection({ name: 'lag-visible', dimension: 4, metric: 'l2' });
    const [v] = vectorInputs(1, 4, 7, 'x');
    await core.upsert('lag-visible', [v]);
    const meta = await stack.catalog.getCollection('lag-visible');

    expect(await gsiCount(collectionKey(meta))).toBe(0);
    expect(await core.getVectors('lag-visible', ['x0'])).toHaveLength(1);
    const out = await core.search('lag-visible', searchInput(v.values, { k: 1 }));
    expect(out.results[0].map((h) => h.id)).toEqual(['x0']);
  });

  it(
    `sees every acknowledged write: ${PAIRS} write→read pairs, builds in between`,
    async () => {
      // Prepare
      const dim = 8;
      await core.createCollection({ name: 'pairs', dimension: 8, metric: 'l2' });
      const vs = vectorInputs(PAIRS, dim, 11, 'p', (i) => ({ i, group: i % 10 }));
      const missed: string[] = [];

      // Act: each write is followed at once by a strong search for its own vector.
      for (let i = 0; i < PAIRS; i++) {
        await core.upsert('pairs', [vs[i]]);
        const out = await core.search('pairs', searchInput(vs[i].values, { k: 1 }));
        if (out.results[0][0]?.id !== vs[i].id) missed.push(vs[i].id);
        // Builds read the tail too: a GSI-based builder would index past writes it never saw.
        if (i % 97 === 96) await indexer.buildNow('pairs');
      }
      await indexer.buildNow('pairs');
      const info = await core.getCollection('pairs');
      const eventual = await core.search('pairs', searchInput(vs[0].values, { k: 1, consistency: 'eventual' }));

      // Assess
      expect(missed).toEqual([]);
      expect(info.stats?.count).toBe(PAIRS);
      expect(info.stats?.pending).toBe(0);
      expect(eventual.results[0][0].id).toBe(vs[0].id);
    },
    Math.max(120_000, PAIRS * 200),
  );

  it('deletes by filter what the lagging GSI does not show yet', async () => {
    await core.createCollection({ name: 'del-filter', dimension: 4, metric: 'l2' });
    const vs = vectorInputs(40, 4, 3, 'd', (i) => ({ odd: i % 2 === 1 }));
    await core.upsert('del-filter', vs);

    const out = await core.deleteVectors('del-filter', { filter: parseFilter({ odd: true })! });
    const left = await core.getVectors(
      'del-filter',
      vs.map((v) => v.id),
    );

    expect(out.deleted).toBe(20);
    expect(left.map((v) => v.id).sort()).toEqual(
      vs
        .filter((_, i) => i % 2 === 0)
        .map((v) => v.id)
        .sort(),
    );
  });
});

describe('write log', () => {
  it('skips an entry whose record never landed (crash between the two writes): count, get, search agree', async () => {
    // Prepare: a durable write of a0, then a "crashed" write at seq 2 (log entry only) of a0 and a1.
    await core.createCollection({ name: 'crash-window', dimension: 4, metric: 'l2' });
    const vs = vectorInputs(2, 4, 5, 'a');
    await core.upsert('crash-window', [vs[0]]);
    const meta = await stack.catalog.getCollection('crash-window');
    const ck = collectionKey(meta);
    const lease = await stack.catalog.leaseSeqs('crash-window', 2, 1);
    const { ddb } = stack.aws;
    for (const [i, seq] of [lease.first, lease.last].entries()) {
      await ddb.send(
        new PutCommand({
          TableName: 'catalog',
          Item: { pk: logPk(ck, seq % LOG_BUCKETS), sk: logSk(seq), id: `a${i}` },
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 5)); // the 1 ms lease expires: the crashed writer is gone

    // Act
    const tail = await collect(stack.records.tail(ck, 0));
    const info = await core.getCollection('crash-window');
    const got = await core.getVectors('crash-window', ['a0', 'a1']);
    const found = await core.search('crash-window', searchInput(vs[1].values, { k: 2 }));
    const deleted = await core.deleteVectors('crash-window', { ids: ['a1'] });

    // Assess
    expect(tail.map((r) => [r.id, r.seq])).toEqual([['a0', 1]]);
    expect(info.stats?.count).toBe(1);
    expect(got.map((v) => v.id)).toEqual(['a0']);
    expect(found.results[0].map((h) => h.id)).toEqual(['a0']);
    expect(deleted.deleted).toBe(0);
  });

  it('never indexes past an acknowledged write whose writer died before settling its write lease', async () => {
    // Prepare: a write acknowledged on its write lease (the records landed), then the writer froze for good:
    // no log entries, the lease never removed — and it has expired (1 ms).
    await core.createCollection({ name: 'unsettled', dimension: 4, metric: 'l2' });
    const vs = vectorInputs(3, 4, 8, 'u');
    await core.upsert('unsettled', [vs[0]]);
    await settled();
    const meta = await stack.catalog.getCollection('unsettled');
    const ck = collectionKey(meta);
    const ids = [vs[1].id, vs[2].id];
    const lease = await stack.catalog.leaseSeqs('unsettled', 2, 1, ids);
    await stack.records.put(
      ids.map((id, i) => ({ collection: ck, id, seq: lease.first + i, vector: vs[i + 1].values, deleted: false })),
      { logged: false },
    );
    // …and a write lease whose writer died before its records landed: nothing of it may appear.
    const ghost = await stack.catalog.leaseSeqs('unsettled', 1, 1, ['ghost']);
    await new Promise((r) => setTimeout(r, 5));

    // Assess: the expired write leases still hold the stable seq (a plain lease would not), the log has
    // nothing, yet a strong read sees the acknowledged rows through the counter item.
    const state = await stack.catalog.seqState('unsettled');
    expect(state.stable).toBe(lease.first - 1);
    expect(state.pending?.map((p) => p.ids)).toEqual([ids, ['ghost']]);
    expect((await collect(stack.records.tail(ck, lease.first - 1))).length).toBe(0);
    const strong = await core.search('unsettled', searchInput(vs[2].values, { k: 3, consistency: 'strong' }));
    expect(strong.results[0].map((h) => h.id).sort()).toEqual([vs[0].id, ...ids].sort());
    // …as does a process without a tail cache (the whole tail read per request), and its count.
    const plain = lifecycleCores(stack, clock, { tails: false }).core;
    const read = await plain.search('unsettled', searchInput(vs[2].values, { k: 3, consistency: 'strong' }));
    expect(read.results[0].map((h) => h.id).sort()).toEqual([vs[0].id, ...ids].sort());
    expect((await plain.getCollection('unsettled')).stats?.count).toBe(3);

    // Act: the builder settles both (their log entries, then the leases removed) before reading the stable seq.
    const built = await indexer.buildNow('unsettled');

    // Assess: every acknowledged row is indexed, the ghost is not, and nothing holds the stable seq back.
    expect(built).toMatchObject({ built: true, watermark: ghost.last });
    expect(await stack.catalog.seqState('unsettled')).toEqual({ stable: ghost.last, allocated: ghost.last });
    const eventual = await core.search('unsettled', searchInput(vs[2].values, { k: 5, consistency: 'eventual' }));
    expect(eventual.results[0].map((h) => h.id).sort()).toEqual([vs[0].id, ...ids].sort());
    expect((await core.getCollection('unsettled')).stats?.count).toBe(3);
  });

  it('leaves a record rewritten above the bound to a later tail', async () => {
    const records = stack.records;
    const rec = (id: string, seq: number): StoredRecord => ({
      collection: 'bound@1',
      id,
      seq,
      vector: new Float32Array([seq]),
      deleted: false,
    });
    await records.put([rec('a', 1), rec('b', 2)]);
    await records.put([rec('a', 5)]);

    const upTo3 = await collect(records.tail('bound@1', 0, 3));
    const all = await collect(records.tail('bound@1', 0));

    expect(upTo3.map((r) => [r.id, r.seq])).toEqual([['b', 2]]);
    expect(all.map((r) => [r.id, r.seq])).toEqual([
      ['b', 2],
      ['a', 5],
    ]);
  });

  it('trims in two phases: a bound is recorded, then deleted after the grace period', async () => {
    let now = 1_000_000;
    const { ddb } = stack.aws;
    const records = new DynamoRecordStore({ ddb, table: 'records', logTable: 'catalog', now: () => now });
    const rows = Array.from({ length: 30 }, (_, i) => ({
      collection: 'trim@1',
      id: `t${i % 20}`,
      seq: i + 1,
      vector: new Float32Array([i]),
      deleted: false,
    }));
    await records.put(rows.slice(0, 20));
    await records.put(rows.slice(20));

    const first = await records.trimLog('trim@1', 10);
    now += LOG_TRIM_GRACE_MS - 1;
    const early = await records.trimLog('trim@1', 20);
    now += 1;
    const due = await records.trimLog('trim@1', 20);
    const afterTrim = await collect(records.tail('trim@1', 10));
    now += LOG_TRIM_GRACE_MS;
    const second = await records.trimLog('trim@1', 25);

    expect([first, early, due, second]).toEqual([0, 0, 10, 10]);
    // Entries above the trim point are all still read.
    expect(afterTrim.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 11));
  });
});
