/** shared/log.ts: JSON lines on AWS, one readable line locally, the level from POWERTOOLS_LOG_LEVEL. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { applyLogLevelFromEnv, logger } from '../../shared/log.js';

const saved = { format: process.env.SHOAL_LOG_FORMAT, level: process.env.POWERTOOLS_LOG_LEVEL };
let out: string[];
let err: string[];

beforeEach(() => {
  out = [];
  err = [];
  // The suite runs with handler logs silenced (vitest.config.ts); these tests need the default level.
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  applyLogLevelFromEnv();
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true));
});

afterEach(() => {
  vi.restoreAllMocks();
  for (const [key, value] of [
    ['SHOAL_LOG_FORMAT', saved.format],
    ['POWERTOOLS_LOG_LEVEL', saved.level],
  ] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  applyLogLevelFromEnv();
});

describe('logger', () => {
  it('writes structured JSON with the extra keys by default', () => {
    delete process.env.SHOAL_LOG_FORMAT;
    logger.info('index built', { collection: 'docs', rows: 3 });
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0])).toMatchObject({ level: 'INFO', message: 'index built', collection: 'docs', rows: 3 });
  });

  it('writes one readable line in local mode: info to stdout, warnings and errors to stderr', () => {
    process.env.SHOAL_LOG_FORMAT = 'pretty';
    logger.info('index built', { collection: 'docs', version: '3→4', rows: 1200, ms: 85 });
    logger.error('build failed', { collection: 'my docs', error: new Error('disk full') });
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}index built collection=docs version=3→4 rows=1200 ms=85\n$/);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/ ERROR build failed collection="my docs" error="Error: disk full"\n$/);
  });

  it('takes its level from POWERTOOLS_LOG_LEVEL, also when that is set after the logger exists', () => {
    process.env.SHOAL_LOG_FORMAT = 'pretty';
    process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
    applyLogLevelFromEnv();
    logger.info('index built', { collection: 'docs' });
    logger.warn('builder wake-up failed', { collection: 'docs' });
    expect(out).toEqual([]);
    expect(err).toHaveLength(1);
  });
});
