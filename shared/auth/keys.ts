/**
 * API keys: who is calling (`authenticate`) and key management (`create`, `list`, `revoke`) for
 * `/v1/keys`. Keys are random (`shoal_` + 32 random bytes, base64url) and shown once; only their sha256
 * is stored (`ApiKeyStore`). The keys of the environment (`SHOAL_API_KEY`, local mode's bootstrap key) are
 * full admin keys that live nowhere else. docs/security.md describes the model; docs/architecture.md §10.2
 * where it sits.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { NotFoundError, ValidationError } from '../errors.js';
import { logger } from '../log.js';
import { grantOfKeyItem, type KeyGrant, type KeyItemFields, type RateLimit } from './key-item.js';
import type { Role } from './policy.js';

/** Every key this module makes starts with it, so secret scanners (and people) can spot a leaked one. */
export const KEY_TOKEN_PREFIX = 'shoal_';
/** Ids of keys made here; the registry (and `lastUsedAt`) exists for these only. */
export const KEY_ID = /^key_[0-9a-f]{16}$/;
/** Longer bearer tokens are refused unhashed: nothing Shoal issues comes near it. */
export const MAX_TOKEN_LENGTH = 512;

/** A key as stored in the registry (never the key itself; the hash stays inside the store). */
export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  /** Collection (or alias) names the key is limited to; absent = all. */
  collections?: string[];
  createdBy: string;
  createdAt: string;
  expiresAt?: string;
  rateLimit?: RateLimit;
  lastUsedAt?: string;
}

/** What `POST /v1/keys` returns: the record plus the key, this once. */
export interface CreatedKey extends ApiKeyRecord {
  key: string;
}

export interface CreateKeyInput {
  name: string;
  role: Role;
  collections?: string[];
  expiresAt?: string;
  rateLimit?: RateLimit;
}

/**
 * Where keys live. Two items per key, no transactions (docs/architecture.md §3.3): the key item
 * (`APIKEY#<sha256>`, what every check reads) and a registry entry by id (listing, revoking by id,
 * `lastUsedAt`).
 */
export interface ApiKeyStore {
  /** Registry entry first, then the key item: a failure between leaves a listed key that does not work. */
  create(sha256Hex: string, record: ApiKeyRecord): Promise<void>;
  list(): Promise<ApiKeyRecord[]>;
  /** Key item first, then the registry entry; the revoked key's hash, or undefined for an unknown id. */
  revoke(id: string): Promise<string | undefined>;
  /** The key item's fields, or undefined when there is none. */
  lookup(sha256Hex: string): Promise<KeyItemFields | undefined>;
  /** Records `lastUsedAt` on a registry entry (never re-creating a revoked one). */
  touch(id: string, at: string): Promise<void>;
}

/** The caller of a request, as the router needs it. */
export interface Principal extends KeyGrant {
  /** Who the caller is in lifecycle history: the key id, else a hash prefix of the key. */
  actor: string;
  /** The rate-limit bucket (the key's hash); stable per key, never the key itself. */
  bucket: string;
  /** Applied by the router when set; the environment's keys have none. */
  rateLimit?: RateLimit;
}

/** Key management as the router calls it (`/v1/keys`). */
export interface KeyAdmin {
  create(input: CreateKeyInput, caller: { actor: string }): Promise<CreatedKey>;
  list(): Promise<ApiKeyRecord[]>;
  revoke(id: string): Promise<void>;
}

export interface ApiKeysOptions {
  store: ApiKeyStore;
  /** Plain keys from the environment: admin, unscoped, not rate-limited. */
  envKeys?: readonly string[];
  /** Applied to catalog keys without their own `rateLimit`; undefined = no limit. */
  defaultRateLimit?: RateLimit;
  now?: () => number;
  /**
   * How long a container trusts a key check (default 60 s accepted, 10 s refused). Longer = fewer
   * GetItems, slower revocation on other containers (the revoking container forgets at once).
   */
  acceptTtlMs?: number;
  rejectTtlMs?: number;
  /**
   * Least time between two `lastUsedAt` writes of one key from one container (default 60 s): the field
   * is minute-accurate at a cost of at most one write per key per container per minute.
   */
  touchEveryMs?: number;
}

/** Answers kept at most; the cache is dropped whole beyond it (a flood of random keys cannot grow it). */
const MAX_CACHED = 10_000;

function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class ApiKeys implements KeyAdmin {
  private readonly store: ApiKeyStore;
  private readonly envDigests: Buffer[];
  private readonly now: () => number;
  private readonly cache = new Map<string, { grant: KeyGrant | undefined; until: number }>();
  private readonly touched = new Map<string, number>();

  constructor(private readonly opts: ApiKeysOptions) {
    this.store = opts.store;
    this.envDigests = (opts.envKeys ?? []).map(sha256);
    this.now = opts.now ?? Date.now;
  }

  /** The caller behind a bearer token, or undefined when it is not a valid key. */
  async authenticate(token: string | undefined): Promise<Principal | undefined> {
    if (!token || token.length > MAX_TOKEN_LENGTH) return undefined;
    const digest = sha256(token);
    const hash = digest.toString('hex');
    // Compared as digests in constant time: neither content nor length leaks through timing.
    if (this.envDigests.some((d) => timingSafeEqual(d, digest))) {
      return { role: 'admin', actor: `key:${hash.slice(0, 12)}`, bucket: hash };
    }
    const grant = await this.grantOf(hash);
    if (!grant) return undefined;
    if (grant.keyId !== undefined) await this.touch(grant.keyId);
    const rateLimit = grant.rateLimit ?? this.opts.defaultRateLimit;
    return {
      ...grant,
      actor: grant.keyId ?? `key:${hash.slice(0, 12)}`,
      bucket: hash,
      ...(rateLimit ? { rateLimit } : {}),
    };
  }

  async create(input: CreateKeyInput, caller: { actor: string }): Promise<CreatedKey> {
    const now = this.now();
    if (input.expiresAt !== undefined && !(Date.parse(input.expiresAt) > now)) {
      throw new ValidationError('expiresAt must be in the future', { field: 'expiresAt' });
    }
    const key = `${KEY_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const record: ApiKeyRecord = {
      id: `key_${randomBytes(8).toString('hex')}`,
      name: input.name,
      role: input.role,
      ...(input.collections ? { collections: [...new Set(input.collections)] } : {}),
      createdBy: caller.actor,
      createdAt: new Date(now).toISOString(),
      ...(input.expiresAt !== undefined ? { expiresAt: new Date(Date.parse(input.expiresAt)).toISOString() } : {}),
      ...(input.rateLimit ? { rateLimit: input.rateLimit } : {}),
    };
    await this.store.create(sha256(key).toString('hex'), record);
    return { ...record, key };
  }

  async list(): Promise<ApiKeyRecord[]> {
    return (await this.store.list()).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async revoke(id: string): Promise<void> {
    if (!KEY_ID.test(id)) throw new NotFoundError(`no API key with id ${JSON.stringify(id.slice(0, 64))}`);
    const hash = await this.store.revoke(id);
    if (hash === undefined) throw new NotFoundError(`no API key with id ${JSON.stringify(id)}`);
    // This container stops accepting it now; others within acceptTtlMs (docs/security.md).
    this.cache.delete(hash);
  }

  private async grantOf(hash: string): Promise<KeyGrant | undefined> {
    const now = this.now();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now) return hit.grant;
    const item = await this.store.lookup(hash);
    const grant = grantOfKeyItem(item, now);
    let until = now + (grant ? (this.opts.acceptTtlMs ?? 60_000) : (this.opts.rejectTtlMs ?? 10_000));
    // An accepted key is not trusted past its expiry, cached or not.
    if (grant && typeof item?.expiresAt === 'string') until = Math.min(until, Date.parse(item.expiresAt));
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(hash, { grant, until });
    return grant;
  }

  /** Best effort: a failed write is logged and never fails the request. */
  private async touch(id: string): Promise<void> {
    if (!KEY_ID.test(id)) return;
    const now = this.now();
    const last = this.touched.get(id);
    if (last !== undefined && now - last < (this.opts.touchEveryMs ?? 60_000)) return;
    if (this.touched.size >= MAX_CACHED) this.touched.clear();
    this.touched.set(id, now);
    try {
      await this.store.touch(id, new Date(now).toISOString());
    } catch (err) {
      logger.warn('could not record lastUsedAt of an API key', { keyId: id, error: err as Error });
    }
  }
}
