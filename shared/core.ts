import { ConflictError, ModelMismatchError, NotFoundError, ValidationError } from './errors.js';
import { qualityGate } from './lifecycle/aliases.js';
import type { Alias, LifecycleStore } from './lifecycle/types.js';
import { searchThroughAlias } from './lifecycle/experiments.js';
import { BUILD_POLICY, linesOf } from './indexing/builder.js';
import {
  defaultLineName,
  indexSettings,
  lineOf,
  lineView,
  parseLineName,
  sameSettings,
  servingLine,
} from './indexing/lines.js';
import {
  deleteVectors,
  dropEarlyLease,
  leaseEarly,
  rewriteIfUnchanged,
  upsertVectors,
  validateUpserts,
  writeLeaseIds,
} from './ingest/ingest.js';
import { readTail, search, strongReadDeadline, type SearchDeps } from './search/coordinator.js';
import type { TailCap } from './ingest/backpressure.js';
import type { ShardCache } from './search/shard-cache.js';
import type { TailCache } from './search/tail-cache.js';
import type {
  BuildOutput,
  BuildRequest,
  Caller,
  CollectionInfo,
  CreateCollectionInput,
  InputRow,
  ListVectorsInput,
  ListVectorsOutput,
  MetadataPatch,
  SearchInput,
  SearchOutput,
  PromoteOutput,
  ShoalService,
  UpsertOptions,
  VectorInput,
  VectorOutput,
} from './service.js';
import {
  MAIN_LINE,
  type Catalog,
  type CollectionMeta,
  type EmbeddingBinding,
  type LinePromotion,
  type Manifest,
  type ObjectStore,
  type RecordPosition,
  type RecordStore,
} from './storage/types.js';
import type { FilterNode } from './filter/ast.js';
import { compileFilter, objectGetter } from './filter/compile.js';
import { decodeCursor, encodeCursor } from './storage/cursor.js';
import type { Metadata, Metric } from './types.js';
import type { Embedder } from './models/embedder.js';
import { metadataSchema } from './validation.js';
import type { Evaluation, LineView } from './service-types.js';
import { collectionKey } from './storage/keys.js';
import { currentManifest } from './collections.js';
import type { DriftMonitor } from './models/drift-monitor.js';

/**
 * Queries one listing page may send (each reads at most the page's `limit` items): a selective filter
 * then returns a short page with a cursor instead of reading the whole collection in one request.
 */
export const LIST_MAX_QUERIES = 4;

/** Read-modify-write rounds of a PATCH that keep losing to concurrent writes before it answers 409. */
export const PATCH_ATTEMPTS = 3;

export interface CoreDeps {
  catalog: Catalog;
  records: RecordStore;
  objects: ObjectStore;
  cache: ShardCache;
  /** Wakes the index builder for a collection; `force` builds regardless of the batching policy. */
  wake(collection: string, options?: { force?: boolean }): Promise<void>;
  slots: number;
  scatter?: SearchDeps['scatter'];
  scatterMinBytes?: number;
  codeVersion: string;
  now?: () => number;
  policy?: Partial<typeof BUILD_POLICY>;
  tails?: TailCache;
  /** Aliases, evaluations, models (docs/architecture.md §8). Without it, names are collections only. */
  lifecycle?: LifecycleStore;
  /** Split experiments: draws whether a request also runs the other arm for overlap@k (tests). */
  experimentRandom?: () => number;
  /** The unindexed-tail cap (429 BACKPRESSURE above it); undefined = no cap. */
  tailCap?: TailCap;
  /** Time a strong read may spend reading the tail (default DEFAULT_STRONG_READ_BUDGET_MS). */
  strongReadBudgetMs?: number;
  /** Time the live count may spend checking tail ids against the index (default COUNT_BUDGET_MS). */
  countBudgetMs?: number;
  /** Runs collections' embedding functions (docs/models.md); without it, collections take vectors only. */
  embedder?: Embedder;
  /** Embedding drift monitoring (docs/architecture.md §8.8): sees every searched query and upserted vector. */
  drift?: DriftMonitor;
}

/** A read endpoint's `{name}` resolved: the collection, plus the alias and pinned version it came through. */
export interface ResolvedTarget {
  meta: CollectionMeta;
  version?: number;
  line?: string;
  alias?: Alias;
}

function info(meta: CollectionMeta): CollectionInfo {
  const out: CollectionInfo = {
    name: meta.name,
    dimension: meta.dimension,
    metric: meta.metric,
    index: { engine: meta.index.engine, ...meta.index.params },
    createdAt: meta.createdAt,
  };
  if (meta.minRecall !== undefined) out.minRecall = meta.minRecall;
  if (meta.model !== undefined) out.model = meta.model;
  if (meta.embedding !== undefined) out.embedding = meta.embedding;
  if (meta.index.line !== undefined && meta.index.line !== MAIN_LINE) out.indexLine = meta.index.line;
  if (meta.candidates) out.candidates = Object.keys(meta.candidates).sort();
  return out;
}

/**
 * Time a collection's stats may spend checking tail ids against the index for the live count (1 s): an
 * exact count costs tail rows × shards id lookups. Past it the count is an upper bound (`countExact:
 * false`). Longer makes large tails exact more often, at the cost of a slower `GET /v1/collections/{name}`.
 */
export const COUNT_BUDGET_MS = 1_000;

/** Shoal's core: the service the API functions call, on top of the storage adapters. */
export class ShoalCore implements ShoalService {
  /**
   * Each collection's meta item as this process last read it: a hint for work started before the
   * meta item is read again (docs/architecture.md §7.6), never trusted without that read.
   */
  private readonly seenMeta = new Map<string, CollectionMeta>();

  constructor(private readonly deps: CoreDeps) {}

  async createCollection(request: CreateCollectionInput): Promise<CollectionInfo> {
    const settings = indexSettings(request.index ?? {});
    const lifecycle = this.deps.lifecycle;
    const { input, embedding } = await this.bindEmbedding(request);
    if (lifecycle && (await lifecycle.getPointer('alias', input.name))) {
      throw new ConflictError(
        `${JSON.stringify(input.name)} is an alias; collections and aliases share one namespace`,
        { field: 'name' },
      );
    }
    if (input.model) {
      if (!lifecycle) throw new ValidationError('model bindings need the lifecycle store', { field: 'model' });
      const mv = await lifecycle.getModelVersion(input.model.name, input.model.version);
      if (!mv)
        throw new ValidationError(`model ${input.model.name} version ${input.model.version} not found`, {
          field: 'model',
        });
      if (mv.state !== 'ready')
        throw new ValidationError(`model ${input.model.name} version ${input.model.version} is not committed yet`, {
          field: 'model',
        });
      if (mv.dimension !== input.dimension) {
        throw new ValidationError(
          `dimension ${input.dimension} does not match model ${mv.name} v${mv.version} (${mv.dimension})`,
          { field: 'dimension' },
        );
      }
      if (mv.metric !== input.metric) {
        throw new ValidationError(
          `metric ${input.metric} does not match model ${mv.name} v${mv.version} (${mv.metric})`,
          { field: 'metric' },
        );
      }
    }
    const meta = await this.deps.catalog.createCollection({
      name: input.name,
      dimension: input.dimension,
      metric: input.metric,
      index: settings,
      ...(input.minRecall !== undefined ? { minRecall: input.minRecall } : {}),
      ...(input.model !== undefined ? { model: input.model } : {}),
      ...(embedding !== undefined ? { embedding } : {}),
    });
    return { ...info(meta), stats: { count: 0, indexed: 0, pending: 0, shards: 0, version: 0, watermark: 0 } };
  }

  /**
   * A create request with `embedding`: the model version is resolved and checked (docs/models.md), the
   * collection bound to it, and dimension and metric default to the version's (and must match it if sent).
   */
  private async bindEmbedding(
    request: CreateCollectionInput,
  ): Promise<{ input: CreateCollectionInput & { dimension: number; metric: Metric }; embedding?: EmbeddingBinding }> {
    if (!request.embedding) {
      if (request.dimension === undefined || request.metric === undefined) {
        throw new ValidationError('is required (unless an embedding function gives it)', {
          field: request.dimension === undefined ? 'dimension' : 'metric',
        });
      }
      return { input: { ...request, dimension: request.dimension, metric: request.metric } };
    }
    if (!this.deps.embedder) {
      throw new ValidationError('this deployment has no model runtime; embed outside and send values', {
        field: 'embedding',
      });
    }
    if (request.model) {
      throw new ValidationError('send either "model" or "embedding" (an embedding function binds its model)', {
        field: 'model',
      });
    }
    const { binding, version } = await this.deps.embedder.bind(request.embedding);
    for (const key of ['dimension', 'metric'] as const) {
      if (request[key] !== undefined && request[key] !== version[key]) {
        throw new ValidationError(
          `${key} ${request[key]} does not match model ${version.name} v${version.version} (${version[key]})`,
          { field: key },
        );
      }
    }
    return {
      input: {
        ...request,
        dimension: version.dimension,
        metric: version.metric,
        model: { name: version.name, version: version.version },
      },
      embedding: binding,
    };
  }

  /** Raw inputs → vectors with the collection's embedding function; refused on a collection without one. */
  /** The collection's embedding function and the embedder; ValidationError on `field` when it has none. */
  private embedding(meta: CollectionMeta, field: string): { binding: EmbeddingBinding; embedder: Embedder } {
    if (!meta.embedding || !this.deps.embedder) {
      throw new ValidationError(
        `collection ${JSON.stringify(meta.name)} has no embedding function; send vectors (values) instead`,
        { field },
      );
    }
    return { binding: meta.embedding, embedder: this.deps.embedder };
  }

  /** A search sent as raw inputs, embedded for the collection about to be searched (each arm its own). */
  private async embedQueries(meta: CollectionMeta, input: SearchInput): Promise<SearchInput> {
    if (!input.inputs) return input;
    const { binding, embedder } = this.embedding(meta, 'inputs[0]');
    const queries = await embedder.embed(binding, input.inputs, (i) => `inputs[${i}]`);
    const { inputs: _raw, ...rest } = input;
    return { ...rest, queries };
  }

  async upsertInputs(collection: string, rows: InputRow[]): Promise<{ upserted: number }> {
    const meta = await this.deps.catalog.getCollection(collection);
    const { binding, embedder } = this.embedding(meta, 'vectors[0].inputs');
    const vectors = await embedder.toVectors({ binding, ck: collectionKey(meta) }, rows, (i) => `vectors[${i}].inputs`);
    return this.upsert(collection, vectors, { modelVersion: meta.model });
  }

  async listCollections(): Promise<CollectionInfo[]> {
    return (await this.deps.catalog.listCollections()).map(info);
  }

  /**
   * Resolves a read endpoint's `{name}`: a collection, else an alias (read on every request,
   * never cached, so a move is visible to the next request). Names are one namespace.
   */
  async resolve(name: string): Promise<ResolvedTarget> {
    try {
      return { meta: await this.deps.catalog.getCollection(name) };
    } catch (err) {
      if (!(err instanceof NotFoundError) || !this.deps.lifecycle) throw err;
    }
    const alias = (await this.deps.lifecycle.getPointer('alias', name)) as Alias | undefined;
    if (!alias) throw new NotFoundError(`collection or alias ${JSON.stringify(name)} not found`, { field: 'name' });
    const meta = await this.deps.catalog.getCollection(alias.target.collection);
    return { meta, version: alias.target.version, line: alias.target.line, alias };
  }

  async getCollection(name: string): Promise<CollectionInfo> {
    const { meta, alias } = await this.resolve(name);
    const manifest = await currentManifest(this.deps.catalog, meta);
    const watermark = manifest?.watermark ?? 0;
    // The same incremental tail read as strong search, when this process keeps one.
    const tail = this.deps.tails
      ? (await this.deps.tails.read(meta, watermark, strongReadDeadline(this.deps))).records
      : await readTail(this.deps, meta, watermark, strongReadDeadline(this.deps));
    const { count, exact } = await this.liveCount(manifest, tail);
    const aliasInfo = alias
      ? {
          alias: {
            name: alias.name,
            revision: alias.revision,
            ...(alias.target.version !== undefined ? { version: alias.target.version } : {}),
          },
        }
      : {};
    return {
      ...info(meta),
      ...aliasInfo,
      stats: {
        count,
        indexed: manifest?.stats.liveRows ?? 0,
        pending: tail.length,
        shards: manifest?.shards.length ?? 0,
        ...(manifest?.partitions ? { partitions: manifest.partitions.count } : {}),
        version: manifest?.version ?? 0,
        watermark,
        ...(exact ? {} : { countExact: false }),
      },
    };
  }

  /**
   * Live rows: the version's live rows, plus tail upserts of ids the index does not hold alive, minus
   * tail deletes of ids it does. Every shard is asked about every tail id (an id's partition is not
   * known), one shard at a time through the search cache: tail × shards lookups, which at a full tail of
   * a 1M-row collection (72k × 514) took minutes when each lookup awaited the cache. Past
   * COUNT_BUDGET_MS the rest is not checked and the count is an upper bound (`countExact: false`): an
   * unchecked upsert counts as new, an unchecked delete as of a row that was not live.
   */
  private async liveCount(
    manifest: Manifest | undefined,
    tail: ReadonlyArray<{ id: string; deleted?: boolean }>,
  ): Promise<{ count: number; exact: boolean }> {
    let count = manifest?.stats.liveRows ?? 0;
    if (!tail.length) return { count, exact: true };
    const now = this.deps.now ?? Date.now;
    const deadline = now() + (this.deps.countBudgetMs ?? COUNT_BUDGET_MS);
    const unknown = new Set(tail.map((r) => r.id));
    const live = new Set<string>();
    let exact = true;
    for (const ref of manifest?.shards ?? []) {
      if (!unknown.size) break;
      if (now() > deadline) {
        exact = false;
        break;
      }
      const [shard, bits] = await Promise.all([this.deps.cache.shard(ref), this.deps.cache.bitmap(ref)]);
      for (const id of unknown) {
        const row = shard.rowOf(id);
        if (row === undefined || (bits && (bits[row >>> 3] & (1 << (row & 7))) !== 0)) continue;
        live.add(id);
        // Deleting the current entry keeps a Set's iteration going with the next one.
        unknown.delete(id);
      }
    }
    for (const r of tail) {
      if (r.deleted && live.has(r.id)) count--;
      if (!r.deleted && !live.has(r.id)) count++;
    }
    return { count, exact };
  }

  async deleteCollection(name: string): Promise<void> {
    // Records and objects live under the collection's generation key; a re-created
    // collection gets a new generation, so leftovers are invisible and collected later.
    await this.deps.catalog.deleteCollection(name);
  }

  async upsert(collection: string, vectors: VectorInput[], options: UpsertOptions = {}): Promise<{ upserted: number }> {
    // The lease needs only the name: taken while the meta item is read, one round trip for both
    // (docs/architecture.md §7.6) — when this process has seen the collection and the input fits it, so
    // bad input and unknown names consume no seqs. A refusal after all (the meta item moved) gives it back.
    const hint = this.seenMeta.get(collection);
    const early =
      vectors.length && hint && fits(hint, vectors)
        ? leaseEarly(this.deps.catalog, collection, vectors.length, writeLeaseIds(vectors))
        : undefined;
    let meta: CollectionMeta;
    try {
      meta = await this.admitUpsert(collection, vectors.length, options);
    } catch (err) {
      if (early) await dropEarlyLease(this.deps.catalog, collection, early);
      throw err;
    }
    this.seenMeta.set(collection, meta);
    const checked = early !== undefined && hint?.dimension === meta.dimension;
    const upserted = await upsertVectors(this.deps, meta, vectors, early, checked);
    this.deps.drift?.observe(
      meta,
      'ingest',
      vectors.map((v) => v.values),
    );
    // Awaited (Lambda may freeze right after the response); a no-op until the flush interval passed.
    await this.deps.drift?.maybeFlush();
    return { upserted };
  }

  private async admitUpsert(collection: string, rows: number, options: UpsertOptions): Promise<CollectionMeta> {
    const meta = await this.deps.catalog.getCollection(collection);
    const claimed = options.modelVersion;
    if (claimed && meta.model && (claimed.name !== meta.model.name || claimed.version !== meta.model.version)) {
      throw new ModelMismatchError(
        `vectors from model ${claimed.name} v${claimed.version} cannot go into ${JSON.stringify(collection)}, ` +
          `which is bound to ${meta.model.name} v${meta.model.version}`,
        {
          field: claimed.name !== meta.model.name ? 'modelVersion.name' : 'modelVersion.version',
          details: { expected: meta.model, got: claimed },
        },
      );
    }
    if (rows && this.deps.tailCap) {
      await this.deps.tailCap.check(meta).catch(async (err: unknown) => {
        // Refused before anything is written; the builder gets a nudge to catch up.
        await this.deps.wake(meta.name).catch(() => undefined);
        throw err;
      });
    }
    return meta;
  }

  async getVectors(collection: string, ids: string[]): Promise<VectorOutput[]> {
    const unique = [...new Set(ids)];
    // Row keys carry the generation, known only from the meta item. The generation this process last
    // saw lets the rows be read beside it (docs/architecture.md §7.6); used only if the meta item agrees,
    // so a re-created collection costs a second read, never a stale row.
    const seen = this.seenMeta.get(collection)?.generation;
    const early =
      seen === undefined
        ? undefined
        : this.deps.records.get(collectionKey({ name: collection, generation: seen }), unique).catch(() => undefined);
    const { meta } = await this.resolve(collection);
    this.seenMeta.set(meta.name, meta);
    const prefetched = meta.name === collection && meta.generation === seen ? await early : undefined;
    const found = prefetched ?? (await this.deps.records.get(collectionKey(meta), unique));
    const out: VectorOutput[] = [];
    for (const id of ids) {
      const r = found.get(id);
      if (!r || r.deleted || !r.vector) continue;
      out.push({ id, values: Array.from(r.vector), metadata: r.metadata ?? {} });
    }
    return out;
  }

  async deleteVectors(
    collection: string,
    selector: { ids: string[] } | { filter: FilterNode },
  ): Promise<{ deleted: number }> {
    const meta = await this.deps.catalog.getCollection(collection);
    return { deleted: await deleteVectors(this.deps, meta, selector) };
  }

  async listVectors(collection: string, input: ListVectorsInput): Promise<ListVectorsOutput> {
    const { meta } = await this.resolve(collection);
    const ck = collectionKey(meta);
    let after = input.cursor === undefined ? undefined : listPosition(ck, input.cursor);
    const vectors: VectorOutput[] = [];
    for (let query = 0; query < LIST_MAX_QUERIES && vectors.length < input.limit; query++) {
      // Never more items than the page still has room for: `next` is then exactly where it stops.
      const page = await this.deps.records.list(ck, {
        ...(after ? { after } : {}),
        limit: input.limit - vectors.length,
        values: input.includeValues,
        metadata: input.includeMetadata || input.filter !== undefined,
      });
      const live = page.records.filter((r) => !r.deleted);
      const keep = input.filter
        ? compileFilter(input.filter, objectGetter(live.map((r) => r.metadata ?? {})))
        : () => true;
      live.forEach((r, i) => {
        if (!keep(i)) return;
        const out: VectorOutput = { id: r.id };
        if (input.includeValues && r.vector) out.values = Array.from(r.vector);
        if (input.includeMetadata) out.metadata = r.metadata ?? {};
        vectors.push(out);
      });
      after = page.next;
      if (!after) break;
    }
    return { vectors, nextCursor: after ? encodeCursor(ck, { s: after.seq, i: after.id }) : null };
  }

  async patchVector(collection: string, id: string, patch: MetadataPatch): Promise<{ upserted: number }> {
    const meta = await this.admitUpsert(collection, 1, {});
    const ck = collectionKey(meta);
    for (let attempt = 0; attempt < PATCH_ATTEMPTS; attempt++) {
      const current = (await this.deps.records.get(ck, [id])).get(id);
      if (!current || current.deleted || !current.vector) {
        throw new NotFoundError(`vector ${JSON.stringify(id)} not found in ${JSON.stringify(collection)}`, {
          field: 'id',
        });
      }
      const metadata = mergeMetadata(current.metadata, patch);
      const row: VectorInput = {
        id,
        values: current.vector,
        ...(metadata ? { metadata } : {}),
        ...(current.input !== undefined ? { inputRef: current.input } : {}),
      };
      if (await rewriteIfUnchanged(this.deps, meta, row, current.seq)) return { upserted: 1 };
    }
    throw new ConflictError(
      `vector ${JSON.stringify(id)} kept changing under ${PATCH_ATTEMPTS} attempts to patch it; send the patch again`,
      { field: 'id' },
    );
  }

  async search(collection: string, input: SearchInput): Promise<SearchOutput> {
    // A strong search needs the seq counter too: read beside the meta item, one round trip for both
    // (docs/architecture.md §7.6). Used only when the name is the collection itself, not an alias.
    const seq =
      input.consistency === 'strong'
        ? this.deps.catalog.seqState(collection).catch((): undefined => undefined)
        : undefined;
    const speculation = this.speculate(collection, input);
    const { meta, version, line, alias } = await this.resolve(collection);
    const lifecycle = this.deps.lifecycle;
    const drift = this.deps.drift;
    if (!alias) this.seenMeta.set(collection, meta);
    if (!alias || !lifecycle) {
      const embedded = await this.embedQueries(meta, input);
      // The speculative answer stands only if the meta item just read is the one it was computed from.
      const early =
        speculation && !alias && speculation.from === JSON.stringify(meta) ? await speculation.out : undefined;
      const out =
        early ??
        (await search(this.deps, meta, embedded, {
          version,
          line,
          alias: alias?.name,
          ...(alias ? {} : { seq }),
        }));
      drift?.observe(meta, 'query', embedded.queries);
      await drift?.maybeFlush();
      return out;
    }
    // Through an alias: a running experiment may route to (or mirror on) the challenger.
    return searchThroughAlias(
      {
        store: lifecycle,
        now: this.deps.now ?? Date.now,
        random: this.deps.experimentRandom,
        prepare: async (target) => {
          const m = target.collection === meta.name ? meta : await this.deps.catalog.getCollection(target.collection);
          return async (raw) => {
            const q = await this.embedQueries(m, raw);
            const out = await search(this.deps, m, q, {
              version: target.version,
              line: target.line,
              alias: alias.name,
            });
            // The collection actually searched (both arms of a shadow experiment see the query).
            drift?.observe(m, 'query', q.queries);
            return out;
          };
        },
      },
      alias.name,
      alias.target,
      input,
    ).finally(() => drift?.maybeFlush());
  }

  /**
   * An eventual search by collection name, started from the meta item this process last saw while the
   * meta item is read again (docs/architecture.md §7.6): the shards are searched during the read instead
   * of after it. Everything an eventual search reads besides the meta item is immutable (the manifest of
   * a version, its shards), so the answer is the one the read would give if the item is unchanged, and
   * `search` uses it only then (an alias move, a new head version, changed settings: searched again).
   * Started on the next turn of the event loop, after the SDK has sent the read. A failure is dropped:
   * the search after the read reports it.
   */
  private speculate(
    collection: string,
    input: SearchInput,
  ): { from: string; out: Promise<SearchOutput | undefined> } | undefined {
    if (input.consistency === 'strong' || input.inputs) return undefined;
    const seen = this.seenMeta.get(collection);
    if (!seen || seen.name !== collection) return undefined;
    const out = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => search(this.deps, seen, input, {}))
      .catch((): undefined => undefined);
    return { from: JSON.stringify(seen), out };
  }

  /**
   * Queues a forced build on the index-builder function (big builds outlive an API request).
   * With `index` settings, first adds a candidate line the builder then builds beside the
   * serving one.
   */
  async buildIndex(collection: string, request: BuildRequest = {}, caller?: Caller): Promise<BuildOutput> {
    const meta = await this.deps.catalog.getCollection(collection);
    let candidate: LineView | undefined;
    if (request.index) {
      const settings = indexSettings(request.index);
      const { efSearch: _a, nprobe: _c, ...graph } = settings.params;
      const { efSearch: _b, nprobe: _d, ...servingGraph } = meta.index.params;
      if (
        sameSettings({ engine: settings.engine, params: graph }, { engine: meta.index.engine, params: servingGraph })
      ) {
        throw new ValidationError(
          'index: these settings build the same index as the serving line ' +
            '(efSearch and nprobe are search-time parameters: send `ef` / `nprobe` per search, or tune the version)',
          { field: 'index' },
        );
      }
      const line = request.candidate !== undefined ? parseLineName(request.candidate) : defaultLineName(settings);
      const createdAt = new Date((this.deps.now ?? Date.now)()).toISOString();
      const entry = { ...settings, createdAt, ...(caller ? { createdBy: caller.actor } : {}) };
      await this.deps.catalog.updateLines(collection, {
        op: 'add',
        generation: meta.generation,
        line,
        settings: entry,
        maxCandidates: this.deps.policy?.MAX_CANDIDATES ?? BUILD_POLICY.MAX_CANDIDATES,
      });
      candidate = lineView(line, false, entry, undefined, await this.deps.catalog.stableSeq(collection));
    } else if (request.candidate !== undefined) {
      throw new ValidationError('candidate: naming a candidate needs `index` settings to build it with', {
        field: 'candidate',
      });
    }
    const manifest = await currentManifest(this.deps.catalog, meta);
    await this.deps.wake(collection, { force: true });
    return {
      version: manifest?.version ?? 0,
      built: false,
      queued: true,
      shards: manifest?.shards.length ?? 0,
      watermark: manifest?.watermark ?? 0,
      ...(candidate ? { candidate } : {}),
    };
  }

  async listLines(
    collection: string,
  ): Promise<{ serving: LineView; candidates: LineView[]; promotions: LinePromotion[] }> {
    const { meta } = await this.resolve(collection);
    const stable = await this.deps.catalog.stableSeq(meta.name);
    const evaluated = await this.lineEvaluations(meta);
    const views: LineView[] = [];
    for (const spec of linesOf(meta)) {
      const head = await this.deps.catalog.latestManifest(meta.name, spec.line);
      const settings = spec.serving ? meta.index : meta.candidates![spec.line];
      views.push(
        lineView(
          spec.line,
          spec.serving,
          settings,
          head?.generation === meta.generation ? head : undefined,
          stable,
          evaluated.get(spec.line),
        ),
      );
    }
    const [serving, ...candidates] = views;
    return { serving, candidates, promotions: await this.deps.catalog.listPromotions(meta.name, 20) };
  }

  async getCandidate(collection: string, line: string): Promise<LineView> {
    const { meta } = await this.resolve(collection);
    const settings = meta.candidates?.[line];
    if (!settings)
      throw new NotFoundError(`candidate ${JSON.stringify(line)} of ${JSON.stringify(collection)} not found`, {
        field: 'candidate',
      });
    const head = await this.deps.catalog.latestManifest(meta.name, line);
    const stable = await this.deps.catalog.stableSeq(meta.name);
    return lineView(
      line,
      false,
      settings,
      head?.generation === meta.generation ? head : undefined,
      stable,
      (await this.lineEvaluations(meta)).get(line),
    );
  }

  async deleteCandidate(collection: string, line: string): Promise<void> {
    const meta = await this.deps.catalog.getCollection(collection);
    await this.deps.catalog.updateLines(collection, { op: 'remove', generation: meta.generation, line });
  }

  async promoteCandidate(
    collection: string,
    line: string,
    input: { force?: boolean; reason?: string },
    caller?: Caller,
  ): Promise<PromoteOutput> {
    const meta = await this.deps.catalog.getCollection(collection);
    if (!meta.candidates?.[line])
      throw new NotFoundError(`candidate ${JSON.stringify(line)} of ${JSON.stringify(collection)} not found`, {
        field: 'candidate',
      });
    const head = await this.deps.catalog.latestManifest(collection, line);
    if (!head || head.generation !== meta.generation) {
      throw new ConflictError(
        `candidate ${JSON.stringify(line)} has not been built yet; poll GET .../candidates/${line} until it has a head`,
        { field: 'candidate' },
      );
    }
    // The gate reads the line's newest evaluated version (a candidate's head moves with every build).
    const evaluation = (await this.lineEvaluations(meta)).get(line);
    const { forced } =
      meta.minRecall === undefined
        ? { forced: false }
        : qualityGate({
            subject: `candidate ${JSON.stringify(line)}`,
            field: 'candidate',
            collection,
            version: head.version,
            minRecall: meta.minRecall,
            evaluation,
            force: input.force === true,
            extra: { candidate: line },
          });
    const previous = servingLine(meta);
    const now = (this.deps.now ?? Date.now)();
    await this.deps.catalog.updateLines(collection, {
      op: 'promote',
      generation: meta.generation,
      line,
      expectedServing: previous,
      at: new Date(now).toISOString(),
      version: head.version,
      forced,
      ...(caller ? { by: caller.actor } : {}),
      ...(input.reason !== undefined ? { reason: input.reason } : {}),
    });
    // Both lines keep tracking writes; the builder brings the new serving line's head up to date.
    await this.deps.wake(collection);
    // What was read for the decision is what now serves: no second listing of every line.
    const serving = lineView(
      line,
      true,
      meta.candidates[line],
      head,
      await this.deps.catalog.stableSeq(collection),
      evaluation,
    );
    return { collection, serving, previous, forced, ...(input.reason !== undefined ? { reason: input.reason } : {}) };
  }

  /** The newest evaluation of each line (by version) among the collection's recent versions. */
  private async lineEvaluations(meta: CollectionMeta): Promise<Map<string, NonNullable<LineView['evaluation']>>> {
    const out = new Map<string, NonNullable<LineView['evaluation']>>();
    if (!this.deps.lifecycle) return out;
    const lines = new Map<number, string>();
    for (const m of await this.deps.catalog.listManifests(meta.name, 200))
      if (m.generation === meta.generation) lines.set(m.version, lineOf(m));
    const evals = (await this.deps.lifecycle.listEvaluations(meta.name)).filter(
      (e) => e.generation === meta.generation && lines.has(e.version),
    );
    evals.sort((a, b) => b.version - a.version);
    for (const e of evals) {
      const line = lines.get(e.version)!;
      if (!out.has(line)) {
        out.set(line, {
          version: e.version,
          recall: e.recall,
          k: e.k,
          ...(e.ef !== undefined ? { ef: e.ef } : {}),
          latencyMs: { p50: e.latencyMs.p50, p95: e.latencyMs.p95 },
        });
      }
    }
    return out;
  }

  async listVersions(collection: string): Promise<Array<Manifest & { evaluation?: Evaluation }>> {
    const { meta } = await this.resolve(collection);
    const manifests = (await this.deps.catalog.listManifests(meta.name, 100)).filter(
      (m) => m.generation === meta.generation,
    );
    if (!this.deps.lifecycle) return manifests;
    const evals = new Map<number, Evaluation>();
    for (const e of await this.deps.lifecycle.listEvaluations(meta.name))
      if (e.generation === meta.generation) evals.set(e.version, e);
    return manifests.map((m) => {
      const e = evals.get(m.version);
      return e ? { ...m, evaluation: e } : m;
    });
  }
}

/** Whether upserts would pass validation against `meta` (a hint's check before leasing early). */
function fits(meta: CollectionMeta, vectors: VectorInput[]): boolean {
  try {
    validateUpserts(meta, vectors);
    return true;
  } catch {
    return false;
  }
}

/** A cursor of `listVectors` back to its position (ValidationError on `cursor` when it is not one of ours). */
function listPosition(ck: string, cursor: string): RecordPosition {
  const raw = decodeCursor(ck, cursor);
  if (
    typeof raw === 'object' &&
    raw !== null &&
    'i' in raw &&
    's' in raw &&
    typeof raw.i === 'string' &&
    typeof raw.s === 'number' &&
    Number.isSafeInteger(raw.s) &&
    raw.s >= 0
  ) {
    return { seq: raw.s, id: raw.i };
  }
  throw new ValidationError(
    'cursor is not a nextCursor of this collection (it was altered, or the collection was re-created since)',
    { field: 'cursor' },
  );
}

/**
 * `stored` with `patch`'s top-level keys set, and removed where the patch has null (a nested object in the
 * patch replaces the stored value whole). Undefined when nothing is left. The result must still fit the
 * metadata limits (a patch may push a row over 64 keys or 40 KB).
 */
export function mergeMetadata(stored: Metadata | undefined, patch: MetadataPatch): Metadata | undefined {
  const merged: Metadata = { ...stored };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    // Defined, not assigned: a `__proto__` key is data here, as JSON.parse made it.
    else Object.defineProperty(merged, key, { value, enumerable: true, writable: true, configurable: true });
  }
  const checked = metadataSchema.safeParse(merged);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new ValidationError(`metadata: the patched metadata ${issue?.message ?? 'breaks the metadata limits'}`, {
      field: 'metadata',
    });
  }
  return Object.keys(merged).length ? merged : undefined;
}
