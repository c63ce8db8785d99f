/**
 * The API-key authorizer (functions/authorizer/handler.ts): hashing, lookup and decisions, with the role and
 * collection scope checked by the same policy table as the router (shared/auth/policy.ts). DynamoDB stubbed.
 */
import { createHash } from 'node:crypto';
import { DynamoDBClient, type GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ROUTE_POLICIES } from '../../shared/auth/policy.js';

type Mod = typeof import('../../functions/authorizer/handler.js');
let mod: Mod;

beforeAll(async () => {
  process.env.SHOAL_CATALOG_TABLE = 'catalog-test';
  process.env.AWS_REGION ??= 'us-east-1';
  mod = await import('../../functions/authorizer/handler.js');
});
afterEach(() => vi.restoreAllMocks());

const event = (authorization?: string, method = 'GET', rawPath = '/v1/health'): APIGatewayRequestAuthorizerEventV2 =>
  ({
    type: 'REQUEST',
    routeKey: `${method} ${rawPath}`,
    rawPath,
    requestContext: { http: { method, path: rawPath } },
    headers: authorization ? { authorization } : {},
    identitySource: authorization ? [authorization, method, rawPath] : [],
  }) as unknown as APIGatewayRequestAuthorizerEventV2;

function stubItem(item: Record<string, unknown> | undefined) {
  return vi.spyOn(DynamoDBClient.prototype, 'send').mockImplementation((async (cmd: GetItemCommand) => {
    stubItem.last = cmd.input;
    return { Item: item };
  }) as never);
}
stubItem.last = undefined as unknown;

const strings = (xs: string[]) => ({ L: xs.map((S) => ({ S })) });

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

  it('looks up APIKEY#<sha256>/META in the catalog; a key without a role is an admin key', async () => {
    stubItem({ keyId: { S: 'ci' } });
    expect(await mod.handler(event('Bearer secret'))).toEqual({
      isAuthorized: true,
      context: { keyId: 'ci', role: 'admin' },
    });
    expect(stubItem.last).toMatchObject({
      TableName: 'catalog-test',
      Key: { pk: { S: `APIKEY#${mod.keyHash('secret')}` }, sk: { S: 'META' } },
    });
    // A legacy admin key may still do admin things.
    stubItem({ keyId: { S: 'ci' } });
    expect((await mod.handler(event('Bearer secret', 'POST', '/v1/keys'))).isAuthorized).toBe(true);
  });

  it('denies unknown, disabled and expired keys', async () => {
    stubItem(undefined);
    expect((await mod.handler(event('Bearer nope'))).isAuthorized).toBe(false);
    stubItem({ keyId: { S: 'x' }, disabled: { BOOL: true } });
    expect((await mod.handler(event('Bearer k'))).isAuthorized).toBe(false);
    stubItem({ keyId: { S: 'x' }, expiresAt: { S: '2000-01-01T00:00:00Z' } });
    expect((await mod.handler(event('Bearer k'))).isAuthorized).toBe(false);
  });

  it('denies a key whose role or scope is malformed rather than treating it as unrestricted', async () => {
    stubItem({ keyId: { S: 'x' }, role: { S: 'root' } });
    expect((await mod.handler(event('Bearer k'))).isAuthorized).toBe(false);
    stubItem({ keyId: { S: 'x' }, role: { S: 'read' }, collections: { S: 'docs' } });
    expect((await mod.handler(event('Bearer k'))).isAuthorized).toBe(false);
    stubItem({ keyId: { S: 'x' }, role: { S: 'read' }, collections: { L: [{ N: '1' }] } });
    expect((await mod.handler(event('Bearer k'))).isAuthorized).toBe(false);
  });

  it('applies the route policy: role by route, scope by the collection in the path', async () => {
    const readKey = { keyId: { S: 'r' }, role: { S: 'read' } };
    const cases: Array<[Record<string, unknown>, string, string, boolean]> = [
      [readKey, 'POST', '/v1/collections/docs/search', true],
      [readKey, 'POST', '/v1/collections/docs/vectors/get', true],
      [readKey, 'GET', '/v1/models', true],
      [readKey, 'POST', '/v1/collections/docs/vectors', false],
      [readKey, 'DELETE', '/v1/collections/docs', false],
      [readKey, 'GET', '/v1/keys', false],
      [{ role: { S: 'write' } }, 'POST', '/v1/collections/docs/vectors', true],
      [{ role: { S: 'write' } }, 'POST', '/v1/collections/docs/imports', true],
      [{ role: { S: 'write' } }, 'POST', '/v1/collections/docs/index', false],
      [{ role: { S: 'admin' } }, 'POST', '/v1/collections/docs/index', true],
      // Scoped: its own collection (percent-encoded or with a trailing slash alike), not another.
      [{ role: { S: 'write' }, collections: strings(['docs']) }, 'POST', '/v1/collections/docs/vectors', true],
      [{ role: { S: 'write' }, collections: strings(['docs']) }, 'POST', '/v1/collections/%64ocs/vectors/', true],
      [{ role: { S: 'write' }, collections: strings(['docs']) }, 'POST', '/v1/collections/other/vectors', false],
      [{ role: { S: 'read' }, collections: { SS: ['docs'] } }, 'POST', '/v1/collections/docs/search', true],
      [{ role: { S: 'read' }, collections: strings(['docs']) }, 'GET', '/v1/collections', true],
      // A scoped admin: admin on its collections, but not on routes that name none.
      [{ role: { S: 'admin' }, collections: strings(['docs']) }, 'DELETE', '/v1/collections/docs', true],
      [{ role: { S: 'admin' }, collections: strings(['docs']) }, 'POST', '/v1/collections', false],
      [{ role: { S: 'admin' }, collections: strings(['docs']) }, 'POST', '/v1/keys', false],
      [{ role: { S: 'admin' }, collections: strings(['docs']) }, 'DELETE', '/v1/keys/key_0123456789abcdef', false],
      // No route: any valid key reaches the router, which answers its JSON 404/405.
      [readKey, 'GET', '/v1/nowhere', true],
      [readKey, 'PATCH', '/v1/keys', true],
    ];
    for (const [item, method, path, allowed] of cases) {
      stubItem(item);
      const out = await mod.handler(event('Bearer k', method, path));
      expect(out.isAuthorized, `${JSON.stringify(item)} ${method} ${path}`).toBe(allowed);
    }
  });

  it('decides every route in the policy table for every role (the table the router applies)', async () => {
    for (const [key, policy] of Object.entries(ROUTE_POLICIES)) {
      const [method, template] = key.split(' ');
      const path = template.replace(/\{[^}]+\}/g, (p) => (p === '{v}' ? '3' : p === '{id}' ? 'key_0' : 'docs'));
      for (const role of ['read', 'write', 'admin']) {
        stubItem({ role: { S: role } });
        const out = await mod.handler(event('Bearer k', method, path));
        const rank = (r: string) => ['read', 'write', 'admin'].indexOf(r);
        expect(out.isAuthorized, `${role} ${key}`).toBe(rank(role) >= rank(policy.role));
      }
    }
  });
});
