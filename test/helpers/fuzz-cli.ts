/**
 * `npm run fuzz [-- --seed <n>] [--runs <n>]`: the route fuzzer at full size (10 000 cases by default;
 * env SHOAL_FUZZ_SEED / SHOAL_FUZZ_RUNS work too). Prints the seed first, progress on stderr, the
 * summary (markdown) on stdout; exits 1 on any violation. `npm test` runs the same generators smaller
 * (test/integration/fuzz-routes.test.ts).
 */
import { parseArgs } from 'node:util';

// Before the logger exists: the harness records error-level lines itself; the rest is noise here.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { values } = parseArgs({ options: { seed: { type: 'string' }, runs: { type: 'string' } } });
const int = (text: string | undefined, what: string): number | undefined => {
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`fuzz: ${what} must be a non-negative integer, not ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return n;
};
const seed =
  int(values.seed, '--seed') ?? int(process.env.SHOAL_FUZZ_SEED, 'SHOAL_FUZZ_SEED') ?? Date.now() % 2 ** 31 >>> 0;
const runs = int(values.runs, '--runs') ?? int(process.env.SHOAL_FUZZ_RUNS, 'SHOAL_FUZZ_RUNS') ?? 10_000;

const { formatSummary, runFuzz, startFuzzStack } = await import('./fuzz-harness.js');
process.stderr.write(`fuzz: seed ${seed}, ${runs} cases (reproduce with --seed ${seed})\n`);
const stack = await startFuzzStack();
try {
  const summary = await runFuzz(stack, {
    seed,
    runs,
    onProgress: (done, s) =>
      process.stderr.write(
        `fuzz: ${done}/${runs} cases, ${s.violations.length} violations, ${(performance.now() / 1000) | 0} s\n`,
      ),
  });
  process.stdout.write(`${formatSummary(summary)}\n`);
  process.exitCode = summary.violations.length ? 1 : 0;
} finally {
  await stack.stop();
}
