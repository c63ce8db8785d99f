// Entry of the local stack's worker threads: a worker starts without the parent's TypeScript loader
// (tsx under `npm start`, vite under vitest), so it registers tsx and then loads its .ts module.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
