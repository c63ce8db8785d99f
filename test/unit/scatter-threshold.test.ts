import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/errors.js';

const env = {
  SHOAL_BUCKET: 'scatter',
  SHOAL_CATALOG_TABLE: 'catalog',
  SHOAL_RECORDS_TABLE: 'records',
  SHOAL_BUILD_QUEUE_URL: 'http://localhost:1/000000000000/build',
};
const MiB = 2 ** 20;

describe('SHOAL_SCATTER_MIN_MB', () => {
  it('defaults to half the shard cache, so shard sets the coordinator can hold are searched in process', () => {
    expect(parseConfig(env).scatterMinBytes).toBe(256 * MiB);
    expect(parseConfig({ ...env, SHOAL_SHARD_CACHE_MB: '884' }).scatterMinBytes).toBe(442 * MiB);
    expect(parseConfig({ ...env, SHOAL_SHARD_CACHE_MB: '17' }).scatterMinBytes).toBe(8 * MiB);
  });

  it('takes an explicit value, 0 (always scatter), and names itself when malformed', () => {
    expect(parseConfig({ ...env, SHOAL_SCATTER_MIN_MB: '64' }).scatterMinBytes).toBe(64 * MiB);
    expect(parseConfig({ ...env, SHOAL_SCATTER_MIN_MB: '0', SHOAL_SHARD_CACHE_MB: '884' }).scatterMinBytes).toBe(0);
    for (const bad of ['-1', '1.5', 'big']) {
      expect(() => parseConfig({ ...env, SHOAL_SCATTER_MIN_MB: bad }), bad).toThrow(ConfigError);
      expect(() => parseConfig({ ...env, SHOAL_SCATTER_MIN_MB: bad }), bad).toThrow(/SHOAL_SCATTER_MIN_MB/);
    }
  });
});

describe('search node settings', () => {
  it('are off by default: Lambdas only, a node on 7300 serving every slot on one thread', () => {
    const cfg = parseConfig(env);
    expect(cfg.searchNodes).toBeUndefined();
    expect(cfg.searchNodeTimeoutMs).toBe(5000);
    expect(cfg.searchNode).toEqual({ port: 7300, slots: undefined, threads: 1 });
    expect(parseConfig({ ...env, SHOAL_SEARCH_NODE_THREADS: '4' }).searchNode.threads).toBe(4);
  });

  it('take a URL template and slot lists with ranges', () => {
    const cfg = parseConfig({
      ...env,
      SHOAL_SEARCH_NODES: 'http://slot-{slot}.search.shoal.internal:7300',
      SHOAL_SEARCH_NODE_SLOTS: '0, 3,5-7',
      SHOAL_SEARCH_NODE_TIMEOUT_MS: '250',
    });
    expect(cfg.searchNodes).toBe('http://slot-{slot}.search.shoal.internal:7300');
    expect([...(cfg.searchNode.slots ?? [])]).toEqual([0, 3, 5, 6, 7]);
    expect(cfg.searchNodeTimeoutMs).toBe(250);
  });

  it('name the variable and the rule when malformed', () => {
    const bad: Record<string, string>[] = [
      { SHOAL_SEARCH_NODES: 'slot-{slot}:7300' },
      { SHOAL_SEARCH_NODE_SLOTS: '7-3' },
      { SHOAL_SEARCH_NODE_SLOTS: 'a' },
      { SHOAL_SEARCH_NODE_TIMEOUT_MS: '10' },
      { SHOAL_SEARCH_NODE_PORT: '70000' },
      { SHOAL_SEARCH_NODE_THREADS: '0' },
    ];
    for (const b of bad) {
      const name = Object.keys(b)[0];
      expect(() => parseConfig({ ...env, ...b }), name).toThrow(ConfigError);
      expect(() => parseConfig({ ...env, ...b }), name).toThrow(new RegExp(name));
    }
  });
});
