/**
 * Finds the WASM memory ceiling of Shoal's hnsw build (engine/, docs/architecture.md, "The WASM
 * memory ceiling"): creating an index preallocates hnswlib's level-0 block, so growing element
 * counts walk the heap up to its limit without adding any vectors.
 *
 *   npm run bench:wasm-ceiling
 *   npm run bench:wasm-ceiling -- --quick   # one size under the ceiling, one over
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { estimateHnswHeapBytes } from '../shared/engine/hnsw.js';
import { SHOAL_WASM_HEAP_LIMIT_BYTES, SPACE, loadShoalWasm } from '../shared/engine/shoal-wasm.js';
import { machineLine, parseCli } from './cli.js';

const cli = parseCli({
  name: 'wasm-ceiling',
  summary: "The hnsw WASM heap ceiling: index creation at growing element counts beside Shoal's heap estimate.",
  quick: 'one size under the ceiling and one over it',
});
const wasm = await loadShoalWasm();
const dim = 128;
const m = 16;
const sizes = cli.quick
  ? [1_000_000, 7_000_000]
  : [1_000_000, 2_000_000, 4_000_000, 5_000_000, 5_500_000, 6_000_000, 6_500_000, 7_000_000];
const rows: Array<{ elements: number; ok: boolean; error: string | null; heapBytes: number; estimateBytes: number }> =
  [];
for (const n of sizes) {
  const handle = wasm.x.shoal_create(SPACE.l2, dim, n, m, 100, 42);
  const error = handle === 0 ? wasm.failure('create').message : null;
  if (handle !== 0) wasm.x.shoal_destroy(handle);
  rows.push({
    elements: n,
    ok: error === null,
    error,
    heapBytes: wasm.heapBytes(),
    estimateBytes: estimateHnswHeapBytes(n, dim, m),
  });
}
// The module survives a failed allocation: a small index still works afterwards.
const probe = wasm.x.shoal_create(SPACE.l2, dim, 10, m, 100, 42);
const vector = wasm.alloc(dim * 4, 'probe');
wasm.x.shoal_add(probe, vector, 1, 0);
const afterFailures = wasm.x.shoal_count(probe);
wasm.free(vector);
wasm.x.shoal_destroy(probe);

const n = (x: number) => x.toLocaleString('en-US');
cli.out({
  markdown: [
    `# Shoal hnsw WASM heap ceiling — ${cli.started.toISOString()}`,
    '',
    `Machine: ${machineLine(cli.machine)}. Command: \`${cli.command}\`.`,
    '',
    `WASM heap limit: ${SHOAL_WASM_HEAP_LIMIT_BYTES} bytes; dim=${dim}, m=${m}`,
    '| elements | create | WASM heap after (bytes) | Shoal estimate (bytes) |',
    '|---:|---|---:|---:|',
    ...rows.map(
      (r) => `| ${n(r.elements)} | ${r.ok ? 'ok' : `fails: ${r.error}`} | ${n(r.heapBytes)} | ${n(r.estimateBytes)} |`,
    ),
    `after the failures a new index still works: ${afterFailures} element added`,
    '',
  ].join('\n'),
  parameters: { dim, m, efConstruction: 100, seed: 42, heapLimitBytes: SHOAL_WASM_HEAP_LIMIT_BYTES },
  rows,
  tables: { afterFailuresElements: afterFailures },
});
