/**
 * API Gateway HTTP API Lambda authorizer (REQUEST, simple responses): the bearer token's sha256
 * (hex) names the key item `pk = APIKEY#<hash>, sk = META` in the Catalog table. Only hashes are
 * stored, so the table never holds a usable key. The key's role and collection scope are checked
 * against the request's route with the same table the router uses (`shared/auth/policy.ts`); the api
 * function checks both again, so this is the first gate, not the only one.
 *
 * API Gateway caches the answer for 5 minutes per identity source: the Authorization header, the HTTP
 * method and the path (infra/cdk/constructs/api.ts). The method and path are in it because the answer
 * depends on them: cached per header alone, a scoped key allowed on its own collection would be
 * allowed on every other one for 5 minutes (and one refused there refused everywhere). A revoked key
 * (item deleted or `disabled: true`) stops working within the TTL.
 *
 * A refusal here is API Gateway's own 403 `{"message":"Forbidden"}` (a missing header is its 401
 * `{"message":"Unauthorized"}`), not Shoal's JSON error: the authorizer cannot shape the body.
 *
 * Self-contained on purpose: it needs one environment variable, one GetItem, and must stay small
 * and fast on cold start, so its only shared/ imports are dependency-free (key layout, policy, errors).
 */
import { createHash } from 'node:crypto';
import { DynamoDBClient, GetItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { APIGatewayRequestAuthorizerEventV2, APIGatewaySimpleAuthorizerWithContextResult } from 'aws-lambda';
import { grantOfKeyItem, type KeyItemFields } from '../../shared/auth/key-item.js';
import { decide, policyFor } from '../../shared/auth/policy.js';
import { ConfigError } from '../../shared/errors.js';
import { META_SK, apiKeyPk } from '../../shared/storage/keys.js';

export interface KeyContext {
  [key: string]: string;
  keyId: string;
  role: string;
}

type Result = APIGatewaySimpleAuthorizerWithContextResult<KeyContext | Record<string, never>>;

const table = process.env.SHOAL_CATALOG_TABLE;
if (!table) {
  throw new ConfigError('invalid Shoal configuration: SHOAL_CATALOG_TABLE: required', { field: 'SHOAL_CATALOG_TABLE' });
}

const ddb = new DynamoDBClient({});

const DENY: Result = { isAuthorized: false, context: {} };

/** `Bearer <token>` → token; anything else → undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : undefined;
}

export function keyHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function authorizationHeader(event: APIGatewayRequestAuthorizerEventV2): string | undefined {
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === 'authorization') return v;
  return event.identitySource?.[0];
}

/** The attributes `grantOfKeyItem` reads, from DynamoDB's wire format. */
export function keyItemFields(item: Record<string, AttributeValue>): KeyItemFields {
  const collections = item.collections;
  return {
    ...(item.keyId?.S !== undefined ? { keyId: item.keyId.S } : {}),
    ...(item.role ? { role: item.role.S ?? null } : {}),
    // Anything but a list (or set) of strings stays as it is, and grantOfKeyItem refuses it.
    ...(collections
      ? { collections: collections.L ? collections.L.map((v) => v.S ?? null) : (collections.SS ?? collections) }
      : {}),
    ...(item.disabled ? { disabled: item.disabled.BOOL ?? true } : {}),
    ...(item.expiresAt ? { expiresAt: item.expiresAt.S ?? null } : {}),
  };
}

export async function handler(event: APIGatewayRequestAuthorizerEventV2): Promise<Result> {
  const token = bearerToken(authorizationHeader(event));
  if (!token || token.length > 512) return DENY;
  const hash = keyHash(token);
  const out = await ddb.send(
    new GetItemCommand({
      TableName: table,
      Key: { pk: { S: apiKeyPk(hash) }, sk: { S: META_SK } },
      // `role` is a DynamoDB reserved word; the names are aliased alike for uniformity.
      ProjectionExpression: 'keyId, #r, #c, disabled, expiresAt',
      ExpressionAttributeNames: { '#r': 'role', '#c': 'collections' },
    }),
  );
  if (!out.Item) return DENY;
  const grant = grantOfKeyItem(keyItemFields(out.Item), Date.now());
  if (!grant) return DENY;
  const route = policyFor(event.requestContext?.http?.method ?? '', event.rawPath ?? '');
  // No route in the table: the router answers 404/405 to any valid key, so let it.
  if (route && !decide(grant, route.policy, route.params).allowed) return DENY;
  return { isAuthorized: true, context: { keyId: grant.keyId ?? hash.slice(0, 12), role: grant.role } };
}
