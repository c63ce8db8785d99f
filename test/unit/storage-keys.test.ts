/**
 * The storage layouts, pinned byte for byte: stored items and objects were written with these
 * exact keys, so any change here orphans data (literals on purpose, not the module's constants).
 */
import { describe, expect, it } from 'vitest';
import * as keys from '../../shared/storage/keys.js';

describe('storage keys', () => {
  it('spells every Catalog item key as stored', () => {
    expect(keys.colPk('books')).toBe('COL#books');
    expect(keys.idxSk(42)).toBe('IDX#0000000042');
    expect(keys.promoSk(3)).toBe('PROMO#0000000003');
    expect(keys.evalSk(7)).toBe('EVAL#0000000007');
    expect(keys.importSk('j-1')).toBe('IMPORT#j-1');
    expect(keys.aliasPk('prod')).toBe('ALIAS#prod');
    expect(keys.modelAliasPk('clip', 'stable')).toBe('MALIAS#clip#stable');
    expect(keys.modelAliasRegistryPk('clip')).toBe('MALIASES#clip');
    expect(keys.historySk(12)).toBe('H#0000000012');
    expect(keys.experimentPk('e1')).toBe('EXP#e1');
    expect(keys.armSk('champion')).toBe('ARM#champion');
    expect(keys.queryPk('q1')).toBe('QUERY#q1');
    expect(keys.modelPk('clip')).toBe('MODEL#clip');
    expect(keys.modelVersionSk(2)).toBe('V#0000000002');
    expect(keys.apiKeyPk('ab12')).toBe('APIKEY#ab12');
    expect(keys.logPk('books@3', 5)).toBe('LOG#books@3#5');
    expect(keys.logSk(42)).toBe('0000000000000042');
    expect(keys.logSk(Number.MAX_SAFE_INTEGER)).toBe('9007199254740991');
    expect([keys.logTrimPk('books@3'), keys.LOG_TRIM_SK, keys.LOG_BUCKETS]).toEqual(['LOG#books@3', 'TRIM', 8]);
    expect([keys.META_SK, keys.SEQ_SK, keys.GEN_PK, keys.EXPERIMENT_SK, keys.COUNTER_SK]).toEqual([
      'META',
      'SEQ',
      'GEN',
      'EXPERIMENT',
      'COUNTER',
    ]);
    expect([keys.ALIASES_PK, keys.MODELS_PK]).toEqual(['ALIASES', 'MODELS']);
    expect(keys.padNumber(9_999_999_999)).toBe('9999999999');
  });

  it('spells the Records keys and every S3 object key as stored', () => {
    const ck = keys.collectionKey({ name: 'books', generation: 3 });
    expect(ck).toBe('books@3');
    expect(keys.recordPk(ck, 'id-1')).toBe('books@3#id-1');
    expect(keys.shardKey(ck, 'f00d')).toBe('shards/books@3/f00d.shard');
    expect(keys.deletesKey(ck, 's1', 'beef')).toBe('deletes/books@3/s1/beef.bits');
    expect(keys.centroidsKey(ck, 'cafe')).toBe('centroids/books@3/cafe.f32');
    expect(keys.indexObjectPrefixes(ck)).toEqual(['shards/books@3/', 'deletes/books@3/', 'centroids/books@3/']);
    expect(keys.importReportKey('j1')).toBe('reports/imports/j1.jsonl');
    expect(keys.importReportPartKey('j1', 1500, 'abcdef0123456789')).toBe(
      'reports/imports/j1/000000001500-abcdef01.jsonl',
    );
    expect(keys.modelArtifactKey('clip', 2)).toBe('models/clip/2/artifact');
    expect(keys.committedArtifactKey('clip', 2, 'c0ffee')).toBe('models/clip/2/c0ffee');
    expect([keys.IMPORTS_PREFIX, keys.REPORTS_PREFIX, keys.MODELS_OBJECT_PREFIX]).toEqual([
      'imports/',
      'reports/',
      'models/',
    ]);
  });

  it('finds the collection of an import object, and nothing outside imports/<collection>/', () => {
    expect(keys.collectionOfImportKey('imports/books/2030/rows.jsonl')).toBe('books');
    expect(keys.collectionOfImportKey('imports/books/')).toBeUndefined();
    expect(keys.collectionOfImportKey('reports/imports/books/x.jsonl')).toBeUndefined();
    expect(keys.IMPORTS_FOLDER_PATTERN).toBe('imports/<collection>/');
  });
});
