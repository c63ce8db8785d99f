/**
 * DynamoDriftStore on dynalite (shared/storage/dynamo-drift.ts): a reference round-trips (centroids as
 * float32 bytes, directions regenerated from the seed), a background build never replaces a stored
 * reference, window flushes add up (ADD) and return the totals, the hour range and reference revision of
 * the listing, and the flush expression stays under DynamoDB's 4 KB even with every counter set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DRIFT_BINS,
  DRIFT_PROJECTIONS,
  buildReference,
  emptyWindow,
  mergeWindows,
  observeVector,
  ready,
  type DriftWindow,
} from '../../shared/models/drift.js';
import { DynamoDriftStore, windowUpdate } from '../../shared/storage/dynamo-drift.js';
import { mulberry32 } from '../../shared/random.js';
import { startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';

let stack: EmulatedStack;
let store: DynamoDriftStore;

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'drift-store', now: Date.now });
  store = new DynamoDriftStore({ ddb: stack.aws.ddb, table: 'catalog' });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

const rnd = mulberry32(11);
const rows = Array.from({ length: 400 }, () => Float32Array.from({ length: 48 }, () => rnd() * 2 - 1));
const ref = buildReference(rows, { seed: 5, generation: 2, createdAt: '2026-11-30T09:15:00.000Z' });

function windowOf(vectors: Float32Array[]): DriftWindow {
  const w = emptyWindow();
  const r = ready(ref);
  for (const v of vectors) observeVector(r, w, v);
  return w;
}

describe('DynamoDriftStore', () => {
  it('round-trips a reference, and a background build does not replace it', async () => {
    expect(await store.getReference('docs', 'none')).toBeUndefined();
    expect(await store.putReference('docs', 'none', ref, true)).toBe(true);
    expect(await store.getReference('docs', 'none')).toEqual(ref);
    const other = { ...ref, createdAt: '2026-11-30T09:20:00.000Z' };
    expect(await store.putReference('docs', 'none', other, true)).toBe(false);
    expect((await store.getReference('docs', 'none'))?.createdAt).toBe(ref.createdAt);
    // A reset replaces it.
    expect(await store.putReference('docs', 'none', other, false)).toBe(true);
    expect((await store.getReference('docs', 'none'))?.createdAt).toBe(other.createdAt);
  });

  it('adds window flushes up and lists the windows of an hour range and kind', async () => {
    const a = windowOf(rows.slice(0, 150));
    const b = windowOf(rows.slice(150, 400));
    const key = { collection: 'docs', model: 'm@1', kind: 'query' as const, hour: '2026-11-30T09', ref: 'r1' };
    expect((await store.addWindow(key, a, 1_000)).count).toBe(150);
    const total = await store.addWindow(key, b, 2_000);
    const expected = mergeWindows(a, b);
    expect(total.count).toBe(400);
    expect(total.projBins).toEqual(expected.projBins);
    expect(total.centroidBins).toEqual(expected.centroidBins);
    total.projSumSq.forEach((s, i) => expect(s).toBeCloseTo(expected.projSumSq[i], 6));
    await store.addWindow({ ...key, hour: '2026-11-30T10', ref: 'r2' }, a, 3_000);
    await store.addWindow({ ...key, kind: 'ingest' }, a, 3_000);
    await store.addWindow({ ...key, hour: '2026-11-30T12' }, a, 3_000);
    const listed = await store.listWindows('docs', 'm@1', 'query', '2026-11-30T09', '2026-11-30T10');
    expect(listed.map((w) => [w.hour, w.ref, w.window.count])).toEqual([
      ['2026-11-30T09', 'r1', 400],
      ['2026-11-30T10', 'r2', 150],
    ]);
    expect(await store.listWindows('docs', 'none', 'query', '2026-11-30T09', '2026-11-30T12')).toEqual([]);
  });

  it('keeps the flush expression under 4 KB with every counter set', () => {
    const full = emptyWindow();
    full.count = 1;
    full.projBins = full.projBins.map((bins) => bins.map(() => 1));
    full.projSum = full.projSum.map(() => -1.5);
    full.projSumSq = full.projSumSq.map(() => 2.25);
    full.normBins = full.normBins.map(() => 1);
    full.normSum = 3;
    full.centroidBins = full.centroidBins.map(() => 1);
    full.centroidSum = 4;
    const input = windowUpdate(
      'catalog',
      { collection: 'c', model: 'none', kind: 'query', hour: 'h', ref: 'r' },
      full,
      1,
    );
    expect(Object.keys(input.ExpressionAttributeNames)).toHaveLength(
      2 + DRIFT_PROJECTIONS * (DRIFT_BINS + 2) + 2 * (DRIFT_BINS + 1),
    );
    expect(new TextEncoder().encode(input.UpdateExpression).length).toBeLessThan(4096);
  });
});
