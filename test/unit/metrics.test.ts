import { afterEach, describe, expect, it, vi } from 'vitest';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { makeLambdaContext } from '../../infra/local/lambda-emulator.js';
import { metrics, recordBuilderLag, recordShardCache } from '../../shared/metrics.js';

const stats = (hits: number, diskHits: number, misses: number) => ({
  hits,
  diskHits,
  misses,
  evictions: 0,
  residentBytes: 0,
  resident: 0,
});

/** Runs `record` as a handler wrapped the way the functions are; returns the EMF lines and stderr. */
async function invoke(record: () => void): Promise<{ emf: Array<Record<string, unknown>>; stderr: string }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    errors.push(String(chunk));
    return true;
  });
  const context: Context = makeLambdaContext({ functionName: 'metrics-test', timeoutMs: 1000, region: 'us-east-1' });
  try {
    const handler = middy(async () => record()).use(logMetrics(metrics));
    await handler(undefined, context);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  const emf = lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('CloudWatchMetrics'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { emf, stderr: errors.join('') };
}

describe('metrics (EMF)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('emits shard-cache hits and misses of one request and the builder lag, flushed by logMetrics', async () => {
    const { emf: out } = await invoke(() => {
      recordShardCache(stats(10, 2, 5), stats(13, 3, 7));
      recordBuilderLag(42);
    });
    expect(out).toHaveLength(1);
    const emf = out[0];
    const names = (emf._aws as { CloudWatchMetrics: Array<{ Namespace: string; Metrics: Array<{ Name: string }> }> })
      .CloudWatchMetrics[0];
    expect(names.Namespace).toBe('Shoal');
    expect(names.Metrics.map((m) => m.Name).sort()).toEqual(['BuilderLagSeq', 'ShardCacheHit', 'ShardCacheMiss']);
    expect(emf).toMatchObject({ ShardCacheHit: 4, ShardCacheMiss: 2, BuilderLagSeq: 42 });
  });

  it('writes nothing, not even a warning, for an invocation that recorded nothing', async () => {
    expect(await invoke(() => undefined)).toEqual({ emf: [], stderr: '' });
  });
});
