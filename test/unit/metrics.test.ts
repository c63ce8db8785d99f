import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushMetrics, recordBuilderLag, recordShardCache } from '../../shared/metrics.js';

const stats = (hits: number, diskHits: number, misses: number) => ({
  hits,
  diskHits,
  misses,
  evictions: 0,
  residentBytes: 0,
  resident: 0,
});

function captureEmf(act: () => void): Array<Record<string, unknown>> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    act();
  } finally {
    spy.mockRestore();
  }
  return lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('CloudWatchMetrics'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('metrics (EMF)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('emits shard-cache hits and misses of one request and the builder lag', () => {
    const out = captureEmf(() => {
      recordShardCache(stats(10, 2, 5), stats(13, 3, 7));
      recordBuilderLag(42);
      flushMetrics();
    });
    expect(out).toHaveLength(1);
    const emf = out[0];
    const names = (emf._aws as { CloudWatchMetrics: Array<{ Namespace: string; Metrics: Array<{ Name: string }> }> })
      .CloudWatchMetrics[0];
    expect(names.Namespace).toBe('Shoal');
    expect(names.Metrics.map((m) => m.Name).sort()).toEqual(['BuilderLagSeq', 'ShardCacheHit', 'ShardCacheMiss']);
    expect(emf).toMatchObject({ ShardCacheHit: 4, ShardCacheMiss: 2, BuilderLagSeq: 42 });
  });

  it('writes nothing for an invocation that recorded nothing', () => {
    expect(captureEmf(() => flushMetrics())).toEqual([]);
  });
});
