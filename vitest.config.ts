import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'clients/typescript/test/**/*.test.ts'],
    // The WASM engine is a process-wide singleton (one heap that only grows):
    // forks keep each test file in its own process so heaps never mix.
    pool: 'forks',
    // Two files at a time even on a 2-vCPU machine (vitest's default there is one): most files wait on the
    // emulators, child processes and timers rather than compute, so the suite took 926 s one at a time and
    // 704 s two at a time on the CI machine, with every test green both ways.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The AWS SDK's Node < 22 end-of-support notice, once per client package per worker: the SDK's own switch.
    // Handler logs are silenced: tests that care about a log line spy on the logger or set the level themselves.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', POWERTOOLS_LOG_LEVEL: 'SILENT' },
  },
});
