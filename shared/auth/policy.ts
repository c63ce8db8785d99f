/**
 * Who may call what: the one route → role table, shared by the router (`shared/api/router.ts`, local mode
 * and the api function) and the API Gateway authorizer (`functions/authorizer`), so both decide alike.
 * It imports nothing: the authorizer bundles it and must stay small (docs/architecture.md §10.2).
 *
 * Roles are ordered `read` < `write` < `admin`; each includes the ones below it. A key may be limited to a
 * list of collections (`collections`): such a scoped key may only call routes that name one of them in the
 * path (the policy says which path parameter), plus the non-admin routes that name no collection (health,
 * listing, models, feedback). Admin routes that name no collection (creating collections, models, keys)
 * need an unscoped key: a scoped admin cannot widen its own reach.
 *
 * Scopes are matched against the name as it appears in the path. Collections and aliases share one
 * namespace (`shared/core.ts`), so a scope entry may name an alias; such a key follows the alias when it
 * moves, and does not reach the collection behind it under its own name.
 */

export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Whether `have` includes `need`. */
export function roleIncludes(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** What a caller must hold to use a route. */
export interface RoutePolicy {
  role: Role;
  /** The path parameter naming the collection (or collection alias) the route acts on, if any. */
  collection?: string;
}

/** `METHOD /path/{param}`: the API Gateway route-key form (`infra/cdk/constructs/api.ts` V1_ROUTES). */
export type RouteKey = `${string} /${string}`;

/** `{method, path}` of a route key. */
export function splitRouteKey(key: RouteKey): { method: string; path: string } {
  const space = key.indexOf(' ');
  return { method: key.slice(0, space), path: key.slice(space + 1) };
}

const read: RoutePolicy = { role: 'read' };
const write: RoutePolicy = { role: 'write' };
const admin: RoutePolicy = { role: 'admin' };
const readCol: RoutePolicy = { role: 'read', collection: 'name' };
const writeCol: RoutePolicy = { role: 'write', collection: 'name' };
const adminCol: RoutePolicy = { role: 'admin', collection: 'name' };
// Collection aliases share the collection namespace; model aliases (under /v1/models) do not.
const readAlias: RoutePolicy = { role: 'read', collection: 'alias' };
const adminAlias: RoutePolicy = { role: 'admin', collection: 'alias' };

/**
 * Every route the router serves behind a key, and what it needs: the light half of the route table
 * (`shared/api/routes.ts` holds the rest: schemas, summaries, handlers). The router, the OpenAPI document,
 * the CDK routes (`infra/cdk/constructs/api.ts`) and the route list in docs/api.md all come from this one
 * list; test/unit/routes-table.test.ts proves they are one set.
 *
 * Reads are every GET plus the POSTs that only read (search, vectors/get); writes change vectors or start
 * imports; everything that changes configuration, lifecycle state or keys is admin.
 */
export const ROUTE_POLICIES = {
  'GET /v1/health': read,
  // A scoped key sees only its own collections in the list (the router filters it).
  'GET /v1/collections': read,
  'POST /v1/collections': admin,
  'GET /v1/collections/{name}': readCol,
  'PATCH /v1/collections/{name}': adminCol,
  'DELETE /v1/collections/{name}': adminCol,
  'GET /v1/collections/{name}/vectors': readCol,
  'POST /v1/collections/{name}/vectors': writeCol,
  'PATCH /v1/collections/{name}/vectors/{id}': writeCol,
  'POST /v1/collections/{name}/vectors/get': readCol,
  'POST /v1/collections/{name}/vectors/delete': writeCol,
  'POST /v1/collections/{name}/search': readCol,
  'POST /v1/collections/{name}/index': adminCol,
  'GET /v1/collections/{name}/candidates': readCol,
  'GET /v1/collections/{name}/candidates/{candidate}': readCol,
  'DELETE /v1/collections/{name}/candidates/{candidate}': adminCol,
  'POST /v1/collections/{name}/candidates/{candidate}/promote': adminCol,
  'GET /v1/collections/{name}/imports': readCol,
  'POST /v1/collections/{name}/imports': writeCol,
  'POST /v1/collections/{name}/imports/uploads': writeCol,
  'GET /v1/collections/{name}/imports/{jobId}/rejects': readCol,
  'GET /v1/collections/{name}/imports/{jobId}': readCol,
  // Cancelling an import is part of writing data, like starting one.
  'DELETE /v1/collections/{name}/imports/{jobId}': writeCol,
  // A migration creates its target collection: the same unscoped admin right as POST /v1/collections.
  'POST /v1/collections/{name}/migrations': admin,
  'GET /v1/collections/{name}/migrations': readCol,
  'GET /v1/collections/{name}/migrations/{jobId}': readCol,
  'DELETE /v1/collections/{name}/migrations/{jobId}': adminCol,
  'GET /v1/collections/{name}/versions': readCol,
  'POST /v1/collections/{name}/versions/{v}/evaluate': adminCol,
  'POST /v1/collections/{name}/versions/{v}/tune': adminCol,
  // Reading a tune job reads an evaluation in the making: the read right of `GET …/versions`.
  'GET /v1/collections/{name}/tune-jobs/{jobId}': readCol,
  'GET /v1/collections/{name}/drift': readCol,
  // Accepting a new distribution changes what alarms compare with: admin, like index builds.
  'POST /v1/collections/{name}/drift/reference': adminCol,
  // A scoped key sees only the aliases in its scope in the list (the router filters it).
  'GET /v1/aliases': read,
  'GET /v1/aliases/{alias}': readAlias,
  'PUT /v1/aliases/{alias}': adminAlias,
  'DELETE /v1/aliases/{alias}': adminAlias,
  'GET /v1/aliases/{alias}/history': readAlias,
  'POST /v1/aliases/{alias}/rollback': adminAlias,
  'GET /v1/aliases/{alias}/experiment': readAlias,
  'POST /v1/aliases/{alias}/experiment': adminAlias,
  'POST /v1/aliases/{alias}/experiment/promote': adminAlias,
  'POST /v1/aliases/{alias}/experiment/abort': adminAlias,
  // Feedback moves experiment counters: a write, but about a query id, not a collection in the path.
  'POST /v1/feedback': write,
  'GET /v1/models': read,
  'GET /v1/models/{model}': read,
  'GET /v1/models/{model}/versions': read,
  'POST /v1/models/{model}/versions': admin,
  'GET /v1/models/{model}/versions/{v}': read,
  'PUT /v1/models/{model}/versions/{v}/artifact': admin,
  'POST /v1/models/{model}/versions/{v}/commit': admin,
  'POST /v1/models/{model}/versions/{v}/upload': admin,
  'POST /v1/models/{model}/versions/{v}/upload/abort': admin,
  'GET /v1/models/{model}/compare': read,
  'GET /v1/models/{model}/aliases/{alias}': read,
  'PUT /v1/models/{model}/aliases/{alias}': admin,
  'GET /v1/models/{model}/aliases/{alias}/history': read,
  // Keys: admin with no collection in the path, so only an unscoped admin key manages keys.
  'GET /v1/keys': admin,
  'POST /v1/keys': admin,
  'DELETE /v1/keys/{id}': admin,
} as const satisfies Record<RouteKey, RoutePolicy>;

/** A route served behind a key. */
export type ApiRouteKey = keyof typeof ROUTE_POLICIES;

/**
 * Routes served without a key (no authorizer on API Gateway, answered before the key check): the liveness
 * probe, which answers status and version only, and the OpenAPI document, the API's public description.
 */
export const PUBLIC_ROUTE_KEYS = ['GET /healthz', 'GET /v1/openapi.json'] as const satisfies readonly RouteKey[];

export type PublicRouteKey = (typeof PUBLIC_ROUTE_KEYS)[number];

/** The caller as the policy sees it: its role and, for a scoped key, the names it may touch. */
export interface Grant {
  role: Role;
  /** Collection (or alias) names; undefined = every collection. */
  collections?: readonly string[];
}

export type Decision = { allowed: true } | { allowed: false; reason: string };

/**
 * Whether `grant` may call a route with `policy`; `params` are the route's path parameters, already
 * percent-decoded.
 */
export function decide(grant: Grant, policy: RoutePolicy, params: Readonly<Record<string, string>>): Decision {
  if (!roleIncludes(grant.role, policy.role)) {
    return { allowed: false, reason: `this route needs the ${policy.role} role; the key has ${grant.role}` };
  }
  if (grant.collections === undefined) return { allowed: true };
  if (policy.collection !== undefined) {
    const name = params[policy.collection];
    if (name !== undefined && grant.collections.includes(name)) return { allowed: true };
    return { allowed: false, reason: 'the key is not scoped to this collection' };
  }
  if (policy.role === 'admin') {
    return { allowed: false, reason: 'this route needs an admin key without a collection scope' };
  }
  return { allowed: true };
}

/** Whether a scoped grant may see `name` in a listing (unscoped grants see everything). */
export function grantCovers(grant: Grant, name: string): boolean {
  return grant.collections === undefined || grant.collections.includes(name);
}

const templates = (Object.keys(ROUTE_POLICIES) as ApiRouteKey[]).map((key) => {
  const { method, path } = splitRouteKey(key);
  return { key, method, segments: path.slice(1).split('/') };
});

/**
 * The policy of a concrete request (method + raw path, query ignored, percent-encoded as received), with
 * its path parameters decoded; undefined when no route matches (the router answers 404/405) or a
 * parameter is not valid percent-encoding (the router answers 400).
 */
export function policyFor(
  method: string,
  rawPath: string,
): { key: ApiRouteKey; policy: RoutePolicy; params: Record<string, string> } | undefined {
  const q = rawPath.indexOf('?');
  let p = q === -1 ? rawPath : rawPath.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (!p.startsWith('/')) return undefined;
  const segments = p.slice(1).split('/');
  const m = method.toUpperCase();
  outer: for (const t of templates) {
    if (t.method !== m || t.segments.length !== segments.length) continue;
    const params: Record<string, string> = {};
    for (let i = 0; i < segments.length; i++) {
      const want = t.segments[i];
      if (want.startsWith('{')) {
        if (segments[i] === '') continue outer;
        try {
          params[want.slice(1, -1)] = decodeURIComponent(segments[i]);
        } catch {
          return undefined;
        }
      } else if (want !== segments[i]) continue outer;
    }
    return { key: t.key, policy: ROUTE_POLICIES[t.key], params };
  }
  return undefined;
}
