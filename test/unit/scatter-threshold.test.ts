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
