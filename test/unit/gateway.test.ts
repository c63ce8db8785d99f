import { request, Agent, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GATEWAY_MAX_BODY_BYTES, startGateway, type Gateway } from '../../infra/local/gateway.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A raw node:http request (raw headers, so repeats and casing are under our control). */
function send(
  url: string,
  opts: {
    method?: string;
    path?: string;
    headers?: Array<[string, string]>;
    body?: Buffer | string;
    agent?: Agent;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    // Raw header arrays get no automatic Host header; HTTP/1.1 requires one.
    const flat: string[] = opts.headers?.some(([k]) => k.toLowerCase() === 'host') ? [] : ['Host', u.host];
    for (const [k, v] of opts.headers ?? []) flat.push(k, v);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: flat,
        agent: opts.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

let gateway: Gateway | undefined;
let lastEvent: APIGatewayProxyEventV2 | undefined;

/** Echo handler: returns the event it received as JSON. */
async function echo(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyResultV2> {
  lastEvent = event;
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) };
}

async function start(
  handler: (e: APIGatewayProxyEventV2) => Promise<APIGatewayProxyResultV2> = echo,
): Promise<Gateway> {
  gateway = await startGateway({ port: 0, handler });
  return gateway;
}

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  lastEvent = undefined;
  vi.restoreAllMocks();
});

describe('local API Gateway (HTTP API, payload 2.0)', () => {
  it('listens on an ephemeral port and reports its url', async () => {
    const gw = await start();
    expect(gw.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(Number(new URL(gw.url).port)).toBeGreaterThan(0);
  });

  it('builds a faithful v2 event', async () => {
    const gw = await start();
    const before = Date.now();
    const res = await send(gw.url, {
      method: 'POST',
      path: '/v1/collections/my%20coll/search?a=1&b=x%20y&a=2&flag',
      headers: [
        ['Content-Type', 'application/json'],
        ['Authorization', 'Bearer k1'],
        ['X-Multi', 'one'],
        ['x-multi', 'two'],
        ['Cookie', 'a=1; b=2'],
        ['User-Agent', 'shoal-test/1.0'],
      ],
      body: '{"vector":[1,2]}',
    });
    expect(res.status).toBe(200);
    const e = JSON.parse(res.body.toString()) as APIGatewayProxyEventV2;
    expect(e.version).toBe('2.0');
    expect(e.routeKey).toBe('$default');
    expect(e.rawPath).toBe('/v1/collections/my%20coll/search');
    expect(e.rawQueryString).toBe('a=1&b=x%20y&a=2&flag');
    expect(e.queryStringParameters).toEqual({ a: '1,2', b: 'x y', flag: '' });
    expect(e.cookies).toEqual(['a=1', 'b=2']);
    expect(e.headers.cookie).toBeUndefined();
    expect(e.headers['content-type']).toBe('application/json');
    expect(e.headers.authorization).toBe('Bearer k1');
    expect(e.headers['x-multi']).toBe('one,two');
    expect(Object.keys(e.headers).every((k) => k === k.toLowerCase())).toBe(true);
    expect(e.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(e.headers['x-forwarded-proto']).toBe('http');
    expect(e.body).toBe('{"vector":[1,2]}');
    expect(e.isBase64Encoded).toBe(false);

    const rc = e.requestContext;
    expect(rc.http).toEqual({
      method: 'POST',
      path: '/v1/collections/my%20coll/search',
      protocol: 'HTTP/1.1',
      sourceIp: '127.0.0.1',
      userAgent: 'shoal-test/1.0',
    });
    expect(rc.stage).toBe('$default');
    expect(rc.routeKey).toBe('$default');
    expect(rc.domainName).toBe('127.0.0.1');
    expect(rc.accountId).toMatch(/^\d{12}$/);
    expect(rc.apiId).toBeTruthy();
    expect(rc.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(rc.timeEpoch).toBeGreaterThanOrEqual(before);
    expect(rc.timeEpoch).toBeLessThanOrEqual(Date.now());
    expect(rc.time).toMatch(/^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);

    // A second request gets a new request id.
    await send(gw.url, { path: '/x' });
    expect(lastEvent?.requestContext.requestId).not.toBe(rc.requestId);
  });

  it('omits optional fields when absent', async () => {
    const gw = await start();
    await send(gw.url, { path: '/v1/health' });
    const e = lastEvent!;
    expect(e.rawQueryString).toBe('');
    expect(e.queryStringParameters).toBeUndefined();
    expect(e.cookies).toBeUndefined();
    expect(e.body).toBeUndefined();
    expect(e.isBase64Encoded).toBe(false);
    expect(e.requestContext.http.method).toBe('GET');
  });

  it('base64-encodes non-text bodies and decodes base64 results (round trip)', async () => {
    const gw = await start(async (event) => {
      lastEvent = event;
      const bytes = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64') : Buffer.from(event.body ?? '');
      return {
        statusCode: 201,
        headers: { 'content-type': 'application/octet-stream', 'x-echo': 'yes' },
        body: bytes.toString('base64'),
        isBase64Encoded: true,
      };
    });
    const payload = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    const res = await send(gw.url, {
      method: 'PUT',
      path: '/bin',
      headers: [['Content-Type', 'application/octet-stream']],
      body: payload,
    });
    expect(lastEvent?.isBase64Encoded).toBe(true);
    expect(lastEvent?.body).toBe(payload.toString('base64'));
    expect(res.status).toBe(201);
    expect(res.headers['x-echo']).toBe('yes');
    expect(res.body.equals(payload)).toBe(true);

    // No content type at all: binary as well.
    await send(gw.url, { method: 'POST', path: '/bin', body: 'abc' });
    expect(lastEvent).toMatchObject({ isBase64Encoded: true, body: Buffer.from('abc').toString('base64') });
    // Text types stay text, UTF-8 intact.
    await send(gw.url, {
      method: 'POST',
      path: '/t',
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: 'héllo ✓',
    });
    expect(lastEvent).toMatchObject({ isBase64Encoded: false, body: 'héllo ✓' });
  });

  it('413 over 6 MB, without calling the handler', async () => {
    const handler = vi.fn(echo);
    const gw = await start(handler);
    const res = await send(gw.url, {
      method: 'POST',
      path: '/v1/collections/x/vectors',
      headers: [['content-type', 'application/json']],
      body: Buffer.alloc(GATEWAY_MAX_BODY_BYTES + 1, 0x20),
    });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body.toString())).toEqual({ message: 'Request Entity Too Large' });
    expect(handler).not.toHaveBeenCalled();

    // Exactly at the limit passes.
    const ok = await send(gw.url, {
      method: 'POST',
      path: '/ok',
      headers: [['content-type', 'text/plain']],
      body: Buffer.alloc(GATEWAY_MAX_BODY_BYTES, 0x61),
    });
    expect(ok.status).toBe(200);
    expect(lastEvent?.body?.length).toBe(GATEWAY_MAX_BODY_BYTES);
  });

  it('413 also for chunked uploads without content-length', async () => {
    const handler = vi.fn(echo);
    const gw = await start(handler);
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(gw.url);
      const req = request(
        { host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'transfer-encoding': 'chunked' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024, 0x62);
      for (let i = 0; i < 7; i++) req.write(chunk);
      req.end();
    });
    expect(status).toBe(413);
    expect(handler).not.toHaveBeenCalled();
  });

  it('string results and objects without statusCode are 200 JSON, like API Gateway', async () => {
    let result: APIGatewayProxyResultV2 = 'plain';
    const gw = await start(async () => result);
    let res = await send(gw.url);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.body.toString()).toBe('plain');

    result = { hello: 'world' } as unknown as APIGatewayProxyResultV2;
    res = await send(gw.url);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ hello: 'world' });

    result = { statusCode: 204 };
    res = await send(gw.url);
    expect(res.status).toBe(204);
    expect(res.body.length).toBe(0);

    result = { statusCode: 200, cookies: ['s=1; HttpOnly', 't=2'], body: 'x' };
    res = await send(gw.url);
    expect(res.headers['set-cookie']).toEqual(['s=1; HttpOnly', 't=2']);
  });

  it('a handler crash is a 500 like API Gateway', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const gw = await start(async () => {
      throw new Error('boom');
    });
    const res = await send(gw.url);
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body.toString())).toEqual({ message: 'Internal Server Error' });
  });

  it('close() ends keep-alive sockets', async () => {
    const gw = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<Socket>();
    agent.on('free', (socket: Socket) => sockets.add(socket));
    try {
      await send(gw.url, { agent });
      await send(gw.url, { agent });
      expect(sockets.size).toBe(1); // reused
      const [socket] = sockets;
      expect(socket.destroyed).toBe(false);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const t0 = Date.now();
      await gw.close();
      await closed;
      expect(Date.now() - t0).toBeLessThan(2000);
      gateway = undefined;
      await expect(send(gw.url)).rejects.toThrow();
      await gw.close(); // idempotent
    } finally {
      agent.destroy();
    }
  });
});
