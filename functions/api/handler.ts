/**
 * Lambda entry of the HTTP API (API Gateway HTTP API, payload format 2.0). Thin: maps
 * the v2 event onto `createApi(...).handle`; routing, auth, validation and error mapping
 * live in `shared/api`. The runtime (service, authorizer) comes from `getRuntime`, built
 * once per container.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { createApi, jsonBody, type Api } from '../../shared/api/router.js';
import { toErrorResponse } from '../../shared/api/http-errors.js';
import { logger } from '../../shared/log.js';
import { metrics, recordShardCache, recordStorageTrace } from '../../shared/metrics.js';
import { getRuntime } from '../../shared/runtime.js';
import { traced, type TraceSummary } from '../../shared/storage/trace.js';

type Runtime = Awaited<ReturnType<typeof getRuntime>>;

/**
 * One Api per runtime. `getRuntime` caches the runtime itself (and the local stack resets
 * it on restart), so key on the runtime object rather than caching the Api blindly.
 */
const apis = new WeakMap<Runtime, Api>();

async function loadApi(): Promise<Api> {
  const runtime = await getRuntime();
  let api = apis.get(runtime);
  if (!api) {
    api = createApi({
      service: runtime.service,
      authorize: (token) => runtime.authorize(token),
      healthExtra: () => runtime.healthExtra(),
      version: runtime.version,
      imports: runtime.imports,
      lifecycle: runtime.lifecycle,
      migrations: runtime.migrations,
      identify: (token) => runtime.identify(token),
      keys: runtime.keys,
      drift: runtime.drift,
      milvusSchemas: runtime.objects,
    });
    apis.set(runtime, api);
  }
  return api;
}

// Configuration is validated during init: a bad deployment fails its cold start.
await getRuntime();

export async function apiHandler(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyResultV2> {
  let instance: Api;
  try {
    instance = await loadApi();
  } catch (err) {
    const { statusCode, headers, body } = toErrorResponse(err);
    return { statusCode, headers: { 'Content-Type': 'application/json', ...headers }, body: jsonBody(body) };
  }
  const { cache } = await getRuntime();
  const before = cache.stats();
  try {
    const { result, trace } = await traced(() =>
      instance.handle({
        method: event.requestContext.http.method,
        path: event.rawPath,
        query: event.rawQueryString,
        headers: event.headers ?? {},
        body: event.body,
        isBase64Encoded: event.isBase64Encoded,
      }),
    );
    const summary = trace.summary();
    recordStorageTrace(summary);
    logger.debug('storage calls', { path: event.rawPath, ...summary, trace: trace.calls });
    // Clients and benches see what the request cost in storage: the count that decides latency on AWS.
    return {
      ...result,
      headers: {
        ...result.headers,
        'X-Shoal-Round-Trips': String(summary.roundTrips),
        'Server-Timing': serverTiming(summary),
      },
    };
  } finally {
    recordShardCache(before, cache.stats());
  }
}

/** `Server-Timing` of a request's storage: its busy time, round trips and calls. */
function serverTiming(s: TraceSummary): string {
  return `storage;dur=${s.storageMs.toFixed(2)};desc="${s.roundTrips} round trips, ${s.calls} calls"`;
}

export const handler = middy(apiHandler).use(injectLambdaContext(logger)).use(logMetrics(metrics));
