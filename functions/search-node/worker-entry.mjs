// Entry of a search node's threads when it runs from source (tests, `npm start`): a worker starts without
// the parent's TypeScript loader, so it registers tsx and then loads its .ts module. The bundled node
// (infra/search-node/bundle.ts) starts search-worker.mjs directly.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
