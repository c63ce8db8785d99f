/**
 * Drift references and windows on the Catalog table (docs/architecture.md §4.1, §8.8), in the collection's
 * partition (dropping the collection drops them):
 *
 *   pk=COL#<name>  sk=DRIFT#REF#<modelKey>                   reference: `doc` (S, JSON: edges, shares,
 *                                                            means, stds, rows, createdAt, generation, seed,
 *                                                            dimension), `cent` (B: k centroids, float32 LE)
 *   pk=COL#<name>  sk=DRIFT#<modelKey>#<kind>#<hour>#<ref>  window: numeric counters only ever added to
 *                                                            (`cnt`, `p<i>b<j>`, `p<i>s`, `p<i>q`, `n<j>`,
 *                                                            `ns`, `c<j>`, `cs`), `ttl` (epoch s)
 *
 * The projection directions are not stored: they are regenerated from the seed. A window flush is one
 * UpdateItem: `ADD` of the non-zero counters (at most 215, each aliased `#<n> :<n>`, ≈ 2 KB of expression,
 * under DynamoDB's 4 KB limit) and the TTL, returning the totals so the metric follows the whole hour.
 */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CorruptDataError } from '../errors.js';
import type { DriftStore, WindowKey } from '../models/drift-monitor.js';
import {
  DRIFT_BINS,
  DRIFT_CENTROIDS,
  windowCounters,
  windowFromCounters,
  type DriftKind,
  type DriftReference,
  type DriftWindow,
} from '../models/drift.js';
import { atMostOnce, awsErrorName, queryPages } from './clients.js';
import { decodeVector, encodeVector } from './dynamo-records.js';
import { colPk, driftRefSk, driftWindowPrefix, driftWindowSk } from './keys.js';

const edges = z.array(z.number()).length(DRIFT_BINS - 1);
const binShares = z.array(z.number()).length(DRIFT_BINS);
const docSchema = z.object({
  dimension: z.number().int().positive(),
  generation: z.number().int().positive(),
  seed: z.number().int().nonnegative(),
  rows: z.number().int().positive(),
  createdAt: z.string(),
  projections: z.array(z.object({ edges, shares: binShares, mean: z.number(), std: z.number().nonnegative() })),
  norm: z.object({ edges, shares: binShares }),
  centroidDistance: z.object({ edges, shares: binShares }),
  centroids: z.number().int().positive().max(DRIFT_CENTROIDS),
});

export interface DynamoDriftOptions {
  ddb: DynamoDBDocumentClient;
  /** The Catalog table. */
  table: string;
}

export class DynamoDriftStore implements DriftStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(opts: DynamoDriftOptions) {
    this.ddb = opts.ddb;
    this.table = opts.table;
  }

  async getReference(collection: string, model: string): Promise<DriftReference | undefined> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: colPk(collection), sk: driftRefSk(model) } }),
    );
    const item = res.Item;
    if (!item) return undefined;
    const where = `drift reference ${JSON.stringify(collection)} ${model}`;
    let raw: unknown;
    try {
      raw = JSON.parse(String(item.doc));
    } catch (err) {
      throw new CorruptDataError(`${where}: doc is not JSON`, { cause: err });
    }
    const parsed = docSchema.safeParse(raw);
    if (!parsed.success || !(item.cent instanceof Uint8Array)) {
      throw new CorruptDataError(`${where}: ${parsed.error?.issues[0]?.message ?? 'centroids missing'}`);
    }
    const { centroids: k, ...doc } = parsed.data;
    const flat = decodeVector(item.cent, where);
    if (flat.length !== k * doc.dimension) throw new CorruptDataError(`${where}: centroids do not fit the dimension`);
    const centroids = Array.from({ length: k }, (_, c) => flat.slice(c * doc.dimension, (c + 1) * doc.dimension));
    return { ...doc, centroids };
  }

  async putReference(collection: string, model: string, ref: DriftReference, onlyIfAbsent: boolean): Promise<boolean> {
    const { centroids, ...rest } = ref;
    const flat = new Float32Array(centroids.length * ref.dimension);
    centroids.forEach((c, i) => flat.set(c, i * ref.dimension));
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            pk: colPk(collection),
            sk: driftRefSk(model),
            doc: JSON.stringify({ ...rest, centroids: centroids.length }),
            cent: encodeVector(flat),
          },
          ...(onlyIfAbsent ? { ConditionExpression: 'attribute_not_exists(pk)' } : {}),
        }),
      );
      return true;
    } catch (err) {
      if (onlyIfAbsent && awsErrorName(err) === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  async addWindow(key: WindowKey, window: DriftWindow, ttlSeconds: number): Promise<DriftWindow> {
    // ADD is not idempotent: a resend after a lost response would count the window twice.
    const res = await this.ddb.send(atMostOnce(new UpdateCommand(windowUpdate(this.table, key, window, ttlSeconds))));
    return windowFromCounters(res.Attributes ?? {});
  }

  async listWindows(
    collection: string,
    model: string,
    kind: DriftKind,
    fromHour: string,
    toHour: string,
  ): Promise<Array<{ hour: string; ref: string; window: DriftWindow }>> {
    const prefix = driftWindowPrefix(model, kind);
    const out: Array<{ hour: string; ref: string; window: DriftWindow }> = [];
    for await (const page of queryPages(this.ddb, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      // `~` sorts after every revision character (base 36): the last hour's windows are all in range.
      ExpressionAttributeValues: {
        ':pk': colPk(collection),
        ':from': `${prefix}${fromHour}`,
        ':to': `${prefix}${toHour}~`,
      },
      ConsistentRead: true,
    })) {
      for (const item of page) {
        const rest = String(item.sk).slice(prefix.length);
        const [hour, ref] = rest.split('#');
        if (!hour || !ref) continue;
        out.push({ hour, ref, window: windowFromCounters(item) });
      }
    }
    return out;
  }
}

/** The UpdateItem of one window flush: `ADD` of the non-zero counters, the TTL set once, totals returned. */
export function windowUpdate(table: string, key: WindowKey, window: DriftWindow, ttlSeconds: number) {
  // Counters are aliased by their index in base 36 (at most 2 characters), so never as `#ttl`.
  const names: Record<string, string> = { '#ttl': 'ttl' };
  const values: Record<string, number> = { ':ttl': ttlSeconds };
  const adds = Object.entries(windowCounters(window)).map(([name, value], i) => {
    const id = i.toString(36);
    names[`#${id}`] = name;
    values[`:${id}`] = value;
    return `#${id} :${id}`;
  });
  return {
    TableName: table,
    Key: { pk: colPk(key.collection), sk: driftWindowSk(key.model, key.kind, key.hour, key.ref) },
    UpdateExpression: `ADD ${adds.join(', ')} SET #ttl = if_not_exists(#ttl, :ttl)`,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ReturnValues: 'ALL_NEW' as const,
  };
}
