/**
 * Benchmark baseline only: the `hnswlib-wasm@0.8.2` npm package that Shoal's hnsw engine used
 * before its own WASM build (engine/). Shoal's code no longer depends on it; `npm run
 * bench:engine` compares against it (a devDependency, with `fake-indexeddb`).
 *
 * hnswlib-wasm 0.8.2 is an Emscripten *browser* build:
 * - at module init it aborts with "not compiled for this environment" unless a global
 *   such as `importScripts` exists (it then believes it runs in a web worker);
 * - at load it mounts and syncs an Emscripten IDBFS, so it needs an IndexedDB
 *   (`fake-indexeddb`, pure JS, in memory);
 * - its Emscripten `FS` is not exported, so index bytes can only leave or enter the
 *   WASM file system through that IDBFS store: `writeIndex` writes into MEMFS and syncs
 *   to IndexedDB, where we read the bytes; to load, we put bytes into IndexedDB, sync
 *   IndexedDB → MEMFS and call `readIndex`;
 * - it prints its sync chatter with `console.log`, which we drop.
 *
 * Memory: the WASM heap may grow to 2 GiB (Emscripten `getHeapMax()` = 2147483648) and
 * never shrinks. Every loaded index of the process lives in that one heap, so callers
 * budget shards with `HNSW_HEAP_LIMIT_BYTES` (see docs/architecture.md). Allocation
 * failures surface as C++ `std::runtime_error` values thrown into JS; they are
 * catchable and leave the module usable, and are turned into `LimitExceededError`.
 */
import { EngineError, LimitExceededError } from '../shared/errors.js';

/** Hard ceiling of this build's WASM heap (measured: growth beyond fails). */
export const HNSW_HEAP_LIMIT_BYTES = 2 * 1024 * 1024 * 1024;

/** The subset of the hnswlib-wasm API Shoal uses (embind objects). */
export interface RawHnswIndex {
  initIndex(maxElements: number, m: number, efConstruction: number, randomSeed: number): void;
  readIndex(filename: string, maxElements: number): unknown;
  writeIndex(filename: string): unknown;
  addPoint(point: Float32Array, label: number, replaceDeleted: boolean): void;
  searchKnn(
    query: Float32Array,
    k: number,
    filter: ((label: number) => boolean) | undefined,
  ): { distances: number[]; neighbors: number[] };
  setEfSearch(ef: number): void;
  getEfSearch(): number;
  getCurrentCount(): number;
  getMaxElements(): number;
  delete(): void;
}

export interface RawHnswlib {
  HierarchicalNSW: new (space: 'l2' | 'ip' | 'cosine', dim: number, autoSaveFilename: string) => RawHnswIndex;
  EmscriptenFileSystemManager: {
    syncFS(read: boolean, callback: () => void): unknown;
    checkFileExists(name: string): boolean;
  };
  HEAPU8: Uint8Array;
  setIdbfsSynced(synced: boolean): void;
  /** Emscripten's decoder for a thrown C++ exception: `[type, message]`. */
  getExceptionMessage(exception: unknown): unknown;
}

/** The slice of the IndexedDB API used here (no DOM lib in a Node project). */
interface IdbRequest<T> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbStore {
  get(key: string): IdbRequest<unknown>;
  put(value: unknown, key: string): IdbRequest<unknown>;
  delete(key: string): IdbRequest<unknown>;
}
interface IdbTransaction {
  objectStore(name: string): IdbStore;
  error: unknown;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}
interface IdbDatabase {
  transaction(store: string, mode: 'readonly' | 'readwrite'): IdbTransaction;
}
interface IdbFactory {
  open(name: string): IdbRequest<IdbDatabase>;
}

const IDB_NAME = '/hnswlib-index';
const IDB_STORE = 'FILE_DATA';
const CHATTER = /^(b\. jsFS|d\. Calling sync|EmscriptenFileSystemManager:)/;

let loading: Promise<RawHnswlib> | undefined;
/** The initialised library, once loaded (for decoding C++ exceptions synchronously). */
let instance: RawHnswlib | undefined;
let db: IdbDatabase | undefined;
/** Resolves when the library's own IDBFS sync (started by `writeIndex`) finishes. */
let syncWaiter: ((ok: boolean) => void) | undefined;
/** IDBFS is process-global: every byte transfer is serialized through this chain. */
let fsQueue: Promise<unknown> = Promise.resolve();

/** The raw library, initialised once per process. Exposed for the raw-baseline benchmark. */
export function loadRawHnswlib(): Promise<RawHnswlib> {
  loading ??= initialise();
  return loading;
}

async function initialise(): Promise<RawHnswlib> {
  await import('fake-indexeddb/auto');
  const g = globalThis as { importScripts?: unknown };
  const hadImportScripts = 'importScripts' in g;
  if (!hadImportScripts) g.importScripts = () => undefined;
  const log = console.log;
  console.log = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && CHATTER.test(args[0])) return;
    log.apply(console, args);
  };
  try {
    const mod = (await import('hnswlib-wasm/dist/hnswlib.js')) as unknown as {
      __tla: Promise<void>;
      loadHnswlib: () => Promise<RawHnswlib>;
    };
    await mod.__tla;
    const lib = await mod.loadHnswlib();
    const original = lib.setIdbfsSynced.bind(lib);
    lib.setIdbfsSynced = (ok: boolean) => {
      original(ok);
      const w = syncWaiter;
      syncWaiter = undefined;
      w?.(ok);
    };
    instance = lib;
    return lib;
  } catch (cause) {
    loading = undefined;
    throw new EngineError('hnswlib-wasm failed to initialise', { cause });
  } finally {
    // The environment check runs only at module init; leave no fake worker global behind.
    if (!hadImportScripts) delete g.importScripts;
  }
}

function serialize<T>(work: () => Promise<T>): Promise<T> {
  const run = fsQueue.then(work, work);
  fsQueue = run.catch(() => undefined);
  return run;
}

async function idb(): Promise<IdbDatabase> {
  if (db) return db;
  const factory = (globalThis as unknown as { indexedDB: IdbFactory }).indexedDB;
  db = await new Promise<IdbDatabase>((resolve, reject) => {
    const req = factory.open(IDB_NAME);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return db;
}

function idbRequest<T>(mode: 'readonly' | 'readwrite', op: (store: IdbStore) => IdbRequest<T>): Promise<T> {
  return idb().then(
    (database) =>
      new Promise<T>((resolve, reject) => {
        const tx = database.transaction(IDB_STORE, mode);
        const req = op(tx.objectStore(IDB_STORE));
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      }),
  );
}

/** How long one IDBFS sync may take before we stop waiting and check its effect ourselves. */
const SYNC_TIMEOUT_MS = 10_000;
/** Verify-and-retry rounds for a transfer (each one a sync); a healthy transfer needs one. */
const TRANSFER_ATTEMPTS = 8;
let transferSeq = 0;

/**
 * Starts an IDBFS sync and resolves when the library reports one finished. Every sync the
 * library runs ends in exactly one `setIdbfsSynced` call (on a timer after Emscripten's
 * callback), but a sync the library started itself (writeIndex) may report late, so
 * callers never trust the signal alone: each transfer verifies its outcome and retries.
 */
function syncFs(lib: RawHnswlib, populateFromIdb: boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      if (ok) resolve();
      else reject(new EngineError('hnswlib IDBFS sync failed'));
    };
    const timer = setTimeout(() => {
      if (syncWaiter === done) syncWaiter = undefined;
      resolve();
    }, SYNC_TIMEOUT_MS);
    syncWaiter = done;
    lib.EmscriptenFileSystemManager.syncFS(populateFromIdb, () => undefined);
  });
}

/** Removes a transfer file from IndexedDB and MEMFS so no shard stays resident twice. */
async function removeTransferFile(lib: RawHnswlib, name: string): Promise<void> {
  for (let attempt = 0; attempt < TRANSFER_ATTEMPTS; attempt++) {
    await idbRequest('readwrite', (s) => s.delete(`${IDB_NAME}/${name}`));
    await syncFs(lib, true);
    if (!lib.EmscriptenFileSystemManager.checkFileExists(name)) return;
  }
  console.warn(`hnswlib transfer file ${name} could not be removed from MEMFS (memory held until restart)`);
}

/** Text of a C++ exception: embind sometimes throws `[type, message]`, sometimes a WebAssembly.Exception. */
export function exceptionText(raw: unknown): string {
  if (Array.isArray(raw)) return raw.join(': ');
  if (raw instanceof Error) return raw.message;
  if (instance && typeof raw === 'object' && raw !== null) {
    try {
      const decoded = instance.getExceptionMessage(raw);
      if (Array.isArray(decoded)) return decoded.join(': ');
    } catch {
      // Not a C++ exception after all.
    }
  }
  return String(raw);
}

/** Translates a C++ exception value into a typed error. */
export function engineFailure(what: string, raw: unknown): Error {
  const text = exceptionText(raw);
  if (/not enough memory|bad_alloc|Cannot enlarge memory/i.test(text)) {
    return new LimitExceededError(`${what}: the hnswlib WASM heap (max ${HNSW_HEAP_LIMIT_BYTES} bytes) is exhausted`, {
      cause: raw,
    });
  }
  return new EngineError(`${what}: ${text}`, { cause: raw });
}

async function readTransferFile(name: string): Promise<Uint8Array | undefined> {
  const entry = await idbRequest('readonly', (s) => s.get(`${IDB_NAME}/${name}`));
  const contents = (entry as { contents?: unknown } | undefined)?.contents;
  // MEMFS hands small files to IDBFS as Int8Array, larger ones as Uint8Array.
  return ArrayBuffer.isView(contents)
    ? new Uint8Array(contents.buffer, contents.byteOffset, contents.byteLength)
    : undefined;
}

/** Serializes an index to bytes (via MEMFS → IDBFS → IndexedDB). */
export function exportIndex(lib: RawHnswlib, index: RawHnswIndex): Promise<Uint8Array> {
  return serialize(async () => {
    const name = `shoal-out-${++transferSeq}.bin`;
    const librarySync = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SYNC_TIMEOUT_MS);
      syncWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    try {
      // Synchronous: the file is complete in MEMFS when this returns; the library then syncs.
      index.writeIndex(name);
    } catch (raw) {
      syncWaiter = undefined;
      throw engineFailure('hnswlib writeIndex failed', raw);
    }
    await librarySync;
    let bytes = await readTransferFile(name);
    for (let attempt = 0; !bytes && attempt < TRANSFER_ATTEMPTS; attempt++) {
      await syncFs(lib, false);
      bytes = await readTransferFile(name);
    }
    await removeTransferFile(lib, name);
    if (!bytes) throw new EngineError('hnswlib writeIndex produced no file');
    return bytes;
  });
}

/** Loads index bytes into a fresh index object (via IndexedDB → IDBFS → MEMFS). */
export function importIndex(
  lib: RawHnswlib,
  index: RawHnswIndex,
  bytes: Uint8Array,
  maxElements: number,
): Promise<void> {
  return serialize(async () => {
    const name = `shoal-in-${++transferSeq}.bin`;
    // IndexedDB structured-clones a view's whole ArrayBuffer: hand it only the index bytes.
    const contents = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    try {
      let present = false;
      for (let attempt = 0; !present && attempt < TRANSFER_ATTEMPTS; attempt++) {
        // Re-put each round: a late library sync (MEMFS → IndexedDB) may have dropped the entry.
        await idbRequest('readwrite', (s) =>
          s.put({ timestamp: new Date(), mode: 0o100644, contents }, `${IDB_NAME}/${name}`),
        );
        await syncFs(lib, true);
        present = lib.EmscriptenFileSystemManager.checkFileExists(name);
      }
      if (!present) throw new EngineError('hnswlib index bytes did not reach MEMFS');
      try {
        index.readIndex(name, maxElements);
      } catch (raw) {
        throw engineFailure('hnswlib readIndex failed', raw);
      }
    } finally {
      await removeTransferFile(lib, name);
    }
  });
}
