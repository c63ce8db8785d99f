/**
 * MigrationStore on the Catalog table (docs/architecture.md §8.10): one item per re-embedding migration in
 * the source collection's partition (`COL#<source>` / `MIGRATION#<id>`, so dropping the collection drops
 * its jobs), the job as a JSON document beside a `rev` number that every replace is conditional on.
 * One attribute for the document: the job's shape changes with its phases, and nothing queries inside it.
 */
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CorruptDataError } from '../errors.js';
import type { MigrationJob, MigrationStore } from '../models/migration.js';
import { awsErrorName, queryPages } from './clients.js';
import { MIGRATION_PREFIX, colPk, migrationSk } from './keys.js';

export class DynamoMigrationStore implements MigrationStore {
  constructor(private readonly opts: { ddb: DynamoDBDocumentClient; table: string }) {}

  private item(job: MigrationJob): Record<string, unknown> {
    return { pk: colPk(job.source), sk: migrationSk(job.id), rev: job.rev, state: job.state, doc: JSON.stringify(job) };
  }

  private async put(job: MigrationJob, condition: string, values?: Record<string, unknown>): Promise<boolean> {
    try {
      await this.opts.ddb.send(
        new PutCommand({
          TableName: this.opts.table,
          Item: this.item(job),
          ConditionExpression: condition,
          ...(values ? { ExpressionAttributeValues: values } : {}),
        }),
      );
      return true;
    } catch (err) {
      if (awsErrorName(err) === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  create(job: MigrationJob): Promise<boolean> {
    return this.put(job, 'attribute_not_exists(pk)');
  }

  replace(job: MigrationJob, expectedRev: number): Promise<boolean> {
    return this.put(job, 'rev = :rev', { ':rev': expectedRev });
  }

  async get(source: string, id: string): Promise<MigrationJob | undefined> {
    const res = await this.opts.ddb.send(
      new GetCommand({
        TableName: this.opts.table,
        Key: { pk: colPk(source), sk: migrationSk(id) },
        ConsistentRead: true,
      }),
    );
    return res.Item ? parse(res.Item) : undefined;
  }

  async list(source: string): Promise<MigrationJob[]> {
    const out: MigrationJob[] = [];
    for await (const page of queryPages(this.opts.ddb, {
      TableName: this.opts.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': colPk(source), ':p': MIGRATION_PREFIX },
    })) {
      for (const raw of page) out.push(parse(raw));
    }
    return out;
  }
}

function parse(item: Record<string, unknown>): MigrationJob {
  try {
    const job = JSON.parse(String(item.doc)) as MigrationJob;
    if (typeof job.id !== 'string' || job.rev !== item.rev) throw new Error('id or rev does not match the item');
    return job;
  } catch (err) {
    throw new CorruptDataError(`migration item ${String(item.sk)}: ${(err as Error).message}`, { cause: err });
  }
}
