/**
 * RecordStore on the DynamoDB Records table (docs/architecture.md §4.2): one item per id,
 *   pk  (S)    `<collectionKey>#<id>`
 *   ck  (S)    collection key `<name>@<generation>` (GSI bySeq hash key)
 *   id  (S)
 *   seq (N)    sequence number of the write (GSI bySeq range key)
 *   v   (B)    vector, float32 little-endian; absent on tombstones
 *   md  (S)    metadata as JSON; absent when there is none
 *   del (BOOL) tombstone flag
 * The `collection` argument of every method is the collection KEY (callers build it).
 */
import { DeleteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CorruptDataError, ValidationError } from '../errors.js';
import type { Metadata } from '../types.js';
import { BY_SEQ_INDEX } from './tables.js';
import type { RecordStore, StoredRecord } from './types.js';
import { recordPk as keyOfRecord } from './keys.js';
import { awsErrorName, batchGetFully, batchWriteFully, chunk, forEachLimit, queryPages } from './clients.js';

/** BatchWriteItem chunks written in parallel by one put(). */
const PUT_CONCURRENCY = 8;
/** BatchGetItem chunks read in parallel by one get(). */
const GET_CONCURRENCY = 8;
/** Conditional deletes in flight during purge(). */
const PURGE_CONCURRENCY = 16;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const itemSchema = z.object({
  pk: z.string(),
  ck: z.string(),
  id: z.string(),
  seq: z.number().int().nonnegative(),
  v: z.instanceof(Uint8Array).optional(),
  md: z.string().optional(),
  del: z.boolean(),
});

export interface DynamoRecordStoreOptions {
  ddb: DynamoDBDocumentClient;
  table: string;
}

export class DynamoRecordStore implements RecordStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(opts: DynamoRecordStoreOptions) {
    this.ddb = opts.ddb;
    this.table = opts.table;
  }

  async put(records: StoredRecord[]): Promise<void> {
    // BatchWriteItem rejects two requests for one key: keep the newest write per (collection, id).
    const newest = new Map<string, StoredRecord>();
    for (const r of records) {
      const pk = recordPk(r.collection, r.id);
      const seen = newest.get(pk);
      if (!seen || r.seq >= seen.seq) newest.set(pk, r);
    }
    const requests = [...newest.entries()].map(([pk, r]) => ({ PutRequest: { Item: toItem(pk, r) } }));
    await forEachLimit(chunk(requests, 25), PUT_CONCURRENCY, (batch) => batchWriteFully(this.ddb, this.table, batch));
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

  tail(collection: string, afterSeq: number, upToSeq?: number): AsyncIterable<StoredRecord[]> {
    if (upToSeq !== undefined && upToSeq <= afterSeq) return emptyIterable();
    // Seqs are integers, so `seq > after AND seq <= upTo` is `seq BETWEEN after+1 AND upTo` (a key
    // condition allows one comparison on the range key).
    const range: { cond: string; values: Record<string, number> } =
      upToSeq === undefined
        ? { cond: 'seq > :lo', values: { ':lo': afterSeq } }
        : { cond: 'seq BETWEEN :lo AND :hi', values: { ':lo': Math.floor(afterSeq) + 1, ':hi': upToSeq } };
    return this.queryBySeq(collection, `ck = :ck AND ${range.cond}`, range.values);
  }

  scan(collection: string): AsyncIterable<StoredRecord[]> {
    return this.queryBySeq(collection, 'ck = :ck', {});
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
  };
}

function fromItem(raw: Record<string, unknown>, collection: string): StoredRecord {
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
  if (!item.del && !item.v) throw new CorruptDataError(`record item ${describePk(raw)}: live record without a vector`);
  const rec: StoredRecord = { collection, id: item.id, seq: item.seq, deleted: item.del };
  if (item.v && !item.del) rec.vector = decodeVector(item.v, item.pk);
  if (item.md !== undefined) rec.metadata = decodeMetadata(item.md, item.pk);
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
