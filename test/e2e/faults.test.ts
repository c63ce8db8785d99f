/**
 * `SHOAL_FAULTS=gsi-lag=<ms>` on a whole local Shoal (`npm start`'s stack) over HTTP: `/v1/health`
 * names the fault, and strong reads still see every acknowledged write while the GSI hides them
 * all (docs/architecture.md §7.5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';
import { mulberry32 } from '../helpers/random.js';

let server: HttpShoal;
const saved = process.env.SHOAL_FAULTS;

beforeAll(async () => {
  process.env.SHOAL_FAULTS = 'gsi-lag=600000';
  server = await startHttpShoal('faults');
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (saved === undefined) delete process.env.SHOAL_FAULTS;
  else process.env.SHOAL_FAULTS = saved;
});

describe('a local stack with a lagging GSI', () => {
  it('lists the active faults in /v1/health', async () => {
    const health = await server.call('GET', '/v1/health');
    expect(health.status).toBe(200);
    expect(health.json.faults).toEqual(['gsi-lag=600000']);
  });

  it('answers strong searches, stats and delete-by-filter from acknowledged writes only', async () => {
    // Prepare
    const rand = mulberry32(99);
    const dim = 16;
    expect(
      (await server.call('POST', '/v1/collections', { name: 'lagged', dimension: dim, metric: 'l2' })).status,
    ).toBe(201);
    const missed: string[] = [];

    // Act: 60 write→read pairs over HTTP
    for (let i = 0; i < 60; i++) {
      const values = Array.from({ length: dim }, () => rand() * 2 - 1);
      const put = await server.call('POST', '/v1/collections/lagged/vectors', {
        vectors: [{ id: `w${i}`, values, metadata: { even: i % 2 === 0 } }],
      });
      expect(put.status).toBe(200);
      const found = await server.call('POST', '/v1/collections/lagged/search', {
        vector: values,
        k: 1,
        consistency: 'strong',
      });
      if (found.json.results[0]?.id !== `w${i}`) missed.push(`w${i}`);
    }
    const del = await server.call('POST', '/v1/collections/lagged/vectors/delete', { filter: { even: true } });
    const info = await server.call('GET', '/v1/collections/lagged');

    // Assess
    expect(missed).toEqual([]);
    expect(del.json.deleted).toBe(30);
    expect(info.json.stats.count).toBe(30);
  });
});
