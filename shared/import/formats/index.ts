/** Format detection by extension and the one entry point the runner uses. */
import type { ByteSource, ImportFormat, ImportRow, ReaderOptions } from '../types.js';
import { readCsv } from './csv.js';
import { readJsonl } from './jsonl.js';
import { readNpy, type NpyOptions } from './npy.js';
import { readParquet } from './parquet.js';

const EXTENSIONS: Array<[string, ImportFormat]> = [
  ['.jsonl.gz', 'jsonl.gz'],
  ['.ndjson.gz', 'jsonl.gz'],
  ['.csv.gz', 'csv.gz'],
  ['.jsonl', 'jsonl'],
  ['.ndjson', 'jsonl'],
  ['.csv', 'csv'],
  ['.parquet', 'parquet'],
  ['.npy', 'npy'],
];

/** The format of a key by its extension (case-insensitive), or undefined. */
export function detectFormat(key: string): ImportFormat | undefined {
  const k = key.toLowerCase();
  return EXTENSIONS.find(([ext]) => k.endsWith(ext))?.[1];
}

/** Sidecar files (`.ids.txt`, `.ids.jsonl`) belong to an .npy upload: never imported on their own. */
export function isSidecar(key: string): boolean {
  return /\.ids\.(txt|jsonl)$/i.test(key);
}

/** Candidate sidecar keys of an .npy key, in order of preference. */
export function sidecarKeys(npyKey: string): Array<{ key: string; kind: 'txt' | 'jsonl' }> {
  const base = npyKey.replace(/\.npy$/i, '');
  return [
    { key: `${base}.ids.txt`, kind: 'txt' },
    { key: `${base}.ids.jsonl`, kind: 'jsonl' },
  ];
}

export function openReader(
  format: ImportFormat,
  source: ByteSource,
  opts: ReaderOptions & Pick<NpyOptions, 'ids'>,
): AsyncGenerator<ImportRow> {
  switch (format) {
    case 'jsonl':
      return readJsonl(source, opts);
    case 'jsonl.gz':
      return readJsonl(source, { ...opts, gzip: true });
    case 'csv':
      return readCsv(source, opts);
    case 'csv.gz':
      return readCsv(source, { ...opts, gzip: true });
    case 'parquet':
      return readParquet(source, opts);
    case 'npy':
      return readNpy(source, opts);
  }
}
