/** The API-key authorizer (functions/authorizer/handler.ts): hashing, lookup and decisions, DynamoDB stubbed. */
import { createHash } from 'node:crypto';
import { DynamoDBClient, type GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

type Mod = typeof import('../../functions/authorizer/handler.js');
let mod: Mod;

beforeAll(async () => {
  process.env.SHOAL_CATALOG_TABLE = 'catalog-test';
  process.env.AWS_REGION ??= 'us-east-1';
  mod = await import('../../functions/authorizer/handler.js');
});
afterEach(() => vi.restoreAllMocks());

const event = (authorization?: string): APIGatewayRequestAuthorizerEventV2 =>
  ({
    type: 'REQUEST',
    headers: authorization ? { authorization } : {},
    identitySource: authorization ? [authorization] : [],
  }) as unknown as APIGatewayRequestAuthorizerEventV2;

function stubItem(item: Record<string, unknown> | undefined) {
  return vi.spyOn(DynamoDBClient.prototype, 'send').mockImplementation((async (cmd: GetItemCommand) => {
    stubItem.last = cmd.input;
    return { Item: item };
  }) as never);
}
stubItem.last = undefined as unknown;

describe('authorizer', () => {
  it('parses bearer tokens and hashes them as sha256 hex (like the CreateApiKeyCommand output)', () => {
    expect(mod.bearerToken('Bearer abc')).toBe('abc');
    expect(mod.bearerToken('  bearer   abc  ')).toBe('abc');
    expect(mod.bearerToken('Basic abc')).toBeUndefined();
    expect(mod.bearerToken(undefined)).toBeUndefined();
    expect(mod.keyHash('k')).toBe(createHash('sha256').update('k').digest('hex'));
  });

  it('denies without a token, without a lookup', async () => {
    const send = stubItem({});
    expect(await mod.handler(event())).toEqual({ isAuthorized: false, context: {} });
    expect(send).not.toHaveBeenCalled();
  });

  it('looks up APIKEY#<sha256>/META in the catalog and allows with the key id', async () => {
    stubItem({ keyId: { S: 'ci' } });
    expect(await mod.handler(event('Bearer secret'))).toEqual({ isAuthorized: true, context: { keyId: 'ci' } });
    expect(stubItem.last).toMatchObject({
      TableName: 'catalog-test',
      Key: { pk: { S: `APIKEY#${mod.keyHash('secret')}` }, sk: { S: 'META' } },
    });
  });

  it('denies unknown, disabled and expired keys', async () => {
    stubItem(undefined);
    expect((await mod.handler(event('Bearer nope'))).isAuthorized).toBe(false);
    stubItem({ keyId: { S: 'x' }, disabled: { BOOL: true } });
    expect((await mod.handler(event('Bearer k'))).isAuthorized).toBe(false);
    stubItem({ keyId: { S: 'x' }, expiresAt: { S: '2000-01-01T00:00:00Z' } });
    expect((await mod.handler(event('Bearer k'))).isAuthorized).toBe(false);
  });
});
