/**
 * Drift statistics (shared/models/drift.ts) and the monitor over an in-memory store
 * (shared/models/drift-monitor.ts): PSI ≈ 0 for a window from the reference's own distribution, large for
 * a shifted one; windows merge by adding counters; bins at their edges; status thresholds; the monitor's
 * unreferenced count, flush, report and reset.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DRIFT_BINS,
  DRIFT_MIN_COUNT,
  DRIFT_PROJECTIONS,
  PSI_ALERT,
  PSI_WARN,
  binOf,
  buildReference,
  decileEdges,
  driftSeed,
  driftStatus,
  emptyWindow,
  mergeWindows,
  modelKey,
  observeVector,
  projections,
  psi,
  ready,
  windowCounters,
  windowFromCounters,
  windowStats,
  type DriftKind,
  type DriftReference,
  type DriftWindow,
} from '../../shared/models/drift.js';
import { DriftMonitor, type DriftStore, type WindowKey } from '../../shared/models/drift-monitor.js';
import { parseConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/errors.js';
import { recordDrift } from '../../shared/metrics.js';
import { mulberry32 } from '../../shared/random.js';
import type { CollectionMeta, RecordPage, RecordStore, StoredRecord } from '../../shared/storage/types.js';

const DIM = 32;

/** Seeded clustered vectors: 8 centres (components N(0, 3²)), each point a centre plus N(0, 1) noise. */
function clustered(n: number, seed: number, transform: (v: Float32Array) => Float32Array = (v) => v): Float32Array[] {
  const centres = gaussians(8, 100, 3);
  const rnd = mulberry32(seed);
  const g = gaussian(rnd);
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(rnd() * centres.length)];
    return transform(Float32Array.from(c, (x) => x + g()));
  });
}

function gaussian(rnd: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

function gaussians(n: number, seed: number, scale: number): Float32Array[] {
  const g = gaussian(mulberry32(seed));
  return Array.from({ length: n }, () => Float32Array.from({ length: DIM }, () => scale * g()));
}

function windowOf(ref: DriftReference, vectors: Float32Array[]): DriftWindow {
  const r = ready(ref);
  const w = emptyWindow();
  for (const v of vectors) observeVector(r, w, v);
  return w;
}

const reference = () =>
  buildReference(clustered(2000, 1), {
    seed: driftSeed('docs', 'none'),
    generation: 1,
    createdAt: '2026-11-30T09:00:00.000Z',
  });

describe('drift statistics', () => {
  it('derives the projections from the seed: unit length, deterministic, dimension-aware', () => {
    const a = projections(DIM, 7);
    expect(a).toHaveLength(DRIFT_PROJECTIONS);
    for (const d of a) expect(Math.hypot(...d)).toBeCloseTo(1, 5);
    expect(projections(DIM, 7)).toEqual(a);
    expect(projections(DIM, 8)[0]).not.toEqual(a[0]);
    expect(projections(64, 7)[0]).toHaveLength(64);
    expect(driftSeed('docs', 'none')).toBe(driftSeed('docs', 'none'));
    expect(driftSeed('docs', 'none')).not.toBe(driftSeed('docs', 'm@1'));
    expect(modelKey(undefined)).toBe('none');
    expect(modelKey({ name: 'minilm', version: 3 })).toBe('minilm@3');
  });

  it('puts a value equal to an edge in the bin above it, and the ends in the first and last bins', () => {
    const edges = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(binOf(edges, 0.5)).toBe(0);
    expect(binOf(edges, 1)).toBe(1);
    expect(binOf(edges, 1.5)).toBe(1);
    expect(binOf(edges, 9)).toBe(9);
    expect(binOf(edges, 1e9)).toBe(9);
    expect(binOf(edges, -Infinity)).toBe(0);
    expect(decileEdges(Array.from({ length: 100 }, (_, i) => i))).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  it('keeps the reference bins equal-mass, or records their real shares when values tie', () => {
    const ref = reference();
    expect(ref.rows).toBe(2000);
    for (const p of ref.projections) {
      expect(p.edges).toHaveLength(DRIFT_BINS - 1);
      for (const s of p.shares) expect(s).toBeCloseTo(0.1, 2);
    }
    // Unit vectors: every norm is 1 (up to rounding), so the norm deciles tie; a window of unit vectors from
    // the same distribution must still read as no drift.
    const unit = (v: Float32Array) => {
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    const unitRef = buildReference(clustered(2000, 1, unit), { seed: 3, generation: 1, createdAt: ref.createdAt });
    const stats = windowStats(unitRef, windowOf(unitRef, clustered(5000, 2, unit)));
    expect(stats.normPsi).toBeLessThan(0.02);
    expect(stats.status).toBe('ok');
  });

  it('finds no drift in a window drawn from the reference distribution (n = 5,000)', () => {
    const ref = reference();
    const stats = windowStats(ref, windowOf(ref, clustered(5000, 2)));
    expect(stats.count).toBe(5000);
    expect(stats.psi).toBeLessThan(0.02);
    expect(stats.psiMax).toBeLessThan(0.02);
    expect(stats.normPsi).toBeLessThan(0.02);
    expect(stats.centroidPsi).toBeLessThan(0.02);
    expect(stats.meanShift).toBeLessThan(0.1);
    expect(stats.status).toBe('ok');
  });

  it('finds large drift when the vectors are shifted by one std, or their norms scaled', () => {
    const ref = reference();
    const shifted = windowStats(
      ref,
      windowOf(
        ref,
        clustered(5000, 2, (v) => v.map((x) => x + 3)),
      ),
    );
    expect(shifted.psi).toBeGreaterThan(PSI_ALERT);
    expect(shifted.meanShift).toBeGreaterThan(0.5);
    expect(shifted.status).toBe('alert');
    const scaled = windowStats(
      ref,
      windowOf(
        ref,
        clustered(5000, 2, (v) => v.map((x) => x * 1.5)),
      ),
    );
    expect(scaled.normPsi).toBeGreaterThan(PSI_ALERT);
    expect(scaled.status).toBe('alert');
  });

  it('merges windows by adding counters, and round-trips them through the stored attributes', () => {
    const ref = reference();
    const a = windowOf(ref, clustered(300, 5));
    const b = windowOf(ref, clustered(200, 6));
    const both = windowOf(ref, [...clustered(300, 5), ...clustered(200, 6)]);
    const merged = mergeWindows(a, b);
    expect(merged.count).toBe(500);
    expect(merged.projBins).toEqual(both.projBins);
    expect(merged.normBins).toEqual(both.normBins);
    expect(merged.centroidBins).toEqual(both.centroidBins);
    merged.projSum.forEach((s, i) => expect(s).toBeCloseTo(both.projSum[i], 6));
    const counters = windowCounters(a);
    expect(counters.cnt).toBe(300);
    expect(Object.values(counters).every((v) => v !== 0)).toBe(true);
    expect(Object.keys(counters).length).toBeLessThanOrEqual(1 + DRIFT_PROJECTIONS * 12 + 22);
    expect(windowFromCounters(counters)).toEqual(a);
    expect(windowFromCounters({})).toEqual(emptyWindow());
  });

  it('maps PSI to ok / warn / alert at the documented thresholds; small windows are insufficient', () => {
    expect(driftStatus(0)).toBe('ok');
    expect(driftStatus(PSI_WARN - 1e-9)).toBe('ok');
    expect(driftStatus(PSI_WARN)).toBe('warn');
    expect(driftStatus(PSI_ALERT)).toBe('warn');
    expect(driftStatus(PSI_ALERT + 1e-9)).toBe('alert');
    expect(psi([0, 0, 0], [0.5, 0.25, 0.25])).toBe(0);
    expect(psi([10, 10, 10, 10, 10, 10, 10, 10, 10, 10], new Array(10).fill(0.1))).toBeCloseTo(0, 12);
    // An empty bin is floored, not infinite.
    expect(Number.isFinite(psi([100, 0, 0, 0, 0, 0, 0, 0, 0, 0], new Array(10).fill(0.1)))).toBe(true);
    const ref = reference();
    expect(windowStats(ref, windowOf(ref, clustered(DRIFT_MIN_COUNT - 1, 9))).status).toBe('insufficient');
  });

  it('ignores vectors of another dimension', () => {
    const ref = reference();
    const w = emptyWindow();
    expect(observeVector(ready(ref), w, new Float32Array(DIM + 1))).toBe(false);
    expect(
      observeVector(
        ready(ref),
        w,
        Float32Array.from({ length: DIM }, () => NaN),
      ),
    ).toBe(false);
    expect(w.count).toBe(0);
  });
});

describe('recordDrift (EMF)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('emits EmbeddingDriftPSI with the [Collection, Kind] and [Kind] dimension sets on its own line', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const disabled = process.env.POWERTOOLS_METRICS_DISABLED;
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    try {
      recordDrift({ collection: 'docs', kind: 'query', psi: 0.31, observed: 12 });
    } finally {
      if (disabled === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
      else process.env.POWERTOOLS_METRICS_DISABLED = disabled;
    }
    const emf = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('CloudWatchMetrics'))
      .map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<Json> } });
    const psiLine = emf.find((e) => 'EmbeddingDriftPSI' in e);
    expect(psiLine).toMatchObject({ EmbeddingDriftPSI: 0.31, Collection: 'docs', Kind: 'query' });
    const dims = psiLine!._aws.CloudWatchMetrics[0].Dimensions as string[][];
    expect(dims.map((d) => d.filter((n) => n !== 'service'))).toEqual([['Collection', 'Kind'], ['Kind']]);
    expect(emf.find((e) => 'EmbeddingsObserved' in e)).toMatchObject({ EmbeddingsObserved: 12 });
  });
});

type Json = Record<string, unknown>;

/** A DriftStore in memory; `adds` counts UpdateItems. */
class MemoryDriftStore implements DriftStore {
  refs = new Map<string, DriftReference>();
  windows = new Map<string, { key: WindowKey; window: DriftWindow }>();
  adds = 0;
  async getReference(collection: string, model: string) {
    return this.refs.get(`${collection}|${model}`);
  }
  async putReference(collection: string, model: string, ref: DriftReference, onlyIfAbsent: boolean) {
    if (onlyIfAbsent && this.refs.has(`${collection}|${model}`)) return false;
    this.refs.set(`${collection}|${model}`, ref);
    return true;
  }
  async addWindow(key: WindowKey, window: DriftWindow) {
    this.adds++;
    const id = JSON.stringify(key);
    const old = this.windows.get(id)?.window ?? emptyWindow();
    const total = windowFromCounters(windowCounters(mergeWindows(old, window)));
    this.windows.set(id, { key, window: total });
    return total;
  }
  async listWindows(collection: string, model: string, kind: DriftKind, fromHour: string, toHour: string) {
    return [...this.windows.values()]
      .filter(
        ({ key }) =>
          key.collection === collection &&
          key.model === model &&
          key.kind === kind &&
          key.hour >= fromHour &&
          key.hour <= toHour,
      )
      .sort((a, b) => a.key.hour.localeCompare(b.key.hour))
      .map(({ key, window }) => ({ hour: key.hour, ref: key.ref, window }));
  }
}

function recordStore(rows: Float32Array[]): RecordStore {
  const list = async (collection: string, options: { after?: { seq: number }; limit: number }): Promise<RecordPage> => {
    const from = options.after ? options.after.seq : 0;
    const records: StoredRecord[] = rows
      .slice(from, from + options.limit)
      .map((vector, i) => ({ collection, id: `r${from + i}`, seq: from + i + 1, vector, deleted: false }));
    const end = from + records.length;
    return { records, ...(end < rows.length ? { next: { seq: end, id: `r${end - 1}` } } : {}) };
  };
  return { list } as unknown as RecordStore;
}

const meta: CollectionMeta = {
  name: 'docs',
  dimension: DIM,
  metric: 'l2',
  index: { engine: 'flat', params: {} },
  createdAt: '2026-11-30T08:00:00.000Z',
  generation: 1,
} as unknown as CollectionMeta;

describe('DriftMonitor', () => {
  beforeEach(() => vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true'));
  afterEach(() => vi.unstubAllEnvs());

  it('counts vectors before a reference as unreferenced, builds one in the background, reports drift', async () => {
    const store = new MemoryDriftStore();
    let now = Date.parse('2026-11-30T09:10:00.000Z');
    const monitor = new DriftMonitor({
      store,
      records: recordStore(clustered(1500, 1)),
      flushIntervalMs: 10_000,
      now: () => now,
    });
    monitor.observe(meta, 'query', clustered(5, 3));
    await vi.waitFor(() => expect(store.refs.size).toBe(1));
    const built = store.refs.get('docs|none')!;
    expect(built.rows).toBe(1500);
    // The load settles right after the put: the reference is in memory from then on.
    await new Promise((r) => setTimeout(r, 0));
    monitor.observe(meta, 'query', clustered(400, 4));
    // Not yet: the interval has not passed.
    await monitor.maybeFlush();
    expect(store.adds).toBe(0);
    now += 10_000;
    await monitor.maybeFlush();
    expect(store.adds).toBe(1);
    let report = await monitor.report(meta);
    expect(report).toMatchObject({
      collection: 'docs',
      model: null,
      reference: { rows: 1500 },
      unreferenced: 5,
      current: { query: { kind: 'query', start: '2026-11-30T09:00:00.000Z', count: 400, status: 'ok' }, ingest: null },
      status: 'ok',
    });
    // Shifted queries in the next hour: a new window, and it alerts.
    now = Date.parse('2026-11-30T10:05:00.000Z');
    monitor.observe(
      meta,
      'query',
      clustered(400, 5, (v) => v.map((x) => x + 3)),
    );
    report = await monitor.report(meta, { kind: 'query' });
    expect(report.windows.map((w) => w.start)).toEqual(['2026-11-30T09:00:00.000Z', '2026-11-30T10:00:00.000Z']);
    expect(report.current.query).toMatchObject({ count: 400, status: 'alert' });
    expect(report.current.query!.psi).toBeGreaterThan(PSI_ALERT);
    expect(report.status).toBe('alert');
    // A reset accepts the new distribution: windows of the old reference no longer count.
    now += 1000;
    const reset = await monitor.resetReference(meta);
    expect(reset).toMatchObject({ rows: 1500 });
    report = await monitor.report(meta);
    expect(report.windows).toEqual([]);
    expect(report.status).toBe('insufficient');
  });

  it('never throws from observe or flush, and answers unreferenced below the minimum rows', async () => {
    const failing: DriftStore = {
      getReference: () => Promise.reject(new Error('down')),
      putReference: () => Promise.reject(new Error('down')),
      addWindow: () => Promise.reject(new Error('down')),
      listWindows: () => Promise.reject(new Error('down')),
    };
    const monitor = new DriftMonitor({ store: failing, records: recordStore([]), flushIntervalMs: 0 });
    expect(() => monitor.observe(meta, 'ingest', clustered(3, 1))).not.toThrow();
    await expect(monitor.flush()).resolves.toBeUndefined();
    const small = new DriftMonitor({ store: new MemoryDriftStore(), records: recordStore(clustered(50, 1)) });
    expect(await small.resetReference(meta)).toBeNull();
    expect((await small.report(meta)).status).toBe('unreferenced');
  });
});

describe('SHOAL_DRIFT_FLUSH_MS', () => {
  const env = {
    SHOAL_BUCKET: 'drift',
    SHOAL_CATALOG_TABLE: 'catalog',
    SHOAL_RECORDS_TABLE: 'records',
    SHOAL_BUILD_QUEUE_URL: 'http://localhost:1/000000000000/build',
  };

  it('defaults to 10 s, takes 0 (every request flushes), and names itself when malformed', () => {
    expect(parseConfig(env).driftFlushMs).toBe(10_000);
    expect(parseConfig({ ...env, SHOAL_DRIFT_FLUSH_MS: '0' }).driftFlushMs).toBe(0);
    for (const bad of ['-1', '1.5', 'soon', '3600001']) {
      expect(() => parseConfig({ ...env, SHOAL_DRIFT_FLUSH_MS: bad }), bad).toThrow(ConfigError);
      expect(() => parseConfig({ ...env, SHOAL_DRIFT_FLUSH_MS: bad }), bad).toThrow(/SHOAL_DRIFT_FLUSH_MS/);
    }
  });
});
