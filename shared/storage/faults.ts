/**
 * Faults the local stack can inject so that it behaves like AWS where the emulators are kinder
 * (docs/architecture.md §7.5). Switched on with `SHOAL_FAULTS` (e.g. `gsi-lag=500`), listed by
 * `GET /v1/health`, refused outside local mode (a deployment never runs with faults).
 *
 * gsi-lag=<ms>  Global secondary indexes on AWS are eventually consistent: an item written a
 *               moment ago may be missing from a GSI Query. dynalite updates its indexes with
 *               the item, so without this fault no local test could see a read path that wrongly
 *               trusts a GSI. With it, every Query that names an IndexName leaves out the items
 *               written (put, updated or deleted-and-re-put) within the last <ms>. The old image
 *               of a changed item is not reproduced: a GSI that lags shows it as absent, not stale.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface Faults {
  /** Hide items written within this many ms from GSI queries. */
  gsiLagMs?: number;
}

/** The names `SHOAL_FAULTS` accepts, with the rule for each value. */
const FAULT_RULES: Record<string, { rule: string; parse: (v: string) => Partial<Faults> | undefined }> = {
  'gsi-lag': {
    rule: 'an integer number of milliseconds, 1–600000',
    parse: (v) => {
      const ms = /^\d+$/.test(v) ? Number(v) : NaN;
      return ms >= 1 && ms <= 600_000 ? { gsiLagMs: ms } : undefined;
    },
  },
};

/**
 * `gsi-lag=500` (comma-separated `name=value` pairs) → Faults. Returns an error message that
 * names the fault and its rule instead of throwing, so configuration can report it as one field.
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
  return faults?.gsiLagMs !== undefined ? [`gsi-lag=${faults.gsiLagMs}`] : [];
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

/**
 * Adds the configured faults to a DynamoDB client (the low-level client a DocumentClient wraps).
 * At the `build` step the input is already marshalled and the output not yet unmarshalled by a
 * DocumentClient, so both `{ S: "…" }` and plain values are handled.
 */
export function injectDynamoFaults(client: DynamoDBClient, faults: Faults, now: () => number = Date.now): void {
  const lagMs = faults.gsiLagMs;
  if (lagMs === undefined) return;
  client.middlewareStack.add(
    (next, context) => async (args) => {
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
    { step: 'build', name: 'shoalDynamoFaults' },
  );
}
