/**
 * Loads the real benchmark datasets (read-only, outside the repo) for tests and benchmarks.
 * See the datasets' README for provenance and file formats.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, ValidationError } from '../errors.js';
import { idxImagesToFloat32, readFvecs, readIdxUbyte, readIvecs } from './vecfiles.js';

export type DatasetName = 'sift5k' | 'glove50' | 'mnist';
export const DATASET_NAMES: readonly DatasetName[] = ['sift5k', 'glove50', 'mnist'];

export interface Dataset {
  name: DatasetName;
  metric: 'l2' | 'cosine';
  dim: number;
  /** baseCount × dim, row-major; row numbers are the ids the ground truth refers to. */
  base: Float32Array;
  baseCount: number;
  /** queryCount × dim, row-major. */
  queries: Float32Array;
  queryCount: number;
  /** queryCount × gtK exact neighbour rows, best first. Absent when `base` was cut short. */
  groundTruth?: Int32Array;
  gtK?: number;
  /** MNIST only: digit per base row. */
  labels?: Uint8Array;
}

export interface LoadDatasetOptions {
  /** Use only the first N base rows. Ground truth is dropped when this cuts the base. */
  maxBase?: number;
  /** Use only the first N queries (and their ground-truth rows). */
  maxQueries?: number;
}

/** Walks up from this module to the directory holding package.json (works from src or a build). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new ConfigError(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** `SHOAL_DATASETS` if set, else `../shared/datasets` next to the repository. */
export function datasetDir(): string {
  const env = process.env.SHOAL_DATASETS;
  if (env !== undefined && env !== '') return resolve(env);
  return resolve(repoRoot(), '../shared/datasets');
}

function checkLimit(max: number | undefined, field: string): void {
  if (max !== undefined && (!Number.isInteger(max) || max < 0)) {
    throw new ValidationError(`${field} must be a non-negative integer, got ${max}`, { field });
  }
}

function limit(total: number, max: number | undefined): number {
  return max === undefined ? total : Math.min(total, max);
}

interface Parts {
  metric: 'l2' | 'cosine';
  dim: number;
  base: Float32Array;
  baseTotal: number;
  queries: Float32Array;
  queryTotal: number;
  gt: Int32Array;
  gtK: number;
  labels?: Uint8Array;
}

function readParts(name: DatasetName, dir: string, opts: LoadDatasetOptions): Parts {
  const file = (...p: string[]): string => {
    const f = join(dir, ...p);
    if (!existsSync(f))
      throw new ConfigError(`dataset file ${f} not found (set SHOAL_DATASETS to the datasets folder)`);
    return f;
  };
  if (name === 'mnist') {
    const trainIdx = readIdxUbyte(file('mnist', 'train-images-idx3-ubyte.gz'));
    // Convert only the rows asked for: the full train set is 188 MB as float32.
    const train = idxImagesToFloat32(trainIdx, opts.maxBase);
    const testIdx = readIdxUbyte(file('mnist', 't10k-images-idx3-ubyte.gz'));
    const test = idxImagesToFloat32(testIdx, opts.maxQueries);
    if (test.dim !== train.dim)
      throw new ConfigError(`mnist: test images have dim ${test.dim}, train has ${train.dim}`);
    const labels = readIdxUbyte(file('mnist', 'train-labels-idx1-ubyte.gz')).data;
    if (labels.length !== trainIdx.dims[0])
      throw new ConfigError(`mnist: ${labels.length} labels for ${trainIdx.dims[0]} images`);
    const gt = readIvecs(file('mnist', 'mnist_test_gt100.ivecs'));
    return {
      metric: 'l2',
      dim: train.dim,
      base: train.data,
      baseTotal: trainIdx.dims[0],
      queries: test.data,
      queryTotal: testIdx.dims[0],
      gt: gt.data,
      gtK: gt.dim,
      labels,
    };
  }
  const [folder, metric, baseFile, queryFile, gtFile]: [string, 'l2' | 'cosine', string, string, string] =
    name === 'sift5k'
      ? ['sift5k', 'l2', 'sift4500_base.fvecs', 'sift500_query.fvecs', 'sift500_query_gt100.ivecs']
      : ['glove50-subset', 'cosine', 'glove50_base.fvecs', 'glove50_query.fvecs', 'glove50_query_gt100.ivecs'];
  const base = readFvecs(file(folder, baseFile));
  const queries = readFvecs(file(folder, queryFile));
  const gt = readIvecs(file(folder, gtFile));
  if (queries.dim !== base.dim) throw new ConfigError(`${name}: queries have dim ${queries.dim}, base has ${base.dim}`);
  return {
    metric,
    dim: base.dim,
    base: base.data,
    baseTotal: base.count,
    queries: queries.data,
    queryTotal: queries.count,
    gt: gt.data,
    gtK: gt.dim,
  };
}

/**
 * Loads a dataset: sift5k (4 500 × 128, L2), glove50 (7 349 × 50, cosine) or mnist
 * (60 000 × 784 train images as base, 10 000 test images as queries, L2).
 * Ground truth refers to rows of the FULL base, so it is dropped whenever `maxBase` cuts
 * the base short — a recall measured against it would be meaningless.
 */
export function loadDataset(name: DatasetName, opts: LoadDatasetOptions = {}): Dataset {
  if (!DATASET_NAMES.includes(name)) throw new ValidationError(`unknown dataset ${String(name)}`, { field: 'name' });
  checkLimit(opts.maxBase, 'maxBase');
  checkLimit(opts.maxQueries, 'maxQueries');
  const dir = datasetDir();
  if (!existsSync(dir)) throw new ConfigError(`dataset folder ${dir} not found (set SHOAL_DATASETS)`);
  const p = readParts(name, dir, opts);
  const { dim } = p;
  const baseCount = limit(p.baseTotal, opts.maxBase);
  const queryCount = limit(p.queryTotal, opts.maxQueries);
  if (p.gt.length !== p.queryTotal * p.gtK) {
    throw new ConfigError(`${name}: ground truth has ${p.gt.length / p.gtK} rows for ${p.queryTotal} queries`);
  }
  const out: Dataset = {
    name,
    metric: p.metric,
    dim,
    base: p.base.length === baseCount * dim ? p.base : p.base.slice(0, baseCount * dim),
    baseCount,
    queries: p.queries.length === queryCount * dim ? p.queries : p.queries.slice(0, queryCount * dim),
    queryCount,
  };
  if (baseCount === p.baseTotal) {
    out.groundTruth = p.gt.slice(0, queryCount * p.gtK);
    out.gtK = p.gtK;
  }
  if (p.labels !== undefined) out.labels = p.labels.slice(0, baseCount);
  return out;
}
