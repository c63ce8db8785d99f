/**
 * Per-request trace of storage calls (docs/architecture.md §7.6): every DynamoDB, S3, SQS and Lambda
 * call a request makes (and each part sent to a resident search node, §7.7), with its duration, and the
 * number of **sequential round trips** — what a request pays on AWS, where each round trip is a network
 * hop of a few milliseconds however fast the emulator answers locally. Calls that overlap in time (issued
 * in parallel) count as one round trip; a call issued after another finished counts again.
 *
 * The trace rides on AsyncLocalStorage, so the storage adapters need no parameter for it: the
 * clients' middleware records into whatever trace the calling request opened (`traced`). Calls
 * outside a trace (the builder, the sweeper) record nothing and cost one `getStore()`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

export type StorageService = 'DynamoDB' | 'S3' | 'SQS' | 'Lambda' | 'SearchNode';

export interface StorageCall {
  service: StorageService;
  /** The SDK command, e.g. `QueryCommand`. */
  op: string;
  /** ms since the trace began. */
  start: number;
  ms: number;
}

export interface TraceSummary {
  /** Storage calls, retries of one call counted once (the SDK retries inside the call). */
  calls: number;
  /** Sequential round trips: groups of calls that overlapped in time. */
  roundTrips: number;
  /** Wall time with at least one storage call in flight. */
  storageMs: number;
  /** Calls per `service.op`, for the log. */
  ops: Record<string, number>;
}

export class RequestTrace {
  readonly calls: StorageCall[] = [];
  private readonly origin = performance.now();

  /** Runs one storage call, recording it when it settles (failed calls cost a round trip too). */
  async record<T>(service: StorageService, op: string, call: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await call();
    } finally {
      this.calls.push({ service, op, start: start - this.origin, ms: performance.now() - start });
    }
  }

  summary(): TraceSummary {
    return summarize(this.calls);
  }
}

/** Round trips and busy time of a set of calls: their intervals merged where they overlap. */
export function summarize(calls: readonly StorageCall[]): TraceSummary {
  const ops: Record<string, number> = {};
  for (const c of calls) ops[`${c.service}.${c.op}`] = (ops[`${c.service}.${c.op}`] ?? 0) + 1;
  const sorted = [...calls].sort((a, b) => a.start - b.start);
  let roundTrips = 0;
  let storageMs = 0;
  let groupStart = 0;
  let groupEnd = -Infinity;
  for (const c of sorted) {
    if (c.start > groupEnd) {
      if (roundTrips > 0) storageMs += groupEnd - groupStart;
      roundTrips++;
      groupStart = c.start;
      groupEnd = c.start + c.ms;
    } else {
      groupEnd = Math.max(groupEnd, c.start + c.ms);
    }
  }
  if (roundTrips > 0) storageMs += groupEnd - groupStart;
  return { calls: calls.length, roundTrips, storageMs, ops };
}

const current = new AsyncLocalStorage<RequestTrace>();

/** Runs `fn` with a fresh trace that every storage call under it records into. */
export async function traced<T>(fn: () => Promise<T>): Promise<{ result: T; trace: RequestTrace }> {
  const trace = new RequestTrace();
  const result = await current.run(trace, fn);
  return { result, trace };
}

/** The trace of the request running now, if any. */
export function currentTrace(): RequestTrace | undefined {
  return current.getStore();
}

/**
 * SDK middleware (step `initialize`, outermost: one record per command, its retries inside) that
 * records each call into the current request's trace.
 */
export function traceMiddleware(service: StorageService) {
  return (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
    (args: unknown): Promise<unknown> => {
      const trace = current.getStore();
      if (!trace) return next(args);
      return trace.record(service, context.commandName ?? 'unknown', () => next(args));
    };
}

/** Adds the trace middleware to an SDK client. */
export function traceClient(
  client: { middlewareStack: { add(mw: never, opts: object): void } },
  service: StorageService,
): void {
  client.middlewareStack.add(traceMiddleware(service) as never, {
    step: 'initialize',
    priority: 'high',
    name: `shoalTrace${service}`,
  });
}
