/** The local gateway's request log: one entry per answered request, with the id the handler saw. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  GATEWAY_MAX_BODY_BYTES,
  formatRequestLog,
  startGateway,
  type Gateway,
  type RequestLogEntry,
} from '../../infra/local/gateway.js';

let gateway: Gateway | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await gateway?.close();
  gateway = undefined;
});

async function start(handler: (e: APIGatewayProxyEventV2) => Promise<{ statusCode: number; body: string }>) {
  const entries: RequestLogEntry[] = [];
  const seenIds: string[] = [];
  gateway = await startGateway({
    port: 0,
    handler: async (event) => {
      seenIds.push(event.requestContext.requestId);
      return handler(event);
    },
    onResponse: (e) => entries.push(e),
  });
  return { entries, seenIds, url: gateway.url };
}

/** The entry is written on 'finish', which may land just after the client has the response. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
}

describe('request log', () => {
  it('logs method, path without the query, status, duration and the event request id', async () => {
    const { entries, seenIds, url } = await start(async (e) =>
      e.rawPath === '/missing' ? { statusCode: 404, body: '{}' } : { statusCode: 200, body: '{}' },
    );
    await fetch(`${url}/v1/collections?token=secret`);
    await fetch(`${url}/missing`, { method: 'DELETE' });
    await until(() => entries.length === 2);
    expect(entries).toEqual([
      { method: 'GET', path: '/v1/collections', status: 200, ms: expect.any(Number), requestId: seenIds[0] },
      { method: 'DELETE', path: '/missing', status: 404, ms: expect.any(Number), requestId: seenIds[1] },
    ]);
    expect(seenIds[0]).not.toBe(seenIds[1]);
    expect(entries[0].ms).toBeGreaterThanOrEqual(0);
  });

  it('logs what the gateway answers itself (413, handler crash) too', async () => {
    const { entries } = await start(async () => {
      throw new Error('boom');
    });
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    await fetch(`${gateway!.url}/v1/x`, { method: 'POST', body: Buffer.alloc(GATEWAY_MAX_BODY_BYTES + 1) }).catch(
      () => undefined,
    );
    await fetch(`${gateway!.url}/v1/y`);
    await until(() => entries.length === 2);
    expect(entries.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual(['POST /v1/x 413', 'GET /v1/y 500']);
    expect(entries[0].requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('formats one line: GET /v1/collections 200 3.1ms req=<id>', () => {
    expect(
      formatRequestLog({ method: 'GET', path: '/v1/collections', status: 200, ms: 3.14159, requestId: 'abc-1' }),
    ).toBe('GET /v1/collections 200 3.1ms req=abc-1');
  });
});
