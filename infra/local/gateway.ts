/**
 * A local stand-in for API Gateway HTTP API (payload format 2.0, `$default` route and
 * stage) in front of a Lambda handler: each node:http request becomes a faithful
 * `APIGatewayProxyEventV2`, and the handler's result is written back the way API Gateway
 * does it (string results → 200 JSON, base64 bodies decoded, `cookies` → Set-Cookie).
 * Like API Gateway + Lambda it rejects bodies over 6 MB with 413 and turns a handler
 * crash into 500 `{"message":"Internal Server Error"}`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** Lambda's synchronous invocation payload limit, which API Gateway enforces with 413. */
export const GATEWAY_MAX_BODY_BYTES = 6 * 1024 * 1024;

export interface GatewayOptions {
  port: number;
  host?: string;
  handler: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyResultV2>;
  /** Reported as requestContext.accountId / apiId. */
  accountId?: string;
  apiId?: string;
  /** Called once per answered request (after the response is written), e.g. for a request log. */
  onResponse?: (entry: RequestLogEntry) => void;
}

export interface RequestLogEntry {
  method: string;
  /** The path without the query string (which may carry filters or tokens a log should not keep). */
  path: string;
  status: number;
  ms: number;
  /** requestContext.requestId of the event the handler got (the id its logs carry). */
  requestId: string;
}

/** One request-log line: `GET /v1/collections 200 3.1ms req=<id>`. */
export function formatRequestLog(e: RequestLogEntry): string {
  return `${e.method} ${e.path} ${e.status} ${e.ms.toFixed(1)}ms req=${e.requestId}`;
}

export interface Gateway {
  url: string;
  close(): Promise<void>;
}

/** Content types API Gateway passes as text; everything else (and no type) goes base64. */
function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.split(';')[0].trim().toLowerCase();
  return (
    type.startsWith('text/') ||
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'application/xml' ||
    type.endsWith('+xml') ||
    type === 'application/javascript' ||
    type === 'application/x-www-form-urlencoded' ||
    type === 'application/graphql'
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** API Gateway's requestContext.time: `12/Mar/2020:19:03:58 +0000`. */
function clfTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function sourceIp(req: IncomingMessage): string {
  const ip = req.socket.remoteAddress ?? '127.0.0.1';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

/** Headers as API Gateway v2 delivers them: lower-cased, repeats comma-joined, cookies split out. */
function collectHeaders(req: IncomingMessage): { headers: Record<string, string>; cookies: string[] } {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (name === 'cookie') {
      for (const c of value.split(';')) {
        const t = c.trim();
        if (t) cookies.push(t);
      }
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  return { headers, cookies };
}

function queryParameters(rawQueryString: string): Record<string, string> | undefined {
  if (rawQueryString === '') return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawQueryString)) {
    out[key] = key in out ? `${out[key]},${value}` : value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export function toEvent(
  req: IncomingMessage,
  body: Buffer,
  info: { accountId: string; apiId: string; localPort: number },
): APIGatewayProxyEventV2 {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const rawQueryString = q === -1 ? '' : url.slice(q + 1);
  const { headers, cookies } = collectHeaders(req);
  const ip = sourceIp(req);
  headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${ip}` : ip;
  headers['x-forwarded-port'] ??= String(info.localPort);
  headers['x-forwarded-proto'] ??= 'http';
  const host = headers.host ?? `localhost:${info.localPort}`;
  const domainName = host.replace(/:\d+$/, '');
  const now = new Date();

  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: info.accountId,
      apiId: info.apiId,
      domainName,
      domainPrefix: domainName.split('.')[0],
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: ip,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: clfTime(now),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
  if (cookies.length > 0) event.cookies = cookies;
  const qs = queryParameters(rawQueryString);
  if (qs) event.queryStringParameters = qs;
  if (body.length > 0) {
    if (isTextContentType(headers['content-type'])) {
      event.body = body.toString('utf8');
    } else {
      event.body = body.toString('base64');
      event.isBase64Encoded = true;
    }
  }
  return event;
}

function writeResult(res: ServerResponse, result: APIGatewayProxyResultV2): void {
  // API Gateway: a string, or an object without statusCode, is a 200 JSON body.
  if (typeof result === 'string' || result === null || typeof result !== 'object' || !('statusCode' in result)) {
    const body = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const r = result as APIGatewayProxyStructuredResultV2;
  const body =
    r.body === undefined
      ? Buffer.alloc(0)
      : r.isBase64Encoded
        ? Buffer.from(r.body, 'base64')
        : Buffer.from(r.body, 'utf8');
  for (const [name, value] of Object.entries(r.headers ?? {})) res.setHeader(name, String(value));
  if (r.cookies && r.cookies.length > 0) res.setHeader('set-cookie', r.cookies);
  res.setHeader('content-length', body.length);
  res.statusCode = r.statusCode ?? 200;
  res.end(body);
}

function writeGatewayError(res: ServerResponse, status: number, message: string, close = false): void {
  const body = JSON.stringify({ message });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  };
  if (close) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { port, host = '127.0.0.1', handler, accountId = '000000000000', apiId = 'shoal-local', onResponse } = options;

  const server = createServer((req, res) => {
    const started = performance.now();
    // Replaced by the event's id once there is an event; a 413 never reaches the handler.
    let requestId: string = randomUUID();
    if (onResponse) {
      res.once('finish', () => {
        try {
          onResponse({
            method: req.method ?? 'GET',
            path: (req.url ?? '/').split('?')[0],
            status: res.statusCode,
            ms: performance.now() - started,
            requestId,
          });
        } catch (err) {
          console.error('[gateway] request log failed:', err);
        }
      });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number(req.headers['content-length'] ?? 0) > GATEWAY_MAX_BODY_BYTES;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > GATEWAY_MAX_BODY_BYTES) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooLarge) {
        chunks.length = 0;
        writeGatewayError(res, 413, 'Request Entity Too Large', true);
        return;
      }
      const localPort = (server.address() as AddressInfo).port;
      const event = toEvent(req, Buffer.concat(chunks), { accountId, apiId, localPort });
      requestId = event.requestContext.requestId;
      handler(event).then(
        (result) => {
          try {
            writeResult(res, result);
          } catch (err) {
            console.error('[gateway] invalid handler result:', err);
            if (!res.headersSent) writeGatewayError(res, 500, 'Internal Server Error');
            else res.destroy();
          }
        },
        (err: unknown) => {
          console.error('[gateway] handler failed:', err);
          writeGatewayError(res, 500, 'Internal Server Error');
        },
      );
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
