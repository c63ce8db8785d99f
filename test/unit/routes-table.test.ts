/**
 * Routes as data (shared/api/routes.ts): the router, the policy table the authorizer applies, the OpenAPI
 * document, the CDK routes and the route list of docs/api.md are one set of routes; the committed
 * docs/openapi.json, docs/api.md and the SDK's api-types.gen.ts are what `npm run openapi` writes; the
 * authorizer's bundle carries none of the table's schemas or handlers.
 */
import { CONSOLE_ROUTES } from '../../shared/api/console.js';
import { MILVUS_ROUTES } from '../../shared/api/milvus/index.js';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import {
  API_DOC_FILE,
  API_TYPES_FILE,
  OPENAPI_FILE,
  ROUTES_BEGIN,
  ROUTES_END,
  generatedFiles,
} from '../../infra/openapi.js';
import { Api as ApiConstruct, PUBLIC_ROUTES as CDK_PUBLIC_ROUTES, V1_ROUTES } from '../../infra/cdk/constructs/api.js';
import { PROJECT_ROOT, SHOAL_BUNDLING } from '../../infra/cdk/constructs/shoal-function.js';
import { OPENAPI_PATH, buildOpenApi } from '../../shared/api/openapi.js';
import { ERROR_CODES, ERROR_STATUS } from '../../shared/api/responses.js';
import { createApi } from '../../shared/api/router.js';
import { PUBLIC_ROUTES, ROUTES, errorsOf } from '../../shared/api/routes.js';
import { PUBLIC_ROUTE_KEYS, ROUTE_POLICIES } from '../../shared/auth/policy.js';
import * as errors from '../../shared/errors.js';
import * as httpErrors from '../../shared/api/http-errors.js';
import { ObjectChangedError, UnreadableFileError } from '../../shared/import/types.js';
import type { ImportApi } from '../../shared/import/service.js';
import type { KeyAdmin } from '../../shared/auth/keys.js';
import { SearchUnavailableError } from '../../shared/search/coordinator.js';
import type { LifecycleService, ShoalService } from '../../shared/service.js';
import { StorageUnavailableError } from '../../shared/storage/retry.js';
import { readRepoFile } from '../helpers/repo.js';

const sorted = (xs: Iterable<string>) => [...xs].sort();
const stub = <T>() => ({}) as T;

function fullApi() {
  return createApi({
    service: stub<ShoalService>(),
    lifecycle: stub<LifecycleService>(),
    imports: stub<ImportApi>(),
    keys: stub<KeyAdmin>(),
    authorize: () => true,
    version: 'test',
  });
}

/** `METHOD /path` of every operation in an OpenAPI document. */
function operations(doc: Record<string, unknown>): string[] {
  return Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
  );
}

/** The routes of the API construct, as CloudFormation gets them (a stack of the construct alone). */
function synthesizedRoutes(): { keyed: string[]; open: string[] } {
  const stack = new Stack(new App(), 'RoutesOnly');
  const fn = (id: string) =>
    new lambda.Function(stack, id, {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({})'),
    });
  new ApiConstruct(stack, 'Api', {
    settings: {
      stage: 'dev',
      prefix: 'shoal-routes',
      searchSlots: 1,
      corsOrigins: ['*'],
      throttle: { rateLimit: 10, burstLimit: 10 },
      builderLagAlarmRows: 1,
      logRetentionDays: 7,
      buildWorkers: 1,
    },
    handler: fn('Handler'),
    authorizer: fn('Authorizer'),
  });
  const routes = Object.values(Template.fromStack(stack).findResources('AWS::ApiGatewayV2::Route')).map(
    (r) => r.Properties as { RouteKey: string; AuthorizationType?: string },
  );
  // Besides v1: the catch-all, CORS preflights, the Milvus REST v2 API (its own wire, docs/milvus.md), the console.
  const other = new Set<string>([
    '$default',
    'OPTIONS /{proxy+}',
    ...MILVUS_ROUTES.map((r) => `${r.method} ${r.path}`),
    ...CONSOLE_ROUTES,
  ]);
  const real = routes.filter((r) => !other.has(r.RouteKey));
  return {
    keyed: real.filter((r) => r.AuthorizationType === 'CUSTOM').map((r) => r.RouteKey),
    open: real.filter((r) => r.AuthorizationType === 'NONE').map((r) => r.RouteKey),
  };
}

/** The routes listed between the markers of docs/api.md. */
function docsRouteList(): string[] {
  const text = readRepoFile(API_DOC_FILE);
  const block = text.slice(text.indexOf(ROUTES_BEGIN), text.indexOf(ROUTES_END));
  return [...block.matchAll(/^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
}

describe('the route table', () => {
  it('has one entry per policy, with that policy, and unique operation ids', () => {
    const keys = ROUTES.map((r) => r.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(sorted(keys)).toEqual(sorted(Object.keys(ROUTE_POLICIES)));
    for (const r of ROUTES) expect(r.policy, r.key).toBe(ROUTE_POLICIES[r.key]);
    const ids = [...ROUTES, ...PUBLIC_ROUTES].map((r) => r.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('serves PATCH /v1/collections/{name} only with the lifecycle API, like before', () => {
    expect(sorted(fullApi().routes)).toEqual(sorted(Object.keys(ROUTE_POLICIES)));
    const bare = createApi({ service: stub<ShoalService>(), authorize: () => true, version: 'x' });
    expect(sorted(bare.routes)).toEqual(
      sorted(Object.keys(ROUTE_POLICIES)).filter((k) => k !== 'PATCH /v1/collections/{name}'),
    );
  });

  it('maps every error class to the status ERROR_STATUS gives its code', () => {
    type Ctor = new (...args: unknown[]) => errors.ShoalError;
    const classes = (
      [
        ...Object.values(errors),
        ...Object.values(httpErrors),
        UnreadableFileError,
        ObjectChangedError,
        SearchUnavailableError,
        StorageUnavailableError,
      ] as unknown[]
    ).filter((c): c is Ctor => typeof c === 'function' && c.prototype instanceof errors.ShoalError);
    const found = new Map<string, number>();
    for (const C of classes) {
      let e: errors.ShoalError;
      try {
        e = new C('m', [], {});
      } catch {
        continue; // abstract
      }
      if (!e.code) continue;
      found.set(e.code, e.statusCode);
    }
    expect(found.size).toBeGreaterThan(15);
    for (const [code, status] of found) expect(ERROR_STATUS[code as keyof typeof ERROR_STATUS], code).toBe(status);
    for (const code of ERROR_CODES) if (code !== 'INTERNAL') expect(found.has(code), code).toBe(true);
  });

  it('declares for every route the errors every route can answer', () => {
    for (const r of ROUTES) {
      const codes = errorsOf(r);
      expect(codes, r.key).toEqual(expect.arrayContaining(['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED', 'INTERNAL']));
      if (r.body) expect(codes, r.key).toEqual(expect.arrayContaining(['VALIDATION_ERROR', 'INVALID_JSON']));
      if (r.params.length) expect(codes, r.key).toContain('VALIDATION_ERROR');
    }
  });
});

describe('one set of routes', () => {
  it('the router, the policies, the OpenAPI document, the CDK routes and the docs route list', () => {
    const router = sorted([...fullApi().routes, ...PUBLIC_ROUTE_KEYS]);
    expect(router.length).toBeGreaterThan(45);
    const policies = sorted([...Object.keys(ROUTE_POLICIES), ...PUBLIC_ROUTE_KEYS]);
    const openapi = sorted(operations(buildOpenApi('test')));
    const cdkExports = sorted([...V1_ROUTES, ...CDK_PUBLIC_ROUTES].map((r) => `${r.method} ${r.path}`));
    const synthesized = synthesizedRoutes();
    const docs = sorted(docsRouteList());
    expect(policies).toEqual(router);
    expect(openapi).toEqual(router);
    expect(cdkExports).toEqual(router);
    expect(sorted([...synthesized.keyed, ...synthesized.open])).toEqual(router);
    expect(docs).toEqual(router);
    // Without the authorizer: exactly the public routes, which the router answers before the key check.
    expect(sorted(synthesized.open)).toEqual(sorted(PUBLIC_ROUTE_KEYS));
    expect(PUBLIC_ROUTE_KEYS).toContain(`GET ${OPENAPI_PATH}`);
  }, 60_000);
});

describe('generated files', () => {
  it.each([OPENAPI_FILE, API_DOC_FILE, API_TYPES_FILE])(
    '%s is up to date (else run `npm run openapi`)',
    async (file) => {
      const want = (await generatedFiles())[file];
      const have = readRepoFile(file);
      expect(have === want, `${file} differs from what the route table generates: run \`npm run openapi\``).toBe(true);
    },
  );
});

describe('the authorizer bundle', () => {
  it('imports the policy table, not the route table, its schemas or zod', async () => {
    const b = SHOAL_BUNDLING;
    const result = await build({
      absWorkingDir: PROJECT_ROOT,
      entryPoints: [path.join(PROJECT_ROOT, 'functions/authorizer/handler.ts')],
      bundle: true,
      write: false,
      platform: 'node',
      target: b.target,
      format: b.format,
      outfile: path.join(PROJECT_ROOT, 'cdk.out', 'routes-table-test', 'index.mjs'),
      external: b.externalModules,
      mainFields: b.mainFields,
      metafile: true,
      logLevel: 'error',
    });
    const inputs = Object.keys((result.metafile as Metafile).inputs);
    expect(inputs).toContain('shared/auth/policy.ts');
    expect(inputs.filter((f) => f.startsWith('shared/api/') || f.includes('node_modules/zod/'))).toEqual([]);
  }, 60_000);
});
