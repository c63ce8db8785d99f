/**
 * Faults the local stack can inject so that it behaves like AWS where the emulators are kinder
 * (docs/architecture.md §7.5). Switched on with `SHOAL_FAULTS` (e.g. `gsi-lag=500`), listed by
 * `GET /v1/health`, refused outside local mode (a deployment never runs with faults). Tests set
 * them per test with `setFaults` on a client set instead.
 *
 * gsi-lag=<ms>  Global secondary indexes on AWS are eventually consistent: an item written a
 *               moment ago may be missing from a GSI Query. dynalite updates its indexes with
 *               the item, so without this fault no local test could see a read path that wrongly
 *               trusts a GSI. With it, every Query that names an IndexName leaves out the items
 *               written (put, updated or deleted-and-re-put) within the last <ms>. The old image
 *               of a changed item is not reproduced: a GSI that lags shows it as absent, not stale.
 *
 * The probabilistic faults below fire per request attempt, drawn from one seeded PRNG
 * (`faults-seed`, default 1), and sit INSIDE the SDK's retry loop (below `retryMiddleware`, above
 * the deserializer): the SDK's standard retry with jitter sees them exactly as it sees the real
 * errors, and what it cannot absorb reaches Shoal's own code. The SDK classifies by name, HTTP
 * status and `$retryable`, so each fault carries the ones the service sends.
 *
 * ddb-throttle=<p>       ProvisionedThroughputExceededException / ThrottlingException (400), half each.
 *                        Not applied, like DynamoDB's: a throttled request is refused before it runs.
 * ddb-cond-fail=<p>      A write with a ConditionExpression answered ConditionalCheckFailedException
 *                        without being applied: the race a concurrent writer causes.
 * ddb-lost-response=<p>  The request IS applied, then its response is lost (ECONNRESET). The SDK
 *                        retries, so a conditional write then meets its own effect and a counter
 *                        `ADD` would count twice: the idempotency trap every write path must survive.
 * s3-slowdown=<p>        503 SlowDown (S3's per-prefix throttling), not applied.
 * s3-timeout=<p>         No answer within the client's timeout (TimeoutError). Writes are applied
 *                        first (the answer, not the request, was lost); reads are not sent.
 * faults-seed=<n>        Seed of the PRNG that draws the faults (reproducible runs).
 */
// Types only: shared/config.ts parses SHOAL_FAULTS at every cold start, and a value import here would
// load the DynamoDB and S3 SDKs into functions that use neither (the searcher needs S3 only). The
// exception classes are imported when a fault fires (local stack only).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { mulberry32 } from '../random.js';

export interface Faults {
  /** Hide items written within this many ms from GSI queries. */
  gsiLagMs?: number;
  /** Probability that a DynamoDB request attempt is throttled. */
  ddbThrottle?: number;
  /** Probability that a conditional DynamoDB write fails its condition without being applied. */
  ddbCondFail?: number;
  /** Probability that a DynamoDB request is applied and its response lost. */
  ddbLostResponse?: number;
  /** Probability that an S3 request attempt gets 503 SlowDown. */
  s3SlowDown?: number;
  /** Probability that an S3 request attempt times out (writes applied first). */
  s3Timeout?: number;
  /** Seed of the fault PRNG (default 1). */
  seed?: number;
}

const probability = (key: keyof Faults) => (v: string) => {
  const p = /^(0(\.\d+)?|1(\.0+)?)$/.test(v) ? Number(v) : NaN;
  return p >= 0 && p <= 1 ? { [key]: p } : undefined;
};
const PROBABILITY = 'a probability, 0–1 (e.g. 0.2)';

/** The names `SHOAL_FAULTS` accepts, in the order `describeFaults` lists them. */
const FAULT_RULES: Record<
  string,
  { key: keyof Faults; rule: string; parse: (v: string) => Partial<Faults> | undefined }
> = {
  'gsi-lag': {
    key: 'gsiLagMs',
    rule: 'an integer number of milliseconds, 1–600000',
    parse: (v) => {
      const ms = /^\d+$/.test(v) ? Number(v) : NaN;
      return ms >= 1 && ms <= 600_000 ? { gsiLagMs: ms } : undefined;
    },
  },
  'ddb-throttle': { key: 'ddbThrottle', rule: PROBABILITY, parse: probability('ddbThrottle') },
  'ddb-cond-fail': { key: 'ddbCondFail', rule: PROBABILITY, parse: probability('ddbCondFail') },
  'ddb-lost-response': { key: 'ddbLostResponse', rule: PROBABILITY, parse: probability('ddbLostResponse') },
  's3-slowdown': { key: 's3SlowDown', rule: PROBABILITY, parse: probability('s3SlowDown') },
  's3-timeout': { key: 's3Timeout', rule: PROBABILITY, parse: probability('s3Timeout') },
  'faults-seed': {
    key: 'seed',
    rule: 'a non-negative integer',
    parse: (v) => (/^\d{1,9}$/.test(v) ? { seed: Number(v) } : undefined),
  },
};

/**
 * `gsi-lag=500,ddb-throttle=0.1` (comma-separated `name=value` pairs) → Faults. Returns an error
 * message that names the fault and its rule instead of throwing, so configuration can report it as
 * one field.
 */
export function parseFaults(spec: string | undefined): Faults | string {
  const faults: Faults = {};
  if (spec === undefined || spec.trim() === '') return faults;
  for (const part of spec.split(',')) {
    const [name, value = ''] = part.trim().split('=', 2);
    const rule = FAULT_RULES[name];
    if (!rule) return `unknown fault "${name}" (known: ${Object.keys(FAULT_RULES).join(', ')})`;
    const parsed = rule.parse(value.trim());
    if (!parsed) return `fault "${name}" needs ${rule.rule}; got "${value}"`;
    Object.assign(faults, parsed);
  }
  return faults;
}

/** The active faults as `name=value` strings (for `/v1/health` and logs). */
export function describeFaults(faults: Faults | undefined): string[] {
  if (!faults) return [];
  return Object.entries(FAULT_RULES).flatMap(([name, { key }]) =>
    faults[key] !== undefined ? [`${name}=${faults[key]}`] : [],
  );
}

/**
 * The faults of one client set, switchable while it runs (a test sets and clears them around one
 * flow) and counting what it injected, so a test can check that its faults really fired.
 */
export class FaultSwitch {
  private current: Faults = {};
  private random: () => number = mulberry32(1);
  /** Faults injected since the last `set`, by fault name. */
  injected: Record<string, number> = {};

  constructor(faults: Faults = {}) {
    this.set(faults);
  }

  get faults(): Faults {
    return this.current;
  }

  /** Replaces the active faults and restarts the PRNG from their seed. */
  set(faults: Faults): void {
    this.current = { ...faults };
    this.random = mulberry32(faults.seed ?? 1);
    this.injected = {};
  }

  /** Draws whether fault `name` (probability `p`) fires on this attempt, and counts it. */
  fires(name: string, p: number | undefined): boolean {
    if (!p || this.random() >= p) return false;
    this.injected[name] = (this.injected[name] ?? 0) + 1;
    return true;
  }

  /** A uniform draw in [0, 1) from the same seeded sequence. */
  draw(): number {
    return this.random();
  }
}

/** Last write time per `<table>\0<pk>`, shared by every client of the process (one local stack). */
const lastWrite = new Map<string, number>();
/** Entries older than this are dropped when the map grows (no lag is longer than 10 min). */
const FORGET_AFTER_MS = 600_000;

type Attr = string | { S?: string } | undefined;
type Item = Record<string, unknown>;

function pkOf(item: Item | undefined): string | undefined {
  const pk = item?.pk as Attr;
  return typeof pk === 'string' ? pk : pk?.S;
}

/** Every (table, pk) a write command touches: PutItem, UpdateItem, DeleteItem, BatchWriteItem. */
function writtenKeys(command: string, input: Item): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const table = input.TableName as string | undefined;
  const add = (t: string | undefined, item: Item | undefined) => {
    const pk = pkOf(item);
    if (t && pk !== undefined) out.push([t, pk]);
  };
  if (command === 'PutItemCommand') add(table, input.Item as Item);
  if (command === 'UpdateItemCommand' || command === 'DeleteItemCommand') add(table, input.Key as Item);
  if (command === 'BatchWriteItemCommand') {
    const byTable = (input.RequestItems ?? {}) as Record<string, Array<Record<string, Item>>>;
    for (const [t, requests] of Object.entries(byTable)) {
      for (const r of requests) add(t, (r.PutRequest?.Item ?? r.DeleteRequest?.Key) as Item | undefined);
    }
  }
  return out;
}

function markWritten(keys: Array<[string, string]>, t: number): void {
  if (!keys.length) return;
  if (lastWrite.size > 1_000_000) {
    for (const [k, at] of lastWrite) if (at < t - FORGET_AFTER_MS) lastWrite.delete(k);
  }
  for (const [table, pk] of keys) lastWrite.set(`${table}\u0000${pk}`, t);
}

/** Where the per-attempt faults sit: inside retryMiddleware, outside the deserializer (see the header). */
const PER_ATTEMPT = { step: 'deserialize', priority: 'high' } as const;

const DDB_WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand']);

/** A reset connection after the request went out: what a lost response looks like to the SDK. */
function connectionReset(what: string): Error {
  return Object.assign(new Error(`socket hang up (injected fault: ${what})`), { code: 'ECONNRESET', $metadata: {} });
}

function ddbMetadata(status: number) {
  return { httpStatusCode: status, requestId: 'injected-fault', attempts: 1, totalRetryDelay: 0 };
}

/**
 * Adds the fault switch to a DynamoDB client (the low-level client a DocumentClient wraps).
 * gsi-lag sits at the `build` step, outside the retry loop: there the input is already
 * marshalled and the output not yet unmarshalled by a DocumentClient, so both `{ S: "…" }` and
 * plain values are handled. The per-attempt faults sit inside the loop.
 */
export function injectDynamoFaults(client: DynamoDBClient, faults: FaultSwitch, now: () => number = Date.now): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const lagMs = faults.faults.gsiLagMs;
      if (lagMs === undefined) return next(args);
      const command = context.commandName ?? '';
      const input = args.input as Item;
      // Marked before the call too: a query that overlaps the write must not see it early.
      const keys = writtenKeys(command, input);
      markWritten(keys, now());
      const result = await next(args);
      if (command === 'QueryCommand' && input.IndexName) {
        const output = result.output as { Items?: Item[]; Count?: number };
        const table = input.TableName as string;
        const cutoff = now() - lagMs;
        if (output.Items) {
          output.Items = output.Items.filter((item) => (lastWrite.get(`${table}\u0000${pkOf(item)}`) ?? 0) <= cutoff);
          output.Count = output.Items.length;
        }
        return result;
      }
      markWritten(keys, now());
      return result;
    },
    { step: 'build', name: 'shoalDynamoGsiLag' },
  );
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const f = faults.faults;
      const command = context.commandName ?? '';
      if (faults.fires('ddb-throttle', f.ddbThrottle)) {
        // Drawn before the await, so a seeded run draws in the same order as before.
        const provisioned = faults.draw() < 0.5;
        const { ProvisionedThroughputExceededException, ThrottlingException } = await import(
          '@aws-sdk/client-dynamodb'
        );
        const message = 'Rate of requests exceeds the allowed throughput (injected fault)';
        throw provisioned
          ? new ProvisionedThroughputExceededException({ message, $metadata: ddbMetadata(400) })
          : new ThrottlingException({ message, $metadata: ddbMetadata(400) });
      }
      const conditional = DDB_WRITES.has(command) && (args.input as Item).ConditionExpression !== undefined;
      if (conditional && faults.fires('ddb-cond-fail', f.ddbCondFail)) {
        const { ConditionalCheckFailedException } = await import('@aws-sdk/client-dynamodb');
        throw new ConditionalCheckFailedException({
          message: 'The conditional request failed (injected fault)',
          $metadata: ddbMetadata(400),
        });
      }
      if (!faults.fires('ddb-lost-response', f.ddbLostResponse)) return next(args);
      await next(args);
      throw connectionReset(`${command} applied, response lost`);
    },
    { ...PER_ATTEMPT, name: 'shoalDynamoFaults' },
  );
}

/** S3 commands whose effect a lost answer does not undo (the timeout fault applies them first). */
const S3_WRITES = new Set([
  'PutObjectCommand',
  'CopyObjectCommand',
  'DeleteObjectCommand',
  'DeleteObjectsCommand',
  'CreateMultipartUploadCommand',
  'UploadPartCommand',
  'CompleteMultipartUploadCommand',
  'AbortMultipartUploadCommand',
]);

/** Adds the fault switch's S3 faults (per attempt, inside the retry loop) to an S3 client. */
export function injectS3Faults(client: S3Client, faults: FaultSwitch): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const f = faults.faults;
      const command = context.commandName ?? '';
      if (faults.fires('s3-slowdown', f.s3SlowDown)) {
        const { S3ServiceException } = await import('@aws-sdk/client-s3');
        throw new S3ServiceException({
          name: 'SlowDown',
          $fault: 'server',
          $metadata: ddbMetadata(503),
          message: 'Please reduce your request rate. (injected fault)',
        });
      }
      if (!faults.fires('s3-timeout', f.s3Timeout)) return next(args);
      if (S3_WRITES.has(command)) await next(args);
      throw Object.assign(new Error(`${command} timed out (injected fault)`), { name: 'TimeoutError', $metadata: {} });
    },
    { ...PER_ATTEMPT, name: 'shoalS3Faults' },
  );
}
