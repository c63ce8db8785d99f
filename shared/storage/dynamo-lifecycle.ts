/**
 * LifecycleStore on the single-table Catalog (docs/architecture.md §4.1). Items:
 *
 *   pk=ALIAS#<name>              sk=META                 alias: `doc` (JSON) + `revision` (N)
 *   pk=ALIAS#<name>              sk=H#<revision, 10 digits> one recorded move: `doc` + `incarnation`
 *   pk=ALIASES                   sk=<name>               registry of alias names (for listing)
 *   pk=MALIAS#<model>#<alias>    sk=META / H#…           model aliases, same scheme
 *   pk=MALIASES#<model>          sk=<alias>              registry of a model's aliases
 *   pk=COL#<name>                sk=EVAL#<version, 10 digits> evaluation of an index version
 *   pk=COL#<name>                sk=TUNE#<jobId>         asynchronous tune job: `doc` + `status`,
 *                                                        `ttl` (epoch s, DynamoDB TTL)
 *   pk=MODEL#<name>              sk=COUNTER              version counter `next` (N, atomic ADD)
 *   pk=MODEL#<name>              sk=V#<version, 10 digits> model version: `doc` + `state`
 *   pk=MODELS                    sk=<name>               registry of model names
 *   pk=ALIAS#<name>              sk=EXPERIMENT           the alias's running (or last) experiment:
 *                                                        `doc` + `state` + `experimentId`
 *   pk=EXP#<id>                  sk=ARM#<arm>            per-arm counters (N attributes, atomic ADD only)
 *   pk=EXP#<id>                  sk=SEQ                  sequential tests' running state: `<metric>P`,
 *                                                        `<metric>Lo`, `<metric>Hi` (N), only ever tightened
 *   pk=QUERY#<queryId>           sk=META                 queryId → {alias, experimentId, arm},
 *                                                        `ttl` (epoch s, DynamoDB TTL)
 *
 * Moves: the alias item is replaced with ONE conditional put on its previous revision
 * (`attribute_not_exists` for a creation) and carries the move that produced it (`lastMove`).
 * The history item of that revision is written after the move succeeded (and re-written from
 * `lastMove` before the next move, so a crash in between loses nothing); a failed move never
 * writes one. History is read only for the alias's current incarnation and revisions ≤ its
 * current revision, so a deleted-and-re-created alias never shows the old one's moves.
 *
 * Every item read is validated with zod (CorruptDataError). No transactions.
 */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { ConflictError, CorruptDataError } from '../errors.js';
import { LAT_BUCKETS, joinSequential, tightens, type SequentialState } from '../lifecycle/experiment-stats.js';
import type { ArmCounters, ArmDelta, LifecycleStore, Pointer, QueryAttribution } from '../lifecycle/types.js';
import { latencyBucket } from '../lifecycle/experiment-stats.js';
import {
  atMostOnce,
  awsErrorName,
  batchGetFully,
  chunk,
  conditionalWrite,
  queryPages,
  type Recheck,
} from './clients.js';
import {
  ALIASES_PK,
  ARM_PREFIX,
  COUNTER_SK,
  EVAL_PREFIX,
  EXPERIMENT_SK,
  META_SK,
  MODELS_PK,
  MODEL_VERSION_PREFIX,
  SEQ_SK,
  aliasPk,
  armSk,
  colPk,
  evalSk,
  experimentPk,
  historySk,
  modelAliasPk,
  modelAliasRegistryPk,
  modelPk,
  modelVersionSk,
  queryPk,
  tuneJobSk,
  tuneQueriesSk,
} from './keys.js';
import type {
  Arm,
  Evaluation,
  Experiment,
  FeedbackEvent,
  ModelVersion,
  ModelVersionState,
  PointerMove,
  ModelTensorInfo,
  TuneJob,
} from '../service-types.js';

const nonNegInt = z.number().int().nonnegative();
const targetSchema = z.union([
  z.object({ model: z.string(), version: nonNegInt }),
  z.object({ collection: z.string(), version: nonNegInt.optional(), line: z.string().optional() }),
]);
const moveSchema = z.object({
  revision: z.number().int().positive(),
  at: z.string(),
  by: z.string(),
  action: z.enum(['create', 'move', 'rollback', 'promote']),
  from: targetSchema.nullable(),
  to: targetSchema,
  reason: z.string().optional(),
  forced: z.boolean().optional(),
});
const pointerSchema = z.object({
  name: z.string(),
  target: targetSchema,
  revision: z.number().int().positive(),
  incarnation: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lastMove: moveSchema,
});
const evaluationSchema = z.object({
  collection: z.string(),
  generation: z.number().int().positive(),
  version: nonNegInt,
  k: z.number().int().positive(),
  ef: z.number().int().positive().optional(),
  nprobe: z.number().int().positive().optional(),
  queries: nonNegInt,
  source: z.enum(['sample', 'supplied']),
  recall: z.number().min(0).max(1),
  latencyMs: z.object({ p50: z.number(), p95: z.number(), mean: z.number() }),
  rows: nonNegInt,
  evaluatedAt: z.string(),
  by: z.string().optional(),
  tuning: z
    .object({
      targetRecall: z.number(),
      k: z.number().int(),
      chosenEf: z.number().int().optional(),
      chosenNprobe: z.number().int().optional(),
      table: z.array(
        z.object({
          ef: z.number().int(),
          nprobe: z.number().int().optional(),
          recall: z.number(),
          p50: z.number(),
          p95: z.number(),
        }),
      ),
      graph: z
        .object({
          sample: nonNegInt,
          queries: nonNegInt,
          table: z.array(
            z.object({
              m: z.number().int(),
              efConstruction: z.number().int(),
              ef: z.number().int(),
              recall: z.number(),
              p50: z.number(),
              p95: z.number(),
              buildMs: z.number(),
              bytesPerVector: z.number(),
              meetsTarget: z.boolean(),
              searchCost: z.number(),
              pareto: z.boolean(),
            }),
          ),
          recommendation: z.object({
            m: z.number().int(),
            efConstruction: z.number().int(),
            efSearch: z.number().int(),
          }),
          candidate: z.string().optional(),
        })
        .optional(),
    })
    .optional(),
});
const tuneJobSchema = z.object({
  id: z.string(),
  collection: z.string(),
  version: nonNegInt,
  status: z.enum(['queued', 'running', 'succeeded', 'failed']),
  createdAt: z.string(),
  updatedAt: z.string(),
  progress: z.object({ measured: nonNegInt, of: nonNegInt.optional() }),
  input: z.object({
    targetRecall: z.number(),
    k: z.number().int().positive(),
    sample: z.number().int().positive(),
    queries: z.boolean().optional(),
    graph: z
      .object({ sample: z.number().int().optional(), candidate: z.union([z.boolean(), z.string()]).optional() })
      .optional(),
  }),
  by: z.string().optional(),
  evaluation: evaluationSchema.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
const tensorInfoSchema = z.object({
  name: z.string(),
  dtype: z.string() as z.ZodType<ModelTensorInfo['dtype']>,
  shape: z.array(z.union([z.number(), z.string()])),
});
const modelVersionSchema = z.object({
  name: z.string(),
  version: z.number().int().positive(),
  state: z.enum(['pending', 'verifying', 'ready']),
  dimension: z.number().int().positive(),
  metric: z.enum(['cosine', 'l2', 'ip']),
  framework: z.string().optional(),
  format: z.literal('onnx').optional(),
  tokenizer: z
    .object({
      type: z.literal('wordpiece'),
      vocab: z.array(z.string()),
      maxLength: z.number().int().positive(),
      lowercase: z.boolean().optional(),
      unknown: z.string().optional(),
      pad: z.string().optional(),
      cls: z.string().optional(),
      sep: z.string().optional(),
      continuation: z.string().optional(),
    })
    .optional(),
  signature: z
    .object({
      irVersion: z.number(),
      opsets: z.array(z.object({ domain: z.string(), version: z.number() })),
      producer: z.string().optional(),
      inputs: z.array(tensorInfoSchema),
      outputs: z.array(tensorInfoSchema),
      ops: z.array(z.string()),
      parameters: z.number(),
    })
    .optional(),
  description: z.string().optional(),
  params: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.number()),
  tags: z.record(z.string(), z.string()),
  artifact: z.object({ key: z.string(), sha256: z.string().optional(), bytes: nonNegInt.optional() }),
  createdAt: z.string(),
  createdBy: z.string(),
  committedAt: z.string().optional(),
  verification: z
    .object({
      sha256: z.string(),
      bytes: nonNegInt,
      requestedAt: z.string(),
      error: z.string().optional(),
      finishedAt: z.string().optional(),
    })
    .optional(),
});
const experimentSchema = z.object({
  id: z.string(),
  alias: z.string(),
  mode: z.enum(['split', 'shadow']),
  weight: z.number().min(0).max(100),
  champion: z.object({ collection: z.string(), version: nonNegInt.optional(), line: z.string().optional() }),
  challenger: z.object({ collection: z.string(), version: nonNegInt.optional(), line: z.string().optional() }),
  guardrails: z.object({ maxErrorRateDelta: z.number(), maxP95Ratio: z.number(), minSamples: nonNegInt }),
  overlapSample: z.number().min(0).max(1),
  tau2: z.number().positive().optional(),
  state: z.enum(['running', 'promoted', 'aborted']),
  createdAt: z.string(),
  createdBy: z.string(),
  endedAt: z.string().optional(),
  endedBy: z.string().optional(),
  reason: z.string().optional(),
});
const sequentialSchema = z.object({ p: z.number().min(0).max(1), lo: z.number(), hi: z.number() });
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function armCounters(item: Record<string, unknown> | undefined): ArmCounters {
  const i = item ?? {};
  return {
    requests: num(i.requests),
    errors: num(i.errors),
    latency: Array.from({ length: LAT_BUCKETS }, (_, b) => num(i[`h${b}`])),
    latencySumMs: num(i.latSum),
    overlapSum: num(i.ovSum),
    overlapN: num(i.ovN),
    clicks: num(i.clicks),
    clickedQueries: num(i.clickQ),
    converts: num(i.converts),
    convertedQueries: num(i.convertQ),
  };
}

/** `ADD a :a, b :b` with every attribute name aliased (several are reserved words). */
function addExpression(adds: Record<string, number>): {
  UpdateExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Record<string, number>;
} {
  const names: Record<string, string> = {};
  const values: Record<string, number> = {};
  const parts: string[] = [];
  Object.entries(adds).forEach(([attr, v], i) => {
    names[`#a${i}`] = attr;
    values[`:v${i}`] = v;
    parts.push(`#a${i} :v${i}`);
  });
  return {
    UpdateExpression: `ADD ${parts.join(', ')}`,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

const docItem = z.object({ pk: z.string(), sk: z.string(), doc: z.string() });

function parseDoc<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.output<S> {
  const item = docItem.safeParse(raw);
  if (!item.success) throw new CorruptDataError(`malformed ${what} item`, { cause: item.error });
  let doc: unknown;
  try {
    doc = JSON.parse(item.data.doc);
  } catch (err) {
    throw new CorruptDataError(`${what} item ${item.data.pk}/${item.data.sk}: doc is not valid JSON`, { cause: err });
  }
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CorruptDataError(
      `malformed ${what}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

/** `alias` → ALIAS#<name> / ALIASES; `model:<m>` → MALIAS#<m>#<name> / MALIASES#<m>. */
function pointerKeys(kind: string, name: string): { pk: string; registry: string } {
  if (kind === 'alias') return { pk: aliasPk(name), registry: ALIASES_PK };
  if (kind.startsWith('model:')) {
    const model = kind.slice('model:'.length);
    return { pk: modelAliasPk(model, name), registry: modelAliasRegistryPk(model) };
  }
  throw new CorruptDataError(`unknown pointer kind ${kind}`);
}

export interface DynamoLifecycleOptions {
  ddb: DynamoDBDocumentClient;
  table: string;
}

export class DynamoLifecycleStore implements LifecycleStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(opts: DynamoLifecycleOptions) {
    this.ddb = opts.ddb;
    this.table = opts.table;
  }

  // --- pointers (aliases) --------------------------------------------------------------------

  async getPointer(kind: string, name: string): Promise<Pointer | undefined> {
    const { pk } = pointerKeys(kind, name);
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk, sk: META_SK }, ConsistentRead: true }),
    );
    if (!res.Item) return undefined;
    const p = parseDoc(pointerSchema, res.Item, 'alias') as Pointer;
    if (p.name !== name || res.Item.revision !== p.revision)
      throw new CorruptDataError(`alias item ${pk} does not match its key`);
    return p;
  }

  async listPointers(kind: string): Promise<Pointer[]> {
    const { registry } = pointerKeys(kind, '_');
    const names = await this.queryRegistry(registry);
    const out: Pointer[] = [];
    for (const batch of chunk(names, 100)) {
      const keys = batch.map((n) => ({ pk: pointerKeys(kind, n).pk, sk: META_SK }));
      for (const raw of await batchGetFully(this.ddb, this.table, keys)) {
        out.push(parseDoc(pointerSchema, raw, 'alias') as Pointer);
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async writePointer(kind: string, next: Pointer, expectedRevision: number): Promise<boolean> {
    const { pk, registry } = pointerKeys(kind, next.name);
    if (expectedRevision === 0) {
      // Registry first: a listed name whose META is missing is skipped by listPointers.
      await this.ddb.send(new PutCommand({ TableName: this.table, Item: { pk: registry, sk: next.name } }));
    }
    const doc = JSON.stringify(next);
    return conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk, sk: META_SK, revision: next.revision, doc },
            ConditionExpression: expectedRevision === 0 ? 'attribute_not_exists(pk)' : 'revision = :prev',
            ExpressionAttributeValues: expectedRevision === 0 ? undefined : { ':prev': expectedRevision },
          }),
        ),
      // The move's doc (its time and incarnation included) at the new revision is this move, resent.
      async () => {
        const item = await this.getItem(pk, META_SK);
        if (item?.doc === doc) return 'ours';
        return (item?.revision ?? 0) === expectedRevision ? 'again' : 'theirs';
      },
    );
  }

  async putHistory(kind: string, name: string, incarnation: string, move: PointerMove): Promise<void> {
    const { pk } = pointerKeys(kind, name);
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk, sk: historySk(move.revision), incarnation, doc: JSON.stringify(move) },
      }),
    );
  }

  async listHistory(kind: string, name: string, incarnation: string, maxRevision: number): Promise<PointerMove[]> {
    const { pk } = pointerKeys(kind, name);
    const out: PointerMove[] = [];
    for await (const raw of this.queryAll({
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
      ExpressionAttributeValues: { ':pk': pk, ':lo': historySk(1), ':hi': historySk(maxRevision) },
      ScanIndexForward: false,
    })) {
      if (raw.incarnation === incarnation) out.push(parseDoc(moveSchema, raw, 'alias history') as PointerMove);
    }
    return out;
  }

  async deletePointer(kind: string, name: string, expectedRevision: number): Promise<boolean> {
    const { pk, registry } = pointerKeys(kind, name);
    const deleted = await conditionalWrite(
      () =>
        this.ddb.send(
          new DeleteCommand({
            TableName: this.table,
            Key: { pk, sk: META_SK },
            ConditionExpression: 'revision = :prev',
            ExpressionAttributeValues: { ':prev': expectedRevision },
          }),
        ),
      // Gone: this delete ran (its response lost), or a concurrent delete of the same revision did;
      // either way that revision is deleted, which is what the caller asked.
      async () => {
        const item = await this.getItem(pk, META_SK);
        return !item ? 'ours' : item.revision === expectedRevision ? 'again' : 'theirs';
      },
    );
    if (!deleted) return false;
    // History items stay (they belong to the old incarnation and are never shown again).
    // The registry entry goes unless the alias was re-created in between (harmless either way).
    await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { pk: registry, sk: name } }));
    return true;
  }

  // --- experiments ---------------------------------------------------------------------------

  async getExperiment(alias: string): Promise<Experiment | undefined> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: aliasPk(alias), sk: EXPERIMENT_SK }, ConsistentRead: true }),
    );
    return res.Item ? (parseDoc(experimentSchema, res.Item, 'experiment') as Experiment) : undefined;
  }

  async startExperiment(exp: Experiment): Promise<boolean> {
    return this.putExperiment(exp, 'attribute_not_exists(pk) OR #state <> :running', {}, (item) =>
      item?.state !== 'running' ? 'again' : 'theirs',
    );
  }

  async endExperiment(exp: Experiment): Promise<boolean> {
    return this.putExperiment(exp, 'experimentId = :id AND #state = :running', { ':id': exp.id }, (item) =>
      item?.experimentId === exp.id && item.state === 'running' ? 'again' : 'theirs',
    );
  }

  /** The experiment item's conditional put; its doc (unique id, times) recognises a resend of itself. */
  private async putExperiment(
    exp: Experiment,
    condition: string,
    values: Record<string, string>,
    otherwise: (item: Record<string, unknown> | undefined) => Recheck,
  ): Promise<boolean> {
    const doc = JSON.stringify(exp);
    return conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: aliasPk(exp.alias), sk: EXPERIMENT_SK, state: exp.state, experimentId: exp.id, doc },
            ConditionExpression: condition,
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: { ':running': 'running', ...values },
          }),
        ),
      async () => {
        const item = await this.getItem(aliasPk(exp.alias), EXPERIMENT_SK);
        return item?.doc === doc ? 'ours' : otherwise(item);
      },
    );
  }

  async recordArm(experimentId: string, arm: Arm, delta: ArmDelta): Promise<ArmCounters> {
    const adds: Record<string, number> = {};
    if (delta.requests) adds.requests = delta.requests;
    if (delta.errors) adds.errors = delta.errors;
    if (delta.latencyMs !== undefined) {
      adds[`h${latencyBucket(delta.latencyMs)}`] = 1;
      adds.latSum = delta.latencyMs;
    }
    if (delta.overlap !== undefined) {
      adds.ovSum = delta.overlap;
      adds.ovN = 1;
    }
    if (!Object.keys(adds).length) return (await this.getArms(experimentId))[arm];
    // ADD is not idempotent: a resend after a lost response would count the request twice.
    const res = await this.ddb.send(
      atMostOnce(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: experimentPk(experimentId), sk: armSk(arm) },
          ...addExpression(adds),
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return armCounters(res.Attributes);
  }

  async getArms(experimentId: string): Promise<Record<Arm, ArmCounters>> {
    const res = await this.ddb.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':pk': experimentPk(experimentId), ':p': ARM_PREFIX },
        ConsistentRead: true,
      }),
    );
    const items = new Map((res.Items ?? []).map((i) => [i.sk as string, i]));
    return {
      champion: armCounters(items.get(armSk('champion'))),
      challenger: armCounters(items.get(armSk('challenger'))),
    };
  }

  async putQuery(q: QueryAttribution, ttlSeconds: number): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: queryPk(q.queryId),
          sk: META_SK,
          alias: q.alias,
          experimentId: q.experimentId,
          arm: q.arm,
          ttl: Math.floor(Date.now() / 1000) + ttlSeconds,
        },
      }),
    );
  }

  async recordQueryFeedback(
    queryId: string,
    event: FeedbackEvent,
  ): Promise<{ attribution: QueryAttribution; first: boolean } | undefined> {
    const counter = event === 'click' ? 'clicks' : 'converts';
    for (let attempt = 1; ; attempt++) {
      const hit = await this.addQueryFeedback(queryId, counter);
      if (hit !== 'failed') return hit;
      // The condition failed, so nothing was counted: the query is unknown or expired, unless the
      // item is there and live (a spurious failure), which earns one more try.
      const item = await this.getItem(queryPk(queryId), META_SK);
      const live = item && (typeof item.ttl !== 'number' || item.ttl > Math.floor(Date.now() / 1000));
      if (!live || attempt >= 2) return undefined;
    }
  }

  private async addQueryFeedback(
    queryId: string,
    counter: 'clicks' | 'converts',
  ): Promise<{ attribution: QueryAttribution; first: boolean } | 'failed'> {
    try {
      // At most once: a resent ADD would count the event twice (and take `first` from the second count).
      const res = await this.ddb.send(
        atMostOnce(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: queryPk(queryId), sk: META_SK },
            UpdateExpression: 'ADD #c :one',
            ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)',
            ExpressionAttributeNames: { '#c': counter, '#ttl': 'ttl' },
            ExpressionAttributeValues: { ':one': 1, ':now': Math.floor(Date.now() / 1000) },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      const parsed = z
        .object({
          alias: z.string(),
          experimentId: z.string(),
          arm: z.enum(['champion', 'challenger']),
          [counter]: z.number(),
        })
        .safeParse(res.Attributes);
      if (!parsed.success) throw new CorruptDataError(`query item ${queryId} is malformed`, { cause: parsed.error });
      const d = parsed.data as { alias: string; experimentId: string; arm: Arm } & Record<string, number>;
      return {
        attribution: { queryId, alias: d.alias, experimentId: d.experimentId, arm: d.arm },
        first: d[counter] === 1,
      };
    } catch (err) {
      if (awsErrorName(err) === 'ConditionalCheckFailedException') return 'failed';
      throw err;
    }
  }

  async addArmFeedback(experimentId: string, arm: Arm, event: FeedbackEvent, first: boolean): Promise<ArmCounters> {
    const adds: Record<string, number> = event === 'click' ? { clicks: 1 } : { converts: 1 };
    if (first) adds[event === 'click' ? 'clickQ' : 'convertQ'] = 1;
    const res = await this.ddb.send(
      atMostOnce(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: experimentPk(experimentId), sk: armSk(arm) },
          ...addExpression(adds),
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return armCounters(res.Attributes);
  }

  async getSequential(experimentId: string): Promise<Partial<Record<FeedbackEvent, SequentialState>>> {
    const res = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: experimentPk(experimentId), sk: SEQ_SK },
        ConsistentRead: true,
      }),
    );
    const out: Partial<Record<FeedbackEvent, SequentialState>> = {};
    for (const metric of ['click', 'convert'] as const) {
      const raw = { p: res.Item?.[`${metric}P`], lo: res.Item?.[`${metric}Lo`], hi: res.Item?.[`${metric}Hi`] };
      if (raw.p === undefined && raw.lo === undefined && raw.hi === undefined) continue;
      const s = sequentialSchema.safeParse(raw);
      if (!s.success)
        throw new CorruptDataError(`sequential state of experiment ${experimentId} (${metric}) is malformed`, {
          cause: s.error,
        });
      out[metric] = s.data;
    }
    return out;
  }

  async tightenSequential(
    experimentId: string,
    metric: FeedbackEvent,
    state: SequentialState,
  ): Promise<SequentialState> {
    // Lock-free: the write goes through only if nothing stored is tighter than what we write
    // (our state already joins what we last read). Otherwise someone else tightened it in
    // between: re-read, join, retry. Each retry means a strictly tighter state, so this ends
    // quickly; after a few rounds the last read (a valid state too) is returned.
    let next = state;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.ddb.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: experimentPk(experimentId), sk: SEQ_SK },
            UpdateExpression: 'SET #p = :p, #lo = :lo, #hi = :hi',
            ConditionExpression:
              '(attribute_not_exists(#p) OR #p >= :p) AND (attribute_not_exists(#lo) OR #lo <= :lo) ' +
              'AND (attribute_not_exists(#hi) OR #hi >= :hi)',
            ExpressionAttributeNames: { '#p': `${metric}P`, '#lo': `${metric}Lo`, '#hi': `${metric}Hi` },
            ExpressionAttributeValues: { ':p': next.p, ':lo': next.lo, ':hi': next.hi },
          }),
        );
        return next;
      } catch (err) {
        if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
      }
      const stored = (await this.getSequential(experimentId))[metric];
      if (!stored) continue;
      const joined = joinSequential(stored, next);
      if (!tightens(stored, joined)) return stored;
      next = joined;
    }
    return (await this.getSequential(experimentId))[metric] ?? next;
  }

  /** One item, read strongly (undefined when absent). */
  private async getItem(pk: string, sk: string): Promise<Record<string, unknown> | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: true }));
    return res.Item;
  }

  // --- evaluations ----------------------------------------------------------------------------

  async putEvaluation(evaluation: Evaluation): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: colPk(evaluation.collection),
          sk: evalSk(evaluation.version),
          doc: JSON.stringify(evaluation),
        },
      }),
    );
  }

  async getEvaluation(collection: string, version: number): Promise<Evaluation | undefined> {
    const res = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: colPk(collection), sk: evalSk(version) },
        ConsistentRead: true,
      }),
    );
    return res.Item ? (parseDoc(evaluationSchema, res.Item, 'evaluation') as Evaluation) : undefined;
  }

  async listEvaluations(collection: string): Promise<Evaluation[]> {
    const out: Evaluation[] = [];
    for await (const raw of this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': colPk(collection), ':p': EVAL_PREFIX },
    })) {
      out.push(parseDoc(evaluationSchema, raw, 'evaluation') as Evaluation);
    }
    return out;
  }

  // --- tune jobs ------------------------------------------------------------------------------

  private tuneJobItem(job: TuneJob, ttlSeconds: number): Record<string, unknown> {
    return {
      pk: colPk(job.collection),
      sk: tuneJobSk(job.id),
      status: job.status,
      doc: JSON.stringify(job),
      ttl: Math.floor(Date.parse(job.createdAt) / 1000) + ttlSeconds,
    };
  }

  async createTuneJob(job: TuneJob, ttlSeconds: number): Promise<void> {
    const item = this.tuneJobItem(job, ttlSeconds);
    const written = await conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
        ),
      async (resent) => {
        const stored = await this.getItem(item.pk as string, item.sk as string);
        if (!stored) return 'again';
        return resent && stored.doc === item.doc ? 'ours' : 'theirs';
      },
    );
    if (!written) throw new ConflictError(`tune job ${job.id} already exists`, { field: 'jobId' });
  }

  async getTuneJob(collection: string, jobId: string): Promise<TuneJob | undefined> {
    const item = await this.getItem(colPk(collection), tuneJobSk(jobId));
    return item ? (parseDoc(tuneJobSchema, item, 'tune job') as TuneJob) : undefined;
  }

  async updateTuneJob(job: TuneJob, ttlSeconds: number): Promise<boolean> {
    // The TTL counts from the job's creation, so every write of it carries the same one.
    const item = this.tuneJobItem(job, ttlSeconds);
    return conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({
            TableName: this.table,
            Item: item,
            ConditionExpression: 'attribute_exists(pk) AND NOT (#status IN (:succeeded, :failed))',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':succeeded': 'succeeded', ':failed': 'failed' },
          }),
        ),
      async (resent) => {
        const stored = await this.getItem(item.pk as string, item.sk as string);
        if (resent && stored?.doc === item.doc) return 'ours';
        return stored && stored.status !== 'succeeded' && stored.status !== 'failed' ? 'again' : 'theirs';
      },
    );
  }

  async putTuneQueries(job: TuneJob, data: Float32Array, ttlSeconds: number): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: colPk(job.collection),
          sk: tuneQueriesSk(job.id),
          data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
          ttl: Math.floor(Date.parse(job.createdAt) / 1000) + ttlSeconds,
        },
      }),
    );
  }

  async getTuneQueries(collection: string, jobId: string): Promise<Float32Array | undefined> {
    const item = await this.getItem(colPk(collection), tuneQueriesSk(jobId));
    if (!item) return undefined;
    const bytes = item.data as Uint8Array;
    // Copied: the unmarshalled bytes need not be 4-byte aligned.
    return new Float32Array(new Uint8Array(bytes).buffer);
  }

  async deleteTuneQueries(collection: string, jobId: string): Promise<void> {
    await this.ddb.send(
      new DeleteCommand({ TableName: this.table, Key: { pk: colPk(collection), sk: tuneQueriesSk(jobId) } }),
    );
  }

  // --- models ---------------------------------------------------------------------------------

  async nextModelVersion(name: string): Promise<number> {
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: { pk: MODELS_PK, sk: name } }));
    const res = await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: modelPk(name), sk: COUNTER_SK },
        UpdateExpression: 'ADD #next :one',
        ExpressionAttributeNames: { '#next': 'next' },
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const parsed = z.object({ next: z.number().int().positive() }).safeParse(res.Attributes);
    if (!parsed.success) throw new CorruptDataError(`model version counter of ${name} is malformed`);
    return parsed.data.next;
  }

  async putModelVersion(mv: ModelVersion): Promise<void> {
    const doc = JSON.stringify(mv);
    const written = await conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: modelPk(mv.name), sk: modelVersionSk(mv.version), state: mv.state, doc },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      async (resent) => {
        const item = await this.getItem(modelPk(mv.name), modelVersionSk(mv.version));
        if (!item) return 'again';
        return resent && item.doc === doc ? 'ours' : 'theirs';
      },
    );
    if (!written)
      throw new ConflictError(`model ${mv.name} version ${mv.version} already exists`, { field: 'version' });
  }

  async getModelVersion(name: string, version: number): Promise<ModelVersion | undefined> {
    const res = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: modelPk(name), sk: modelVersionSk(version) },
        ConsistentRead: true,
      }),
    );
    return res.Item ? (parseDoc(modelVersionSchema, res.Item, 'model version') as ModelVersion) : undefined;
  }

  async listModelVersions(name: string): Promise<ModelVersion[]> {
    const out: ModelVersion[] = [];
    for await (const raw of this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': modelPk(name), ':p': MODEL_VERSION_PREFIX },
      ScanIndexForward: false,
    })) {
      out.push(parseDoc(modelVersionSchema, raw, 'model version') as ModelVersion);
    }
    return out;
  }

  async listModels(): Promise<string[]> {
    return this.queryRegistry(MODELS_PK);
  }

  async transitionModelVersion(mv: ModelVersion, from: ModelVersionState[]): Promise<boolean> {
    const values = Object.fromEntries(from.map((state, k) => [`:s${k}`, state]));
    const doc = JSON.stringify(mv);
    return conditionalWrite(
      () =>
        this.ddb.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: modelPk(mv.name), sk: modelVersionSk(mv.version), state: mv.state, doc },
            ConditionExpression: `#state IN (${Object.keys(values).join(', ')})`,
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: values,
          }),
        ),
      async (resent) => {
        const item = await this.getItem(modelPk(mv.name), modelVersionSk(mv.version));
        if (resent && item?.doc === doc) return 'ours';
        return from.includes(item?.state as ModelVersionState) ? 'again' : 'theirs';
      },
    );
  }

  private async queryRegistry(pk: string): Promise<string[]> {
    const names: string[] = [];
    for await (const raw of this.queryAll({
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': pk },
    })) {
      if (typeof raw.sk === 'string') names.push(raw.sk);
    }
    return names;
  }

  /** Every item of a strongly consistent query, page after page. */
  private async *queryAll(
    input: Pick<QueryCommandInput, 'KeyConditionExpression' | 'ExpressionAttributeValues' | 'ScanIndexForward'>,
  ): AsyncGenerator<Record<string, unknown>> {
    for await (const page of queryPages(this.ddb, { ...input, TableName: this.table, ConsistentRead: true }))
      yield* page;
  }
}
