/**
 * What a stored API-key item (`APIKEY#<sha256>` / `META`, shared/storage/keys.ts) grants, read the same
 * way by the api function and the API Gateway authorizer. Dependency-free, like `policy.ts`, for the
 * authorizer's bundle.
 *
 * Items written before roles existed carry no `role` and stay admin keys (they were all admin). An
 * item that is malformed in any field that limits the key (role, collections) grants nothing: a
 * broken restriction must not turn into no restriction.
 */
import { isRole, type Grant } from './policy.js';

/** A per-key token bucket: `perSecond` tokens refill each second, up to `burst`. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

/** The item's attributes as plain values (the authorizer converts from DynamoDB's AttributeValues). */
export interface KeyItemFields {
  keyId?: unknown;
  role?: unknown;
  collections?: unknown;
  disabled?: unknown;
  expiresAt?: unknown;
  rateLimit?: unknown;
}

export interface KeyGrant extends Grant {
  keyId?: string;
  /** The key's own rate limit, when it has one (else the deployment default applies). */
  rateLimit?: RateLimit;
}

function isRateLimit(v: unknown): v is RateLimit {
  if (typeof v !== 'object' || v === null) return false;
  const { perSecond, burst } = v as Record<string, unknown>;
  return typeof perSecond === 'number' && perSecond > 0 && typeof burst === 'number' && burst >= 1;
}

/** The grant of a key item, or undefined when the key must be refused (absent, disabled, expired, malformed). */
export function grantOfKeyItem(item: KeyItemFields | undefined, nowMs: number): KeyGrant | undefined {
  if (item === undefined || item.disabled === true) return undefined;
  if (item.expiresAt !== undefined) {
    const at = typeof item.expiresAt === 'string' ? Date.parse(item.expiresAt) : NaN;
    if (!(at > nowMs)) return undefined;
  }
  const role = item.role === undefined ? 'admin' : item.role;
  if (!isRole(role)) return undefined;
  let collections: string[] | undefined;
  if (item.collections !== undefined) {
    if (!Array.isArray(item.collections) || !item.collections.every((c) => typeof c === 'string')) return undefined;
    collections = item.collections as string[];
  }
  return {
    role,
    ...(collections ? { collections } : {}),
    ...(typeof item.keyId === 'string' ? { keyId: item.keyId } : {}),
    ...(isRateLimit(item.rateLimit) ? { rateLimit: item.rateLimit } : {}),
  };
}
