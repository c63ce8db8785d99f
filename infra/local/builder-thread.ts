/**
 * The local index builder runs in a worker thread, as on AWS it runs in its own Lambda sandbox.
 * In the main thread a build (HNSW construction, seconds to minutes of CPU) would hold the event
 * loop that also serves the API, the emulators and the searchers: `bench:load` measured the p99 of
 * searches during a large build at 34× the p99 without one. In a thread it gets its own core, and
 * the API keeps answering — what a deployment does, where the builder never shares a CPU with the
 * API. The thread sees the environment as it was when it started (set before the first invocation)
 * and talks to the emulators over HTTP like any other client. A thread that dies fails its pending
 * invocations (the queue redelivers them, as SQS does after a crash) and is started again on the
 * next one.
 */
import { Worker } from 'node:worker_threads';

export interface BuilderThreadOptions {
  functionName: string;
  timeoutMs: number;
  region: string;
  /** The function the thread runs: the index builder (default) or a build worker (plan tasks). */
  handler?: 'index-builder' | 'build-worker';
}

export interface BuilderInvocation {
  id: number;
  event: unknown;
}

export type BuilderReply =
  | { ready: true }
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string; stack?: string } };

export class BuilderThread {
  private worker?: Promise<Worker>;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private stopped = false;

  constructor(private readonly options: BuilderThreadOptions) {}

  /** Invocations sent and not yet answered (a pool hands new work to the least busy thread). */
  get busy(): number {
    return this.pending.size;
  }

  /** Runs one invocation of the thread's handler. */
  async invoke(event: unknown): Promise<unknown> {
    if (this.stopped) throw new Error('the builder thread is stopped');
    const worker = await (this.worker ??= this.start());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, event } satisfies BuilderInvocation);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await (await worker.catch(() => undefined))?.terminate();
    this.failAll(new Error('the builder thread stopped'));
  }

  private start(): Promise<Worker> {
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), {
      workerData: { module: new URL('./builder-worker.ts', import.meta.url).href, options: this.options },
    });
    return new Promise<Worker>((resolve, reject) => {
      worker.on('message', (msg: BuilderReply) => {
        if ('ready' in msg) return resolve(worker);
        const waiting = this.pending.get(msg.id);
        if (!waiting) return;
        this.pending.delete(msg.id);
        if (msg.ok) return waiting.resolve(msg.result);
        const err = new Error(msg.error.message);
        err.name = msg.error.name;
        if (msg.error.stack) err.stack = msg.error.stack;
        waiting.reject(err);
      });
      const gone = (err: Error) => {
        this.worker = undefined;
        reject(err);
        this.failAll(err);
      };
      worker.on('error', gone);
      worker.on('exit', (code) => gone(new Error(`the builder thread exited (code ${code})`)));
    });
  }

  private failAll(err: Error): void {
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
  }
}
