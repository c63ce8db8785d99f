/**
 * Shoal's own WebAssembly build of hnswlib (`engine/`, built by `npm run build:engine`) and
 * everything that knows how to run it: finding and instantiating the module, the heap, the
 * C API's error codes.
 *
 * The module is a standalone WASM file (no Emscripten JS glue): it imports a handful of WASI
 * stubs that hnswlib's unused stream code links in, and `emscripten_notify_memory_growth`.
 * Its C API (engine/src/shoal_hnsw.cpp) takes pointers into its heap; C++ exceptions are caught
 * in C++ and come back as an error code and message, mapped here to Shoal's typed errors.
 *
 * Where the .wasm is found: at `SHOAL_HNSW_WASM` if set, else beside the running module (the
 * Lambda bundle: the CDK construct copies it next to index.mjs), else in `engine/dist/` of the
 * source tree (tsx, vitest).
 *
 * Memory: the heap grows on demand up to 4 GiB (wasm32's limit, `-sMAXIMUM_MEMORY=4GB`) and never
 * shrinks; every loaded index of the process lives in it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CorruptDataError, EngineError, LimitExceededError, ValidationError } from '../errors.js';
import { logger } from '../log.js';

/** The slice of the WebAssembly JS API used here (the project's lib has no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  instantiate(
    bytes: Uint8Array,
    imports: Record<string, Record<string, unknown>>,
  ): Promise<{ instance: { exports: Record<string, unknown> } }>;
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Hard ceiling of this build's WASM heap (`-sMAXIMUM_MEMORY=4GB`). */
export const SHOAL_WASM_HEAP_LIMIT_BYTES = 4 * 1024 * 1024 * 1024;
export const WASM_FILE = 'shoal-hnsw.wasm';
export const ABI_VERSION = 1;

/** Metric spaces of the C API. */
export const SPACE = { l2: 0, ip: 1, cosine: 2 } as const;

/** Error codes of the C API (engine/src/shoal_hnsw.cpp `ErrorCode`). */
const ERR = { OUT_OF_MEMORY: 1, INVALID: 2, CORRUPT: 3 } as const;

/** The module's exports (pointers and sizes are i32; pointers above 2 GiB read back negative). */
export interface ShoalWasmExports {
  memory: WasmMemory;
  _initialize(): void;
  shoal_abi_version(): number;
  shoal_error_code(): number;
  shoal_error_message(): number;
  shoal_alloc(bytes: number): number;
  shoal_free(ptr: number): void;
  shoal_heap_used(): number;
  shoal_create(space: number, dim: number, maxElements: number, m: number, efC: number, seed: number): number;
  shoal_destroy(index: number): void;
  shoal_add(index: number, vectors: number, count: number, firstLabel: number): number;
  /** shoal_add, or with `reference` = 1 hnswlib's own addPoint (tests compare the two). */
  shoal_add_with(index: number, vectors: number, count: number, firstLabel: number, reference: number): number;
  shoal_search(
    index: number,
    queries: number,
    nq: number,
    k: number,
    ef: number,
    allowed: number,
    allowedRows: number,
    labels: number,
    distances: number,
    counts: number,
  ): number;
  /** shoal_search, or with `reference` = 1 hnswlib's own searchKnn (tests compare the two). */
  shoal_search_with(
    index: number,
    queries: number,
    nq: number,
    k: number,
    ef: number,
    allowed: number,
    allowedRows: number,
    labels: number,
    distances: number,
    counts: number,
    reference: number,
  ): number;
  shoal_header_bytes(): number;
  shoal_level0(index: number): number;
  shoal_level0_bytes(index: number): number;
  shoal_save_size(index: number): number;
  shoal_meta_size(index: number): number;
  shoal_save_meta(index: number, out: number): number;
  shoal_load_meta(space: number, dim: number, meta: number, length: number, maxElements: number): number;
  shoal_load_finish(index: number): number;
  shoal_save(index: number, out: number): number;
  shoal_load(space: number, dim: number, bytes: number, length: number, maxElements: number): number;
  shoal_resize(index: number, maxElements: number): number;
  shoal_mark_deleted(index: number, label: number): number;
  shoal_unmark_deleted(index: number, label: number): number;
  shoal_count(index: number): number;
  /**
   * Exact top k of one query over an index's own vectors: all rows (rows = 0) or rows[0..n). Writes up to
   * k (row, distance) pairs closest first, ties to the lower row; returns their count, or −1.
   */
  shoal_exact(index: number, query: number, rows: number, n: number, k: number, labels: number, out: number): number;
  /** Exact distances from one query to n rows (no index): l2 squared, or 1 − dot. */
  shoal_scan(space: number, dim: number, rows: number, n: number, query: number, out: number): number;
  shoal_deleted_count(index: number): number;
  shoal_max_elements(index: number): number;
  shoal_index_bytes(index: number): number;
}

/** The instantiated module plus heap helpers. One per process. */
export class ShoalWasm {
  private u8: Uint8Array;

  constructor(readonly x: ShoalWasmExports) {
    this.u8 = new Uint8Array(x.memory.buffer);
  }

  /** The heap as bytes (views are re-created after the heap grows). */
  heap(): Uint8Array {
    if (this.u8.buffer !== this.x.memory.buffer) this.u8 = new Uint8Array(this.x.memory.buffer);
    return this.u8;
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.heap().buffer, ptr >>> 0, length);
  }

  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.heap().buffer, ptr >>> 0, length);
  }

  /** Allocates heap bytes (8-byte aligned) or throws LimitExceededError. */
  alloc(bytes: number, what: string): number {
    const ptr = this.x.shoal_alloc(Math.max(bytes, 1)) >>> 0;
    if (ptr === 0) throw heapExhausted(`${what}: allocating ${bytes} bytes`);
    return ptr;
  }

  free(ptr: number): void {
    if (ptr) this.x.shoal_free(ptr);
  }

  /** Current WASM heap size (what the process holds; never shrinks). */
  heapBytes(): number {
    return this.x.memory.buffer.byteLength;
  }

  /** Bytes malloc holds for live allocations. */
  heapUsedBytes(): number {
    return this.x.shoal_heap_used() >>> 0;
  }

  /** The typed error for the C API's last failure. */
  failure(what: string): Error {
    const code = this.x.shoal_error_code();
    const ptr = this.x.shoal_error_message() >>> 0;
    const heap = this.heap();
    let end = ptr;
    while (end < heap.length && heap[end] !== 0) end++;
    const text = new TextDecoder().decode(heap.subarray(ptr, end));
    if (code === ERR.OUT_OF_MEMORY) return heapExhausted(`${what}: ${text}`);
    if (code === ERR.INVALID) return new ValidationError(`${what}: ${text}`);
    if (code === ERR.CORRUPT || /corrupted or unsupported/.test(text)) return new CorruptDataError(`${what}: ${text}`);
    return new EngineError(`${what}: ${text}`);
  }
}

function heapExhausted(what: string): LimitExceededError {
  return new LimitExceededError(
    `${what}: the hnsw WASM heap (max ${SHOAL_WASM_HEAP_LIMIT_BYTES} bytes) is exhausted`,
    {},
  );
}

/** Where the .wasm may be: beside this module (bundle), in the source tree, or SHOAL_HNSW_WASM. */
export function wasmCandidates(): string[] {
  const out: string[] = [];
  const env = process.env.SHOAL_HNSW_WASM;
  if (env) out.push(env);
  out.push(fileURLToPath(new URL(`./${WASM_FILE}`, import.meta.url)));
  out.push(fileURLToPath(new URL(`../../engine/dist/${WASM_FILE}`, import.meta.url)));
  return out;
}

export function findWasmFile(): string {
  const candidates = wasmCandidates();
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new EngineError(`${WASM_FILE} not found (looked in ${candidates.join(', ')})`);
  return found;
}

let loading: Promise<ShoalWasm> | undefined;

/** The module, instantiated once per process. */
export function loadShoalWasm(): Promise<ShoalWasm> {
  loading ??= instantiateShoalWasm(findWasmFile()).catch((cause: unknown) => {
    loading = undefined;
    throw cause instanceof EngineError
      ? cause
      : new EngineError('the hnsw WASM module failed to initialise', { cause });
  });
  return loading;
}

/** Instantiates a module file (a fresh heap each call; the engine shares one via loadShoalWasm). */
export async function instantiateShoalWasm(file: string): Promise<ShoalWasm> {
  const bytes = readFileSync(file);
  const module: { memory?: WasmMemory } = {};
  const view = () => new DataView(module.memory!.buffer);
  let stderr = '';
  // WASI stubs: hnswlib's file I/O is linked but never called; stdio writes go to stderr.
  const wasi = {
    proc_exit: (code: number) => {
      throw new EngineError(`hnsw WASM module exited with code ${code}`);
    },
    fd_seek: () => 70, // ESPIPE-ish: no files
    fd_read: () => 8, // EBADF
    fd_close: () => 8,
    fd_write: (_fd: number, iovs: number, iovsLen: number, nwritten: number) => {
      const dv = view();
      let total = 0;
      for (let i = 0; i < iovsLen; i++) {
        const ptr = dv.getUint32(iovs + i * 8, true);
        const len = dv.getUint32(iovs + i * 8 + 4, true);
        stderr += new TextDecoder().decode(new Uint8Array(module.memory!.buffer, ptr, len));
        total += len;
      }
      dv.setUint32(nwritten, total, true);
      const lines = stderr.split('\n');
      stderr = lines.pop() ?? '';
      for (const line of lines) logger.warn('shoal-hnsw wrote to stderr', { line });
      return 0;
    },
    environ_sizes_get: (countPtr: number, sizePtr: number) => {
      view().setUint32(countPtr, 0, true);
      view().setUint32(sizePtr, 0, true);
      return 0;
    },
    environ_get: () => 0,
  };
  const { instance } = await WebAssemblyApi.instantiate(bytes, {
    wasi_snapshot_preview1: wasi,
    env: { emscripten_notify_memory_growth: () => undefined },
  });
  const x = instance.exports as unknown as ShoalWasmExports;
  module.memory = x.memory;
  x._initialize();
  if (x.shoal_abi_version() !== ABI_VERSION) {
    throw new EngineError(`${WASM_FILE} has ABI ${x.shoal_abi_version()}, this code expects ${ABI_VERSION}`);
  }
  return new ShoalWasm(x);
}
