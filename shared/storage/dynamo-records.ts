/**
 * RecordStore on the DynamoDB Records table (docs/architecture.md §4.2): one item per id,
 *   pk  (S)    `<collectionKey>#<id>`
 *   ck  (S)    collection key `<name>@<generation>` (GSI bySeq hash key)
 *   id  (S)
 *   seq (N)    sequence number of the write (GSI bySeq range key)
 *   v   (B)    vector, float32 little-endian; absent on tombstones
 *   md  (S)    metadata as JSON; absent when there is none
 *   del (BOOL) tombstone flag
 *   in  (S)    raw model input reference `<sha256>/<row>` (docs/models.md); absent when none
 * plus the collection's write log in the Catalog table (docs/architecture.md §6.1):
 *   pk = LOG#<ck>#<seq % LOG_BUCKETS>, sk = <seq, 16 digits>, id   — which id each seq wrote.
 *
 * Why a log: the bySeq GSI is eventually consistent on AWS, so a tail read from it can miss an
 * acknowledged write for a while (and the builder would then index past it for good). The log is
 * read with strongly consistent Queries of the base table, and the records it names with
 * strongly consistent BatchGets, so `tail` sees every write acknowledged before it started.
 *
 * Crash safety without transactions: `put` writes the log entries first, then the records. A
 * reader takes the log only as the set of ids written in a seq range and keeps each record
 * whose stored seq lies in the range; an entry whose write never landed (in flight, or crashed
 * between the two steps and so never acknowledged) finds an older record and adds nothing. So
 * a crash at any point leaves count, get, search and delete in agreement: a record is visible
 * through the log exactly when it is visible to `get`.
 *
 * The `collection` argument of every method is the collection KEY (callers build it).
 */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CorruptDataError, ValidationError } from '../errors.js';
import type { Metadata } from '../types.js';
import { BY_SEQ_INDEX } from './tables.js';
import type { PendingWrite, RecordListOptions, RecordPage, RecordStore, StoredRecord, WriteLog } from './types.js';
import { LOG_BUCKETS, LOG_TRIM_SK, logPk, logSk, logTrimPk, recordPk as keyOfRecord } from './keys.js';
import {
  awsErrorName,
  batchGetFully,
  batchWriteFully,
  chunk,
  conditionalWrite,
  forEachLimit,
  queryPages,
} from './clients.js';

/** BatchWriteItem chunks written in parallel by one put(). */
const PUT_CONCURRENCY = 8;
/** BatchGetItem chunks read in parallel by one get(). */
const GET_CONCURRENCY = 8;
/** Conditional deletes in flight during purge(). */
const PURGE_CONCURRENCY = 16;

/**
 * How long a trim point waits before log entries at or below it are deleted (default 5 min).
 * A search that read an older manifest still reads the log after that manifest's watermark;
 * API requests end within 30 s, so 5 minutes leaves a wide margin. It also bounds how stale
 * the bySeq GSI may be for `scan` to stay complete (entries newer than the trim point are
 * always read from the log). Longer keeps more log items (1 write + storage per row).
 */
export const LOG_TRIM_GRACE_MS = 5 * 60_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const itemSchema = z.object({
  pk: z.string(),
  ck: z.string(),
  id: z.string(),
  seq: z.number().int().nonnegative(),
  v: z.instanceof(Uint8Array).optional(),
  md: z.string().optional(),
  del: z.boolean(),
  in: z.string().optional(),
});

const logEntrySchema = z.object({ sk: z.string().regex(/^\d{16}$/), id: z.string() });
const trimItemSchema = z.object({
  trimmed: z.number().int().nonnegative().optional(),
  bound: z.number().int().nonnegative().optional(),
  at: z.number().optional(),
});

export interface DynamoRecordStoreOptions {
  ddb: DynamoDBDocumentClient;
  /** The Records table. */
  table: string;
  /** The table that holds the write log (the Catalog table). */
  logTable: string;
  /** Clock for log trimming (tests). */
  now?: () => number;
}

export class DynamoRecordStore implements RecordStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly logTable: string;
  private readonly now: () => number;

  constructor(opts: DynamoRecordStoreOptions) {
    this.ddb = opts.ddb;
    this.table = opts.table;
    this.logTable = opts.logTable;
    this.now = opts.now ?? Date.now;
  }

  async put(records: StoredRecord[], options: { logged?: boolean } = {}): Promise<void> {
    // BatchWriteItem rejects two requests for one key: keep the newest write per (collection, id).
    const newest = new Map<string, StoredRecord>();
    for (const r of records) {
      const pk = recordPk(r.collection, r.id);
      const seen = newest.get(pk);
      if (!seen || r.seq >= seen.seq) newest.set(pk, r);
    }
    const requests = [...newest.entries()].map(([pk, r]) => ({ PutRequest: { Item: toItem(pk, r) } }));
    // The log first (see the header): an entry without its record is skipped by readers, a
    // record without its entry would be visible to `get` but never to a tail read. Unlogged: the
    // records' write lease names their seqs in the counter item until it is settled.
    if (options.logged !== false) await this.appendLog([...newest.values()]);
    await forEachLimit(chunk(requests, 25), PUT_CONCURRENCY, (batch) => batchWriteFully(this.ddb, this.table, batch));
  }

  writeLog(collection: string): WriteLog {
    checkCollectionKey(collection);
    return {
      append: (entries) => this.appendLog(entries.map((e) => ({ collection, ...e }))),
      seqs: async (ids) => new Map([...(await this.get(collection, ids))].map(([id, r]) => [id, r.seq])),
    };
  }

  private async appendLog(entries: Array<{ collection: string; seq: number; id: string }>): Promise<void> {
    const requests = entries.map((r) => ({
      PutRequest: { Item: { pk: logPk(r.collection, r.seq % LOG_BUCKETS), sk: logSk(r.seq), id: r.id } },
    }));
    await forEachLimit(chunk(requests, 25), PUT_CONCURRENCY, (batch) =>
      batchWriteFully(this.ddb, this.logTable, batch),
    );
  }

  async get(collection: string, ids: string[]): Promise<Map<string, StoredRecord>> {
    const out = new Map<string, StoredRecord>();
    const keys = [...new Set(ids)].map((id) => ({ pk: recordPk(collection, id) }));
    await forEachLimit(chunk(keys, 100), GET_CONCURRENCY, async (batch) => {
      for (const raw of await batchGetFully(this.ddb, this.table, batch)) {
        const rec = fromItem(raw, collection);
        out.set(rec.id, rec);
      }
    });
    return out;
  }

  tail(
    collection: string,
    afterSeq: number,
    upToSeq?: number,
    progress?: (seq: number) => void,
    pending?: readonly PendingWrite[],
  ): AsyncIterable<StoredRecord[]> {
    checkCollectionKey(collection);
    if (upToSeq !== undefined && upToSeq <= afterSeq) return emptyIterable();
    return this.resolveLog(collection, afterSeq, upToSeq, progress, pending);
  }

  /**
   * The bySeq GSI (cheap: one Query, records included), completed with the log after the trim
   * point, whose entries cover every write of the last LOG_TRIM_GRACE_MS at least, and with the
   * pending write leases (read by the caller before this): a write the lagging GSI does not show yet
   * is read from the log or its lease. An id may come twice (GSI and log).
   */
  async *scan(collection: string, pending?: readonly PendingWrite[]): AsyncIterable<StoredRecord[]> {
    yield* this.queryBySeq(collection, 'ck = :ck', {});
    yield* this.resolveLog(collection, (await this.readTrim(collection)).trimmed ?? 0, undefined, undefined, pending);
  }
  async purge(collection: string, items: Array<{ id: string; seq: number }>): Promise<void> {
    await forEachLimit(items, PURGE_CONCURRENCY, async ({ id, seq }) => {
      try {
        await this.ddb.send(
          new DeleteCommand({
            TableName: this.table,
            Key: { pk: recordPk(collection, id) },
            ConditionExpression: 'seq = :seq',
            ExpressionAttributeValues: { ':seq': seq },
          }),
        );
      } catch (err) {
        // A newer write (or an earlier purge) got there first: leave it.
        if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
      }
    });
  }

  async list(collection: string, options: RecordListOptions): Promise<RecordPage> {
    checkCollectionKey(collection);
    const names: Record<string, string> = { '#pk': 'pk', '#ck': 'ck', '#id': 'id', '#seq': 'seq', '#del': 'del' };
    if (options.values) names['#v'] = 'v';
    if (options.metadata) names['#md'] = 'md';
    if (options.inputs) names['#in'] = 'in';
    const after = options.after;
    const res = await this.ddb.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: BY_SEQ_INDEX,
        KeyConditionExpression: '#ck = :ck',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':ck': collection },
        ProjectionExpression: Object.keys(names).join(', '),
        ScanIndexForward: true,
        Limit: options.limit,
        ...(after ? { ExclusiveStartKey: { pk: recordPk(collection, after.id), ck: collection, seq: after.seq } } : {}),
      }),
    );
    const records = (res.Items ?? []).map((raw) => fromListedItem(raw, collection));
    const last = res.LastEvaluatedKey;
    if (!last) return { records };
    // The key DynamoDB stopped at is the last item it read: its id is the pk after the collection key.
    const lastPk = typeof last.pk === 'string' ? last.pk : '';
    const prefix = recordPk(collection, '');
    if (!lastPk.startsWith(prefix) || typeof last.seq !== 'number') {
      throw new CorruptDataError(`bySeq query of ${collection} stopped at an unexpected key`);
    }
    return { records, next: { seq: last.seq, id: lastPk.slice(prefix.length) } };
  }

  async putIfSeq(record: StoredRecord, expectedSeq: number): Promise<boolean> {
    const pk = recordPk(record.collection, record.id);
    const item = toItem(pk, record);
    // The log first, as in `put`: an entry whose record write fails its condition names a seq no record has.
    await this.ddb.send(
      new PutCommand({
        TableName: this.logTable,
        Item: { pk: logPk(record.collection, record.seq % LOG_BUCKETS), sk: logSk(record.seq), id: record.id },
      }),
    );
    return conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({
            TableName: this.table,
            Item: item,
            ConditionExpression: 'seq = :expected',
            ExpressionAttributeValues: { ':expected': expectedSeq },
          }),
        ),
      async () => {
        const now = (await this.get(record.collection, [record.id])).get(record.id);
        if (now?.seq === record.seq) return 'ours';
        return now?.seq === expectedSeq ? 'again' : 'theirs';
      },
    );
  }

  /**
   * Deletes log entries that no reader needs any more, in two phases so that a search still
   * holding an older manifest can finish: `bound` (the lowest watermark of every index line,
   * so every tail read starts above it) is recorded with the time; a later call, at least
   * LOG_TRIM_GRACE_MS after, deletes the entries up to the recorded bound. Best effort and
   * idempotent: racing trims delete the same items; the conditional update keeps `trimmed`
   * monotonic. Returns how many entries were deleted.
   */
  async trimLog(collection: string, bound: number): Promise<number> {
    checkCollectionKey(collection);
    const now = this.now();
    const state = await this.readTrim(collection);
    const trimmed = state.trimmed ?? 0;
    let deleted = 0;
    let next = { trimmed, bound: state.bound, at: state.at };
    if (state.bound !== undefined && state.at !== undefined) {
      if (now - state.at < LOG_TRIM_GRACE_MS) return 0;
      if (state.bound > trimmed) deleted = await this.deleteLog(collection, trimmed, state.bound);
      next = { trimmed: Math.max(trimmed, state.bound), bound: undefined, at: undefined };
    }
    if (bound > next.trimmed) next = { ...next, bound, at: now };
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.logTable,
          Key: { pk: logTrimPk(collection), sk: LOG_TRIM_SK },
          UpdateExpression:
            next.bound === undefined ? 'SET trimmed = :t REMOVE bound, #at' : 'SET trimmed = :t, bound = :b, #at = :at',
          ConditionExpression: 'attribute_not_exists(trimmed) OR trimmed = :was',
          ExpressionAttributeNames: { '#at': 'at' },
          ExpressionAttributeValues: {
            ':t': next.trimmed,
            ':was': trimmed,
            ...(next.bound === undefined ? {} : { ':b': next.bound, ':at': next.at }),
          },
        }),
      );
    } catch (err) {
      // Another trim moved first; it recorded its own state.
      if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
    }
    return deleted;
  }

  private async readTrim(collection: string): Promise<z.infer<typeof trimItemSchema>> {
    const out = await this.ddb.send(
      new GetCommand({
        TableName: this.logTable,
        Key: { pk: logTrimPk(collection), sk: LOG_TRIM_SK },
        ConsistentRead: true,
      }),
    );
    if (!out.Item) return {};
    const parsed = trimItemSchema.safeParse(out.Item);
    if (!parsed.success) throw new CorruptDataError(`malformed log trim item of ${collection}`);
    return parsed.data;
  }

  /** Log entries with afterSeq < seq (≤ upToSeq), newest seq per id, from every bucket. */
  private async readLog(collection: string, afterSeq: number, upToSeq?: number): Promise<Map<string, number>> {
    const lo = logSk(Math.floor(afterSeq) + 1);
    const range =
      upToSeq === undefined
        ? { cond: 'sk >= :lo', values: { ':lo': lo } }
        : { cond: 'sk BETWEEN :lo AND :hi', values: { ':lo': lo, ':hi': logSk(upToSeq) } };
    const newest = new Map<string, number>();
    await Promise.all(
      Array.from({ length: LOG_BUCKETS }, async (_, bucket) => {
        for await (const page of queryPages(this.ddb, {
          TableName: this.logTable,
          KeyConditionExpression: `pk = :pk AND ${range.cond}`,
          ExpressionAttributeValues: { ':pk': logPk(collection, bucket), ...range.values },
          ProjectionExpression: 'sk, id',
          ConsistentRead: true,
        })) {
          for (const raw of page) {
            const entry = logEntrySchema.safeParse(raw);
            if (!entry.success) throw new CorruptDataError(`malformed write-log entry of ${collection}`);
            const seq = Number(entry.data.sk);
            if ((newest.get(entry.data.id) ?? -1) < seq) newest.set(entry.data.id, seq);
          }
        }
      }),
    );
    return newest;
  }

  /**
   * The records of the ids the log names after `afterSeq`, read strongly consistently, in
   * batches ascending by seq. The record, not the entry, decides: its seq is that of the last
   * write that landed. At or below `afterSeq` the entry's write never landed (in flight, or
   * crashed and never acknowledged) and an earlier state is already covered; with `upToSeq`,
   * a record rewritten above it belongs to a later tail (its own entry is above the bound).
   * An id whose newest entry never landed is still read for its earlier write in the range.
   */
  private async *resolveLog(
    collection: string,
    afterSeq: number,
    upToSeq?: number,
    progress?: (seq: number) => void,
    pending: readonly PendingWrite[] = [],
  ): AsyncGenerator<StoredRecord[]> {
    const named = await this.readLog(collection, afterSeq, upToSeq);
    // Write leases not settled yet are log entries kept in the counter item: the same rule applies.
    for (const p of pending) {
      p.ids.forEach((id, i) => {
        const seq = p.first + i;
        if (seq <= afterSeq || (upToSeq !== undefined && seq > upToSeq)) return;
        if ((named.get(id) ?? -1) < seq) named.set(id, seq);
      });
    }
    const entries = [...named].sort((a, b) => a[1] - b[1]);
    const batches = chunk(entries, 100);
    for (let i = 0; i < batches.length; i += GET_CONCURRENCY) {
      const pages = await Promise.all(
        batches.slice(i, i + GET_CONCURRENCY).map(async (batch) => {
          const keys = batch.map(([id]) => ({ pk: recordPk(collection, id) }));
          const out: StoredRecord[] = [];
          for (const raw of await batchGetFully(this.ddb, this.table, keys)) {
            const rec = fromItem(raw, collection);
            if (rec.seq <= afterSeq || (upToSeq !== undefined && rec.seq > upToSeq)) continue;
            out.push(rec);
          }
          return out;
        }),
      );
      const out = pages.flat().sort((a, b) => a.seq - b.seq);
      // Entries are resolved in seq order: once these groups are consumed, every entry up to the last is.
      const group = batches.slice(i, i + GET_CONCURRENCY).at(-1)!;
      progress?.(group[group.length - 1][1]);
      if (out.length) yield out;
    }
  }

  /** Deletes the log entries with lo < seq ≤ hi (keys only; batched). */
  private async deleteLog(collection: string, lo: number, hi: number): Promise<number> {
    let deleted = 0;
    for (let bucket = 0; bucket < LOG_BUCKETS; bucket++) {
      const pk = logPk(collection, bucket);
      for await (const page of queryPages(this.ddb, {
        TableName: this.logTable,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: { ':pk': pk, ':lo': logSk(lo + 1), ':hi': logSk(hi) },
        ProjectionExpression: 'pk, sk',
        ConsistentRead: true,
      })) {
        const requests = page.map((raw) => ({ DeleteRequest: { Key: { pk, sk: raw.sk } } }));
        await forEachLimit(chunk(requests, 25), PUT_CONCURRENCY, (batch) =>
          batchWriteFully(this.ddb, this.logTable, batch),
        );
        deleted += requests.length;
      }
    }
    return deleted;
  }

  /** Pages of the bySeq GSI for one collection, ascending by seq (GSI reads are eventually consistent on AWS). */
  private async *queryBySeq(
    collection: string,
    keyCondition: string,
    values: Record<string, number>,
  ): AsyncGenerator<StoredRecord[]> {
    checkCollectionKey(collection);
    for await (const page of queryPages(this.ddb, {
      TableName: this.table,
      IndexName: BY_SEQ_INDEX,
      KeyConditionExpression: keyCondition,
      ExpressionAttributeValues: { ':ck': collection, ...values },
      ScanIndexForward: true,
    })) {
      if (page.length > 0) yield page.map((raw) => fromItem(raw, collection));
    }
  }
}

function emptyIterable(): AsyncIterable<StoredRecord[]> {
  return (async function* () {})();
}

function checkCollectionKey(collection: string): void {
  // The pk is `<collectionKey>#<id>`: a '#' in the key would let two collections share a pk.
  if (collection.length === 0 || collection.includes('#')) {
    throw new ValidationError(`invalid collection key ${JSON.stringify(collection)}`, { field: 'collection' });
  }
}

function recordPk(collection: string, id: string): string {
  checkCollectionKey(collection);
  return keyOfRecord(collection, id);
}

function toItem(pk: string, r: StoredRecord): Record<string, unknown> {
  if (!Number.isSafeInteger(r.seq) || r.seq < 0) {
    throw new ValidationError(`record ${r.id}: seq must be a non-negative integer`, { field: 'seq' });
  }
  if (!r.deleted && !r.vector) {
    throw new ValidationError(`record ${r.id}: a live record needs a vector`, { field: 'vector' });
  }
  return {
    pk,
    ck: r.collection,
    id: r.id,
    seq: r.seq,
    v: r.deleted || !r.vector ? undefined : encodeVector(r.vector),
    md: r.metadata === undefined ? undefined : JSON.stringify(r.metadata),
    del: r.deleted,
    in: r.deleted ? undefined : r.input,
  };
}

function fromItem(raw: Record<string, unknown>, collection: string): StoredRecord {
  const rec = fromListedItem(raw, collection);
  if (!rec.deleted && !rec.vector) {
    throw new CorruptDataError(`record item ${describePk(raw)}: live record without a vector`);
  }
  return rec;
}

/** A listed item: like `fromItem`, but the vector and metadata may have been left out of the read. */
function fromListedItem(raw: Record<string, unknown>, collection: string): StoredRecord {
  const parsed = itemSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CorruptDataError(`malformed record item ${describePk(raw)}: ${parsed.error.issues[0]?.message ?? ''}`, {
      cause: parsed.error,
    });
  }
  const item = parsed.data;
  if (item.ck !== collection || item.pk !== keyOfRecord(collection, item.id)) {
    throw new CorruptDataError(`record item ${describePk(raw)} does not belong to collection ${collection}`);
  }
  const rec: StoredRecord = { collection, id: item.id, seq: item.seq, deleted: item.del };
  if (item.v && !item.del) rec.vector = decodeVector(item.v, item.pk);
  if (item.md !== undefined) rec.metadata = decodeMetadata(item.md, item.pk);
  if (item.in !== undefined && !item.del) rec.input = item.in;
  return rec;
}

function describePk(raw: Record<string, unknown>): string {
  return typeof raw.pk === 'string' ? JSON.stringify(raw.pk) : '(no pk)';
}

/** Float32 little-endian bytes; a view of the vector's memory on little-endian hosts (no copy). */
export function encodeVector(vector: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
  const out = new Uint8Array(vector.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i], true);
  return out;
}

/** Inverse of encodeVector; zero-copy when the bytes are 4-byte aligned on a little-endian host. */
export function decodeVector(bytes: Uint8Array, where = 'vector'): Float32Array {
  if (bytes.byteLength % 4 !== 0) {
    throw new CorruptDataError(`${where}: vector of ${bytes.byteLength} bytes is not a whole number of float32`);
  }
  const n = bytes.byteLength / 4;
  if (LITTLE_ENDIAN) {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    return new Float32Array(bytes.slice().buffer, 0, n);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function decodeMetadata(json: string, where: string): Metadata {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new CorruptDataError(`record item ${JSON.stringify(where)}: metadata is not valid JSON`, { cause: err });
  }
  // JSON.parse only yields JSON values, so an object here is a valid Metadata.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CorruptDataError(`record item ${JSON.stringify(where)}: metadata is not a JSON object`);
  }
  return value as Metadata;
}
