/**
 * API Gateway HTTP API Lambda authorizer (REQUEST, simple responses): the bearer token's sha256
 * (hex) names the key item `pk = APIKEY#<hash>, sk = META` in the Catalog table. Only hashes are
 * stored, so the table never holds a usable key. API Gateway caches the answer per Authorization
 * header for 5 minutes; a revoked key (item deleted or `disabled: true`) stops working within that.
 *
 * Self-contained on purpose: it needs one environment variable, one GetItem, and must stay small
 * and fast on cold start, so its only shared/ import is the dependency-free key layout.
 */
import { createHash } from 'node:crypto';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayRequestAuthorizerEventV2, APIGatewaySimpleAuthorizerWithContextResult } from 'aws-lambda';
import { META_SK, apiKeyPk } from '../../shared/storage/keys.js';

export interface KeyContext {
  [key: string]: string;
  keyId: string;
}

type Result = APIGatewaySimpleAuthorizerWithContextResult<KeyContext | Record<string, never>>;

const table = process.env.SHOAL_CATALOG_TABLE;
if (!table) throw new Error('invalid Shoal configuration: SHOAL_CATALOG_TABLE: required');

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

export async function handler(event: APIGatewayRequestAuthorizerEventV2): Promise<Result> {
  const token = bearerToken(authorizationHeader(event));
  if (!token || token.length > 512) return DENY;
  const hash = keyHash(token);
  const out = await ddb.send(
    new GetItemCommand({
      TableName: table,
      Key: { pk: { S: apiKeyPk(hash) }, sk: { S: META_SK } },
      ProjectionExpression: 'keyId, disabled, expiresAt',
    }),
  );
  const item = out.Item;
  if (!item) return DENY;
  if (item.disabled?.BOOL === true) return DENY;
  const expiresAt = item.expiresAt?.S;
  if (expiresAt && Date.parse(expiresAt) <= Date.now()) return DENY;
  return { isAuthorized: true, context: { keyId: item.keyId?.S ?? hash.slice(0, 12) } };
}
