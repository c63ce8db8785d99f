/**
 * A local Lambda Invoke API endpoint that dispatches to in-process handlers, so the real
 * `@aws-sdk/client-lambda` `LambdaClient` (with `endpoint` set to this server) invokes local functions
 * exactly as it invokes deployed ones.
 *
 * Speaks `POST /2015-03-31/functions/{FunctionName}/invocations`:
 * - `X-Amz-Invocation-Type: RequestResponse` (default): 200 with the JSON result; a thrown error gives
 *   200 + `X-Amz-Function-Error: Unhandled` + `{ errorType, errorMessage, trace }`, as the Node runtime
 *   does; a handler that outlives its timeout gives the same with `errorType: 'Sandbox.Timedout'`.
 * - `Event`: 202 at once, the handler runs in the background (errors are reported, not retried).
 * - `DryRun`: 204.
 * - FunctionName may be a name, `name:qualifier`, a partial ARN or a full ARN; only the unqualified
 *   function / `$LATEST` exists. Unknown names: 404 `ResourceNotFoundException`.
 * - Payloads go through JSON both ways (no shared object references), with Lambda's size limits:
 *   6 MB request and response for RequestResponse, 1 MB for Event.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClientContext, Context } from 'aws-lambda';

export type LocalFunction = (payload: unknown, context: Context) => Promise<unknown>;

export interface LocalFunctionConfig {
  handler: LocalFunction;
  /** The function's configured timeout; default: the emulator's `defaultTimeoutMs`. */
  timeoutMs?: number;
  /** Reported as `context.memoryLimitInMB`; default 1024. */
  memoryMb?: number;
}

export interface LambdaEmulatorOptions {
  functions: Record<string, LocalFunction | LocalFunctionConfig>;
  /** 0 / undefined = ephemeral. */
  port?: number;
  host?: string;
  region?: string;
  account?: string;
  /** Timeout for functions without their own; default 30 s. */
  defaultTimeoutMs?: number;
  /** Errors of `Event` invocations and timeouts land here; default `console.error`. */
  onError?: (err: unknown, info: { functionName: string; awsRequestId: string; invocationType: string }) => void;
}

export interface LambdaEmulator {
  /** `http://127.0.0.1:<port>`: the `endpoint` for `new LambdaClient({ endpoint })`. */
  endpoint: string;
  /** Stops accepting requests and resolves once running invocations (sync and async) have finished. */
  stop(): Promise<void>;
}

const SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024; // 6,291,456 bytes
const ASYNC_PAYLOAD_LIMIT = 1024 * 1024;
const DEFAULT_ACCOUNT = '000000000000';
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;

export interface MakeContextOptions {
  functionName: string;
  timeoutMs: number;
  memoryMb?: number;
  region?: string;
  account?: string;
  awsRequestId?: string;
  clientContext?: ClientContext;
}

/** A plausible Lambda `Context` for one invocation; the deadline starts now. */
export function makeLambdaContext(opts: MakeContextOptions): Context {
  const region = opts.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const account = opts.account ?? DEFAULT_ACCOUNT;
  const deadline = Date.now() + opts.timeoutMs;
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  const unsupported = (name: string) => (): void => {
    throw new Error(`context.${name}() is not supported by the local runtime; return or throw instead`);
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: opts.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${opts.functionName}`,
    memoryLimitInMB: String(opts.memoryMb ?? 1024),
    awsRequestId: opts.awsRequestId ?? randomUUID(),
    logGroupName: `/aws/lambda/${opts.functionName}`,
    logStreamName: `${day}/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    clientContext: opts.clientContext,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported('done'),
    fail: unsupported('fail'),
    succeed: unsupported('succeed'),
  };
}

export async function startLambdaEmulator(opts: LambdaEmulatorOptions): Promise<LambdaEmulator> {
  const host = opts.host ?? '127.0.0.1';
  const region = opts.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const account = opts.account ?? DEFAULT_ACCOUNT;
  const defaultTimeoutMs = opts.defaultTimeoutMs ?? 30_000;
  const onError =
    opts.onError ??
    ((err: unknown, info: { functionName: string; awsRequestId: string; invocationType: string }) => {
      console.error(`[lambda ${info.functionName}] ${info.invocationType} invocation ${info.awsRequestId} failed`, err);
    });
  const functions = new Map<string, LocalFunctionConfig>();
  for (const [name, fn] of Object.entries(opts.functions)) {
    functions.set(name, typeof fn === 'function' ? { handler: fn } : fn);
  }
  const inFlight = new Set<Promise<unknown>>();

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    const untrack = (): void => void inFlight.delete(p);
    p.then(untrack, untrack);
    return p;
  };

  const server = http.createServer((req, res) => {
    const requestId = randomUUID();
    res.setHeader('x-amzn-RequestId', requestId);
    track(
      handle(req, res, requestId).catch((err: unknown) => {
        if (!res.headersSent)
          sendError(res, 500, 'ServiceException', err instanceof Error ? err.message : String(err), 'Service');
        else res.destroy();
      }),
    );
  });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, requestId: string): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = INVOKE_PATH.exec(url.pathname);
    if (req.method !== 'POST' || !match) {
      req.resume();
      sendError(res, 404, 'UnknownOperationException', `Unknown operation ${req.method} ${url.pathname}`);
      return;
    }
    const { name, qualifier } = parseFunctionName(decodeURIComponent(match[1]), url.searchParams.get('Qualifier'));
    const fnArn = `arn:aws:lambda:${region}:${account}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
    const fn = functions.get(name);
    if (!fn || (qualifier !== undefined && qualifier !== '$LATEST')) {
      req.resume();
      sendError(res, 404, 'ResourceNotFoundException', `Function not found: ${fnArn}`);
      return;
    }
    const invocationType = header(req, 'x-amz-invocation-type') ?? 'RequestResponse';
    if (!['RequestResponse', 'Event', 'DryRun'].includes(invocationType)) {
      req.resume();
      sendError(res, 400, 'InvalidParameterValueException', `Unsupported invocation type: ${invocationType}`);
      return;
    }
    const limit = invocationType === 'Event' ? ASYNC_PAYLOAD_LIMIT : SYNC_PAYLOAD_LIMIT;
    const body = await readBody(req, limit);
    if (body === undefined) {
      sendError(
        res,
        413,
        'RequestTooLargeException',
        `Request must be smaller than ${limit} bytes for the InvokeFunction operation`,
      );
      return;
    }
    let payload: unknown;
    try {
      payload = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch (err) {
      sendError(
        res,
        400,
        'InvalidRequestContentException',
        `Could not parse request body into json: ${(err as Error).message}`,
      );
      return;
    }
    let clientContext: ClientContext | undefined;
    const rawClientContext = header(req, 'x-amz-client-context');
    if (rawClientContext) {
      try {
        clientContext = JSON.parse(Buffer.from(rawClientContext, 'base64').toString('utf8')) as ClientContext;
      } catch {
        sendError(res, 400, 'InvalidRequestContentException', 'Client context must be valid base64-encoded JSON');
        return;
      }
    }
    if (invocationType === 'DryRun') {
      res.writeHead(204).end();
      return;
    }

    const timeoutMs = fn.timeoutMs ?? defaultTimeoutMs;
    const context = makeLambdaContext({
      functionName: name,
      timeoutMs,
      memoryMb: fn.memoryMb,
      region,
      account,
      awsRequestId: requestId,
      clientContext,
    });
    const info = { functionName: name, awsRequestId: requestId, invocationType };

    if (invocationType === 'Event') {
      res.writeHead(202, { 'Content-Length': '0' }).end();
      const outcome = await runWithTimeout(fn.handler, payload, context, timeoutMs);
      if (!outcome.ok) onError(outcome.error, info);
      return;
    }

    const outcome = await runWithTimeout(fn.handler, payload, context, timeoutMs);
    const headers = { 'Content-Type': 'application/json', 'X-Amz-Executed-Version': '$LATEST' };
    if (!outcome.ok) {
      if (outcome.timedOut) onError(outcome.error, info);
      const errBody = JSON.stringify(errorPayload(outcome.error, outcome.timedOut ? 'Sandbox.Timedout' : undefined));
      res.writeHead(200, { ...headers, 'X-Amz-Function-Error': 'Unhandled' }).end(errBody);
      return;
    }
    let json: string;
    try {
      json = JSON.stringify(outcome.value) ?? 'null';
    } catch (err) {
      const errBody = JSON.stringify(errorPayload(err));
      res.writeHead(200, { ...headers, 'X-Amz-Function-Error': 'Unhandled' }).end(errBody);
      return;
    }
    if (Buffer.byteLength(json) > SYNC_PAYLOAD_LIMIT) {
      const errBody = JSON.stringify({
        errorType: 'Function.ResponseSizeTooLarge',
        errorMessage: `Response payload size exceeded maximum allowed payload size (${SYNC_PAYLOAD_LIMIT} bytes).`,
      });
      res.writeHead(200, { ...headers, 'X-Amz-Function-Error': 'Unhandled' }).end(errBody);
      return;
    }
    res.writeHead(200, headers).end(json);
  };

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://${host}:${port}`,
    stop() {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        server.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown; timedOut: boolean };

async function runWithTimeout(
  fn: LocalFunction,
  payload: unknown,
  context: Context,
  timeoutMs: number,
): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => {
      const err = new Error(
        `${new Date().toISOString()} ${context.awsRequestId} ` +
          `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`,
      );
      resolve({ ok: false, error: err, timedOut: true });
    }, timeoutMs);
  });
  const run = (async (): Promise<Outcome> => {
    try {
      return { ok: true, value: await fn(payload, context) };
    } catch (error) {
      return { ok: false, error, timedOut: false };
    }
  })();
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The Node.js runtime's error document for an unhandled error. */
function errorPayload(
  err: unknown,
  errorTypeOverride?: string,
): { errorType: string; errorMessage: string; trace: string[] } {
  if (err instanceof Error) {
    return {
      errorType: errorTypeOverride ?? err.name ?? err.constructor.name,
      errorMessage: err.message,
      trace: errorTypeOverride ? [] : (err.stack ?? '').split('\n'),
    };
  }
  return { errorType: errorTypeOverride ?? typeof err, errorMessage: String(err), trace: [] };
}

/**
 * `name`, `name:qualifier`, `account:function:name[:qualifier]`,
 * `arn:aws:lambda:region:account:function:name[:qualifier]`.
 */
function parseFunctionName(raw: string, qualifierParam: string | null): { name: string; qualifier?: string } {
  const parts = raw.split(':');
  let rest: string[];
  if (parts[0] === 'arn' && parts.length >= 7) rest = parts.slice(6);
  else if (parts.length >= 3 && parts[1] === 'function') rest = parts.slice(2);
  else rest = parts;
  const name = rest[0];
  const qualifier = rest[1] ?? qualifierParam ?? undefined;
  return { name, qualifier: qualifier === '' ? undefined : qualifier };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The body, or undefined once it exceeds `limit` bytes (the rest is drained). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendError(
  res: http.ServerResponse,
  status: number,
  type: string,
  message: string,
  faultType: 'User' | 'Service' = 'User',
): void {
  res
    .writeHead(status, { 'Content-Type': 'application/json', 'X-Amzn-ErrorType': type })
    .end(JSON.stringify({ Type: faultType, message }));
}
