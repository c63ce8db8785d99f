/**
 * Index builder: woken by the build queue (one message per write batch, duplicates and
 * losses harmless) and by a scheduled tick that sweeps every collection. The same queue
 * carries `verify-artifact` messages: model artifacts too large to hash inside an API
 * request are verified here (the builder has the long timeout).
 */
import middy from '@middy/core';
import type { ScheduledEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { NotFoundError } from '../../shared/errors.js';
import { flushMetrics, recordBuilderLag } from '../../shared/metrics.js';
import { getRuntime } from '../../shared/runtime.js';

function isSqs(event: SQSEvent | ScheduledEvent): event is SQSEvent {
  return Array.isArray((event as SQSEvent).Records);
}

type Message =
  | { kind: 'build'; collection: string; force: boolean }
  | { kind: 'verify-artifact'; model: string; version: number };

function parseMessage(body: string): Message | undefined {
  try {
    const parsed = JSON.parse(body) as {
      kind?: unknown;
      collection?: unknown;
      force?: unknown;
      model?: unknown;
      version?: unknown;
    };
    if (parsed.kind === 'verify-artifact') {
      return typeof parsed.model === 'string' && Number.isSafeInteger(parsed.version)
        ? { kind: 'verify-artifact', model: parsed.model, version: parsed.version as number }
        : undefined;
    }
    return typeof parsed.collection === 'string'
      ? { kind: 'build', collection: parsed.collection, force: parsed.force === true }
      : undefined;
  } catch {
    return undefined;
  }
}

// Configuration is validated during init: a bad deployment fails its cold start.
await getRuntime();

async function run(event: SQSEvent | ScheduledEvent): Promise<SQSBatchResponse | void> {
  try {
    return await handle(event);
  } finally {
    flushMetrics();
  }
}

async function handle(event: SQSEvent | ScheduledEvent): Promise<SQSBatchResponse | void> {
  const { core, lifecycle } = await getRuntime();
  if (!isSqs(event)) {
    let lag = 0;
    for (const c of await core.listCollections()) {
      try {
        await core.maybeBuild(c.name);
        await core.collectGarbage(c.name);
        lag = Math.max(lag, await core.builderLag(c.name));
      } catch (err) {
        console.error(`scheduled build of ${c.name} failed:`, err);
      }
    }
    recordBuilderLag(lag);
    return;
  }
  // Many messages name the same collection: build each once, fail all its messages together.
  const byCollection = new Map<string, { ids: string[]; force: boolean }>();
  const failures: string[] = [];
  for (const r of event.Records) {
    const msg = parseMessage(r.body);
    if (!msg) {
      console.error(`dropping malformed build message ${r.messageId}`);
      continue;
    }
    if (msg.kind === 'verify-artifact') {
      try {
        await lifecycle.verifyModelArtifact(msg.model, msg.version);
      } catch (err) {
        console.error(`verifying model ${msg.model} v${msg.version} failed:`, err);
        failures.push(r.messageId);
      }
      continue;
    }
    const entry = byCollection.get(msg.collection) ?? { ids: [], force: false };
    entry.ids.push(r.messageId);
    entry.force ||= msg.force;
    byCollection.set(msg.collection, entry);
  }
  for (const [name, { ids, force }] of byCollection) {
    try {
      await (force ? core.buildNow(name) : core.maybeBuild(name));
    } catch (err) {
      if (err instanceof NotFoundError) continue;
      console.error(`build of ${name} failed:`, err);
      failures.push(...ids);
    }
  }
  return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
}

export const handler = middy(run);
