/**
 * Drift monitoring per collection and model version (docs/architecture.md §8.8, docs/drift.md): the
 * statistics of `drift.ts` fed by the vectors Shoal sees (queries and upserts), kept per process in memory,
 * added to hourly Catalog items on flush, emitted as EMF metrics, and read back for
 * `GET /v1/collections/{name}/drift`.
 *
 * Nothing here is on a request's critical path except `maybeFlush`, which is a no-op until the flush
 * interval has passed: `observe` is synchronous and never throws, reference builds run in the background,
 * and flush failures are logged, never thrown.
 */
import { ValidationError } from '../errors.js';
import { logger } from '../log.js';
import { recordDrift } from '../metrics.js';
import { mulberry32 } from '../random.js';
import { collectionKey } from '../storage/keys.js';
import type { CollectionMeta, RecordPosition, RecordStore } from '../storage/types.js';
import {
  DRIFT_KINDS,
  DRIFT_MIN_COUNT,
  buildReference,
  driftSeed,
  emptyWindow,
  hourStartMs,
  modelKey,
  observeVector,
  ready,
  windowHour,
  windowStats,
  type DriftKind,
  type DriftReference,
  type DriftStatus,
  type DriftWindow,
  type ReadyReference,
  type WindowStats,
} from './drift.js';

/**
 * Default flush interval (10 s; SHOAL_DRIFT_FLUSH_MS): each container writes one UpdateItem per pending
 * window (collection × model × kind) per interval. Shorter = fresher reports and metrics, more writes;
 * longer = fewer writes, and more counts lost when a container dies before flushing.
 */
export const DEFAULT_DRIFT_FLUSH_MS = 10_000;
/** Rows a reference is built from (a seeded reservoir sample of the rows read). */
export const DRIFT_SAMPLE_ROWS = 2_000;
/**
 * Rows read from the listing to draw the sample from (default 10,000, ten 1,000-item Queries): more spreads
 * the sample over more of a large collection (the listing is in write order, oldest first) at more read cost
 * per build. Builds are rare: once per collection and model, and on a reset.
 */
export const DRIFT_SCAN_ROWS = 10_000;
/**
 * …and at most this many bytes of vectors (default 16 MiB: 10,000 rows up to 419 dimensions, 1,024 rows at
 * 4,096), so a reset inside an API request stays a few seconds of reads at any dimension.
 */
export const DRIFT_SCAN_BYTES = 16 * 2 ** 20;
/** A collection with fewer live rows gets no reference yet (its deciles would be noise); retried later. */
export const DRIFT_MIN_REFERENCE_ROWS = 100;
/** Wait before retrying a reference that could not be built (too few rows, or a failure). */
export const DRIFT_RETRY_MS = 60_000;
/**
 * How long a container trusts its copy of a reference (default 5 min) before reading it again: a reset in
 * another container reaches this one within it. Shorter = faster pickup, one more GetItem (up to ~135 KB
 * at 4,096 dimensions) per collection per container per period.
 */
export const DRIFT_REFERENCE_TTL_MS = 5 * 60_000;
/** Days a window item lives (DynamoDB TTL on `ttl`): the report reads at most 168 hours back. */
export const DRIFT_WINDOW_TTL_DAYS = 30;

/** Where references and windows are stored (DynamoDriftStore on the Catalog table). */
export interface DriftStore {
  getReference(collection: string, model: string): Promise<DriftReference | undefined>;
  /** `onlyIfAbsent`: a background build never replaces a reference (a reset may have just written one). */
  putReference(collection: string, model: string, ref: DriftReference, onlyIfAbsent: boolean): Promise<boolean>;
  /** Adds the counters (one `ADD`) and returns the window's totals after the add. */
  addWindow(key: WindowKey, window: DriftWindow, ttlSeconds: number): Promise<DriftWindow>;
  /** The stored windows of hours `fromHour`…`toHour` (inclusive) of one kind, oldest first. */
  listWindows(
    collection: string,
    model: string,
    kind: DriftKind,
    fromHour: string,
    toHour: string,
  ): Promise<Array<{ hour: string; ref: string; window: DriftWindow }>>;
}

export interface WindowKey {
  collection: string;
  model: string;
  kind: DriftKind;
  /** `2026-11-30T09` */
  hour: string;
  /** Revision of the reference the counters were binned against (`referenceRevision`). */
  ref: string;
}

/** A reference's revision in window keys: its creation time in ms, base 36. */
export function referenceRevision(ref: DriftReference): string {
  return Date.parse(ref.createdAt).toString(36);
}

export interface DriftWindowReport extends Omit<WindowStats, 'score'> {
  kind: DriftKind;
  /** Start of the hour, ISO-8601. */
  start: string;
}

export interface DriftReport {
  collection: string;
  model: { name: string; version: number } | null;
  reference: { rows: number; createdAt: string } | null;
  /** Observations this process dropped because no reference existed yet (per process, since its start). */
  unreferenced: number;
  windows: DriftWindowReport[];
  current: { query: DriftWindowReport | null; ingest: DriftWindowReport | null };
  /** The worst status of the current windows; `insufficient` when none has enough vectors yet. */
  status: DriftStatus | 'unreferenced';
}

export interface DriftMonitorOptions {
  store: DriftStore;
  records: RecordStore;
  flushIntervalMs?: number;
  now?: () => number;
}

interface RefState {
  ready?: ReadyReference;
  /** Read or built at (ms); re-read after DRIFT_REFERENCE_TTL_MS. */
  loadedAt: number;
  loading?: Promise<void>;
  /** No retry before this time. */
  retryAt: number;
}

interface Pending {
  key: WindowKey;
  window: DriftWindow;
}

const SEVERITY: Record<DriftStatus, number> = { insufficient: 0, ok: 1, warn: 2, alert: 3 };

export class DriftMonitor {
  private readonly refs = new Map<string, RefState>();
  private pending = new Map<string, Pending>();
  private lastFlush: number;
  private unreferencedCount = new Map<string, number>();
  readonly flushIntervalMs: number;

  constructor(private readonly opts: DriftMonitorOptions) {
    this.flushIntervalMs = opts.flushIntervalMs ?? DEFAULT_DRIFT_FLUSH_MS;
    this.lastFlush = this.now();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * Counts `vectors` into this process's window of (collection, model, kind, hour). Synchronous and never
   * throws: a missing reference starts loading (or building) one in the background and the vectors are
   * counted as unreferenced.
   */
  observe(meta: CollectionMeta, kind: DriftKind, vectors: readonly Float32Array[]): void {
    try {
      if (!vectors.length) return;
      const model = modelKey(meta.model);
      const r = this.reference(meta, model);
      if (!r) {
        const k = refKey(meta.name, model);
        this.unreferencedCount.set(k, (this.unreferencedCount.get(k) ?? 0) + vectors.length);
        return;
      }
      const key: WindowKey = {
        collection: meta.name,
        model,
        kind,
        hour: windowHour(this.now()),
        ref: referenceRevision(r.ref),
      };
      const id = `${key.collection}\u0000${key.model}\u0000${kind}\u0000${key.hour}\u0000${key.ref}`;
      let p = this.pending.get(id);
      if (!p) {
        p = { key, window: emptyWindow() };
        this.pending.set(id, p);
      }
      for (const v of vectors) observeVector(r, p.window, v);
    } catch (err) {
      logger.warn('drift: observing vectors failed', { collection: meta.name, error: String(err) });
    }
  }

  /** Flushes when the interval has passed since the last flush (else resolves at once). Never throws. */
  async maybeFlush(): Promise<void> {
    if (this.pending.size === 0 || this.now() - this.lastFlush < this.flushIntervalMs) return;
    await this.flush();
  }

  /**
   * Adds every pending window to its stored item (one UpdateItem each) and emits EmbeddingDriftPSI for the
   * hour's totals. Counts of a failed write are dropped, not retried: `ADD` is not idempotent, and a resend
   * after a lost response would count them twice. Never throws.
   */
  async flush(): Promise<void> {
    this.lastFlush = this.now();
    const batch = [...this.pending.values()];
    this.pending = new Map();
    await Promise.all(
      batch.map(async ({ key, window }) => {
        if (window.count === 0) return;
        try {
          const ttl = Math.floor(hourStartMs(key.hour) / 1000) + DRIFT_WINDOW_TTL_DAYS * 86_400;
          const total = await this.opts.store.addWindow(key, window, ttl);
          const r = this.refs.get(refKey(key.collection, key.model))?.ready;
          if (!r || referenceRevision(r.ref) !== key.ref) return;
          const stats = windowStats(r.ref, total);
          recordDrift({
            collection: key.collection,
            kind: key.kind,
            psi: stats.count >= DRIFT_MIN_COUNT ? stats.score : undefined,
            observed: window.count,
          });
        } catch (err) {
          logger.warn('drift: flushing a window failed; its counts are dropped', {
            collection: key.collection,
            kind: key.kind,
            error: String(err),
          });
        }
      }),
    );
  }

  /**
   * Reads the reference and the last `hours` hour windows (default 24) of each kind asked for. Flushes this
   * process's pending counts first, so what it just saw is in the report.
   */
  async report(meta: CollectionMeta, options: { kind?: DriftKind; hours?: number } = {}): Promise<DriftReport> {
    await this.flush();
    const model = modelKey(meta.model);
    const ref = await this.opts.store.getReference(meta.name, model);
    const usable = ref && ref.generation === meta.generation && ref.dimension === meta.dimension ? ref : undefined;
    const hours = options.hours ?? 24;
    const now = this.now();
    const fromHour = windowHour(now - (hours - 1) * 3_600_000);
    const toHour = windowHour(now);
    const kinds = options.kind ? [options.kind] : DRIFT_KINDS;
    const windows: DriftWindowReport[] = [];
    const current: DriftReport['current'] = { query: null, ingest: null };
    if (usable) {
      const rev = referenceRevision(usable);
      for (const kind of kinds) {
        const stored = await this.opts.store.listWindows(meta.name, model, kind, fromHour, toHour);
        for (const w of stored) {
          // Counts binned against an earlier reference do not compare with this one.
          if (w.ref !== rev) continue;
          const { score: _score, ...stats } = windowStats(usable, w.window);
          const entry: DriftWindowReport = { kind, start: `${w.hour}:00:00.000Z`, ...stats };
          windows.push(entry);
          current[kind] = entry;
        }
      }
    }
    const statuses = [current.query, current.ingest].filter((w) => w !== null).map((w) => w.status);
    const status: DriftReport['status'] = !usable
      ? 'unreferenced'
      : statuses.reduce<DriftStatus>((a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a), 'insufficient');
    if (!usable) this.reference(meta, model);
    return {
      collection: meta.name,
      model: meta.model ? { name: meta.model.name, version: meta.model.version } : null,
      reference: usable ? { rows: usable.rows, createdAt: usable.createdAt } : null,
      unreferenced: this.unreferencedCount.get(refKey(meta.name, model)) ?? 0,
      windows,
      current,
      status,
    };
  }

  /**
   * Rebuilds the reference from the collection's current rows and makes it the one windows compare with
   * (after a planned model change: accept the new distribution). ValidationError-free: too few rows is a
   * `{reference: null}` answer the caller shows.
   */
  async resetReference(meta: CollectionMeta): Promise<{ rows: number; createdAt: string } | null> {
    const model = modelKey(meta.model);
    // Counts binned against the old reference go out under its revision first.
    await this.flush();
    const ref = await this.build(meta, model);
    if (!ref) return null;
    await this.opts.store.putReference(meta.name, model, ref, false);
    // The same state object a background load in flight holds: it sees this newer reference and keeps it.
    const state = this.state(refKey(meta.name, model));
    state.ready = ready(ref);
    state.loadedAt = this.now();
    state.retryAt = 0;
    return { rows: ref.rows, createdAt: ref.createdAt };
  }

  /** The in-memory reference, or undefined while it loads; starts loading when missing or stale. */
  private reference(meta: CollectionMeta, model: string): ReadyReference | undefined {
    const state = this.state(refKey(meta.name, model));
    const r = state.ready;
    const fits = r && r.ref.generation === meta.generation && r.ref.dimension === meta.dimension;
    const now = this.now();
    const stale = !fits || now - state.loadedAt > DRIFT_REFERENCE_TTL_MS;
    if (stale && !state.loading && now >= state.retryAt) {
      const s = state;
      s.loading = this.load(meta, model, s).finally(() => {
        s.loading = undefined;
      });
    }
    return fits ? r : undefined;
  }

  private state(k: string): RefState {
    let state = this.refs.get(k);
    if (!state) {
      state = { loadedAt: 0, retryAt: 0 };
      this.refs.set(k, state);
    }
    return state;
  }

  private async load(meta: CollectionMeta, model: string, state: RefState): Promise<void> {
    try {
      let ref = await this.opts.store.getReference(meta.name, model);
      if (!ref || ref.generation !== meta.generation || ref.dimension !== meta.dimension) {
        const built = await this.build(meta, model);
        if (!built) {
          state.retryAt = this.now() + DRIFT_RETRY_MS;
          return;
        }
        const written = await this.opts.store.putReference(meta.name, model, built, ref === undefined);
        // Lost to another builder (or a reset): take theirs.
        ref = written ? built : await this.opts.store.getReference(meta.name, model);
        if (!ref) return;
      }
      // A reset in this process while the load was in flight wrote a newer one: keep it.
      if (!state.ready || Date.parse(state.ready.ref.createdAt) <= Date.parse(ref.createdAt)) state.ready = ready(ref);
      state.loadedAt = this.now();
    } catch (err) {
      state.retryAt = this.now() + DRIFT_RETRY_MS;
      logger.warn('drift: loading the reference failed; retrying later', { collection: meta.name, error: String(err) });
    }
  }

  /** A reference from a seeded sample of the collection's live rows; undefined below the minimum. */
  private async build(meta: CollectionMeta, model: string): Promise<DriftReference | undefined> {
    const seed = driftSeed(meta.name, model);
    const rnd = mulberry32(seed);
    const ck = collectionKey(meta);
    const sample: Float32Array[] = [];
    let seen = 0;
    let after: RecordPosition | undefined;
    const scan = Math.min(DRIFT_SCAN_ROWS, Math.floor(DRIFT_SCAN_BYTES / (4 * meta.dimension)));
    // Items read, tombstones included: a listing of mostly deletes must not read on and on.
    let read = 0;
    while (read < scan) {
      const page = await this.opts.records.list(ck, {
        ...(after ? { after } : {}),
        limit: Math.min(1000, scan - read),
        values: true,
        metadata: false,
      });
      read += page.records.length;
      for (const r of page.records) {
        if (r.deleted || !r.vector || r.vector.length !== meta.dimension) continue;
        seen++;
        // Reservoir sampling: every row read has the same chance to be in the sample.
        if (sample.length < DRIFT_SAMPLE_ROWS) sample.push(r.vector);
        else {
          const j = Math.floor(rnd() * seen);
          if (j < DRIFT_SAMPLE_ROWS) sample[j] = r.vector;
        }
      }
      after = page.next;
      if (!after) break;
    }
    if (sample.length < DRIFT_MIN_REFERENCE_ROWS) return undefined;
    // A new reference must have a new revision even when built twice in one millisecond.
    const at = Math.max(this.now(), this.lastBuilt + 1);
    this.lastBuilt = at;
    return buildReference(sample, { seed, generation: meta.generation, createdAt: new Date(at).toISOString() });
  }

  private lastBuilt = 0;
}

function refKey(collection: string, model: string): string {
  return `${collection}\u0000${model}`;
}

/** What the HTTP API calls: by name, aliases resolved to the collection they name. */
export interface DriftApi {
  report(name: string, options: { kind?: DriftKind; hours?: number }): Promise<DriftReport>;
  resetReference(name: string): Promise<{ collection: string; reference: { rows: number; createdAt: string } | null }>;
}

export function driftApi(
  core: { resolve(name: string): Promise<{ meta: CollectionMeta; alias?: unknown }> },
  monitor: DriftMonitor,
): DriftApi {
  return {
    report: async (name, options) => monitor.report((await core.resolve(name)).meta, options),
    resetReference: async (name) => {
      const { meta, alias } = await core.resolve(name);
      // A write names the collection itself, as index builds do: an alias's scope must not reach past it.
      if (alias) {
        throw new ValidationError(`${JSON.stringify(name)} is an alias; reset the reference of its collection`, {
          field: 'name',
        });
      }
      return { collection: meta.name, reference: await monitor.resetReference(meta) };
    },
  };
}
