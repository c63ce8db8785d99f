/**
 * Starts functions/search-node/thread.ts in a worker thread and resolves with its URL. The thread reads the
 * environment as it is when this is called (set the stack's variables first) and listens on an ephemeral
 * port unless SHOAL_SEARCH_NODE_PORT says otherwise; `env` overrides variables for the thread only.
 */
import { Worker } from 'node:worker_threads';

export interface SearchNodeThread {
  url: string;
  /** Drains the node (503 to new parts, in-flight parts answered), then ends the thread. */
  stop(): Promise<void>;
}

export async function startSearchNodeThread(env: Record<string, string> = {}): Promise<SearchNodeThread> {
  const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), {
    workerData: { module: new URL('../../functions/search-node/thread.ts', import.meta.url).href },
    env: { ...process.env, SHOAL_SEARCH_NODE_PORT: process.env.SHOAL_SEARCH_NODE_PORT ?? '0', ...env },
  });
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('message', (msg: { url?: string; error?: string }) =>
      msg.url ? resolve(msg.url) : reject(new Error(`search node did not start: ${msg.error}`)),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`search node thread exited (code ${code})`)));
  }).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
  return {
    url,
    stop: async () => {
      const stopped = new Promise<void>((resolve) => {
        worker.on('message', (msg: { stopped?: boolean }) => msg.stopped && resolve());
        worker.once('exit', () => resolve());
      });
      worker.postMessage({ stop: true });
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 5000))]);
      await worker.terminate();
    },
  };
}
