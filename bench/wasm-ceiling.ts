/**
 * Finds the WASM memory ceiling of Shoal's hnsw build (engine/, docs/architecture.md, "The WASM
 * memory ceiling"): creating an index preallocates hnswlib's level-0 block, so growing element
 * counts walk the heap up to its limit without adding any vectors.
 *
 *   npm run bench:wasm-ceiling
 */
import { estimateHnswHeapBytes } from '../shared/engine/hnsw.js';
import { SHOAL_WASM_HEAP_LIMIT_BYTES, SPACE, loadShoalWasm } from '../shared/engine/shoal-wasm.js';

const wasm = await loadShoalWasm();
const dim = 128;
const m = 16;
console.log(`Shoal hnsw WASM heap limit: ${SHOAL_WASM_HEAP_LIMIT_BYTES} bytes; dim=${dim}, m=${m}`);
console.log('| elements | create | WASM heap after (bytes) | index bytes (C API) | Shoal estimate (bytes) |');
console.log('|---:|---|---:|---:|---:|');
for (const n of [1_000_000, 2_000_000, 4_000_000, 5_000_000, 5_500_000, 6_000_000, 6_500_000]) {
  const handle = wasm.x.shoal_create(SPACE.l2, dim, n, m, 100, 42);
  const outcome = handle === 0 ? `fails: ${wasm.failure('create').message}` : 'ok';
  const indexBytes = handle === 0 ? 0 : wasm.x.shoal_index_bytes(handle) >>> 0;
  if (handle !== 0) wasm.x.shoal_destroy(handle);
  console.log(
    `| ${n.toLocaleString('en-US')} | ${outcome} | ${wasm.heapBytes().toLocaleString('en-US')} | ${indexBytes.toLocaleString('en-US')} | ${estimateHnswHeapBytes(n, dim, m).toLocaleString('en-US')} |`,
  );
}
// The module survives a failed allocation: a small index still works afterwards.
const probe = wasm.x.shoal_create(SPACE.l2, dim, 10, m, 100, 42);
const vec = wasm.alloc(dim * 4, 'probe');
wasm.x.shoal_add(probe, vec, 1, 0);
console.log(`after the failures a new index still works: ${wasm.x.shoal_count(probe)} element added`);
wasm.free(vec);
wasm.x.shoal_destroy(probe);
