/**
 * The index-builder (or a build-worker) function in its own thread (see builder-thread.ts): receives
 * invocations from the main thread, runs the function's handler with a Lambda context, answers with the
 * result or the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import { makeLambdaContext } from './lambda-emulator.js';
import type { BuilderInvocation, BuilderReply, BuilderThreadOptions } from './builder-thread.js';

const port = parentPort;
if (!port) throw new Error('builder-worker.ts runs only as a worker thread');
const opts = (workerData as { options: BuilderThreadOptions }).options;
type Handler = (event: never, context: Context) => Promise<unknown>;
// Static specifiers, so the bundle-free tsx loader resolves both without a computed path.
const { handler } = (
  opts.handler === 'build-worker'
    ? await import('../../functions/build-worker/handler.js')
    : await import('../../functions/index-builder/handler.js')
) as { handler: Handler };
type Event = Parameters<Handler>[0];

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
