/**
 * The index-builder function in its own thread (see builder-thread.ts): receives invocations from the
 * main thread, runs `functions/index-builder/handler.ts` with a Lambda context, answers with the result
 * or the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import { makeLambdaContext } from './lambda-emulator.js';
import type { BuilderInvocation, BuilderReply, BuilderThreadOptions } from './builder-thread.js';

const port = parentPort;
if (!port) throw new Error('builder-worker.ts runs only as a worker thread');
const opts = (workerData as { options: BuilderThreadOptions }).options;
const { handler } = await import('../../functions/index-builder/handler.js');
type Event = Parameters<typeof handler>[0];

port.on('message', (msg: BuilderInvocation) => {
  const context: Context = makeLambdaContext({
    functionName: opts.functionName,
    timeoutMs: opts.timeoutMs,
    region: opts.region,
  });
  handler(msg.event as Event, context).then(
    (result) => port.postMessage({ id: msg.id, ok: true, result } satisfies BuilderReply),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({
        id: msg.id,
        ok: false,
        error: { name: e.name, message: e.message, stack: e.stack },
      } satisfies BuilderReply);
    },
  );
});
port.postMessage({ ready: true } satisfies BuilderReply);
