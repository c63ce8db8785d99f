/**
 * Custom CloudWatch metrics, written as EMF (Lambda Powertools) so they cost no API calls.
 * Namespace and service come from POWERTOOLS_METRICS_NAMESPACE / POWERTOOLS_SERVICE_NAME
 * (set per function by the CDK stack); the local runtime sets POWERTOOLS_METRICS_DISABLED.
 * Handlers flush with Powertools' `logMetrics(metrics)` middy middleware. The dashboard and
 * alarms that read these are described in docs/operations.md §4.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logger } from './log.js';
import type { ShardCacheStats } from './search/shard-cache.js';
import type { TraceSummary } from './storage/trace.js';

const EMPTY_FLUSH = 'No application metrics to publish';

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Shoal',
  // Powertools warns on every empty flush; an invocation without lookups is normal here.
  logger: {
    debug: (msg: unknown) => logger.debug(String(msg)),
    info: (msg: unknown) => logger.info(String(msg)),
    warn: (msg: unknown) => {
      if (!String(msg).startsWith(EMPTY_FLUSH)) logger.warn(String(msg));
    },
    error: (msg: unknown) => logger.error(String(msg)),
  },
});

/** Shard lookups of one request, from the cache counters before and after it. */
export function recordShardCache(before: ShardCacheStats, after: ShardCacheStats): void {
  const hits = after.hits + after.diskHits - before.hits - before.diskHits;
  const misses = after.misses - before.misses;
  if (hits > 0) metrics.addMetric('ShardCacheHit', MetricUnit.Count, hits);
  if (misses > 0) metrics.addMetric('ShardCacheMiss', MetricUnit.Count, misses);
}

/** How far the index trails the writes (seqs), the builder-lag alarm's input. */
export function recordBuilderLag(lag: number): void {
  metrics.addMetric('BuilderLagSeq', MetricUnit.Count, Math.max(0, lag));
}

/** Storage cost of one API request (docs/architecture.md §7.6): sequential round trips and calls. */
export function recordStorageTrace(summary: TraceSummary): void {
  metrics.addMetric('StorageRoundTrips', MetricUnit.Count, summary.roundTrips);
  metrics.addMetric('StorageCalls', MetricUnit.Count, summary.calls);
  metrics.addMetric('StorageMs', MetricUnit.Milliseconds, summary.storageMs);
}

/**
 * Embedding drift of one collection's hour window after a flush (docs/drift.md): `EmbeddingDriftPSI` (the
 * status-driving PSI; left out while the window has too few vectors to mean anything) and
 * `EmbeddingsObserved` (vectors in this flush). Two dimension sets: `[Collection, Kind]` for per-collection
 * graphs, `[Kind]` for the alarm, which must not depend on collection names. Emitted at once on its own
 * EMF line: the request's buffered metrics must not take these dimensions.
 */
export function recordDrift(input: { collection: string; kind: string; psi?: number; observed: number }): void {
  const emit = (name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number) => {
    const single = metrics.singleMetric();
    single.addDimensions({ Collection: input.collection, Kind: input.kind });
    single.addDimensions({ Kind: input.kind });
    single.addMetric(name, unit, value);
  };
  if (input.psi !== undefined) emit('EmbeddingDriftPSI', MetricUnit.NoUnit, input.psi);
  if (input.observed > 0) emit('EmbeddingsObserved', MetricUnit.Count, input.observed);
}

/** A slot part a search node did not answer, searched by the slot's Lambda instead (docs/architecture.md §7.7). */
export function recordSearchNodeFallback(): void {
  metrics.addMetric('SearchNodeFallback', MetricUnit.Count, 1);
}
