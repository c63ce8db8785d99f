/**
 * Finds the WASM memory ceiling of the hnswlib-wasm build (docs/architecture.md, "The WASM
 * memory ceiling"): initIndex preallocates hnswlib's level-0 block, so growing element
 * counts walk the heap up to its limit without adding any vectors.
 *
 *   npm run bench:wasm-ceiling
 *   npm run bench:wasm-ceiling -- --quick   # one size under the ceiling, one over
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { HNSW_HEAP_LIMIT_BYTES, exceptionText, loadRawHnswlib } from '../shared/engine/hnswlib-runtime.js';
import { estimateHnswHeapBytes } from '../shared/engine/hnsw.js';
import { machineLine, parseCli } from './cli.js';

const cli = parseCli({
  name: 'wasm-ceiling',
  summary: "The hnswlib-wasm heap ceiling: initIndex at growing element counts beside Shoal's heap estimate.",
  quick: 'one size under the ceiling and one over it',
});
const lib = await loadRawHnswlib();
const dim = 128;
const m = 16;
const sizes = cli.quick ? [1_000_000, 4_000_000] : [1_000_000, 2_000_000, 3_000_000, 3_200_000, 4_000_000];
const rows: Array<{ elements: number; ok: boolean; error: string | null; heapBytes: number; estimateBytes: number }> =
  [];
for (const n of sizes) {
  const index = new lib.HierarchicalNSW('l2', dim, '');
  let error: string | null = null;
  try {
    index.initIndex(n, m, 100, 42);
  } catch (raw) {
    error = exceptionText(raw);
  } finally {
    index.delete();
  }
  rows.push({
    elements: n,
    ok: error === null,
    error,
    heapBytes: lib.HEAPU8.length,
    estimateBytes: estimateHnswHeapBytes(n, dim, m),
  });
}
// The module survives a failed allocation: a small index still works afterwards.
const probe = new lib.HierarchicalNSW('l2', dim, '');
probe.initIndex(10, m, 100, 42);
probe.addPoint(new Float32Array(dim), 0, false);
const afterFailures = probe.getCurrentCount();
probe.delete();

const n = (x: number) => x.toLocaleString('en-US');
cli.out({
  markdown: [
    `# hnswlib-wasm heap ceiling — ${cli.started.toISOString()}`,
    '',
    `Machine: ${machineLine(cli.machine)}. Command: \`${cli.command}\`.`,
    '',
    `hnswlib-wasm heap limit: ${HNSW_HEAP_LIMIT_BYTES} bytes; dim=${dim}, m=${m}`,
    '| elements | initIndex | WASM heap after (bytes) | Shoal estimate (bytes) |',
    '|---:|---|---:|---:|',
    ...rows.map(
      (r) => `| ${n(r.elements)} | ${r.ok ? 'ok' : `fails: ${r.error}`} | ${n(r.heapBytes)} | ${n(r.estimateBytes)} |`,
    ),
    `after the failures a new index still works: ${afterFailures} element added`,
    '',
  ].join('\n'),
  parameters: { dim, m, efConstruction: 100, seed: 42, heapLimitBytes: HNSW_HEAP_LIMIT_BYTES },
  rows,
  tables: { afterFailuresElements: afterFailures },
});
