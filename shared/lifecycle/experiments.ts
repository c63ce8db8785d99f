/**
 * Champion/challenger experiments on an alias (docs/architecture.md §8.6).
 *
 * - One experiment item per alias (`ALIAS#<name>/EXPERIMENT`), started with ONE conditional
 *   put (no running experiment) and ended (promoted / aborted) with one put conditional on
 *   it still being that running experiment.
 * - Searches through the alias read it on every request. `split`: the arm is a deterministic
 *   hash of the `stickyKey` (else the queryId) against the weight; `shadow`: the champion
 *   answers, then the challenger runs the same query for measurement only (awaited in the
 *   same invocation, every failure swallowed).
 * - Measurements are atomic ADDs on per-arm counter items (requests, errors, a fixed-bucket
 *   latency histogram, overlap@k sums, feedback). No transactions.
 * - Guardrails are checked after each recorded request once the arm has ≥ minSamples, and on
 *   every results read; a violation aborts the experiment (state `aborted`, reason recorded).
 * - Feedback rates get two tests: the fixed-horizon z-test (valid for one look at a planned
 *   sample size) and an always-valid mSPRT (experiment-stats). The mSPRT's running minimum
 *   p-value and running interval intersection live on `EXP#<id>/SEQ`, tightened with
 *   conditional writes on every results read and every SEQUENTIAL_CHECKPOINT_EVERY-th
 *   converted/clicked query of an arm; verdicts come from it only.
 */
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { logger } from '../log.js';
import type { ArmCounters, LifecycleStore } from './types.js';
import {
  DEFAULT_GUARDRAILS,
  DEFAULT_MSPRT_TAU2,
  SEQUENTIAL_ALPHA,
  SEQUENTIAL_MIN_TRIALS,
  SEQUENTIAL_START,
  chooseArm,
  foldLook,
  guardrailVerdict,
  histogramQuantile,
  msprtLook,
  overlapAtK,
  proportion,
  sequentialVerdict,
  tightens,
  twoProportionZTest,
  type SequentialState,
} from './experiment-stats.js';
import type { SearchInput, SearchOutput } from '../service.js';
import type {
  AliasTarget,
  Arm,
  ArmResult,
  Experiment,
  ExperimentResults,
  ExperimentSummary,
  FeedbackEvent,
  Proportion,
  RateTest,
  StartExperimentInput,
} from '../service-types.js';

/** queryId items live this long (DynamoDB TTL): feedback later than that is not attributed. */
export const QUERY_TTL_SECONDS = 7 * 24 * 3600;
/** Split mode: fraction of requests on which the other arm also runs to measure overlap@k. */
export const DEFAULT_OVERLAP_SAMPLE = 0.1;
/**
 * Feedback also advances the sequential tests, every this many clicked (converted) queries
 * of an arm: one Query of the arms and at most one conditional write per metric. Default 20.
 * Looks between results reads only add power (the running minimum can only drop) and never
 * validity; smaller values catch a transient peak of the evidence sooner at the cost of more
 * reads on the feedback path; results reads always look regardless.
 */
export const SEQUENTIAL_CHECKPOINT_EVERY = 20;
/** What the fixed-horizon p-value may be used for: one look at a pre-planned sample size. */
export const FIXED_HORIZON_VALIDITY =
  'valid only when read once, at a sample size fixed before the experiment started; use `sequential` to monitor';

export interface ExperimentDeps {
  store: LifecycleStore;
  now: () => number;
}

export function summary(e: Experiment): ExperimentSummary {
  return {
    id: e.id,
    mode: e.mode,
    weight: e.weight,
    state: e.state,
    champion: e.champion,
    challenger: e.challenger,
    createdAt: e.createdAt,
  };
}

export function newExperiment(
  alias: string,
  champion: AliasTarget,
  input: StartExperimentInput,
  by: string,
  now: number,
): Experiment {
  if (
    input.challenger.collection === champion.collection &&
    input.challenger.version === champion.version &&
    input.challenger.line === champion.line
  ) {
    throw new ValidationError("the challenger is the alias's current target (the champion)", { field: 'challenger' });
  }
  return {
    id: randomUUID(),
    alias,
    mode: input.mode,
    weight: input.mode === 'split' ? (input.weight ?? 10) : 0,
    champion,
    challenger: input.challenger,
    guardrails: { ...DEFAULT_GUARDRAILS, ...input.guardrails },
    overlapSample: input.overlapSample ?? DEFAULT_OVERLAP_SAMPLE,
    tau2: input.tau2 ?? DEFAULT_MSPRT_TAU2,
    state: 'running',
    createdAt: new Date(now).toISOString(),
    createdBy: by,
  };
}

export async function runningExperiment(store: LifecycleStore, alias: string): Promise<Experiment | undefined> {
  const e = await store.getExperiment(alias);
  return e?.state === 'running' ? e : undefined;
}

export async function requireExperiment(store: LifecycleStore, alias: string): Promise<Experiment> {
  const e = await store.getExperiment(alias);
  if (!e) throw new NotFoundError(`alias ${JSON.stringify(alias)} has no experiment`, { field: 'alias' });
  return e;
}

export async function requireRunning(store: LifecycleStore, alias: string): Promise<Experiment> {
  const e = await requireExperiment(store, alias);
  if (e.state !== 'running')
    throw new ConflictError(`experiment ${e.id} on alias ${JSON.stringify(alias)} is ${e.state}, not running`, {
      field: 'alias',
      details: { state: e.state },
    });
  return e;
}

/** Ends a running experiment (one conditional write); false when it was not running any more. */
export async function endExperiment(
  deps: ExperimentDeps,
  e: Experiment,
  state: 'promoted' | 'aborted',
  by: string,
  reason: string,
): Promise<Experiment | undefined> {
  const ended: Experiment = { ...e, state, endedAt: new Date(deps.now()).toISOString(), endedBy: by, reason };
  return (await deps.store.endExperiment(ended)) ? ended : undefined;
}

/** Checks the guardrails on the arms' counters; aborts the experiment when one is violated. */
export async function enforceGuardrails(
  deps: ExperimentDeps,
  e: Experiment,
  arms?: Record<Arm, ArmCounters>,
): Promise<Experiment> {
  if (e.state !== 'running') return e;
  const a = arms ?? (await deps.store.getArms(e.id));
  const reason = guardrailVerdict(a.champion, a.challenger, e.guardrails);
  if (!reason) return e;
  const ended = await endExperiment(deps, e, 'aborted', 'guardrail', reason);
  if (ended) logger.warn('experiment aborted', { experiment: e.id, alias: e.alias, reason });
  return ended ?? (await deps.store.getExperiment(e.alias)) ?? e;
}

function armResult(target: AliasTarget, c: ArmCounters, served: boolean): ArmResult {
  const ok = c.latency.reduce((s, x) => s + x, 0);
  const trials = served ? c.requests : 0;
  return {
    target,
    requests: c.requests,
    errors: c.errors,
    errorRate: c.requests > 0 ? c.errors / c.requests : null,
    latencyMs: {
      p50: histogramQuantile(c.latency, 0.5),
      p95: histogramQuantile(c.latency, 0.95),
      mean: ok > 0 ? Number((c.latencySumMs / ok).toPrecision(4)) : null,
    },
    overlapAtK: { mean: c.overlapN > 0 ? c.overlapSum / c.overlapN : null, samples: c.overlapN },
    clicks: c.clicks,
    converts: c.converts,
    clickRate: proportion(Math.min(c.clickedQueries, trials), trials),
    convertRate: proportion(Math.min(c.convertedQueries, trials), trials),
  };
}

export type SequentialStates = Partial<Record<FeedbackEvent, SequentialState>>;

/** (successes, trials) of an arm for a metric, as the rates count them. */
function rateCounts(c: ArmCounters, metric: FeedbackEvent): [number, number] {
  const x = metric === 'click' ? c.clickedQueries : c.convertedQueries;
  return [Math.min(x, c.requests), c.requests];
}

/**
 * Looks at the current counts with the mSPRT and folds the look into the stored running
 * state, writing back whatever got tighter (conditional writes, so concurrent looks merge).
 * Null in shadow mode. The state is read fresh on every call: it is what makes the reported
 * p-value monotone across reads by different processes.
 */
export async function advanceSequential(
  store: LifecycleStore,
  e: Experiment,
  arms: Record<Arm, ArmCounters>,
): Promise<SequentialStates | null> {
  if (e.mode !== 'split') return null;
  const stored = await store.getSequential(e.id);
  const out: SequentialStates = {};
  for (const metric of ['click', 'convert'] as const) {
    const prev = stored[metric] ?? SEQUENTIAL_START;
    const [x1, n1] = rateCounts(arms.champion, metric);
    const [x2, n2] = rateCounts(arms.challenger, metric);
    const next = foldLook(prev, msprtLook(x1, n1, x2, n2, e.tau2 ?? DEFAULT_MSPRT_TAU2));
    out[metric] = tightens(prev, next) ? await store.tightenSequential(e.id, metric, next) : prev;
  }
  return out;
}

/**
 * The results as the API shows them. `sequential` is the stored running state (from
 * advanceSequential); without it the current look alone is shown, which is still valid at
 * this stopping time but not monotone across reads.
 */
export function experimentResults(
  e: Experiment,
  arms: Record<Arm, ArmCounters>,
  sequential?: SequentialStates | null,
): ExperimentResults {
  // In shadow mode the challenger never serves: it gets no feedback, so no rates.
  const champion = armResult(e.champion, arms.champion, true);
  const challenger = armResult(e.challenger, arms.challenger, e.mode === 'split');
  const ovN = arms.champion.overlapN + arms.challenger.overlapN;
  const ovSum = arms.champion.overlapSum + arms.challenger.overlapSum;
  const test = (metric: FeedbackEvent, a: Proportion, b: Proportion): RateTest | null => {
    if (e.mode !== 'split') return null;
    const z = twoProportionZTest(a.successes, a.trials, b.successes, b.trials);
    const tau2 = e.tau2 ?? DEFAULT_MSPRT_TAU2;
    const s =
      sequential?.[metric] ?? foldLook(SEQUENTIAL_START, msprtLook(a.successes, a.trials, b.successes, b.trials, tau2));
    const verdict = sequentialVerdict(s);
    return {
      difference: a.rate !== null && b.rate !== null ? b.rate - a.rate : null,
      fixedHorizon: z ? { ...z, validity: FIXED_HORIZON_VALIDITY } : null,
      sequential: { p: s.p, ci95: [s.lo, s.hi], tau2, minTrials: SEQUENTIAL_MIN_TRIALS },
      significant: s.p <= SEQUENTIAL_ALPHA,
      verdict,
    };
  };
  return {
    experiment: e,
    arms: { champion, challenger },
    overlapAtK: { mean: ovN > 0 ? ovSum / ovN : null, samples: ovN },
    tests: {
      click: test('click', champion.clickRate, challenger.clickRate),
      convert: test('convert', champion.convertRate, challenger.convertRate),
    },
  };
}

/** Results with the sequential tests advanced by this look (every results read is a look). */
export async function evaluateExperiment(
  store: LifecycleStore,
  e: Experiment,
  arms?: Record<Arm, ArmCounters>,
): Promise<ExperimentResults> {
  const a = arms ?? (await store.getArms(e.id));
  return experimentResults(e, a, await advanceSequential(store, e, a));
}

// --- the search path -------------------------------------------------------------------------

export interface AliasSearchDeps extends ExperimentDeps {
  /**
   * Resolves an alias target (collection meta, reads) and returns the search to run on it. Split
   * in two so the arms' latency compares the searches only: the champion's meta is already known
   * to the caller, the challenger's needs a read, and timing that read skewed p95 guardrails.
   */
  prepare: (target: AliasTarget) => Promise<(input: SearchInput) => Promise<SearchOutput>>;
  /** For tests: decides whether a split-mode request also measures overlap (default Math.random). */
  random?: () => number;
}

const ids = (out: SearchOutput): string[][] => out.results.map((list) => list.map((h) => h.id));

function meanOverlap(champion: SearchOutput, challenger: SearchOutput): number {
  const a = ids(champion);
  const b = ids(challenger);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += overlapAtK(a[i] ?? [], b[i] ?? []);
  return a.length ? s / a.length : 1;
}

async function timed(fn: () => Promise<SearchOutput>): Promise<{ out: SearchOutput; ms: number }> {
  const t0 = performance.now();
  const out = await fn();
  return { out, ms: performance.now() - t0 };
}

async function quietly(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    logger.warn('experiment bookkeeping failed', { what, error: err as Error });
  }
}

/**
 * A search through an alias: without a running experiment, the alias's target answers; with
 * one, the experiment decides the arm and records the request. Every response carries a
 * `queryId` (feedback is attributed through it while an experiment runs).
 */
export async function searchThroughAlias(
  deps: AliasSearchDeps,
  alias: string,
  champion: AliasTarget,
  input: SearchInput,
): Promise<SearchOutput> {
  const queryId = randomUUID();
  const e = await runningExperiment(deps.store, alias);
  if (!e) return { ...(await (await deps.prepare(champion))(input)), queryId };
  const timedRun = async (t: AliasTarget) => {
    const run = await deps.prepare(t);
    return timed(() => run(input));
  };
  const target = (arm: Arm): AliasTarget => (arm === 'champion' ? champion : e.challenger);
  const served: Arm = e.mode === 'split' ? chooseArm(e.id, input.stickyKey ?? queryId, e.weight) : 'champion';
  const other: Arm = served === 'champion' ? 'challenger' : 'champion';

  let result: { out: SearchOutput; ms: number };
  try {
    result = await timedRun(target(served));
  } catch (err) {
    await quietly('error count', async () => {
      const c = await deps.store.recordArm(e.id, served, { requests: 1, errors: 1 });
      if (c.requests >= e.guardrails.minSamples) await enforceGuardrails(deps, e);
    });
    throw err;
  }
  const response: SearchOutput = {
    ...result.out,
    servedBy: { ...result.out.servedBy, arm: served, experiment: e.id },
    queryId,
  };

  // Everything below only measures: it never changes the response or raises.
  let overlap: number | undefined;
  let shadow: { ok: boolean; ms?: number } | undefined;
  const mirror = e.mode === 'shadow' || (deps.random ?? Math.random)() < e.overlapSample;
  if (mirror) {
    try {
      const o = await timedRun(target(other));
      overlap = served === 'champion' ? meanOverlap(result.out, o.out) : meanOverlap(o.out, result.out);
      shadow = { ok: true, ms: o.ms };
    } catch {
      shadow = { ok: false };
    }
  }
  let check = false;
  await quietly('request count', async () => {
    const c = await deps.store.recordArm(e.id, served, {
      requests: 1,
      latencyMs: result.ms,
      ...(overlap !== undefined && e.mode === 'split' ? { overlap } : {}),
    });
    check ||= c.requests >= e.guardrails.minSamples;
  });
  if (e.mode === 'shadow' && shadow) {
    await quietly('shadow count', async () => {
      const c = await deps.store.recordArm(
        e.id,
        'challenger',
        shadow.ok
          ? { requests: 1, latencyMs: shadow.ms, ...(overlap !== undefined ? { overlap } : {}) }
          : { requests: 1, errors: 1 },
      );
      check ||= c.requests >= e.guardrails.minSamples;
    });
  }
  await quietly('query attribution', () =>
    deps.store.putQuery({ queryId, alias, experimentId: e.id, arm: served }, QUERY_TTL_SECONDS),
  );
  if (check) await quietly('guardrails', () => enforceGuardrails(deps, e));
  return response;
}

/** Feedback on a search result: counted on the arm that served the query. */
export async function recordFeedback(
  store: LifecycleStore,
  input: { queryId: string; id: string; event: FeedbackEvent },
): Promise<{ attributed: boolean; experiment?: string; alias?: string; arm?: Arm }> {
  const hit = await store.recordQueryFeedback(input.queryId, input.event);
  if (!hit) return { attributed: false };
  const c = await store.addArmFeedback(hit.attribution.experimentId, hit.attribution.arm, input.event, hit.first);
  const successes = input.event === 'click' ? c.clickedQueries : c.convertedQueries;
  if (hit.first && successes % SEQUENTIAL_CHECKPOINT_EVERY === 0) {
    await quietly('sequential checkpoint', async () => {
      const e = await store.getExperiment(hit.attribution.alias);
      if (e?.id === hit.attribution.experimentId) await advanceSequential(store, e, await store.getArms(e.id));
    });
  }
  return {
    attributed: true,
    experiment: hit.attribution.experimentId,
    alias: hit.attribution.alias,
    arm: hit.attribution.arm,
  };
}
