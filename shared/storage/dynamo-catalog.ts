/**
 * Catalog on the single-table DynamoDB Catalog (docs/architecture.md §4.1). Items:
 *
 *   pk=COL#<name>  sk=META              collection meta (top-level attributes; `index.line` names
 *                                       the serving index line, `candidates` the candidate lines,
 *                                       `linesRev` serialises changes to both, `lastPromotion`
 *                                       carries the newest switch of the serving line)
 *   pk=COL#<name>  sk=PROMO#<rev>       promotion history (`doc`), written after the switch and
 *                                       again from `lastPromotion` before the next line change
 *   pk=COL#<name>  sk=SEQ               seq counter + in-flight leases (see below)
 *   pk=COL#<name>  sk=IDX#<0000000042>  manifest + `version` (N), in one of three forms (see
 *                                       MANIFEST_ITEM): `doc` (S, JSON), `docz` (B, brotli JSON) or
 *                                       `docRef` ({key, sha256, bytes} of an S3 object); all lines
 *                                       share the version sequence, the doc's `line` says which one
 *   pk=GEN         sk=<name>            generation counter `gen` (N), bumped by every create;
 *                                       survives deletes, so a re-created collection gets a
 *                                       higher generation than any earlier one of that name
 *
 * listCollections queries the GEN partition (one item per name ever created, sorted by name)
 * and batch-gets the META items, skipping names whose META is gone. That reads only the
 * collection registry, never manifests or other catalog items, which a table Scan would.
 *
 * Seq leases. `next` is the last allocated seq. leaseSeqs is ONE UpdateItem that bumps `next`
 * and registers the lease, keyed by its token, in two map attributes:
 *   leases.<token> = first seq of the block   (computed server side: old next + 1)
 *   expiry.<token> = expiresAt (epoch ms)
 * `first` is only known after the atomic increment, so it cannot be written by the client in the
 * same request (a String Set entry "<first>:<last>:..." would need it up front); DynamoDB's SET
 * arithmetic evaluates `if_not_exists(next, 0) + 1` against the item before the update, which gives
 * exactly the block's first seq. Nested map paths need the maps to exist: the first lease on an
 * item creates them with one idempotent `if_not_exists` update, then retries.
 *
 * Every item read is validated with zod; a malformed one throws CorruptDataError.
 * No transactions (the embedded emulator lacks them): single-item conditional writes only.
 */
import { createHash, randomUUID } from 'node:crypto';
import { brotliCompressSync, brotliDecompressSync, constants as zlib } from 'node:zlib';
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type UpdateCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { ENGINE_NAMES, type EngineName } from '../engine/types.js';
import {
  ConfigError,
  ConflictError,
  CorruptDataError,
  LimitExceededError,
  NotFoundError,
  ValidationError,
} from '../errors.js';
import { logger } from '../log.js';
import { METRICS, type Metric } from '../types.js';
import {
  StorageUnavailableError,
  awsErrorName,
  batchGetFully,
  batchWriteFully,
  chunk,
  conditionalWrite,
  queryPages,
} from './clients.js';
import {
  GEN_PK,
  IDX_PREFIX,
  META_SK,
  PROMO_PREFIX,
  SEQ_SK,
  colPk,
  collectionKey,
  idxSk as versionSk,
  manifestDocKey,
  manifestDocPrefix,
  promoSk,
} from './keys.js';
import {
  MAIN_LINE,
  type Catalog,
  type ObjectStore,
  type CollectionMeta,
  type LineChange,
  type LinePromotion,
  type Manifest,
  type PendingWrite,
  type SeqLease,
  type SeqState,
  type WriteLog,
} from './types.js';

/** Expired leases removed per UpdateItem by dropExpiredLeases (keeps expressions small). */
const DROP_BATCH = 50;
/** Clock skew allowed between containers when a lease's expiry is judged (far below the 5 min lease). */
const LEASE_SKEW_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// Item schemas

const isEngine = (v: unknown): v is EngineName =>
  typeof v === 'string' && (ENGINE_NAMES as readonly string[]).includes(v);
const isMetric = (v: unknown): v is Metric => typeof v === 'string' && (METRICS as readonly string[]).includes(v);
const engineSchema = z.custom<EngineName>(isEngine, 'unknown engine');
const paramsSchema = z.record(z.string(), z.number());
const nonNegInt = z.number().int().nonnegative();

const metaItemSchema = z.object({
  pk: z.string(),
  sk: z.literal(META_SK),
  name: z.string().min(1),
  dimension: z.number().int().positive(),
  metric: z.custom<Metric>(isMetric, 'unknown metric'),
  index: z.object({ engine: engineSchema, params: paramsSchema, line: z.string().optional() }),
  candidates: z
    .record(
      z.string(),
      z.object({ engine: engineSchema, params: paramsSchema, createdAt: z.string(), createdBy: z.string().optional() }),
    )
    .optional(),
  linesRev: nonNegInt.optional(),
  lastPromotion: z.lazy(() => promotionSchema).optional(),
  createdAt: z.string(),
  generation: z.number().int().positive(),
  minRecall: z.number().min(0).max(1).optional(),
  model: z.object({ name: z.string(), version: z.number().int().positive() }).optional(),
  embedding: z
    .object({
      model: z.string(),
      version: z.number().int().positive(),
      alias: z.string().optional(),
      input: z.string(),
      output: z.string(),
      inputLength: z.number().int().positive(),
      text: z.object({ mask: z.string().optional() }).optional(),
    })
    .optional(),
  heads: z.record(z.string(), nonNegInt).optional(),
});

const promotionSchema = z.object({
  rev: z.number().int().positive(),
  generation: z.number().int().positive(),
  from: z.string(),
  to: z.string(),
  version: nonNegInt,
  at: z.string(),
  by: z.string().optional(),
  reason: z.string().optional(),
  forced: z.boolean(),
});

const genItemSchema = z.object({ pk: z.literal(GEN_PK), sk: z.string(), gen: z.number().int().positive() });

const seqItemSchema = z.object({
  next: nonNegInt.optional(),
  leases: z.record(z.string(), nonNegInt).optional(),
  expiry: z.record(z.string(), z.number()).optional(),
  /** Write leases: the ids their seqs write (docs/architecture.md §6.1). */
  ids: z.record(z.string(), z.array(z.string())).optional(),
});

/** The write leases of a counter item (those that name their ids), lowest seq first. */
function pendingWrites(seq: z.output<typeof seqItemSchema> | undefined): PendingWrite[] {
  if (!seq?.ids) return [];
  const out: PendingWrite[] = [];
  for (const [token, ids] of Object.entries(seq.ids)) {
    const first = seq.leases?.[token];
    if (first === undefined) continue;
    out.push({ token, first, ids, expiresAt: seq.expiry?.[token] ?? Infinity });
  }
  return out.sort((a, b) => a.first - b.first);
}

const shardRefSchema = z.object({
  id: z.string(),
  key: z.string(),
  bytes: nonNegInt,
  count: nonNegInt,
  live: nonNegInt,
  engine: engineSchema,
  sha256: z.string(),
  minSeq: nonNegInt,
  maxSeq: nonNegInt,
  deletes: z.object({ key: z.string(), count: nonNegInt, sha256: z.string() }).optional(),
  partition: nonNegInt.optional(),
});

const partitionTableSchema = z.object({
  count: z.number().int().positive(),
  dim: z.number().int().positive(),
  key: z.string(),
  sha256: z.string(),
  fairShare: z.number().int().positive(),
  layoutRows: z.number().int().nonnegative().optional(),
});

const manifestSchema = z.object({
  collection: z.string(),
  generation: z.number().int().positive(),
  version: nonNegInt,
  line: z.string().optional(),
  parent: nonNegInt,
  watermark: nonNegInt,
  engine: engineSchema,
  params: paramsSchema,
  shards: z.array(shardRefSchema),
  partitions: partitionTableSchema.optional(),
  createdAt: z.string(),
  codeVersion: z.string(),
  model: z.object({ name: z.string(), version: z.number().int().positive() }).optional(),
  stats: z.object({
    rows: nonNegInt,
    liveRows: nonNegInt,
    bytes: nonNegInt,
    buildMs: z.number().nonnegative(),
    kind: z.enum(['initial', 'delta', 'compaction', 'deletes', 'candidate']),
  }),
});

const docRefSchema = z.object({ key: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: nonNegInt });

/** Exactly one of the three forms (MANIFEST_ITEM); items written before the other two have `doc`. */
const manifestItemSchema = z
  .object({
    pk: z.string(),
    sk: z.string(),
    version: nonNegInt,
    doc: z.string().optional(),
    docz: z.instanceof(Uint8Array).optional(),
    docRef: docRefSchema.optional(),
  })
  .refine((i) => [i.doc, i.docz, i.docRef].filter((f) => f !== undefined).length === 1, {
    message: 'needs exactly one of doc, docz, docRef',
  });

type DocRef = z.output<typeof docRefSchema>;

function parseItem<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CorruptDataError(
      `malformed ${what}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
      {
        cause: parsed.error,
      },
    );
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------

export interface DynamoCatalogOptions {
  ddb: DynamoDBDocumentClient;
  table: string;
  /**
   * Where manifests too large for their item go (MANIFEST_ITEM). Without it such a manifest can be neither
   * committed nor read (ConfigError); catalogs that only ever see small collections may omit it.
   */
  objects?: ObjectStore;
  /** Clock for lease expiry and createdAt (epoch ms); tests inject one. */
  now?: () => number;
}

/**
 * Manifests kept per process by (collection, generation, version) — default 32. They never change once
 * committed, so a hit is always right; a search on an unchanged collection then reads only its meta item
 * (docs/architecture.md §7.6). Each entry is its shard list (~150 B per shard): more entries serve more
 * collections and pinned versions from memory at that cost.
 */
const MANIFEST_CACHE_ENTRIES = 32;

/**
 * …and at most this many shard refs across the cached manifests — default 65,536 (≈ 30 MB of parsed refs):
 * at 100M vectors one manifest lists up to 16k shards, and 32 of those would hold ~0.5 GB of a 3 GB api
 * function. The newest manifest is always kept, however large; a smaller budget means more manifest reads
 * (one GetItem, or a GET of a spilled one) when several large collections are searched in turn.
 */
const MANIFEST_CACHE_SHARDS = 65_536;

/**
 * How a manifest is stored in its item (docs/architecture.md §4.1), measured on realistic shard lists (hex
 * hashes are most of the bytes: ≈ 310 B of JSON per shard, ≈ 410 B with a deletion bitmap):
 * - `INLINE_BYTES` (default 16 KiB, ≈ 50 shards): JSON up to this size is stored as it is (`doc`), readable
 *   in the console; compressing it would save a few capacity units. Higher keeps more items readable at
 *   more read/write units each.
 * - Above it, brotli (`docz`) at `BROTLI_QUALITY` 4: 4,096 shards (1.2 MiB of JSON) → 257 KiB in ≈ 50 ms.
 *   gzip -9 gives 294 KiB, brotli 9 269 KiB in ≈ 0.5 s, brotli 11 216 KiB in ≈ 7 s — too slow for a
 *   commit; decompression is a few ms for all of them. A higher quality buys ≤ 15 % at 10–100× the CPU.
 * - `BUDGET_BYTES` (default 350 KiB): a compressed doc above it is written to S3 (`manifestDocKey`, the
 *   same brotli bytes) and the item keeps `docRef` {key, sha256, bytes}. DynamoDB refuses items over
 *   400 KB, key and attribute names included; the margin keeps those and any attribute added later clear
 *   of it. Higher keeps more manifests in one read at the risk of meeting the limit. 4,096 shards with a
 *   quarter of them carrying bitmaps already compress to ≈ 310 KiB; 16,384 shards to 1–1.5 MiB.
 * - `MAX_JSON_BYTES` (default 64 MiB, ≈ 150,000 shards): the largest manifest committed or decompressed,
 *   so a damaged or hostile stream cannot exhaust memory. Well above 4,096 partitions × 5 shards.
 */
export const MANIFEST_ITEM = {
  INLINE_BYTES: 16 * 1024,
  BROTLI_QUALITY: 4,
  BUDGET_BYTES: 350 * 1024,
  MAX_JSON_BYTES: 64 * 2 ** 20,
};

/**
 * Spilled manifests kept per process by their sha256 — default 4. Listing and line-head lookups parse every
 * manifest item they pass; without this each spilled one would cost an S3 GET every time. Entries are the
 * largest manifests (≥ 1 MiB of JSON each, several MiB parsed), so few: enough for the line heads of a busy
 * collection. The objects are immutable, so a hit is always right.
 */
const SPILLED_CACHE_ENTRIES = 4;

export class DynamoCatalog implements Catalog {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly now: () => number;
  private readonly manifests = new Map<string, Manifest>();
  /** Shard refs held by `manifests` (bounded by MANIFEST_CACHE_SHARDS). */
  private manifestShards = 0;
  private readonly objects: ObjectStore | undefined;
  private readonly spilled = new Map<string, Manifest>();

  constructor(opts: DynamoCatalogOptions) {
    this.ddb = opts.ddb;
    this.table = opts.table;
    this.objects = opts.objects;
    this.now = opts.now ?? Date.now;
  }

  // --- collections -----------------------------------------------------------------------------

  async createCollection(input: Omit<CollectionMeta, 'generation' | 'createdAt'>): Promise<CollectionMeta> {
    // Bump first: a failed create wastes a generation number, which only has to be monotonic.
    const bumped = await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: GEN_PK, sk: input.name },
        UpdateExpression: 'ADD gen :one',
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const generation = parseItem(
      z.object({ gen: z.number().int().positive() }),
      bumped.Attributes,
      'generation counter',
    ).gen;
    const meta: CollectionMeta = {
      name: input.name,
      dimension: input.dimension,
      metric: input.metric,
      index: { engine: input.index.engine, params: { ...input.index.params } },
      createdAt: new Date(this.now()).toISOString(),
      generation,
    };
    if (input.minRecall !== undefined) meta.minRecall = input.minRecall;
    if (input.model !== undefined) meta.model = { name: input.model.name, version: input.model.version };
    if (input.embedding !== undefined) meta.embedding = { ...input.embedding };
    const created = await conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: colPk(input.name), sk: META_SK, ...meta },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      // Our generation is unique to this call: an item carrying it is this create, resent.
      async () => {
        const item = await this.getItem(colPk(input.name), META_SK);
        return !item ? 'again' : item.generation === generation ? 'ours' : 'theirs';
      },
    );
    if (!created) throw new ConflictError(`collection ${JSON.stringify(input.name)} already exists`, { field: 'name' });
    return meta;
  }

  async getCollection(name: string): Promise<CollectionMeta> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: colPk(name), sk: META_SK }, ConsistentRead: true }),
    );
    if (!res.Item) throw new NotFoundError(`collection ${JSON.stringify(name)} not found`, { field: 'name' });
    return toMeta(res.Item, name);
  }

  async listCollections(): Promise<CollectionMeta[]> {
    const names: string[] = [];
    for await (const page of queryPages(this.ddb, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': GEN_PK },
    })) {
      for (const raw of page) names.push(parseItem(genItemSchema, raw, 'generation counter').sk);
    }

    const metas = new Map<string, CollectionMeta>();
    for (const batch of chunk(names, 100)) {
      const keys = batch.map((n) => ({ pk: colPk(n), sk: META_SK }));
      for (const raw of await batchGetFully(this.ddb, this.table, keys)) {
        const meta = toMeta(raw);
        metas.set(meta.name, meta);
      }
    }
    // Names come sorted from the GEN partition; BatchGetItem returns items in any order.
    return names.flatMap((n) => metas.get(n) ?? []);
  }

  async deleteCollection(name: string): Promise<void> {
    const meta = await this.getCollection(name); // NotFoundError, and validates the item
    const pk = colPk(name);
    // The whole COL#<name> partition is the collection's, whichever store wrote an item there
    // (manifests, promotions, evaluations, import jobs): all of it goes. META last: an
    // interrupted delete leaves the collection visible, so it can be retried.
    const keys: Array<{ pk: string; sk: string }> = [];
    for await (const page of queryPages(this.ddb, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': pk },
      ProjectionExpression: 'pk, sk',
      ConsistentRead: true,
    })) {
      for (const raw of page) {
        const key = parseItem(z.object({ pk: z.string(), sk: z.string() }), raw, 'collection item key');
        if (key.sk !== META_SK && key.sk !== SEQ_SK) keys.push(key);
      }
    }
    for (const batch of chunk(keys, 25)) {
      await batchWriteFully(
        this.ddb,
        this.table,
        batch.map((Key) => ({ DeleteRequest: { Key } })),
      );
    }
    // After the items that name them (an interrupted delete leaves no item pointing at a missing object), and
    // by listing, so a retry finds what an earlier attempt left. Before META, so a retry happens at all.
    await this.deleteSpilledManifests(collectionKey(meta));
    await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { pk, sk: SEQ_SK } }));
    await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { pk, sk: META_SK } }));
  }

  async updateCollectionSettings(
    collection: string,
    generation: number,
    settings: { minRecall?: number | null; efSearch?: number; nprobe?: number; candidate?: string },
  ): Promise<void> {
    const sets: string[] = [];
    const removes: string[] = [];
    const values: Record<string, unknown> = { ':g': generation };
    if (settings.minRecall === null) removes.push('minRecall');
    else if (settings.minRecall !== undefined) {
      sets.push('minRecall = :r');
      values[':r'] = settings.minRecall;
    }
    const names: Record<string, string> = {};
    // A candidate line's defaults live with the candidate; the serving line's in `index`.
    const params = settings.candidate !== undefined ? 'candidates.#line.params' : '#index.params';
    const tuned: Array<[string, string, number | undefined]> = [
      ['efSearch', ':ef', settings.efSearch],
      ['nprobe', ':np', settings.nprobe],
    ];
    for (const [name, placeholder, value] of tuned) {
      if (value === undefined) continue;
      sets.push(`${params}.${name} = ${placeholder}`);
      values[placeholder] = value;
      if (settings.candidate !== undefined) names['#line'] = settings.candidate;
      else names['#index'] = 'index';
    }
    if (!sets.length && !removes.length) return;
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: colPk(collection), sk: META_SK },
          UpdateExpression: [
            sets.length ? `SET ${sets.join(', ')}` : '',
            removes.length ? `REMOVE ${removes.join(', ')}` : '',
          ]
            .join(' ')
            .trim(),
          ConditionExpression: 'generation = :g',
          ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      if (awsErrorName(err) === 'ConditionalCheckFailedException') {
        throw new NotFoundError(`collection ${JSON.stringify(collection)} not found`, { field: 'name' });
      }
      throw err;
    }
  }

  // --- seq leases --------------------------------------------------------------------------------

  async leaseSeqs(collection: string, n: number, leaseMs: number, ids?: string[]): Promise<SeqLease> {
    if (!Number.isSafeInteger(n) || n < 1)
      throw new ValidationError('lease size must be a positive integer', { field: 'n' });
    if (!Number.isFinite(leaseMs) || leaseMs <= 0)
      throw new ValidationError('lease duration must be positive', { field: 'leaseMs' });
    if (ids && ids.length !== n) throw new ValidationError('a write lease names one id per seq', { field: 'ids' });
    const token = randomUUID();
    const expiresAt = this.now() + leaseMs;
    const lease = (): UpdateCommand =>
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: colPk(collection), sk: SEQ_SK },
        // Both right-hand sides read `next` as it was before this update.
        UpdateExpression:
          'SET #next = if_not_exists(#next, :zero) + :n, ' +
          'leases.#t = if_not_exists(#next, :zero) + :one, expiry.#t = :exp' +
          (ids ? ', ids.#t = :ids' : ''),
        ConditionExpression:
          'attribute_exists(leases) AND attribute_exists(expiry)' + (ids ? ' AND attribute_exists(ids)' : ''),
        ExpressionAttributeNames: { '#next': 'next', '#t': token },
        ExpressionAttributeValues: {
          ':zero': 0,
          ':n': n,
          ':one': 1,
          ':exp': expiresAt,
          ...(ids ? { ':ids': ids } : {}),
        },
        ReturnValues: 'UPDATED_NEW',
      });
    let res: UpdateCommandOutput | undefined;
    for (let attempt = 0; !res; attempt++) {
      try {
        res = await this.ddb.send(lease());
      } catch (err) {
        // The counter item is full of unsettled write leases (400 KB): lease plainly, the write logs itself.
        if (ids && awsErrorName(err) === 'ValidationException' && /size/i.test((err as Error).message)) {
          return this.leaseSeqs(collection, n, leaseMs);
        }
        // Retries bounded: only a concurrent deleteCollection can remove the maps again.
        if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
        if (attempt >= 2) {
          throw new StorageUnavailableError(`seq counter of ${collection} kept changing; retry the write`, {
            cause: err,
            details: { collection },
          });
        }
        // First lease on this counter item: create the maps (idempotent; racing initialisers are harmless).
        await this.ddb.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: colPk(collection), sk: SEQ_SK },
            UpdateExpression:
              'SET leases = if_not_exists(leases, :empty), expiry = if_not_exists(expiry, :empty), ' +
              'ids = if_not_exists(ids, :empty)',
            ExpressionAttributeValues: { ':empty': {} },
          }),
        );
      }
    }
    const attrs = parseItem(
      z.object({ next: nonNegInt, leases: z.record(z.string(), nonNegInt) }),
      res.Attributes,
      'seq counter update',
    );
    const first = attrs.leases[token];
    const last = attrs.next;
    if (first === undefined || last - first + 1 !== n) {
      throw new CorruptDataError(`seq counter of ${collection}: lease [${first}, ${last}] does not span ${n} seqs`);
    }
    return { first, last, token, expiresAt, ...(ids ? { ids } : {}) };
  }

  async settleWrites(collection: string, log: WriteLog, only?: SeqLease): Promise<number> {
    let leases: PendingWrite[];
    if (only) {
      if (!only.ids) return 0;
      leases = [{ ...only, ids: only.ids }];
    } else {
      const pending = pendingWrites(await this.readSeqItem(collection));
      if (!pending.length) return 0;
      const now = this.now();
      const ids = [...new Set(pending.flatMap((p) => p.ids))];
      const seqs = await log.seqs(ids);
      // Durable: every id has a record at or above its seq (a later write of the id counts: it landed after).
      // Expired: its writer no longer acknowledges it (it acknowledges only 2 × LEASE_SKEW_MS before the
      // expiry), so whatever it wrote is in the records already or never will be acknowledged.
      leases = pending.filter((p) => p.expiresAt <= now || p.ids.every((id, i) => (seqs.get(id) ?? -1) >= p.first + i));
    }
    let settled = 0;
    for (const p of leases) {
      // The entries first: a reader that no longer finds the lease finds them.
      await log.append(p.ids.map((id, i) => ({ seq: p.first + i, id })));
      try {
        await this.ddb.send(this.leaseRemoval(collection, p.token, true));
        settled++;
      } catch (err) {
        // Settled meanwhile by someone else (the writer, another builder): done either way.
        if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
      }
    }
    return settled;
  }

  /** Removes a lease from the counter item if it is still there; a write lease's ids go with it. */
  private leaseRemoval(collection: string, token: string, writeLease: boolean): UpdateCommand {
    return new UpdateCommand({
      TableName: this.table,
      Key: { pk: colPk(collection), sk: SEQ_SK },
      // Only a write lease may name `ids.#t`: a counter item without write leases may lack the map.
      UpdateExpression: writeLease ? 'REMOVE leases.#t, expiry.#t, ids.#t' : 'REMOVE leases.#t, expiry.#t',
      ConditionExpression: 'attribute_exists(leases.#t)',
      ExpressionAttributeNames: { '#t': token },
    });
  }

  async releaseSeqs(collection: string, lease: SeqLease): Promise<boolean> {
    return conditionalWrite(
      () => this.ddb.send(this.leaseRemoval(collection, lease.token, lease.ids !== undefined)),
      // A lease is gone because an earlier send of this release ran (its response lost), because it
      // expired and dropExpiredLeases removed it, or because it was released before this call. Only
      // a resent release can be the first; before the expiry (less a margin for clock skew between
      // containers) nobody drops a lease, so then the missing lease is this release's own effect.
      async (resent) => {
        const seq = await this.readSeqItem(collection);
        if (seq?.leases?.[lease.token] !== undefined) return 'again';
        return resent && this.now() < lease.expiresAt - LEASE_SKEW_MS ? 'ours' : 'theirs';
      },
    );
  }

  async stableSeq(collection: string): Promise<number> {
    return (await this.seqState(collection)).stable;
  }

  async seqState(collection: string): Promise<SeqState> {
    const seq = await this.readSeqItem(collection);
    if (!seq) return { stable: 0, allocated: 0 };
    const now = this.now();
    let lowest = Infinity;
    let lowestPlain = Infinity;
    for (const [token, first] of Object.entries(seq.leases ?? {})) {
      // A write lease blocks until settled, expired or not: its acknowledged records may have no log entries yet.
      if (seq.ids?.[token]) {
        lowest = Math.min(lowest, first);
        continue;
      }
      const expiresAt = seq.expiry?.[token];
      // A lease without an expiry is treated as live: never report seqs that may not be durable.
      if (expiresAt !== undefined && expiresAt <= now) continue;
      lowest = Math.min(lowest, first);
      lowestPlain = Math.min(lowestPlain, first);
    }
    const next = seq.next ?? 0;
    const below = (first: number) => (first === Infinity ? next : Math.min(next, first - 1));
    const pending = pendingWrites(seq);
    return {
      stable: below(lowest),
      allocated: next,
      ...(pending.length ? { pending, stableBesideWrites: below(lowestPlain) } : {}),
    };
  }

  /**
   * Removes leases whose expiry has passed (best effort; a concurrent drop or release of the same
   * lease is harmless). Returns how many were removed.
   */
  async dropExpiredLeases(collection: string): Promise<number> {
    const seq = await this.readSeqItem(collection);
    if (!seq?.expiry) return 0;
    const now = this.now();
    // Write leases are settled (their log entries written), never dropped: see settleWrites.
    const expired = Object.entries(seq.expiry).filter(([token, at]) => at <= now && !seq.ids?.[token]);
    let dropped = 0;
    for (const batch of chunk(expired, DROP_BATCH)) {
      const names: Record<string, string> = {};
      const values: Record<string, number> = {};
      const removes: string[] = [];
      const conds: string[] = [];
      batch.forEach(([token, at], i) => {
        names[`#t${i}`] = token;
        values[`:x${i}`] = at;
        removes.push(`leases.#t${i}`, `expiry.#t${i}`);
        conds.push(`expiry.#t${i} = :x${i}`);
      });
      try {
        await this.ddb.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: colPk(collection), sk: SEQ_SK },
            UpdateExpression: `REMOVE ${removes.join(', ')}`,
            ConditionExpression: conds.join(' AND '),
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        );
        dropped += batch.length;
      } catch (err) {
        // Some lease of the batch was released meanwhile: the next call picks up the rest.
        if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
      }
    }
    return dropped;
  }

  /** One item, read strongly (undefined when absent). */
  private async getItem(pk: string, sk: string): Promise<Record<string, unknown> | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: true }));
    return res.Item;
  }

  private async readSeqItem(collection: string): Promise<z.output<typeof seqItemSchema> | undefined> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: colPk(collection), sk: SEQ_SK }, ConsistentRead: true }),
    );
    return res.Item ? parseItem(seqItemSchema, res.Item, `seq counter of ${collection}`) : undefined;
  }

  /**
   * Spilled manifest objects of a deleted collection generation. Best effort: they are invisible once the
   * items are gone (the key carries the generation), and a collection must not become undeletable because
   * its garbage could not be removed.
   */
  private async deleteSpilledManifests(ck: string): Promise<void> {
    if (!this.objects) return;
    try {
      for await (const page of this.objects.list(manifestDocPrefix(ck))) {
        await this.objects.delete(page.map((o) => o.key));
      }
    } catch (err) {
      logger.warn('deleting spilled manifests failed', { collectionKey: ck, error: err as Error });
    }
  }

  // --- manifests ---------------------------------------------------------------------------------

  async commitManifest(manifest: Manifest): Promise<boolean> {
    const checked = manifestSchema.safeParse(manifest);
    if (!checked.success) {
      throw new ValidationError(`invalid manifest: ${checked.error.issues[0]?.message ?? ''}`, { field: 'manifest' });
    }
    const pk = colPk(manifest.collection);
    const sk = idxSk(manifest.version);
    const form = await this.manifestForm(manifest);
    const committed = await conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk, sk, version: manifest.version, ...form },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      // The same bytes under the version's key are this commit, resent (a racing builder's manifest
      // differs at least in createdAt and build stats): treating it as a lost race would disown it.
      // A spilled doc's object is content-addressed, so the same sha256 is the same bytes.
      async () => {
        const item = await this.getItem(pk, sk);
        if (!item) return 'again';
        return sameForm(item, form) ? 'ours' : 'theirs';
      },
    );
    if (!committed && form.docRef) {
      // Lost the race: no item names this object (the winner's differs, so does its key). Best effort.
      const key = form.docRef.key;
      await this.objects?.delete([key]).catch((err: unknown) => {
        logger.warn('deleting a losing manifest object failed', { key, error: err as Error });
      });
    }
    return committed;
  }

  /**
   * The item attributes that hold `manifest` (MANIFEST_ITEM): its JSON, brotli JSON, or a reference to that
   * brotli JSON in S3 — written here, before the item, so a committed item never names a missing object.
   */
  private async manifestForm(manifest: Manifest): Promise<{ doc?: string; docz?: Uint8Array; docRef?: DocRef }> {
    const doc = JSON.stringify(manifest);
    const json = Buffer.from(doc, 'utf8');
    if (json.byteLength <= MANIFEST_ITEM.INLINE_BYTES) return { doc };
    if (json.byteLength > MANIFEST_ITEM.MAX_JSON_BYTES) {
      throw new LimitExceededError(
        `manifest ${manifest.version} of ${JSON.stringify(manifest.collection)} is ${json.byteLength} bytes ` +
          `of JSON, over the ${MANIFEST_ITEM.MAX_JSON_BYTES} a manifest may have`,
        { field: 'manifest', details: { shards: manifest.shards.length, bytes: json.byteLength } },
      );
    }
    const docz = brotliCompressSync(json, {
      params: {
        [zlib.BROTLI_PARAM_QUALITY]: MANIFEST_ITEM.BROTLI_QUALITY,
        [zlib.BROTLI_PARAM_SIZE_HINT]: json.byteLength,
      },
    });
    if (docz.byteLength <= MANIFEST_ITEM.BUDGET_BYTES) return { docz };
    const objects = this.requireObjects(`commit manifest ${manifest.version} of ${manifest.collection}`);
    const sha256 = createHash('sha256').update(docz).digest('hex');
    const key = manifestDocKey(keyOf(manifest), manifest.version, sha256.slice(0, 32));
    await objects.putImmutable(key, docz);
    return { docRef: { key, sha256, bytes: docz.byteLength } };
  }

  private requireObjects(what: string): ObjectStore {
    if (!this.objects) {
      throw new ConfigError(
        `cannot ${what}: the manifest is too large for its catalog item and this catalog has no object store`,
        { field: 'objects' },
      );
    }
    return this.objects;
  }

  /** The manifest an item holds, whichever its form (MANIFEST_ITEM). */
  private async toManifest(raw: Record<string, unknown>, collection: string): Promise<Manifest> {
    const item = parseItem(manifestItemSchema, raw, 'manifest item');
    const where = `manifest item ${item.sk} of ${collection}`;
    let manifest: Manifest;
    if (item.docRef) {
      const ref = item.docRef;
      const hit = this.spilled.get(ref.sha256);
      if (hit) {
        this.spilled.delete(ref.sha256);
        this.spilled.set(ref.sha256, hit);
        manifest = hit;
      } else {
        manifest = parseManifest(inflate(await this.fetchSpilled(ref, where), where), where);
        this.spilled.set(ref.sha256, manifest);
        if (this.spilled.size > SPILLED_CACHE_ENTRIES) this.spilled.delete(this.spilled.keys().next().value!);
      }
      // The object must be the one this version's key names: an item cannot borrow another collection's.
      if (ref.key !== manifestDocKey(keyOf(manifest), manifest.version, ref.sha256.slice(0, 32))) {
        throw new CorruptDataError(`${where} names object ${JSON.stringify(ref.key)}, not its own`);
      }
    } else {
      manifest = parseManifest(item.docz ? inflate(item.docz, where) : item.doc!, where);
    }
    if (
      manifest.collection !== collection ||
      manifest.version !== item.version ||
      item.sk !== idxSk(manifest.version)
    ) {
      throw new CorruptDataError(`${where} does not match its key`);
    }
    return manifest;
  }

  /** A spilled doc's bytes, checked against the item's sha256 and size. */
  private async fetchSpilled(ref: DocRef, where: string): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = await this.requireObjects(`read ${where}`).get(ref.key);
    } catch (err) {
      // The object is written before the item: a missing one is damage, not an absent version.
      if (err instanceof NotFoundError)
        throw new CorruptDataError(`${where}: its object ${JSON.stringify(ref.key)} is missing`, { cause: err });
      throw err;
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 !== ref.sha256 || bytes.byteLength !== ref.bytes) {
      throw new CorruptDataError(`${where}: object ${JSON.stringify(ref.key)} does not match its sha256`, {
        details: { key: ref.key, expected: ref.sha256, actual: sha256, bytes: bytes.byteLength },
      });
    }
    return bytes;
  }

  async latestManifest(collection: string, line?: string, pageSize = 8): Promise<Manifest | undefined> {
    if (line === undefined) {
      const [latest] = await this.queryManifests(collection, 1);
      return latest;
    }
    // Lines interleave in one version sequence and every builder run advances each line, so a
    // line's head is normally within the newest few items: read small pages, newest first.
    for await (const m of this.manifestsNewestFirst(collection, pageSize)) if ((m.line ?? MAIN_LINE) === line) return m;
    return undefined;
  }

  async updateLines(collection: string, change: LineChange): Promise<CollectionMeta> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: colPk(collection), sk: META_SK }, ConsistentRead: true }),
    );
    if (!res.Item) throw new NotFoundError(`collection ${JSON.stringify(collection)} not found`, { field: 'name' });
    const item = parseItem(metaItemSchema, res.Item, 'collection meta item');
    const meta = toMeta(res.Item, collection);
    if (meta.generation !== change.generation)
      throw new NotFoundError(`collection ${JSON.stringify(collection)} not found`, { field: 'name' });
    const serving = meta.index.line ?? MAIN_LINE;
    const candidates = { ...(meta.candidates ?? {}) };
    let index: CollectionMeta['index'] = meta.index;
    if (change.op === 'add') {
      if (change.line === serving || candidates[change.line]) {
        throw new ConflictError(
          `index line ${JSON.stringify(change.line)} already exists in ${JSON.stringify(collection)}`,
          { field: 'candidate' },
        );
      }
      if (Object.keys(candidates).length >= change.maxCandidates) {
        throw new LimitExceededError(
          `${JSON.stringify(collection)} already has ${change.maxCandidates} candidate lines; ` +
            'promote or delete one first',
          {
            field: 'candidate',
            details: { candidates: Object.keys(candidates), limit: change.maxCandidates },
          },
        );
      }
      candidates[change.line] = change.settings;
    } else if (change.op === 'remove') {
      if (!candidates[change.line])
        throw new NotFoundError(`candidate ${JSON.stringify(change.line)} of ${JSON.stringify(collection)} not found`, {
          field: 'candidate',
        });
      delete candidates[change.line];
    } else {
      const next = candidates[change.line];
      if (!next)
        throw new NotFoundError(`candidate ${JSON.stringify(change.line)} of ${JSON.stringify(collection)} not found`, {
          field: 'candidate',
        });
      if (serving !== change.expectedServing) {
        throw new ConflictError(
          `the serving line of ${JSON.stringify(collection)} changed to ${JSON.stringify(serving)} meanwhile`,
          { field: 'candidate' },
        );
      }
      delete candidates[change.line];
      candidates[serving] = {
        engine: meta.index.engine,
        params: { ...meta.index.params },
        createdAt: change.at,
        ...(change.by ? { createdBy: change.by } : {}),
      };
      index = { engine: next.engine, params: { ...next.params }, line: change.line };
    }
    const rev = item.linesRev ?? 0;
    // The previous promotion's history item first (it may not have been written if its request
    // died right after the switch): the history never loses a promotion that happened.
    if (item.lastPromotion) await this.putPromotion(collection, item.lastPromotion);
    const promotion: LinePromotion | undefined =
      change.op === 'promote'
        ? {
            rev: rev + 1,
            generation: change.generation,
            from: serving,
            to: change.line,
            version: change.version,
            at: change.at,
            forced: change.forced,
            ...(change.by !== undefined ? { by: change.by } : {}),
            ...(change.reason !== undefined ? { reason: change.reason } : {}),
          }
        : undefined;
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: colPk(collection), sk: META_SK },
          UpdateExpression:
            'SET #index = :index, candidates = :candidates, linesRev = :next' +
            (promotion ? ', lastPromotion = :promotion' : ''),
          // linesRev serialises line changes: a concurrent promote/add/remove makes this one fail cleanly.
          ConditionExpression:
            'generation = :g AND ' +
            (item.linesRev === undefined ? 'attribute_not_exists(linesRev)' : 'linesRev = :rev'),
          ExpressionAttributeNames: { '#index': 'index' },
          ExpressionAttributeValues: {
            ':index': index,
            ':candidates': candidates,
            ':next': rev + 1,
            ':g': change.generation,
            ...(item.linesRev === undefined ? {} : { ':rev': rev }),
            ...(promotion ? { ':promotion': promotion } : {}),
          },
        }),
      );
    } catch (err) {
      if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
      // linesRev is ours (rev + 1) with our lines: this update ran and the SDK's resend met it.
      const now = await this.getItem(colPk(collection), META_SK);
      const ours =
        now?.linesRev === rev + 1 &&
        sameValue(now.index, index) &&
        sameValue(now.candidates, candidates) &&
        sameValue(now.lastPromotion, promotion ?? item.lastPromotion);
      if (!ours) {
        throw new ConflictError(`the index lines of ${JSON.stringify(collection)} changed concurrently; retry`, {
          field: 'candidate',
        });
      }
    }
    // Best effort here; the next line change (or a listing) writes it from `lastPromotion` if this fails.
    if (promotion)
      await this.putPromotion(collection, promotion).catch((err: unknown) =>
        logger.warn('recording promotion history failed', { collection, error: err as Error }),
      );
    return { ...meta, index, candidates };
  }

  async listPromotions(collection: string, limit = 50): Promise<LinePromotion[]> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: colPk(collection), sk: META_SK }, ConsistentRead: true }),
    );
    if (!res.Item) throw new NotFoundError(`collection ${JSON.stringify(collection)} not found`, { field: 'name' });
    const item = parseItem(metaItemSchema, res.Item, 'collection meta item');
    const out: LinePromotion[] = [];
    for await (const page of queryPages(this.ddb, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': colPk(collection), ':p': PROMO_PREFIX },
      ScanIndexForward: false,
      ConsistentRead: true,
    })) {
      for (const raw of page) {
        const p = parseItem(promotionSchema, (raw as { doc?: unknown }).doc, 'promotion history item');
        // Items of an earlier generation (a deleted and re-created collection) are not this collection's.
        if (p.generation === item.generation) out.push(p);
      }
      if (out.length >= limit) break;
    }
    const last = item.lastPromotion;
    if (last && last.generation === item.generation && out[0]?.rev !== last.rev) out.unshift(last);
    return out.slice(0, limit);
  }

  private async putPromotion(collection: string, p: LinePromotion): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: colPk(collection), sk: promoSk(p.rev), doc: p },
      }),
    );
  }

  async setHead(collection: string, generation: number, line: string, version: number): Promise<boolean> {
    const move = (): UpdateCommand =>
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: colPk(collection), sk: META_SK },
        UpdateExpression: 'SET heads.#l = :v',
        ConditionExpression:
          'generation = :g AND attribute_exists(heads) AND (attribute_not_exists(heads.#l) OR heads.#l < :v)',
        ExpressionAttributeNames: { '#l': line },
        ExpressionAttributeValues: { ':g': generation, ':v': version },
      });
    for (let attempt = 0; ; attempt++) {
      try {
        await this.ddb.send(move());
        return true;
      } catch (err) {
        if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
      }
      // Failed: the map may be missing (first head of this collection) — create it once, then retry.
      if (attempt > 0) return false;
      try {
        await this.ddb.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: colPk(collection), sk: META_SK },
            UpdateExpression: 'SET heads = if_not_exists(heads, :empty)',
            ConditionExpression: 'generation = :g',
            ExpressionAttributeValues: { ':empty': {}, ':g': generation },
          }),
        );
      } catch (err) {
        if (awsErrorName(err) === 'ConditionalCheckFailedException') return false; // deleted or re-created
        throw err;
      }
    }
  }

  async manifestAt(collection: string, generation: number, version: number): Promise<Manifest | undefined> {
    const key = `${collection}\u0000${generation}\u0000${version}`;
    const hit = this.manifests.get(key);
    if (hit) {
      // Re-inserted: the Map's order is the eviction order (least recently used first).
      this.manifests.delete(key);
      this.manifests.set(key, hit);
      return hit;
    }
    const m = await this.getManifest(collection, version).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (!m || m.generation !== generation) return undefined;
    this.manifests.set(key, m);
    this.manifestShards += m.shards.length;
    while (
      this.manifests.size > 1 &&
      (this.manifests.size > MANIFEST_CACHE_ENTRIES || this.manifestShards > MANIFEST_CACHE_SHARDS)
    ) {
      const [oldest, evicted] = this.manifests.entries().next().value!;
      this.manifests.delete(oldest);
      this.manifestShards -= evicted.shards.length;
    }
    return m;
  }

  async getManifest(collection: string, version: number): Promise<Manifest> {
    const res = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: colPk(collection), sk: idxSk(version) },
        ConsistentRead: true,
      }),
    );
    if (!res.Item) {
      throw new NotFoundError(`index version ${version} of ${JSON.stringify(collection)} not found`, {
        field: 'version',
      });
    }
    return this.toManifest(res.Item, collection);
  }

  async listManifests(collection: string, limit?: number): Promise<Manifest[]> {
    return this.queryManifests(collection, limit);
  }

  private async queryManifests(collection: string, limit?: number): Promise<Manifest[]> {
    const out: Manifest[] = [];
    for await (const m of this.manifestsNewestFirst(collection, limit)) {
      out.push(m);
      if (limit !== undefined && out.length >= limit) break;
    }
    return out;
  }

  /** Manifests newest first, read lazily in pages of `pageSize` items (all in one page when absent). */
  private async *manifestsNewestFirst(collection: string, pageSize?: number): AsyncIterable<Manifest> {
    for await (const page of queryPages(this.ddb, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :idx)',
      ExpressionAttributeValues: { ':pk': colPk(collection), ':idx': IDX_PREFIX },
      ScanIndexForward: false,
      ConsistentRead: true,
      Limit: pageSize,
    })) {
      for (const raw of page) yield await this.toManifest(raw, collection);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Deep equality of plain data as DynamoDB returns it (map keys in any order). */
function sameValue(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v)
            .filter(([, x]) => x !== undefined)
            .sort(([x], [y]) => (x < y ? -1 : 1))
            .map(([k, x]) => [k, canon(x)]),
        )
      : Array.isArray(v)
        ? v.map(canon)
        : v;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

/** The manifest's sort key, refusing versions the ten-digit key cannot hold. */
function idxSk(version: number): string {
  if (!Number.isSafeInteger(version) || version < 0 || version >= 1e10) {
    throw new ValidationError(`index version must be an integer in [0, 1e10), got ${version}`, { field: 'version' });
  }
  return versionSk(version);
}

function toMeta(raw: Record<string, unknown>, expectedName?: string): CollectionMeta {
  const item = parseItem(metaItemSchema, raw, 'collection meta item');
  if (item.pk !== colPk(item.name) || (expectedName !== undefined && item.name !== expectedName)) {
    throw new CorruptDataError(
      `collection meta item ${JSON.stringify(item.pk)} names collection ${JSON.stringify(item.name)}`,
    );
  }
  const meta: CollectionMeta = {
    name: item.name,
    dimension: item.dimension,
    metric: item.metric,
    index: item.index,
    createdAt: item.createdAt,
    generation: item.generation,
  };
  if (item.minRecall !== undefined) meta.minRecall = item.minRecall;
  if (item.model !== undefined) meta.model = item.model;
  if (item.embedding !== undefined) meta.embedding = item.embedding;
  if (item.candidates !== undefined && Object.keys(item.candidates).length) meta.candidates = item.candidates;
  if (item.heads !== undefined && Object.keys(item.heads).length) meta.heads = item.heads;
  return meta;
}

/** The generation-scoped key of a manifest's collection (its objects' folder). */
const keyOf = (m: Manifest): string => collectionKey({ name: m.collection, generation: m.generation });

/** Whether a manifest item holds exactly the form this commit wrote (its resend). */
function sameForm(item: Record<string, unknown>, form: { doc?: string; docz?: Uint8Array; docRef?: DocRef }): boolean {
  if (form.doc !== undefined) return item.doc === form.doc;
  if (form.docz) return item.docz instanceof Uint8Array && Buffer.from(item.docz).equals(form.docz);
  const ref = item.docRef as Partial<DocRef> | undefined;
  return ref?.key === form.docRef?.key && ref?.sha256 === form.docRef?.sha256;
}

/** Brotli JSON as text; a damaged stream or one past MAX_JSON_BYTES is CorruptDataError. */
function inflate(bytes: Uint8Array, where: string): string {
  try {
    return brotliDecompressSync(bytes, { maxOutputLength: MANIFEST_ITEM.MAX_JSON_BYTES }).toString('utf8');
  } catch (err) {
    throw new CorruptDataError(`${where}: compressed doc does not decompress`, { cause: err });
  }
}

function parseManifest(text: string, where: string): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CorruptDataError(`${where}: doc is not valid JSON`, { cause: err });
  }
  return parseItem(manifestSchema, doc, where);
}
