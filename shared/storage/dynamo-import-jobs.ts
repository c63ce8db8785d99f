/**
 * Import jobs in the Catalog table (docs/architecture.md §4.1): `pk=COL#<name>`, `sk=IMPORT#<jobId>`, the job's
 * fields as top-level attributes (checkpoint as a map, report parts as a list). Creation is one
 * conditional put (`attribute_not_exists`), every transition one conditional update: the lease
 * token guards progress writes, terminal states are never left, a requeue is conditional on the
 * heartbeat its caller saw. Items are validated with zod.
 */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CorruptDataError } from '../errors.js';
import {
  CANCELLED_MESSAGE,
  DEFAULT_IMPORT_LIMITS,
  IMPORT_END_REASONS,
  IMPORT_STATES,
  type CancelOutcome,
  type FinishInput,
  type ImportJob,
  type ImportJobStore,
  type ImportProgress,
} from '../import/job.js';
import { awsErrorName, queryPages } from './clients.js';
import { IMPORT_PREFIX, colPk, importSk } from './keys.js';

const nonNeg = z.number().nonnegative();

const itemSchema = z.object({
  jobId: z.string(),
  collection: z.string(),
  generation: z.number().int().positive(),
  bucket: z.string(),
  key: z.string(),
  etag: z.string(),
  size: nonNeg,
  format: z.enum(['jsonl', 'jsonl.gz', 'csv', 'csv.gz', 'parquet', 'npy']).optional(),
  state: z.enum(IMPORT_STATES),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  error: z.string().optional(),
  reason: z.enum(IMPORT_END_REASONS).optional(),
  report: z.string().optional(),
  invocations: z.number().int().nonnegative(),
  limits: z
    .object({
      maxRows: z.number().int().positive(),
      maxDurationSeconds: z.number().int().positive(),
      maxRejectRatio: z.number().min(0).max(1),
      rejectRatioMinRows: z.number().int().nonnegative().default(DEFAULT_IMPORT_LIMITS.rejectRatioMinRows),
    })
    .optional(),
  leaseToken: z.string().optional(),
  leaseUntil: z.number().optional(),
  heartbeatAt: z.number().optional(),
  requeues: z.number().int().nonnegative().optional(),
  rowsRead: nonNeg,
  rowsWritten: nonNeg,
  rowsRejected: nonNeg,
  bytesRead: nonNeg,
  checkpoint: z.object({ rows: nonNeg, offset: nonNeg.optional(), sidecarOffset: nonNeg.optional() }),
  reportParts: z.array(z.string()),
});

function toJob(raw: unknown): ImportJob {
  const parsed = itemSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CorruptDataError(
      `malformed import job: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

function isConditionFailure(err: unknown): boolean {
  return awsErrorName(err) === 'ConditionalCheckFailedException';
}

export class DynamoImportJobs implements ImportJobStore {
  constructor(private readonly opts: { ddb: DynamoDBDocumentClient; table: string }) {}

  private key(collection: string, jobId: string) {
    return { pk: colPk(collection), sk: importSk(jobId) };
  }

  async create(job: ImportJob): Promise<{ job: ImportJob; created: boolean }> {
    try {
      await this.opts.ddb.send(
        new PutCommand({
          TableName: this.opts.table,
          Item: { ...this.key(job.collection, job.jobId), ...job },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { job, created: true };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const existing = await this.get(job.collection, job.jobId);
      if (!existing) throw err;
      return { job: existing, created: false };
    }
  }

  async get(collection: string, jobId: string): Promise<ImportJob | undefined> {
    const res = await this.opts.ddb.send(
      new GetCommand({ TableName: this.opts.table, Key: this.key(collection, jobId), ConsistentRead: true }),
    );
    return res.Item ? toJob(res.Item) : undefined;
  }

  async list(collection: string, limit = 100): Promise<ImportJob[]> {
    const jobs: ImportJob[] = [];
    for await (const page of queryPages(this.opts.ddb, {
      TableName: this.opts.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': colPk(collection), ':p': IMPORT_PREFIX },
    })) {
      for (const raw of page) jobs.push(toJob(raw));
    }
    return jobs
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.jobId < b.jobId ? -1 : 1))
      .slice(0, limit);
  }

  async listActive(collection: string): Promise<ImportJob[]> {
    const jobs: ImportJob[] = [];
    // Reads every job item of the collection (the filter only trims the transfer): one Query per
    // collection per sweep; see docs/imports.md for the cost.
    for await (const page of queryPages(this.opts.ddb, {
      TableName: this.opts.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      FilterExpression: '#s IN (:queued, :running)',
      ExpressionAttributeNames: { '#s': 'state' },
      ExpressionAttributeValues: {
        ':pk': colPk(collection),
        ':p': IMPORT_PREFIX,
        ':queued': 'queued',
        ':running': 'running',
      },
    })) {
      for (const raw of page) jobs.push(toJob(raw));
    }
    return jobs;
  }

  async claim(
    collection: string,
    jobId: string,
    token: string,
    leaseUntil: number,
    now: number,
  ): Promise<ImportJob | undefined> {
    try {
      const res = await this.opts.ddb.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: this.key(collection, jobId),
          UpdateExpression:
            'SET #s = :running, leaseToken = :t, leaseUntil = :lu, heartbeatAt = :now, ' +
            'startedAt = if_not_exists(startedAt, :iso) ' +
            'ADD invocations :one',
          ConditionExpression:
            'attribute_exists(pk) AND #s IN (:queued, :running) ' +
            'AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseToken = :t)',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: {
            ':running': 'running',
            ':queued': 'queued',
            ':t': token,
            ':lu': leaseUntil,
            ':now': now,
            ':iso': new Date(now).toISOString(),
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toJob(res.Attributes);
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  private progressSet(progress: ImportProgress): { expr: string; values: Record<string, unknown> } {
    return {
      expr:
        'rowsRead = :rr, rowsWritten = :rw, rowsRejected = :rj, bytesRead = :br, ' +
        'checkpoint = :cp, reportParts = :parts',
      values: {
        ':rr': progress.rowsRead,
        ':rw': progress.rowsWritten,
        ':rj': progress.rowsRejected,
        ':br': progress.bytesRead,
        ':cp': progress.checkpoint,
        ':parts': progress.reportParts,
      },
    };
  }

  private async conditional(input: ConstructorParameters<typeof UpdateCommand>[0]): Promise<boolean> {
    try {
      await this.opts.ddb.send(new UpdateCommand(input));
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async save(
    collection: string,
    jobId: string,
    token: string,
    progress: ImportProgress,
    leaseUntil: number,
    now: number,
  ): Promise<boolean> {
    const p = this.progressSet(progress);
    return this.conditional({
      TableName: this.opts.table,
      Key: this.key(collection, jobId),
      UpdateExpression: `SET ${p.expr}, leaseUntil = :lu, heartbeatAt = :now`,
      ConditionExpression: 'leaseToken = :t AND #s = :running',
      ExpressionAttributeNames: { '#s': 'state' },
      ExpressionAttributeValues: { ...p.values, ':lu': leaseUntil, ':now': now, ':t': token, ':running': 'running' },
    });
  }

  async release(
    collection: string,
    jobId: string,
    token: string,
    progress: ImportProgress,
    now: number,
  ): Promise<boolean> {
    const p = this.progressSet(progress);
    return this.conditional({
      TableName: this.opts.table,
      Key: this.key(collection, jobId),
      UpdateExpression: `SET ${p.expr}, heartbeatAt = :now REMOVE leaseToken, leaseUntil`,
      ConditionExpression: 'leaseToken = :t AND #s = :running',
      ExpressionAttributeNames: { '#s': 'state' },
      ExpressionAttributeValues: { ...p.values, ':now': now, ':t': token, ':running': 'running' },
    });
  }

  async finish(
    collection: string,
    jobId: string,
    token: string | undefined,
    input: FinishInput,
    now: number,
  ): Promise<boolean> {
    const sets = ['#s = :state', 'finishedAt = :fin'];
    const values: Record<string, unknown> = { ':state': input.state, ':fin': new Date(now).toISOString() };
    if (input.error !== undefined) {
      sets.push('#e = :err');
      values[':err'] = input.error;
    }
    if (input.reason !== undefined) {
      sets.push('reason = :reason');
      values[':reason'] = input.reason;
    }
    if (input.report !== undefined) {
      sets.push('report = :rep');
      values[':rep'] = input.report;
    }
    if (input.progress) {
      const p = this.progressSet(input.progress);
      sets.push(p.expr);
      Object.assign(values, p.values);
    }
    let condition: string;
    if (token !== undefined) {
      condition = 'leaseToken = :t AND #s = :running';
      values[':t'] = token;
      values[':running'] = 'running';
    } else {
      condition = 'attribute_exists(pk) AND #s IN (:queued, :running)';
      values[':queued'] = 'queued';
      values[':running'] = 'running';
    }
    return this.conditional({
      TableName: this.opts.table,
      Key: this.key(collection, jobId),
      UpdateExpression: `SET ${sets.join(', ')} REMOVE leaseToken, leaseUntil`,
      ConditionExpression: condition,
      ExpressionAttributeNames: { '#s': 'state', ...(input.error !== undefined ? { '#e': 'error' } : {}) },
      ExpressionAttributeValues: values,
    });
  }

  async cancel(collection: string, jobId: string, now: number): Promise<CancelOutcome> {
    try {
      const res = await this.opts.ddb.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: this.key(collection, jobId),
          // The lease stays: the invocation holding it settles its last counters (`settle`).
          UpdateExpression: 'SET #s = :cancelled, reason = :reason, #e = :err, finishedAt = :fin',
          ConditionExpression: 'attribute_exists(pk) AND #s IN (:queued, :running)',
          ExpressionAttributeNames: { '#s': 'state', '#e': 'error' },
          ExpressionAttributeValues: {
            ':cancelled': 'cancelled',
            ':reason': 'CANCELLED',
            ':err': CANCELLED_MESSAGE,
            ':fin': new Date(now).toISOString(),
            ':queued': 'queued',
            ':running': 'running',
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { outcome: 'cancelled', job: toJob(res.Attributes) };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const job = await this.get(collection, jobId);
      return job ? { outcome: 'ended', job } : { outcome: 'missing' };
    }
  }

  async settle(collection: string, jobId: string, token: string, progress: ImportProgress): Promise<boolean> {
    const p = this.progressSet(progress);
    return this.conditional({
      TableName: this.opts.table,
      Key: this.key(collection, jobId),
      UpdateExpression: `SET ${p.expr} REMOVE leaseToken, leaseUntil`,
      ConditionExpression: 'leaseToken = :t AND #s = :cancelled',
      ExpressionAttributeNames: { '#s': 'state' },
      ExpressionAttributeValues: { ...p.values, ':t': token, ':cancelled': 'cancelled' },
    });
  }

  async requeue(collection: string, jobId: string, seenHeartbeat: number | undefined, now: number): Promise<boolean> {
    const values: Record<string, unknown> = { ':queued': 'queued', ':running': 'running', ':now': now, ':one': 1 };
    let heartbeat = 'attribute_not_exists(heartbeatAt)';
    if (seenHeartbeat !== undefined) {
      heartbeat = 'heartbeatAt = :seen';
      values[':seen'] = seenHeartbeat;
    }
    return this.conditional({
      TableName: this.opts.table,
      Key: this.key(collection, jobId),
      UpdateExpression: 'SET heartbeatAt = :now ADD requeues :one REMOVE leaseToken, leaseUntil',
      ConditionExpression:
        `attribute_exists(pk) AND #s IN (:queued, :running) AND ${heartbeat} ` +
        'AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)',
      ExpressionAttributeNames: { '#s': 'state' },
      ExpressionAttributeValues: values,
    });
  }
}
