/**
 * Every flow under every fault it can meet (docs/architecture.md §7.5): the fault layer
 * (shared/storage/faults.ts) injects throttling, failed conditions, lost responses, S3 SlowDown
 * and timeouts INSIDE the SDK's retry loop, per test and from a fixed seed. Each flow runs as a
 * client would run it (a typed retryable error is retried; nothing else is accepted), then the
 * faults are cleared and the state is checked: nothing acknowledged lost, nothing half-applied,
 * nothing counted twice.
 */
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ShoalError } from '../../shared/errors.js';
import type { ShoalCore } from '../../shared/core.js';
import type { Indexer } from '../../shared/indexing/indexer.js';
import type { LifecycleCore } from '../../shared/lifecycle/service.js';
import { parseFilter } from '../../shared/filter/index.js';
import { setFaults } from '../../shared/storage/clients.js';
import type { AliasTarget, PointerMove } from '../../shared/service-types.js';
import { lifecycleCores, searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

const DIM = 8;
/** A seed whose first draws fire (flows that make only a few calls still meet their fault). */
const SEED = 'faults-seed=337';
/** The DynamoDB faults every write flow must survive, and the S3 ones the builder meets. */
const DDB = {
  throttle: `ddb-throttle=0.1,${SEED}`,
  'lost response': `ddb-lost-response=0.2,${SEED}`,
  'failed condition': `ddb-cond-fail=0.3,${SEED}`,
} as const;
const S3 = {
  'S3 SlowDown': `s3-slowdown=0.3,${SEED}`,
  'S3 timeout': `s3-timeout=0.3,${SEED}`,
} as const;
type FaultName = keyof typeof DDB | keyof typeof S3;
const ALL: Record<FaultName, string> = { ...DDB, ...S3 };

let stack: EmulatedStack;
let core: ShoalCore;
let life: LifecycleCore;
let indexer: Indexer;
const caller = { actor: 'faults' };
/** Typed errors the clients saw (and retried), by code: evidence that the faults reached them. */
const seen: Record<string, number> = {};

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-faults', now: () => Date.now() });
  ({ core, life, indexer } = lifecycleCores(stack, () => Date.now()));
}, 60_000);

afterEach(() => {
  setFaults(stack.aws, {});
});

afterAll(async () => {
  await stack?.stop();
});

/** Turns `spec` on; returns a check that the faults fired at least once. */
function inject(spec: string): () => void {
  const sw = setFaults(stack.aws, spec);
  return () => expect(Object.values(sw.injected).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
}

/**
 * Runs `op` as a client does: success, or a typed retryable error that it retries (503; 409 where
 * a failed condition is a race the caller must re-read and retry). A bare SDK error or any other
 * status (the API's generic 500) fails the test.
 */
async function asClient<T>(op: () => Promise<T>, retry409 = false): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof ShoalError)) throw new Error(`untyped error reached the caller: ${String(err)}`);
      const retryable = err.statusCode === 503 || (retry409 && err.statusCode === 409);
      if (!retryable || attempt >= 10) throw err;
      seen[err.code] = (seen[err.code] ?? 0) + 1;
    }
  }
}

let collections = 0;
async function freshCollection(): Promise<string> {
  const name = `f${++collections}`;
  await core.createCollection({ name, dimension: DIM, metric: 'l2', index: { engine: 'flat' } });
  return name;
}

/** Strong search of each vector finds itself first, and get returns it unchanged. */
async function expectAllVisible(name: string, vectors: ReturnType<typeof vectorInputs>): Promise<void> {
  const got = await core.getVectors(
    name,
    vectors.map((v) => v.id),
  );
  expect(got.map((v) => v.id).sort()).toEqual(vectors.map((v) => v.id).sort());
  for (const v of vectors.filter((_, i) => i % 7 === 0)) {
    const out = await core.search(name, searchInput(v.values, { k: 1 }));
    expect(out.results[0][0]?.id).toBe(v.id);
  }
}

describe('upsert', () => {
  it.each(Object.keys(DDB) as Array<keyof typeof DDB>)('loses no acknowledged write under %s', async (fault) => {
    const name = await freshCollection();
    const vectors = vectorInputs(60, DIM, 11, 'u');
    const fired = inject(DDB[fault]);
    for (let i = 0; i < vectors.length; i += 10) {
      await asClient(() => core.upsert(name, vectors.slice(i, i + 10)));
    }
    fired();
    setFaults(stack.aws, {});
    await expectAllVisible(name, vectors);
    expect((await core.getCollection(name)).stats?.count).toBe(60);
  });
});

describe('strong search', () => {
  it.each(['throttle', 'lost response'] as const)(
    'finds every acknowledged write (tail and shards), retrying typed 503s, under %s',
    async (fault) => {
      const name = await freshCollection();
      const vectors = vectorInputs(40, DIM, 31, 's');
      await core.upsert(name, vectors.slice(0, 20));
      await indexer.buildNow(name);
      await core.upsert(name, vectors.slice(20));
      const fired = inject(DDB[fault]);
      const missed: string[] = [];
      // Fewer under throttling: each throttled retry waits ~0.5 s.
      const every = fault === 'throttle' ? 8 : 3;
      for (const v of vectors.filter((_, i) => i % every === 0)) {
        const out = await asClient(() => core.search(name, searchInput(v.values, { k: 1 })));
        if (out.results[0][0]?.id !== v.id) missed.push(v.id);
      }
      fired();
      expect(missed).toEqual([]);
    },
  );
});

describe('delete', () => {
  it.each(Object.keys(DDB) as Array<keyof typeof DDB>)(
    'deletes by id and by filter exactly once under %s',
    async (fault) => {
      const name = await freshCollection();
      const vectors = vectorInputs(40, DIM, 12, 'd', (i) => ({ g: i % 2 }));
      await core.upsert(name, vectors);
      await indexer.buildNow(name);
      const fired = inject(DDB[fault]);
      await asClient(() =>
        core.deleteVectors(name, {
          ids: vectors.slice(0, 10).map((v) => v.id),
        }),
      );
      const filter = parseFilter('g == 1');
      if (!filter) throw new Error('filter expected');
      await asClient(() => core.deleteVectors(name, { filter }));
      fired();
      setFaults(stack.aws, {});
      const gone = new Set(vectors.filter((v, i) => i < 10 || v.metadata?.g === 1).map((v) => v.id));
      const kept = vectors.filter((v) => !gone.has(v.id));
      expect(kept).toHaveLength(15);
      expect((await core.getVectors(name, [...gone])).map((v) => v.id)).toEqual([]);
      await expectAllVisible(name, kept);
      const all = await core.search(name, searchInput(vectors[0].values, { k: 40 }));
      expect(all.results[0].map((h) => h.id).sort()).toEqual(kept.map((v) => v.id).sort());
      expect((await core.getCollection(name)).stats?.count).toBe(15);
    },
  );
});

describe('build', () => {
  it.each(Object.keys(ALL) as FaultName[])('commits a whole manifest or none under %s', async (fault) => {
    const name = await freshCollection();
    const vectors = vectorInputs(50, DIM, 13, 'b');
    await core.upsert(name, vectors.slice(0, 30));
    await indexer.buildNow(name);
    await core.upsert(name, vectors.slice(30));
    await core.deleteVectors(name, { ids: [vectors[0].id] });
    const fired = inject(ALL[fault]);
    const built = await asClient(() => indexer.buildNow(name));
    fired();
    setFaults(stack.aws, {});
    if (fault === 'failed condition' && !built.built) {
      // Three failed conditions in a row on the commit read as a lost race: nothing committed, the next run builds.
      expect(built).toMatchObject({ reason: 'lost-race', version: 1 });
      expect((await indexer.buildNow(name)).built).toBe(true);
    } else {
      // A commit that met its own resent put is reported as built, not as a lost race.
      expect(built).toMatchObject({ built: true });
    }
    const versions = await core.listVersions(name);
    expect(versions.map((m) => m.version)).toEqual([2, 1]);
    // Every object the committed manifest names exists and decodes: eventual reads (shards only) see every row.
    const live = vectors.slice(1);
    const out = await core.search(name, searchInput(live[0].values, { k: 60, consistency: 'eventual' }));
    expect(out.results[0].map((h) => h.id).sort()).toEqual(live.map((v) => v.id).sort());
    expect(out.servedBy.version).toBe(2);
  });
});

/** The alias's history is whole: revisions 1..n, each move starting where the previous one ended. */
async function expectWholeHistory(alias: string): Promise<PointerMove<AliasTarget>[]> {
  const a = await life.getAlias(alias);
  const history = await life.aliasHistory(alias);
  expect(history.map((m) => m.revision)).toEqual(Array.from({ length: a.revision }, (_, i) => a.revision - i));
  expect(history[0].to.collection).toBe(a.collection);
  for (let i = 0; i + 1 < history.length; i++) expect(history[i].from).toEqual(history[i + 1].to);
  return history;
}

describe('alias move and rollback', () => {
  it.each(Object.keys(DDB) as Array<keyof typeof DDB>)('moves each time exactly once under %s', async (fault) => {
    const a = await freshCollection();
    const b = await freshCollection();
    const alias = `alias-${a}`;
    await life.putAlias(alias, { collection: a }, caller);
    const fired = inject(DDB[fault]);
    let expected = a;
    for (let i = 0; i < 6; i++) {
      const before = (await life.getAlias(alias)).revision;
      if (i % 3 === 2) {
        // A rollback is relative: resent after it happened, it would roll back again. The client sends
        // the revision it saw, so a resend after success is refused, never applied twice.
        await asClient(async () => {
          const now = await life.getAlias(alias);
          if (now.revision > before) return;
          await life.rollbackAlias(alias, { expectedRevision: before }, caller);
        }, true);
        expected = expected === a ? b : a;
      } else {
        expected = expected === a ? b : a;
        await asClient(() => life.putAlias(alias, { collection: expected, expectedRevision: before }, caller), true);
      }
      expect((await life.getAlias(alias)).revision).toBe(before + 1);
    }
    fired();
    setFaults(stack.aws, {});
    expect((await life.getAlias(alias)).collection).toBe(expected);
    expect(await expectWholeHistory(alias)).toHaveLength(7);
  });
});

describe('model versions', () => {
  it.each(['lost response', 'throttle'] as const)(
    'register, upload and commit succeed once each under %s (a resent write finds its own effect)',
    async (fault) => {
      const model = `m-${fault.replace(' ', '-')}`;
      const artifact = new TextEncoder().encode(`weights of ${model}`);
      const sha256 = createHash('sha256').update(artifact).digest('hex');
      // Denser than DDB's: every register must meet its put's lost answer a few times in 12 calls.
      const fired = inject(fault === 'throttle' ? DDB.throttle : `ddb-lost-response=0.5,${SEED}`);
      const registered: number[] = [];
      for (let i = 0; i < 12; i++) {
        // A retried register may allocate a fresh number (the first is then an orphan), never an error.
        const mv = await asClient(() => life.registerModelVersion(model, { dimension: DIM, metric: 'l2' }, caller));
        registered.push(mv.model.version);
      }
      for (const version of registered.slice(0, 6)) {
        await asClient(() => life.uploadModelArtifact(model, version, artifact));
        const committed = await asClient(() => life.commitModelVersion(model, version, sha256));
        expect(committed.state).toBe('ready');
      }
      fired();
      setFaults(stack.aws, {});
      for (const [i, version] of registered.entries()) {
        const mv = await life.getModelVersion(model, version);
        expect(mv.state).toBe(i < 6 ? 'ready' : 'pending');
        if (i < 6) expect(mv.artifact.sha256).toBe(sha256);
      }
    },
  );
});

describe('experiment counters', () => {
  it.each(['throttle', 'lost response'] as const)('never count a request or a click twice under %s', async (fault) => {
    const champion = await freshCollection();
    const challenger = await freshCollection();
    const vectors = vectorInputs(20, DIM, 14, 'e');
    await core.upsert(champion, vectors);
    await core.upsert(challenger, vectors);
    const alias = `exp-${champion}`;
    await life.putAlias(alias, { collection: champion }, caller);
    await life.startExperiment(alias, { challenger: { collection: challenger }, mode: 'split', weight: 50 }, caller);
    const fired = inject(DDB[fault]);
    let attempts = 0;
    const queries: string[] = [];
    // Fewer under throttling: each throttled retry waits ~0.5 s (the SDK's 1 s throttling base, jittered).
    for (let i = 0; i < (fault === 'throttle' ? 5 : 20); i++) {
      const out = await asClient(() => {
        attempts++;
        return core.search(alias, searchInput(vectors[i].values, { stickyKey: `user-${i}` }));
      });
      queries.push(out.queryId!);
    }
    let clicks = 0;
    let clickCalls = 0;
    for (const queryId of queries) {
      clickCalls++;
      try {
        // Not resent after a 503: an ambiguous failure may have counted it (at most once, never twice).
        if ((await life.feedback({ queryId, id: 'x', event: 'click' })).attributed) clicks++;
      } catch (err) {
        expect(err).toMatchObject({ statusCode: 503 });
      }
    }
    fired();
    setFaults(stack.aws, {});
    const { arms } = await life.getExperiment(alias);
    const requests = arms.champion.requests + arms.challenger.requests;
    expect(requests).toBeLessThanOrEqual(attempts);
    // Lost responses are applied: with the ADDs sent at most once, each request is counted exactly once.
    if (fault === 'lost response') expect(requests).toBe(attempts);
    const counted = arms.champion.clicks + arms.challenger.clicks;
    expect(counted).toBeLessThanOrEqual(clickCalls);
    expect(counted).toBeGreaterThanOrEqual(clicks);
    expect(arms.champion.clickRate.successes + arms.challenger.clickRate.successes).toBeLessThanOrEqual(queries.length);
  });
});

describe('the fault layer', () => {
  it('reached the callers as typed retryable errors only', () => {
    expect(Object.keys(seen).every((code) => ['STORAGE_UNAVAILABLE', 'CONFLICT'].includes(code))).toBe(true);
  });
});
