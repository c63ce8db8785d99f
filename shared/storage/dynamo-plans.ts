/**
 * Build plans in the Catalog table (docs/architecture.md §6.5): one item per index line with a plan in
 * flight, `pk=COL#<name>`, `sk=PLAN#<line>` (so deleting the collection drops it). The stage's
 * progress is a string set of finished task numbers: adding one is idempotent, so a duplicate or
 * redelivered task message cannot count twice, and the stage advances by one conditional update
 * that only one finisher can win.
 *
 * Beside it, `sk=BUILDING#<line>` is the line's build lease: the builder invocation that decides how to
 * bring the line up to date (build in process, or start a plan) holds it until it is done, so two
 * invocations (the schedule's tick and a queued build, say) never build the same line at once — the
 * loser's work would only be thrown away at its commit.
 */
import { DeleteItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CorruptDataError } from '../errors.js';
import { awsErrorName } from './clients.js';
import { BUILD_LEASE_PREFIX, GEN_PK, buildLeaseSk, colPk, planSk } from './keys.js';

export const PLAN_STAGES = ['scan', 'train', 'assign', 'build', 'commit'] as const;
export type PlanStage = (typeof PLAN_STAGES)[number];

export interface BuildPlan {
  collection: string;
  line: string;
  planId: string;
  stage: PlanStage;
  /** Tasks of the current stage. */
  tasks: number;
  /** Finished task numbers of the current stage. */
  done: number[];
  createdAt: number;
  /** Last progress (a task finished, the stage advanced, a redrive): the stall clock. */
  updatedAt: number;
  /** How many times the sweeper re-sent the stage's unfinished tasks. */
  redrives: number;
  /** What the plan builds (JSON, see plan.ts PlanSpec). */
  spec: string;
  /** Stage outputs the next stages read (JSON, see plan.ts PlanState). */
  state: string;
}

const itemSchema = z.object({
  collection: z.string(),
  line: z.string(),
  planId: z.string(),
  stage: z.enum(PLAN_STAGES),
  tasks: z.number().int().nonnegative(),
  done: z.set(z.string()).optional(),
  createdAt: z.number(),
  updatedAt: z.number(),
  redrives: z.number().int().nonnegative(),
  spec: z.string(),
  state: z.string(),
});

function fromItem(raw: unknown): BuildPlan {
  const parsed = itemSchema.safeParse(raw);
  if (!parsed.success) throw new CorruptDataError(`malformed build plan item: ${parsed.error.issues[0]?.message}`);
  const { done, ...rest } = parsed.data;
  return { ...rest, done: [...(done ?? [])].map(Number).sort((a, b) => a - b) };
}

const conditionFailed = (err: unknown): boolean => awsErrorName(err) === 'ConditionalCheckFailedException';

export class DynamoPlanStore {
  constructor(private readonly opts: { ddb: DynamoDBDocumentClient; table: string }) {}

  private key(collection: string, line: string) {
    return { pk: colPk(collection), sk: planSk(line) };
  }

  /** Creates the line's plan; false when one is in flight already (one plan per line). */
  async create(plan: Omit<BuildPlan, 'done' | 'redrives'>): Promise<boolean> {
    try {
      await this.opts.ddb.send(
        new PutCommand({
          TableName: this.opts.table,
          Item: { ...this.key(plan.collection, plan.line), ...plan, redrives: 0 },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (conditionFailed(err)) return false;
      throw err;
    }
  }

  async get(collection: string, line: string): Promise<BuildPlan | undefined> {
    const out = await this.opts.ddb.send(
      new GetCommand({ TableName: this.opts.table, Key: this.key(collection, line), ConsistentRead: true }),
    );
    return out.Item ? fromItem(out.Item) : undefined;
  }

  /**
   * Records task `task` of `stage` as finished (idempotent). Returns the plan after the write, or
   * undefined when the plan is gone or has moved past that stage (a stale message: nothing to do).
   */
  async finishTask(p: Pick<BuildPlan, 'collection' | 'line' | 'planId' | 'stage'>, task: number, now: number) {
    try {
      const out = await this.opts.ddb.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: this.key(p.collection, p.line),
          UpdateExpression: 'ADD done :t SET updatedAt = :now',
          ConditionExpression: 'planId = :id AND stage = :stage',
          ExpressionAttributeValues: { ':t': new Set([String(task)]), ':id': p.planId, ':stage': p.stage, ':now': now },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromItem(out.Attributes);
    } catch (err) {
      if (conditionFailed(err)) return undefined;
      throw err;
    }
  }

  /** Moves the plan from `from` to `to` with `tasks` tasks and new state; false if another finisher won. */
  async advance(
    p: Pick<BuildPlan, 'collection' | 'line' | 'planId'>,
    from: PlanStage,
    to: PlanStage,
    tasks: number,
    state: string,
    now: number,
  ): Promise<boolean> {
    try {
      await this.opts.ddb.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: this.key(p.collection, p.line),
          UpdateExpression:
            'SET stage = :to, tasks = :n, #state = :state, updatedAt = :now, redrives = :zero REMOVE done',
          ConditionExpression: 'planId = :id AND stage = :from',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':to': to,
            ':from': from,
            ':n': tasks,
            ':state': state,
            ':now': now,
            ':zero': 0,
            ':id': p.planId,
          },
        }),
      );
      return true;
    } catch (err) {
      if (conditionFailed(err)) return false;
      throw err;
    }
  }

  /** Counts a redrive of a stalled stage (the sweeper's); false if the plan moved meanwhile. */
  async redrive(p: Pick<BuildPlan, 'collection' | 'line' | 'planId' | 'stage' | 'updatedAt'>, now: number) {
    try {
      await this.opts.ddb.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: this.key(p.collection, p.line),
          UpdateExpression: 'SET updatedAt = :now ADD redrives :one',
          ConditionExpression: 'planId = :id AND stage = :stage AND updatedAt = :seen',
          ExpressionAttributeValues: {
            ':now': now,
            ':one': 1,
            ':id': p.planId,
            ':stage': p.stage,
            ':seen': p.updatedAt,
          },
        }),
      );
      return true;
    } catch (err) {
      if (conditionFailed(err)) return false;
      throw err;
    }
  }

  /** Ends the plan (committed or abandoned); a no-op when it is gone or is another plan. */
  async remove(p: Pick<BuildPlan, 'collection' | 'line' | 'planId'>): Promise<void> {
    try {
      await this.opts.ddb.send(
        new DeleteCommand({
          TableName: this.opts.table,
          Key: this.key(p.collection, p.line),
          ConditionExpression: 'planId = :id',
          ExpressionAttributeValues: { ':id': p.planId },
        }),
      );
    } catch (err) {
      if (!conditionFailed(err)) throw err;
    }
  }

  /**
   * Takes the line's build lease for `owner` until `now + ttlMs`; false while another owner's lease runs.
   * An expired lease is taken over: its holder outlived its function's timeout, so it is dead.
   */
  async claimLine(collection: string, line: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    try {
      await this.opts.ddb.send(
        new PutCommand({
          TableName: this.opts.table,
          Item: { pk: colPk(collection), sk: buildLeaseSk(line), owner, expiresAt: now + ttlMs },
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return true;
    } catch (err) {
      if (conditionFailed(err)) return false;
      throw err;
    }
  }

  /** Gives the lease back; a no-op when it expired and someone else holds it now. */
  async releaseLine(collection: string, line: string, owner: string): Promise<void> {
    try {
      await this.opts.ddb.send(
        new DeleteCommand({
          TableName: this.opts.table,
          Key: { pk: colPk(collection), sk: buildLeaseSk(line) },
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
    } catch (err) {
      if (!conditionFailed(err)) throw err;
    }
  }
}

/**
 * Removes every build lease of the table. Only for the local stack's start: one process owns its data dir,
 * so a lease found then belongs to an invocation of a run that has ended (on AWS leases expire instead).
 * Reads the generation registry (every collection name ever created) and each collection's `BUILDING#`
 * items: a few queries, never a scan of the table and its write log.
 */
export async function dropBuildLeases(ddb: DynamoDBClient, table: string): Promise<number> {
  const names: string[] = [];
  for await (const item of queryAll(ddb, table, GEN_PK)) names.push(item.sk.S ?? '');
  let dropped = 0;
  for (const name of names) {
    for await (const key of queryAll(ddb, table, colPk(name), BUILD_LEASE_PREFIX)) {
      await ddb.send(new DeleteItemCommand({ TableName: table, Key: { pk: key.pk, sk: key.sk } }));
      dropped++;
    }
  }
  return dropped;
}

/** The keys of a partition's items (whose sort key starts with `prefix`), page by page. */
async function* queryAll(
  ddb: DynamoDBClient,
  table: string,
  pk: string,
  prefix?: string,
): AsyncGenerator<Record<string, AttributeValue>> {
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await ddb.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: prefix ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: pk }, ...(prefix ? { ':prefix': { S: prefix } } : {}) },
        ProjectionExpression: 'pk, sk',
        ExclusiveStartKey: start,
      }),
    );
    yield* page.Items ?? [];
    start = page.LastEvaluatedKey;
  } while (start);
}
