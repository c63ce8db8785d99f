/**
 * ApiKeyStore on the Catalog table (layout: shared/storage/keys.ts):
 *
 *   pk=APIKEY#<sha256 hex>   sk=META      what a key may do: keyId, name, role, collections, expiresAt,
 *                                         rateLimit, createdBy, createdAt (read by every key check and by
 *                                         the API Gateway authorizer)
 *   pk=APIKEYS               sk=<keyId>   registry entry: the same fields + `hash` + `lastUsedAt`
 *
 * Registry entries are validated with zod when read (CorruptDataError); key items are read through
 * `grantOfKeyItem`, which refuses a malformed one.
 */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CorruptDataError } from '../errors.js';
import { awsErrorName, queryPages } from '../storage/clients.js';
import { APIKEYS_PK, META_SK, apiKeyPk, apiKeyRegistrySk } from '../storage/keys.js';
import type { KeyItemFields } from './key-item.js';
import type { ApiKeyRecord, ApiKeyStore } from './keys.js';
import { ROLES } from './policy.js';

const registryItem = z.object({
  sk: z.string(),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  role: z.enum(ROLES),
  collections: z.array(z.string()).optional(),
  createdBy: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().optional(),
  rateLimit: z.object({ perSecond: z.number(), burst: z.number() }).optional(),
  lastUsedAt: z.string().optional(),
});

export class DynamoApiKeyStore implements ApiKeyStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(opts: { ddb: DynamoDBDocumentClient; table: string }) {
    this.ddb = opts.ddb;
    this.table = opts.table;
  }

  async create(sha256Hex: string, record: ApiKeyRecord): Promise<void> {
    const { id, lastUsedAt: _ignored, ...fields } = record;
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: APIKEYS_PK, sk: apiKeyRegistrySk(id), hash: sha256Hex, ...fields },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: apiKeyPk(sha256Hex), sk: META_SK, keyId: id, ...fields },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async list(): Promise<ApiKeyRecord[]> {
    const out: ApiKeyRecord[] = [];
    for await (const page of queryPages(this.ddb, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': APIKEYS_PK },
    })) {
      for (const item of page) out.push(toRecord(item));
    }
    return out;
  }

  async revoke(id: string): Promise<string | undefined> {
    const key = { pk: APIKEYS_PK, sk: apiKeyRegistrySk(id) };
    const got = await this.ddb.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
    if (!got.Item) return undefined;
    const hash = parseRegistry(got.Item).hash;
    // The key item first: once it is gone the key is refused, whatever happens to the registry entry.
    await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { pk: apiKeyPk(hash), sk: META_SK } }));
    await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: key }));
    return hash;
  }

  async lookup(sha256Hex: string): Promise<KeyItemFields | undefined> {
    const out = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: apiKeyPk(sha256Hex), sk: META_SK }, ConsistentRead: true }),
    );
    return out.Item as KeyItemFields | undefined;
  }

  async touch(id: string, at: string): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: APIKEYS_PK, sk: apiKeyRegistrySk(id) },
          UpdateExpression: 'SET lastUsedAt = :at',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':at': at },
        }),
      );
    } catch (err) {
      // Revoked meanwhile (or never registered): nothing to record.
      if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
    }
  }
}

function parseRegistry(item: Record<string, unknown>): z.infer<typeof registryItem> {
  const parsed = registryItem.safeParse(item);
  if (!parsed.success) {
    throw new CorruptDataError(`API key registry entry ${String(item.sk)} is malformed: ${parsed.error.message}`);
  }
  return parsed.data;
}

function toRecord(item: Record<string, unknown>): ApiKeyRecord {
  const { sk, hash: _hash, ...rest } = parseRegistry(item);
  return { id: sk, ...rest };
}
