// The local DynamoDB (dynalite) in its own worker thread. On AWS, DynamoDB runs on other machines: a
// request's read costs the function a network round trip, not its CPU, and the function can compute while
// the read is in flight (the speculative eventual search, docs/architecture.md §7.6, does). In the main
// thread, dynalite's JSON parsing and LevelDB work ran on the same event loop as the API and held it for
// every call. Plain JavaScript (no TypeScript loader): the thread starts with every emulator.
//
// workerData: { path?: string, verbose: boolean, port: number, host: string }. Posts { port } once
// listening or { error } if it could not start; on the message 'stop' closes the server (dynalite's close
// also closes LevelDB, releasing its LOCK file) and posts { stopped: true }.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const dynalite = require('dynalite');

/**
 * dynalite streams every Query and Scan from a LevelDB iterator and closes it through `iterator.return()`
 * when the stream ends — a method abstract-level 3's iterators do not have (they have `close()`). So every
 * Query left its iterator open until the database closed: each open iterator pins the LevelDB version it
 * started on, compaction can then delete none of the files it replaced, and a long local run grew to
 * 20 GB of SST files for 400k rows and slowed to a crawl (`test/integration/emulators.test.ts` counts the
 * files). Giving the iterators the `return()` dynalite expects closes them when their query is done.
 */
function closeDynaliteIterators() {
  const level = createRequire(require.resolve('dynalite'))('abstract-level');
  for (const name of ['AbstractIterator', 'AbstractKeyIterator', 'AbstractValueIterator']) {
    const proto = level[name]?.prototype;
    if (proto && typeof proto.return !== 'function') {
      Object.defineProperty(proto, 'return', {
        value() {
          return this.close();
        },
        configurable: true,
        writable: true,
      });
    }
  }
}
closeDynaliteIterators();

const server = dynalite({
  path: workerData.path,
  verbose: workerData.verbose,
  // Tables become ACTIVE immediately instead of after 500 ms.
  createTableMs: 0,
  deleteTableMs: 0,
  updateTableMs: 0,
});
server.on('error', (err) => parentPort.postMessage({ error: String(err?.stack ?? err) }));
server.listen(workerData.port, workerData.host, () => parentPort.postMessage({ port: server.address().port }));

parentPort.on('message', (msg) => {
  if (msg !== 'stop') return;
  server.close((err) => {
    parentPort.postMessage(err ? { error: String(err.stack ?? err) } : { stopped: true });
    parentPort.close();
  });
  // Drop keep-alive sockets held by SDK clients, otherwise close() waits for them to time out.
  server.closeAllConnections();
});
