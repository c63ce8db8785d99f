/**
 * The HTTP API (payload format 2.0): every route of the route table (`ROUTE_POLICIES` and
 * `PUBLIC_ROUTE_KEYS` in shared/auth/policy.ts, served by shared/api/router.ts) as an explicit route (so
 * API Gateway's detailed metrics give latency per route), plus `$default` so that anything else still
 * reaches the router and gets its JSON 404/405. All routes share one Lambda integration (the
 * api function serves them all) and one REQUEST authorizer over hashed API keys, their roles and
 * collection scopes, cached 5 minutes per key, method and path.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { acknowledge } from '../nag.js';
import { Construct } from 'constructs';
import {
  PUBLIC_ROUTE_KEYS,
  ROUTE_POLICIES,
  splitRouteKey,
  type PublicRouteKey,
  type RouteKey,
} from '../../../shared/auth/policy.js';
import { CONSOLE_ROUTES } from '../../../shared/api/console.js';
import { MILVUS_ROUTES } from '../../../shared/api/milvus/index.js';
import { AUTHORIZER_CACHE_TTL, type ShoalSettings } from '../settings.js';

const asRoute = (key: RouteKey): { method: apigwv2.HttpMethod; path: string } => {
  const { method, path } = splitRouteKey(key);
  return { method: method as apigwv2.HttpMethod, path };
};

/**
 * Routes without the API-key authorizer (`PUBLIC_ROUTE_KEYS` in shared/auth/policy.ts): the liveness probe,
 * which answers status and version and nothing else, so load balancers and uptime checks need no key, and
 * the OpenAPI document, the API's public description.
 */
export const PUBLIC_ROUTES: ReadonlyArray<{ method: apigwv2.HttpMethod; path: string }> =
  PUBLIC_ROUTE_KEYS.map(asRoute);

/**
 * The v1 routes behind the authorizer: the keys of the route table's policies (`ROUTE_POLICIES` in
 * shared/auth/policy.ts, the table the router serves and the authorizer applies), imported, not restated.
 * `{name}` is the collection.
 */
export const V1_ROUTES: ReadonlyArray<{ method: apigwv2.HttpMethod; path: string }> = (
  Object.keys(ROUTE_POLICIES) as RouteKey[]
).map(asRoute);

const PUBLIC_ROUTE_REASONS: Record<PublicRouteKey, string> = {
  'GET /healthz': 'Liveness probe: answers {status, version} only, never data, endpoints or credentials.',
  'GET /v1/openapi.json': 'The OpenAPI document: the public description of the API, never data or credentials.',
};

/**
 * What API Gateway caches the authorizer's answer by. The answer depends on the route and the collection
 * in the path (shared/auth/policy.ts), so both the method and the path are part of it, not just the key:
 * per key alone, one allowed (or refused) request would decide every other route for the cache TTL.
 */
export const AUTHORIZER_IDENTITY_SOURCES = ['$request.header.Authorization', '$context.httpMethod', '$context.path'];

export interface ApiProps {
  settings: ShoalSettings;
  handler: lambda.IFunction;
  authorizer: lambda.IFunction;
}

export class Api extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLogs: logs.LogGroup;
  readonly url: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { settings } = props;
    const prod = settings.stage === 'prod';

    const authorizer = new HttpLambdaAuthorizer('ApiKey', props.authorizer, {
      authorizerName: `${settings.prefix}-api-key`,
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      identitySource: AUTHORIZER_IDENTITY_SOURCES,
      resultsCacheTtl: AUTHORIZER_CACHE_TTL,
    });
    const integration = new HttpLambdaIntegration('Api', props.handler, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });

    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      apiName: `${settings.prefix}-api`,
      description: 'Shoal vector database, HTTP API v1',
      createDefaultStage: false,
      defaultAuthorizer: authorizer,
      defaultIntegration: integration,
      corsPreflight: {
        allowOrigins: settings.corsOrigins,
        allowMethods: [apigwv2.CorsHttpMethod.GET, apigwv2.CorsHttpMethod.POST, apigwv2.CorsHttpMethod.DELETE],
        allowHeaders: ['Authorization', 'Content-Type'],
        maxAge: Duration.hours(1),
      },
    });
    for (const route of V1_ROUTES) {
      this.httpApi.addRoutes({ path: route.path, methods: [route.method], integration });
    }
    for (const key of PUBLIC_ROUTE_KEYS) {
      const route = asRoute(key);
      const [publicRoute] = this.httpApi.addRoutes({
        path: route.path,
        methods: [route.method],
        integration,
        authorizer: new apigwv2.HttpNoneAuthorizer(),
      });
      acknowledge(publicRoute, 'AwsSolutions-APIG4', PUBLIC_ROUTE_REASONS[key]);
    }
    // Milvus REST v2 (docs/milvus.md): authenticated in the function, which answers a bad key with Milvus's
    // HTTP 200 envelope (code 1800); an authorizer's bare 401/403 would reach Milvus clients as a transport error.
    for (const m of MILVUS_ROUTES) {
      const [milvusRoute] = this.httpApi.addRoutes({
        path: m.path,
        methods: [m.method as apigwv2.HttpMethod],
        integration,
        authorizer: new apigwv2.HttpNoneAuthorizer(),
      });
      acknowledge(
        milvusRoute,
        'AwsSolutions-APIG4',
        'Milvus REST v2: the api function checks the bearer key in process (same key store and route policies ' +
          "as the authorizer) and must answer refusals in Milvus's own envelope.",
      );
    }
    // The console's static pages (docs/console.md): public assets; every API call they make carries a key.
    for (const key of CONSOLE_ROUTES) {
      const route = asRoute(key);
      const [consoleRoute] = this.httpApi.addRoutes({
        path: route.path,
        methods: [route.method],
        integration,
        authorizer: new apigwv2.HttpNoneAuthorizer(),
      });
      acknowledge(
        consoleRoute,
        'AwsSolutions-APIG4',
        'The console: static HTML, script and style built into the function, no data; the page asks for a key ' +
          'and sends it with every API call, which the authorizer checks.',
      );
    }
    // $default (authorized) also catches OPTIONS; this route lets CORS preflights through without a key.
    // API Gateway answers them from the CORS configuration and never calls the integration.
    const [preflight] = this.httpApi.addRoutes({
      path: '/{proxy+}',
      methods: [apigwv2.HttpMethod.OPTIONS],
      integration,
      authorizer: new apigwv2.HttpNoneAuthorizer(),
    });
    acknowledge(
      preflight,
      'AwsSolutions-APIG4',
      'CORS preflight (OPTIONS) carries no credentials by design; API Gateway answers it from the CORS configuration.',
    );

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: prod ? logs.RetentionDays.THREE_MONTHS : logs.RetentionDays.TWO_WEEKS,
      removalPolicy: prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.stage = new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      detailedMetricsEnabled: true,
      throttle: settings.throttle,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
        format: apigwv2AccessLogFormat(),
      },
    });
    this.url = this.stage.url;
  }
}

/** JSON access-log lines: who (key id from the authorizer), what route, status, latency, errors. */
function apigwv2AccessLogFormat(): AccessLogFormat {
  // AccessLogFormat lives in aws-apigateway; custom() takes any $context template.
  const fields = {
    requestId: '$context.requestId',
    ip: '$context.identity.sourceIp',
    requestTime: '$context.requestTime',
    routeKey: '$context.routeKey',
    status: '$context.status',
    protocol: '$context.protocol',
    responseLength: '$context.responseLength',
    latencyMs: '$context.responseLatency',
    integrationLatencyMs: '$context.integrationLatency',
    integrationStatus: '$context.integrationStatus',
    integrationError: '$context.integrationErrorMessage',
    authorizerError: '$context.authorizer.error',
    keyId: '$context.authorizer.keyId',
    userAgent: '$context.identity.userAgent',
  };
  return AccessLogFormat.custom(JSON.stringify(fields));
}
