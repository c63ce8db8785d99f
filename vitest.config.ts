import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The hnswlib-wasm runtime is a process-wide singleton (one WASM heap, one IDBFS):
    // forks keep each test file in its own process so heaps never mix.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
