/**
 * API keys on the Catalog table (DynamoApiKeyStore + ApiKeys) against the embedded DynamoDB emulator:
 * the two items a key is stored as, listing, lastUsedAt, revocation (key item first), and the items the
 * API Gateway authorizer reads.
 */
import { createHash } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulators, type Emulators } from '../../infra/local/emulators.js';
import { DynamoApiKeyStore } from '../../shared/auth/dynamo-key-store.js';
import { grantOfKeyItem } from '../../shared/auth/key-item.js';
import { ApiKeys } from '../../shared/auth/keys.js';
import { parseConfig } from '../../shared/config.js';
import { CorruptDataError } from '../../shared/errors.js';
import { makeAwsClients, type AwsClients } from '../../shared/storage/clients.js';
import { APIKEYS_PK, META_SK, apiKeyPk } from '../../shared/storage/keys.js';
import { ensureTables } from '../../shared/storage/tables.js';

const CATALOG = 'keys-catalog';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let emulators: Emulators;
let clients: AwsClients;
let store: DynamoApiKeyStore;
let clock = Date.parse('2026-03-01T12:00:00Z');

beforeAll(async () => {
  emulators = await startEmulators({});
  process.env.AWS_ACCESS_KEY_ID = emulators.endpoints.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = emulators.endpoints.credentials.secretAccessKey;
  clients = makeAwsClients(
    parseConfig({
      AWS_REGION: emulators.endpoints.region,
      SHOAL_BUCKET: 'keys-bucket',
      SHOAL_CATALOG_TABLE: CATALOG,
      SHOAL_RECORDS_TABLE: 'keys-records',
      SHOAL_BUILD_QUEUE_URL: `${emulators.endpoints.sqs}/000000000000/shoal-build`,
      SHOAL_S3_ENDPOINT: emulators.endpoints.s3,
      SHOAL_DYNAMODB_ENDPOINT: emulators.endpoints.dynamodb,
      SHOAL_SQS_ENDPOINT: emulators.endpoints.sqs,
    }),
  );
  await ensureTables(clients.ddb, { catalog: CATALOG, records: 'keys-records' });
  store = new DynamoApiKeyStore({ ddb: clients.ddb, table: CATALOG });
}, 60_000);

afterAll(async () => {
  clients?.s3.destroy();
  clients?.ddb.destroy();
  clients?.sqs.destroy();
  await emulators?.stop();
});

const get = async (pk: string, sk: string) =>
  (await clients.ddb.send(new GetCommand({ TableName: CATALOG, Key: { pk, sk }, ConsistentRead: true }))).Item;

describe('DynamoApiKeyStore', () => {
  it('stores a key as its hash: the key item and the registry entry, never the key', async () => {
    // Prepare
    const keys = new ApiKeys({ store, now: () => clock });

    // Act
    const created = await keys.create(
      { name: 'ci', role: 'write', collections: ['docs', 'docs'], rateLimit: { perSecond: 5, burst: 10 } },
      { actor: 'root' },
    );

    // Assess
    const hash = sha(created.key);
    const item = await get(apiKeyPk(hash), META_SK);
    expect(item).toMatchObject({
      keyId: created.id,
      name: 'ci',
      role: 'write',
      collections: ['docs'],
      rateLimit: { perSecond: 5, burst: 10 },
      createdBy: 'root',
    });
    expect(await get(APIKEYS_PK, created.id)).toMatchObject({ hash, role: 'write', name: 'ci' });
    const everything = await clients.ddb.send(
      new QueryCommand({
        TableName: CATALOG,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': APIKEYS_PK },
      }),
    );
    expect(JSON.stringify([item, everything.Items])).not.toContain(created.key);
    // What every check (and the authorizer) derives from the key item.
    expect(grantOfKeyItem(item, clock)).toEqual({
      role: 'write',
      collections: ['docs'],
      keyId: created.id,
      rateLimit: { perSecond: 5, burst: 10 },
    });
  });

  it('authenticates, lists with lastUsedAt, and revokes both items', async () => {
    // Prepare
    const keys = new ApiKeys({ store, now: () => clock });
    const { key, id } = await keys.create({ name: 'reader', role: 'read' }, { actor: 'root' });

    // Act
    clock += 5_000;
    const who = await keys.authenticate(key);
    const listed = await keys.list();

    // Assess
    expect(who).toMatchObject({ role: 'read', keyId: id, actor: id });
    const mine = listed.find((k) => k.id === id);
    expect(mine).toEqual({
      id,
      name: 'reader',
      role: 'read',
      createdBy: 'root',
      createdAt: new Date(clock - 5_000).toISOString(),
      lastUsedAt: new Date(clock).toISOString(),
    });
    expect(JSON.stringify(listed)).not.toMatch(/hash|shoal_/);

    await keys.revoke(id);
    expect(await get(apiKeyPk(sha(key)), META_SK)).toBeUndefined();
    expect(await get(APIKEYS_PK, id)).toBeUndefined();
    expect(await keys.authenticate(key)).toBeUndefined();
    // Another container still holding it in cache would refuse it after its TTL; a fresh one at once.
    expect(await new ApiKeys({ store }).authenticate(key)).toBeUndefined();
    // A late lastUsedAt write does not bring the registry entry back.
    await store.touch(id, new Date(clock).toISOString());
    expect(await get(APIKEYS_PK, id)).toBeUndefined();
    expect(await store.revoke(id)).toBeUndefined();
  });

  it('refuses a corrupt registry entry with CorruptDataError', async () => {
    await clients.ddb.send(
      new PutCommand({ TableName: CATALOG, Item: { pk: APIKEYS_PK, sk: 'key_ffffffffffffffff', role: 'god' } }),
    );
    await expect(store.list()).rejects.toBeInstanceOf(CorruptDataError);
    await clients.ddb.send(
      new PutCommand({
        TableName: CATALOG,
        Item: { pk: APIKEYS_PK, sk: 'key_ffffffffffffffff', hash: 'x'.repeat(64), name: 'n', role: 'read' },
      }),
    );
    await expect(store.list()).rejects.toBeInstanceOf(CorruptDataError);
  });
});
