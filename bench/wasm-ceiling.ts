/**
 * Finds the WASM memory ceiling of the hnswlib-wasm build (docs/architecture.md, "The WASM
 * memory ceiling"): initIndex preallocates hnswlib's level-0 block, so growing element
 * counts walk the heap up to its limit without adding any vectors.
 *
 *   npm run bench:wasm-ceiling
 */
import { HNSW_HEAP_LIMIT_BYTES, exceptionText, loadRawHnswlib } from '../shared/engine/hnswlib-runtime.js';
import { estimateHnswHeapBytes } from '../shared/engine/hnsw.js';

const lib = await loadRawHnswlib();
const dim = 128;
const m = 16;
console.log(`hnswlib-wasm heap limit: ${HNSW_HEAP_LIMIT_BYTES} bytes; dim=${dim}, m=${m}`);
console.log('| elements | initIndex | WASM heap after (bytes) | Shoal estimate (bytes) |');
console.log('|---:|---|---:|---:|');
for (const n of [1_000_000, 2_000_000, 3_000_000, 3_200_000, 4_000_000]) {
  const index = new lib.HierarchicalNSW('l2', dim, '');
  let outcome = 'ok';
  try {
    index.initIndex(n, m, 100, 42);
  } catch (raw) {
    outcome = `fails: ${exceptionText(raw)}`;
  } finally {
    index.delete();
  }
  console.log(
    `| ${n.toLocaleString('en-US')} | ${outcome} | ${lib.HEAPU8.length.toLocaleString('en-US')} | ${estimateHnswHeapBytes(n, dim, m).toLocaleString('en-US')} |`,
  );
}
// The module survives a failed allocation: a small index still works afterwards.
const probe = new lib.HierarchicalNSW('l2', dim, '');
probe.initIndex(10, m, 100, 42);
probe.addPoint(new Float32Array(dim), 0, false);
console.log(`after the failures a new index still works: ${probe.getCurrentCount()} element added`);
probe.delete();
