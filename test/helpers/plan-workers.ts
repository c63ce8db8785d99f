/**
 * Builder workers for build-plan tests: messages taken from a real (emulated) build-task queue and run by
 * `runBuildTask`, the way the build-worker function does, with SQS redelivering what a "dead" worker left.
 */
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { runBuildTask, type BuildTaskMessage, type PlanTaskDeps } from '../../shared/indexing/plan.js';
import { parseBuildTaskMessage } from '../../shared/queue/messages.js';
import type { PlanStage } from '../../shared/storage/dynamo-plans.js';
import { PLANS_PREFIX } from '../../shared/storage/keys.js';
import type { ObjectStore } from '../../shared/storage/types.js';

export interface Drained {
  /** Messages each stage received (a message may come twice: the queue's visibility timeout is short). */
  seen: Map<PlanStage, number>;
  /** Distinct tasks each stage ran. */
  tasks: Map<PlanStage, number>;
}

export interface PlanWorkers {
  /** At most one message, waiting up to 1 s. */
  receive(): Promise<Array<{ msg: BuildTaskMessage; handle: string }>>;
  /**
   * Two workers take messages until the queue stays empty for three receives: a task that throws is not
   * deleted, so SQS redelivers it after the visibility timeout (the worker "died"). `deps` is called per
   * message: a fresh one is a fresh worker (its own shard cache).
   */
  drain(deps: () => PlanTaskDeps): Promise<Drained>;
  /** Every object under the plans prefix (what finished or abandoned plans must not leave behind). */
  planObjects(objects: ObjectStore): Promise<string[]>;
}

export function planWorkers(sqs: SQSClient, queueUrl: string): PlanWorkers {
  const receive = async (): Promise<Array<{ msg: BuildTaskMessage; handle: string }>> => {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }),
    );
    return (out.Messages ?? []).map((m) => ({ msg: parseBuildTaskMessage(m.Body!)!, handle: m.ReceiptHandle! }));
  };
  return {
    receive,
    async drain(deps) {
      const seen = new Map<PlanStage, number>();
      const tasks = new Map<PlanStage, Set<number>>();
      let idle = 0;
      const worker = async (): Promise<void> => {
        while (idle < 3) {
          const [got] = await receive();
          if (!got) {
            idle++;
            continue;
          }
          idle = 0;
          seen.set(got.msg.stage, (seen.get(got.msg.stage) ?? 0) + 1);
          tasks.set(got.msg.stage, (tasks.get(got.msg.stage) ?? new Set()).add(got.msg.task));
          try {
            await runBuildTask(deps(), got.msg);
            await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: got.handle }));
          } catch {
            // The worker "died": the message comes back.
          }
        }
      };
      await Promise.all([worker(), worker()]);
      return { seen, tasks: new Map([...tasks].map(([stage, set]) => [stage, set.size])) };
    },
    async planObjects(objects) {
      const keys: string[] = [];
      for await (const page of objects.list(PLANS_PREFIX)) keys.push(...page.map((o) => o.key));
      return keys;
    },
  };
}

/** A build-task queue with a 1 s visibility timeout (redelivery within a test) and its workers. */
export async function planQueue(sqs: SQSClient): Promise<{ queueUrl: string; workers: PlanWorkers }> {
  const q = await sqs.send(new CreateQueueCommand({ QueueName: 'build-task', Attributes: { VisibilityTimeout: '1' } }));
  return { queueUrl: q.QueueUrl!, workers: planWorkers(sqs, q.QueueUrl!) };
}
