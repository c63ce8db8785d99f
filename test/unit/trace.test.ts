/**
 * The per-request storage trace (docs/architecture.md §7.6): round trips are groups of calls that
 * overlapped in time, counted on real AsyncLocalStorage propagation through awaits and parallel calls.
 */
import { describe, expect, it } from 'vitest';
import { currentTrace, summarize, traced, traceMiddleware, type StorageCall } from '../../shared/storage/trace.js';

const call = (start: number, ms: number, op = 'GetItemCommand'): StorageCall => ({
  service: 'DynamoDB',
  op,
  start,
  ms,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('summarize', () => {
  it('counts overlapping calls as one round trip and sequential ones apart', () => {
    expect(summarize([])).toEqual({ calls: 0, roundTrips: 0, storageMs: 0, ops: {} });
    const s = summarize([call(0, 5), call(1, 3), call(6, 2, 'QueryCommand'), call(7, 4), call(20, 1)]);
    expect(s.calls).toBe(5);
    expect(s.roundTrips).toBe(3);
    expect(s.storageMs).toBe(5 + 5 + 1);
    expect(s.ops).toEqual({ 'DynamoDB.GetItemCommand': 4, 'DynamoDB.QueryCommand': 1 });
  });

  it('is order-independent: a call that starts inside a long one joins its round trip', () => {
    expect(summarize([call(10, 1), call(0, 20), call(25, 1)]).roundTrips).toBe(2);
  });
});

describe('traced', () => {
  // The middleware as the SDK calls it: next(args) is the rest of the stack (here, a timer).
  const send = (ms: number, op: string) =>
    traceMiddleware('S3')(() => sleep(ms).then(() => ({ output: {} })), { commandName: op })({});

  it('records calls made anywhere under the request, parallel ones as one round trip', async () => {
    const { result, trace } = await traced(async () => {
      await send(5, 'GetObjectCommand');
      await Promise.all([send(10, 'GetObjectCommand'), send(10, 'HeadObjectCommand')]);
      await new Promise<void>((resolve) => setTimeout(() => void send(1, 'PutObjectCommand').then(() => resolve()), 0));
      return 42;
    });
    expect(result).toBe(42);
    const s = trace.summary();
    expect(s.calls).toBe(4);
    expect(s.roundTrips).toBe(3);
    expect(s.ops['S3.GetObjectCommand']).toBe(2);
  });

  it('keeps concurrent requests apart and records nothing outside a request', async () => {
    await send(1, 'GetObjectCommand');
    expect(currentTrace()).toBeUndefined();
    const [a, b] = await Promise.all([
      traced(() => send(5, 'GetObjectCommand')),
      traced(async () => {
        await send(1, 'PutObjectCommand');
        await send(1, 'PutObjectCommand');
      }),
    ]);
    expect(a.trace.summary()).toMatchObject({ calls: 1, roundTrips: 1 });
    expect(b.trace.summary()).toMatchObject({ calls: 2, roundTrips: 2 });
  });

  it('records a failed call as a round trip and rethrows', async () => {
    const fail = traceMiddleware('DynamoDB')(() => Promise.reject(new Error('throttled')), {
      commandName: 'PutCommand',
    });
    const run = traced(async () => {
      await expect(fail({})).rejects.toThrow('throttled');
      return currentTrace()!.summary();
    });
    expect((await run).result).toMatchObject({ calls: 1, roundTrips: 1 });
  });
});
