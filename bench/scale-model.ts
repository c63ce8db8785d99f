/**
 * Scale model for the partitioned (IVF) index and the build fan-out: a calculator, not a benchmark.
 *
 *   npm run -s scale-model [-- --json] [-- --inputs <file.json>]
 *
 * It measures nothing. Every number it starts from is a named input below, with its kind (measured on
 * this machine, an AWS price or quota, a design setting, or an assumption) and where it comes from, so a
 * better measurement replaces one input (`--inputs`) and the whole report follows. The output is a pure
 * function of the inputs: no clock, no randomness, no I/O besides reading the inputs file and printing.
 *
 * `--inputs` takes a JSON object whose keys are input names and whose values are a number or
 * `{"value": n, "source": "...", "kind": "measured"}` (shown in the report); an unknown name is an error.
 * Where no W meets the target, the per-stage and cost tables show the largest W of the scenario.
 *
 * The model and its caveats are explained in docs/operations.md §6.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { FUNCTION_SIZING } from '../infra/cdk/settings.js';
import { MAX_SHARD_HEAP_BYTES, estimateHnswHeapBytes } from '../shared/engine/hnsw.js';
import { IVF_POLICY } from '../shared/engine/ivf.js';

const KINDS = ['measured', 'aws', 'design', 'assumption'] as const;
type Kind = (typeof KINDS)[number];

interface Input {
  value: number;
  unit: string;
  kind: Kind;
  source: string;
}

const ENGINE_BENCH = 'engine-2026-11-29';
const E2E_BENCH = 'e2e-2026-11-29';
const OPS = 'docs/operations.md';

/** Every number the model starts from. Rates are per core of the bench machine unless the unit says otherwise. */
export const DEFAULT_INPUTS = {
  // --- measured on the 2-core bench machine (AMD EPYC, Node 20), one core, Shoal's WASM hnsw ---
  buildVectorsPerSecHighDim: {
    value: 945.8,
    unit: 'vectors/s',
    kind: 'measured',
    source: `${ENGINE_BENCH}: mnist 60k×784, m=16, efC=200`,
  },
  buildVectorsPerSecLowDim: {
    value: 6431.2,
    unit: 'vectors/s',
    kind: 'measured',
    source: `${ENGINE_BENCH}: sift5k 4.5k×128, m=16, efC=200`,
  },
  measuredHighDim: { value: 784, unit: 'dims', kind: 'measured', source: 'dimension of the high-dim measurements' },
  measuredLowDim: { value: 128, unit: 'dims', kind: 'measured', source: 'dimension of the low-dim measurements' },
  shardSearchMsHighDim: {
    value: 1000 / 1226.4,
    unit: 'ms',
    kind: 'measured',
    source: `${ENGINE_BENCH}: 1/QPS at ef=128, mnist 60k rows`,
  },
  shardSearchMsLowDim: {
    value: 1000 / 9808.7,
    unit: 'ms',
    kind: 'measured',
    source: `${ENGINE_BENCH}: 1/QPS at ef=128, sift5k`,
  },
  shardOverheadBytesPerVector: {
    value: 170,
    unit: 'B',
    kind: 'measured',
    source: `${ENGINE_BENCH}: shard B/vector − 4·dim (169.6, 168.7)`,
  },
  exactScanMaddsPerSec: {
    value: 60000 * 784 * 10.724,
    unit: 'mult-adds/s',
    kind: 'measured',
    source: `${ENGINE_BENCH}: flat, 10.72 QPS over 60k×784 (JS)`,
  },
  coldDecodeMsPerMB: {
    value: 304.7 / 65.94,
    unit: 'ms/MB',
    kind: 'measured',
    source: `${E2E_BENCH}: verify + decode + WASM load, 20k×784 shard`,
  },
  searcherInitMs: {
    value: 500,
    unit: 'ms',
    kind: 'measured',
    source: `${OPS} §7: shard-search module init, measured by hand once`,
  },

  // --- Lambda and the machine-to-Lambda translation ---
  lambdaMbPerVcpu: { value: 1769, unit: 'MB', kind: 'aws', source: 'Lambda: 1,769 MB = 1 vCPU' },
  lambdaMaxVcpu: { value: 6, unit: 'vCPU', kind: 'aws', source: 'Lambda: 10,240 MB = 6 vCPU' },
  lambdaCoreVsBenchCore: {
    value: 1,
    unit: '×',
    kind: 'assumption',
    source: 'one Lambda arm64 vCPU ≈ one bench core (unmeasured)',
  },
  workerTimeoutS: { value: 900, unit: 's', kind: 'aws', source: 'Lambda maximum timeout (15 min)' },
  accountConcurrency: { value: 1000, unit: 'functions', kind: 'aws', source: `${OPS} §2: default account quota` },

  // --- the build fan-out (design settings) ---
  workerMemoryMb: {
    value: FUNCTION_SIZING.buildWorker.memoryMb,
    unit: 'MB',
    kind: 'design',
    source: 'FUNCTION_SIZING.buildWorker (CDK): a task holds its rows, the graph and the encoded shard',
  },
  taskBudgetFraction: {
    value: 1 / 3,
    unit: '× timeout',
    kind: 'design',
    source: 'a task must finish within 1/3 of the worker timeout',
  },
  rowsPerPartition: {
    value: IVF_POLICY.TARGET_ROWS,
    unit: 'rows',
    kind: 'design',
    source: `IVF_POLICY.TARGET_ROWS; P is capped at ${IVF_POLICY.MAX_PARTITIONS.toLocaleString('en-US')}`,
  },
  trainSamplePerPartition: { value: 256, unit: 'rows/P', kind: 'design', source: 'k-means trained on 256×P rows' },
  kmeansLevels: {
    value: 2,
    unit: '1 or 2',
    kind: 'design',
    source: '2 = two-level k-means (√P coarse, √P fine each); 1 = flat Lloyd',
  },
  kmeansIterations: { value: 10, unit: 'iterations', kind: 'assumption', source: 'Lloyd iterations per level' },
  trainMemoryMb: {
    value: 10240,
    unit: 'MB',
    kind: 'design',
    source: 'the train task holds the sample; > 3,008 MB needs a quota raise',
  },
  trainThreads: {
    value: 6,
    unit: 'threads',
    kind: 'assumption',
    source: 'k-means split over worker_threads (not built yet)',
  },
  hnswM: { value: 16, unit: '', kind: 'design', source: 'HNSW_DEFAULTS.m' },
  shardHeapShare: { value: 0.375, unit: '× 1 GiB', kind: 'design', source: 'BUILD_POLICY.SHARD_HEAP_SHARE' },
  partitionImbalance: {
    value: 2,
    unit: '× mean',
    kind: 'assumption',
    source: 'largest k-means partition vs the mean (only lengthens the last task)',
  },
  manifestBytesPerShard: {
    value: 150,
    unit: 'B',
    kind: 'assumption',
    source: 'shard entry in the manifest (id, key, sha256, rows, partition)',
  },

  // --- data and AWS I/O ---
  recordExtraBytes: {
    value: 330,
    unit: 'B',
    kind: 'assumption',
    source: `${OPS} §5: ~200 B metadata, id, keys (item 3.4 KB at 768-d)`,
  },
  dynamoScanMBpsPerWorker: {
    value: 40,
    unit: 'MB/s',
    kind: 'assumption',
    source: 'parallel Scan pages decoded by one vCPU (unmeasured)',
  },
  dynamoTableReadQuotaRru: {
    value: 40000,
    unit: 'RRU/s',
    kind: 'aws',
    source: 'on-demand per-table default quota (adjustable)',
  },
  s3MBpsPerLambda: { value: 90, unit: 'MB/s', kind: 'assumption', source: 'S3 GET/PUT per Lambda, 80–100 MB/s' },
  s3FirstByteMs: { value: 50, unit: 'ms', kind: 'assumption', source: 'S3 request latency, small objects' },
  s3ConcurrencyPerTask: { value: 32, unit: 'requests', kind: 'assumption', source: 'parallel S3 requests per task' },
  taskDispatchS: { value: 0.3, unit: 's', kind: 'assumption', source: 'SQS message to handler start, per task' },
  workerColdStartS: { value: 1, unit: 's', kind: 'assumption', source: 'worker init incl. WASM compile, once' },
  stageHandOffS: { value: 2, unit: 's', kind: 'assumption', source: 'last task of a stage → next stage queued' },
  commitS: { value: 2, unit: 's', kind: 'assumption', source: 'shard list PUT + one conditional manifest write' },

  // --- queries ---
  nprobeFractionLow: { value: 0.05, unit: '× P', kind: 'assumption', source: 'nprobe for recall ≥ 0.95 (low end)' },
  nprobeFractionHigh: { value: 0.1, unit: '× P', kind: 'assumption', source: 'nprobe for recall ≥ 0.95 (high end)' },
  nprobeMin: { value: 8, unit: 'partitions', kind: 'assumption', source: 'small P needs a larger fraction' },
  searcherMemoryMb: { value: 3008, unit: 'MB', kind: 'design', source: `${OPS} §3: slots at 3008 MB` },
  searcherCacheMaxMb: { value: 1536, unit: 'MiB', kind: 'design', source: 'SHOAL_SHARD_CACHE_MB = memory/2, ≤ 1536' },
  cacheUsableFraction: { value: 0.8, unit: '×', kind: 'design', source: `${OPS} §3: slots ≥ bytes / (0.8 × cache)` },
  maxSearchSlots: { value: 64, unit: 'slots', kind: 'design', source: '-c searchSlots: 1–64' },
  invokeOverheadMs: { value: 20, unit: 'ms', kind: 'assumption', source: 'Lambda Invoke round trip, 10–30 ms' },
  searcherBilledOverheadMs: {
    value: 5,
    unit: 'ms',
    kind: 'assumption',
    source: 'billed per searcher invoke besides the shard searches',
  },
  mergeMs: { value: 2, unit: 'ms', kind: 'assumption', source: 'merge of the slots’ top-k' },
  coordinatorOverheadMs: {
    value: 15,
    unit: 'ms',
    kind: 'assumption',
    source: 'API Gateway + meta/manifest Query + metadata reads',
  },
  apiMemoryMb: { value: FUNCTION_SIZING.api.memoryMb, unit: 'MB', kind: 'design', source: 'FUNCTION_SIZING.api (CDK)' },
  rankMaddsPerSec: {
    value: (2000 * 784) / 0.526e-3,
    unit: 'mult-adds/s',
    kind: 'measured',
    source: 'routing-2026-12-01: the engine SIMD ranker, 0.526 ms for 2,000 × 784-d centroids',
  },

  // --- warm request latency on AWS (docs/operations.md §6, "Request latency on AWS") ---
  apiGatewayMs: { value: 6, unit: 'ms', kind: 'assumption', source: 'HTTP API + Lambda integration, p50 ([L1])' },
  getItemMs: { value: 3, unit: 'ms', kind: 'assumption', source: 'DynamoDB GetItem in region, p50 ([L2])' },
  lambdaWaveMs: {
    value: 20,
    unit: 'ms',
    kind: 'assumption',
    source: 'slowest of ~25 parallel invokes (10 ms p50, 25 ms p99 each; no AWS figure)',
  },
  nodeWaveMs: {
    value: 2,
    unit: 'ms',
    kind: 'assumption',
    source: 'slowest of ~60 keep-alive HTTP exchanges in a VPC (cross-AZ RTT 0.5–1.5 ms, [L5] [L6])',
  },
  respondMs: { value: 1, unit: 'ms', kind: 'assumption', source: 'merge, JSON, metadata attach' },
  nodeSlots: { value: 64, unit: 'slots', kind: 'design', source: '-c searchNodes=true -c searchSlots=64' },
  rruPerQuery: { value: 50, unit: 'RRU', kind: 'assumption', source: `${OPS} §5` },

  // --- prices, us-east-1, the table of docs/operations.md §5 ---
  priceLambdaGbS: { value: 0.0000133334, unit: '$/GB-s', kind: 'aws', source: `${OPS} §5 (arm64)` },
  priceLambdaPerMRequests: { value: 0.2, unit: '$/1M', kind: 'aws', source: `${OPS} §5` },
  priceApiGatewayPerM: { value: 1, unit: '$/1M', kind: 'aws', source: `${OPS} §5 (HTTP API)` },
  priceDynamoPerMRru: { value: 0.125, unit: '$/1M', kind: 'aws', source: `${OPS} §5` },
  priceDynamoPerMWru: { value: 0.625, unit: '$/1M', kind: 'aws', source: `${OPS} §5` },
  priceDynamoGbMonth: { value: 0.25, unit: '$/GB-mo', kind: 'aws', source: `${OPS} §5` },
  priceDynamoPitrGbMonth: { value: 0.2, unit: '$/GB-mo', kind: 'aws', source: `${OPS} §5` },
  dynamoCopies: { value: 2, unit: '×', kind: 'design', source: `${OPS} §5: table + bySeq GSI (projection ALL)` },
  priceS3GbMonth: { value: 0.023, unit: '$/GB-mo', kind: 'aws', source: `${OPS} §5` },
  s3ChurnFactor: { value: 1.5, unit: '×', kind: 'assumption', source: `${OPS} §5: compaction, 7-day noncurrent` },
  priceS3PutPer1000: { value: 0.005, unit: '$/1k', kind: 'aws', source: `${OPS} §5` },
  priceS3GetPer1000: { value: 0.0004, unit: '$/1k', kind: 'aws', source: `${OPS} §5` },
  priceSqsPerM: { value: 0.4, unit: '$/1M', kind: 'aws', source: `${OPS} §5` },
} satisfies Record<string, Input>;

export type InputName = keyof typeof DEFAULT_INPUTS;
export type Inputs = Record<InputName, Input>;

export interface Workload {
  label: string;
  vectors: number;
  dim: number;
}

/** What the model is asked; not inputs, because changing them changes the question, not the answer. */
export const SCENARIO = {
  workloads: [
    { label: '1M × 128', vectors: 1e6, dim: 128 },
    { label: '10M × 768', vectors: 1e7, dim: 768 },
    { label: '100M × 768', vectors: 1e8, dim: 768 },
  ] satisfies Workload[],
  workerCounts: [50, 100, 200, 500],
  targetWallS: 3600,
  queriesPerMonth: [1e6, 1e8],
  maxWorkersSearched: 5000,
};

const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** Eventually consistent Scan: 0.5 RRU per 4 KiB of items read. */
const SCAN_BYTES_PER_RRU = 8192;
/** DynamoDB's item size limit: the manifest and the build plan are items. */
const DYNAMO_ITEM_LIMIT = 400 * 1024;

const v = (x: Inputs, name: InputName) => x[name].value;

const vcpus = (x: Inputs, memoryMb: number) => Math.min(memoryMb / v(x, 'lambdaMbPerVcpu'), v(x, 'lambdaMaxVcpu'));

/**
 * Engine rates at a workload's dimension. Distance work is linear in dim, so the nearest measured
 * dimension is scaled by the ratio; the graph bookkeeping that is not is small at these sizes.
 */
function engineAt(x: Inputs, dim: number) {
  const high = Math.abs(dim - v(x, 'measuredHighDim')) <= Math.abs(dim - v(x, 'measuredLowDim'));
  const measuredDim = high ? v(x, 'measuredHighDim') : v(x, 'measuredLowDim');
  const speed = (measuredDim / dim) * v(x, 'lambdaCoreVsBenchCore');
  return {
    buildVectorsPerSec: (high ? v(x, 'buildVectorsPerSecHighDim') : v(x, 'buildVectorsPerSecLowDim')) * speed,
    shardSearchMs: (high ? v(x, 'shardSearchMsHighDim') : v(x, 'shardSearchMsLowDim')) / speed,
    maddsPerSec: v(x, 'exactScanMaddsPerSec') * v(x, 'lambdaCoreVsBenchCore'),
  };
}

export interface Shape {
  partitions: number;
  shards: number;
  shardsPerPartition: number;
  rowsPerShard: number;
  longestShardRows: number;
  shardMaxRows: number;
  shardBytes: number;
  indexBytes: number;
  itemBytes: number;
  centroidBytes: number;
  manifestBytes: number;
}

function shapeOf(x: Inputs, w: Workload): Shape {
  const e = engineAt(x, w.dim);
  const partitions = Math.min(IVF_POLICY.MAX_PARTITIONS, Math.ceil(w.vectors / v(x, 'rowsPerPartition')));
  const bytesPerVector = 4 * w.dim + v(x, 'shardOverheadBytesPerVector');
  const itemBytes = 4 * w.dim + v(x, 'recordExtraBytes');
  const heapCapRows = Math.floor(
    (MAX_SHARD_HEAP_BYTES * v(x, 'shardHeapShare')) / estimateHnswHeapBytes(1, w.dim, v(x, 'hnswM')),
  );
  // A task reads its rows, builds and writes the shard; rows are capped so the whole task fits the budget.
  const budgetS = v(x, 'workerTimeoutS') * v(x, 'taskBudgetFraction') - v(x, 'taskDispatchS');
  const secondsPerRow = 1 / e.buildVectorsPerSec + (itemBytes + bytesPerVector) / (v(x, 's3MBpsPerLambda') * 1e6);
  const budgetRows = Math.floor(budgetS / secondsPerRow);
  const shardMaxRows = Math.min(heapCapRows, budgetRows);
  const meanPartitionRows = w.vectors / partitions;
  const shardsPerPartition = Math.ceil(meanPartitionRows / shardMaxRows);
  const shards = partitions * shardsPerPartition;
  const rowsPerShard = w.vectors / shards;
  const longestShardRows = Math.min(shardMaxRows, meanPartitionRows * v(x, 'partitionImbalance'));
  return {
    partitions,
    shards,
    shardsPerPartition,
    rowsPerShard,
    longestShardRows,
    shardMaxRows,
    shardBytes: rowsPerShard * bytesPerVector,
    indexBytes: w.vectors * bytesPerVector,
    itemBytes,
    centroidBytes: partitions * w.dim * 4,
    manifestBytes: shards * v(x, 'manifestBytesPerShard'),
  };
}

/** Mult-adds to assign one vector to its partition (the same quantizer the train stage builds). */
function quantizerMaddsPerVector(x: Inputs, w: Workload, partitions: number): number {
  if (v(x, 'kmeansLevels') < 2) return partitions * w.dim;
  const coarse = Math.ceil(Math.sqrt(partitions));
  return (coarse + partitions / coarse) * w.dim;
}

export interface Train {
  sampleRows: number;
  sampleBytes: number;
  coreSeconds: number;
  flatLloydCoreSeconds: number;
  threads: number;
  seconds: number;
  memoryNeededMb: number;
}

function trainOf(x: Inputs, w: Workload, s: Shape): Train {
  const e = engineAt(x, w.dim);
  const sampleRows = Math.min(w.vectors, v(x, 'trainSamplePerPartition') * s.partitions);
  // Each Lloyd iteration assigns every sample row: rows × centroids compared × dim per level.
  const madds = sampleRows * quantizerMaddsPerVector(x, w, s.partitions) * v(x, 'kmeansIterations');
  const flatMadds = sampleRows * s.partitions * w.dim * v(x, 'kmeansIterations');
  const coreSeconds = madds / e.maddsPerSec;
  const threads = Math.max(1, Math.min(v(x, 'trainThreads'), vcpus(x, v(x, 'trainMemoryMb'))));
  const sampleBytes = sampleRows * s.itemBytes;
  const readS = sampleBytes / (v(x, 'dynamoScanMBpsPerWorker') * 1e6);
  const writeS = v(x, 's3FirstByteMs') / 1000 + s.centroidBytes / (v(x, 's3MBpsPerLambda') * 1e6);
  return {
    sampleRows,
    sampleBytes,
    coreSeconds,
    flatLloydCoreSeconds: flatMadds / e.maddsPerSec,
    threads,
    seconds: v(x, 'taskDispatchS') + v(x, 'workerColdStartS') + readS + coreSeconds / threads + writeS,
    // The sample as float32 plus the Node baseline; the centroids are small beside it.
    memoryNeededMb: (sampleRows * w.dim * 4 + 2 * s.centroidBytes) / 1e6 + 300,
  };
}

export interface Fanout {
  workers: number;
  assignTasks: number;
  chunkObjects: number;
  assignTaskS: number;
  assignS: number;
  assignBoundBy: 'workers' | 'DynamoDB read quota';
  buildTaskS: number;
  buildLongestTaskS: number;
  buildS: number;
  trainS: number;
  commitS: number;
  wallS: number;
  cost: BuildCost;
}

export interface BuildCost {
  lambdaGbS: number;
  lambda: number;
  lambdaRequests: number;
  sqs: number;
  s3Put: number;
  s3Get: number;
  dynamoRru: number;
  dynamo: number;
  total: number;
}

function fanoutOf(x: Inputs, w: Workload, s: Shape, t: Train, workers: number): Fanout {
  const e = engineAt(x, w.dim);
  const s3Bps = v(x, 's3MBpsPerLambda') * 1e6;
  const s3RequestS = v(x, 's3FirstByteMs') / 1000 / v(x, 's3ConcurrencyPerTask');
  const budgetS = v(x, 'workerTimeoutS') * v(x, 'taskBudgetFraction');

  // Assign: parallel Scan segments → nearest centroid → one chunk object per (task, partition).
  const quotaBps = v(x, 'dynamoTableReadQuotaRru') * SCAN_BYTES_PER_RRU;
  // Decoding pages, scoring centroids and writing chunks share the one vCPU; waiting on a throttled
  // read does not, so the slower of the two sets the pace.
  const cpuPerRowS =
    s.itemBytes / (v(x, 'dynamoScanMBpsPerWorker') * 1e6) +
    quantizerMaddsPerVector(x, w, s.partitions) / e.maddsPerSec +
    s.itemBytes / s3Bps;
  const perRowS = (readBps: number) => Math.max(s.itemBytes / readBps, cpuPerRowS);
  const readBpsAt = (concurrent: number) =>
    Math.min(v(x, 'dynamoScanMBpsPerWorker') * 1e6, quotaBps / Math.max(1, concurrent));
  const fixedS = v(x, 'taskDispatchS') + s.partitions * s3RequestS;
  // Whole waves of W tasks, as few as keep each task within the budget at the throttled rate.
  const waves = Math.ceil((w.vectors * perRowS(readBpsAt(workers))) / (workers * Math.max(1, budgetS - fixedS)));
  const assignTasks = workers * Math.max(1, waves);
  const concurrent = Math.min(assignTasks, workers);
  const rowsPerAssignTask = w.vectors / assignTasks;
  const objectsPerAssignTask = Math.min(s.partitions, rowsPerAssignTask);
  const assignTaskS =
    v(x, 'taskDispatchS') + objectsPerAssignTask * s3RequestS + rowsPerAssignTask * perRowS(readBpsAt(concurrent));
  const assignS = Math.ceil(assignTasks / workers) * assignTaskS;
  const throttled = s.itemBytes / readBpsAt(concurrent) > cpuPerRowS;
  const chunkObjects = assignTasks * objectsPerAssignTask;

  // Build: one task per shard; it fetches its partition's chunks, builds, and writes the shard.
  const chunksPerShard = Math.min(assignTasks, s.rowsPerShard);
  const buildTaskS = (rows: number) =>
    v(x, 'taskDispatchS') +
    chunksPerShard * s3RequestS +
    (rows * s.itemBytes) / s3Bps +
    rows / e.buildVectorsPerSec +
    (rows * s.shardBytes) / s.rowsPerShard / s3Bps +
    v(x, 's3FirstByteMs') / 1000;
  const meanTaskS = buildTaskS(s.rowsPerShard);
  const longestTaskS = buildTaskS(s.longestShardRows);
  // Equal tasks run in waves; the one oversized partition stretches the last wave.
  const buildS = Math.ceil(s.shards / workers) * meanTaskS + Math.max(0, longestTaskS - meanTaskS);

  const commitS = v(x, 'commitS');
  const wallS = t.seconds + assignS + buildS + commitS + 3 * v(x, 'stageHandOffS') + v(x, 'workerColdStartS');

  // Workers are billed while they run, throttled or not.
  const workerGb = v(x, 'workerMemoryMb') / 1024;
  const lambdaGbS =
    t.seconds * (v(x, 'trainMemoryMb') / 1024) + (assignTasks * assignTaskS + s.shards * meanTaskS) * workerGb;
  const tasks = 1 + assignTasks + s.shards + 1;
  const lambdaRequests = (tasks / 1e6) * v(x, 'priceLambdaPerMRequests');
  const lambda = lambdaGbS * v(x, 'priceLambdaGbS');
  // Send, receive and delete per task message.
  const sqs = ((3 * tasks) / 1e6) * v(x, 'priceSqsPerM');
  const puts = chunkObjects + s.shards + 2;
  const gets = chunkObjects + assignTasks;
  const s3Put = (puts / 1000) * v(x, 'priceS3PutPer1000');
  const s3Get = (gets / 1000) * v(x, 'priceS3GetPer1000');
  const dynamoRru = ((w.vectors + t.sampleRows) * s.itemBytes) / SCAN_BYTES_PER_RRU;
  // Each finished task updates the plan item once.
  const dynamo = (dynamoRru / 1e6) * v(x, 'priceDynamoPerMRru') + (tasks / 1e6) * v(x, 'priceDynamoPerMWru');
  return {
    workers,
    assignTasks,
    chunkObjects,
    assignTaskS,
    assignS,
    assignBoundBy: throttled ? 'DynamoDB read quota' : 'workers',
    buildTaskS: meanTaskS,
    buildLongestTaskS: longestTaskS,
    buildS,
    trainS: t.seconds,
    commitS,
    wallS,
    cost: {
      lambdaGbS,
      lambda,
      lambdaRequests,
      sqs,
      s3Put,
      s3Get,
      dynamoRru,
      dynamo,
      total: lambda + lambdaRequests + sqs + s3Put + s3Get + dynamo,
    },
  };
}

export interface Query {
  nprobeFraction: number;
  nprobe: number;
  shardsProbed: number;
  slotsForWarm: number;
  slotsInvoked: number;
  shardsPerSlot: number;
  centroidProbeMs: number;
  warmMs: number;
  coldMs: number;
  searcherBilledMs: number;
}

function queryOf(x: Inputs, w: Workload, s: Shape, fraction: number): Query {
  const e = engineAt(x, w.dim);
  const nprobe = Math.min(s.partitions, Math.max(v(x, 'nprobeMin'), Math.ceil(fraction * s.partitions)));
  const shardsProbed = nprobe * s.shardsPerPartition;
  const cacheBytes = Math.min(v(x, 'searcherCacheMaxMb'), v(x, 'searcherMemoryMb') / 2) * MiB;
  const slotsForWarm = Math.max(1, Math.ceil(s.indexBytes / (v(x, 'cacheUsableFraction') * cacheBytes)));
  // Shards hash onto slots uniformly: the expected number of distinct slots a query touches.
  const slotsInvoked = slotsForWarm * (1 - (1 - 1 / slotsForWarm) ** shardsProbed);
  const shardsPerSlot = shardsProbed / slotsInvoked;
  // The api scores the query against every centroid (an exact scan on the engine's SIMD ranker), then picks
  // nprobe partitions.
  const centroidProbeMs = ((s.partitions * w.dim) / (v(x, 'rankMaddsPerSec') * v(x, 'lambdaCoreVsBenchCore'))) * 1000;
  const slotSearchMs = shardsPerSlot * e.shardSearchMs;
  const fixedMs = v(x, 'coordinatorOverheadMs') + centroidProbeMs + v(x, 'invokeOverheadMs') + v(x, 'mergeMs');
  const warmMs = fixedMs + slotSearchMs;
  const s3Bpms = v(x, 's3MBpsPerLambda') * 1e3;
  const shardLoadMs = v(x, 's3FirstByteMs') + s.shardBytes / s3Bpms + (s.shardBytes / 1e6) * v(x, 'coldDecodeMsPerMB');
  const centroidLoadMs = v(x, 's3FirstByteMs') + s.centroidBytes / s3Bpms;
  const coldMs = warmMs + centroidLoadMs + v(x, 'searcherInitMs') + Math.ceil(shardsPerSlot) * shardLoadMs;
  return {
    nprobeFraction: fraction,
    nprobe,
    shardsProbed,
    slotsForWarm,
    slotsInvoked,
    shardsPerSlot,
    centroidProbeMs,
    warmMs,
    coldMs,
    searcherBilledMs: v(x, 'searcherBilledOverheadMs') + slotSearchMs,
  };
}

export interface Monthly {
  queries: number;
  searchers: number;
  api: number;
  apiGateway: number;
  dynamoReads: number;
  s3Shards: number;
  dynamoRows: number;
  total: number;
  totalHighNprobe: number;
}

function monthlyOf(x: Inputs, w: Workload, s: Shape, low: Query, high: Query, queries: number): Monthly {
  const perQuery = (q: Query) => {
    const searcherGbS = q.slotsInvoked * (q.searcherBilledMs / 1000) * (v(x, 'searcherMemoryMb') / 1024);
    const searchers =
      queries * searcherGbS * v(x, 'priceLambdaGbS') +
      ((queries * q.slotsInvoked) / 1e6) * v(x, 'priceLambdaPerMRequests');
    // The coordinator is billed while it waits for its slots.
    const api =
      queries * (q.warmMs / 1000) * (v(x, 'apiMemoryMb') / 1024) * v(x, 'priceLambdaGbS') +
      (queries / 1e6) * v(x, 'priceLambdaPerMRequests');
    return { searchers, api };
  };
  const a = perQuery(low);
  const b = perQuery(high);
  const apiGateway = (queries / 1e6) * v(x, 'priceApiGatewayPerM');
  const dynamoReads = ((queries * v(x, 'rruPerQuery')) / 1e6) * v(x, 'priceDynamoPerMRru');
  const s3Shards = ((s.indexBytes + s.centroidBytes) / GiB) * v(x, 's3ChurnFactor') * v(x, 'priceS3GbMonth');
  const rowsGb = (w.vectors * s.itemBytes * v(x, 'dynamoCopies')) / GiB;
  const dynamoRows = rowsGb * (v(x, 'priceDynamoGbMonth') + v(x, 'priceDynamoPitrGbMonth'));
  const fixed = apiGateway + dynamoReads + s3Shards + dynamoRows;
  return {
    queries,
    searchers: a.searchers,
    api: a.api,
    apiGateway,
    dynamoReads,
    s3Shards,
    dynamoRows,
    total: fixed + a.searchers + a.api,
    totalHighNprobe: fixed + b.searchers + b.api,
  };
}

/**
 * The median of the fullest bin's count when `balls` land uniformly on `bins` (shards hashed onto slots, or
 * onto slot × thread): exact, by dynamic programming over the bins — P(every bin ≤ m) as each bin in turn
 * takes a binomial share of the balls left — so the model stays a pure function of its inputs.
 */
export function medianFullestBin(balls: number, bins: number): number {
  const n = Math.round(balls);
  if (bins <= 1 || n === 0) return n;
  const logFact = [0];
  for (let i = 1; i <= n; i++) logFact.push(logFact[i - 1] + Math.log(i));
  const pmf = (k: number, j: number, p: number) =>
    Math.exp(logFact[k] - logFact[j] - logFact[k - j] + j * Math.log(p) + (k - j) * Math.log1p(-p));
  for (let m = Math.ceil(n / bins); m <= n; m++) {
    // h[k] = P(the remaining bins each get ≤ m | k balls left for them); the last bin takes all k.
    let h: number[] = Array.from({ length: n + 1 }, (_, k) => (k <= m ? 1 : 0));
    for (let left = 2; left <= bins; left++) {
      const p = 1 / left;
      const next = new Array<number>(n + 1).fill(0);
      for (let k = 0; k <= n; k++) {
        for (let j = 0; j <= Math.min(m, k); j++) next[k] += pmf(k, j, p) * h[k - j];
      }
      h = next;
    }
    if (h[n] >= 0.5) return m;
  }
  return n;
}

/** Warm p50 of an eventual search, API Gateway to answer, on one way of searching the probed shards. */
export interface Latency {
  path: string;
  nprobeFraction: number;
  shardsProbed: number;
  /** Slots × threads the probed shards hash onto. */
  searchers: number;
  /** The median fullest searcher's shards: the part the request waits for. */
  fullest: number;
  routingMs: number;
  waveMs: number;
  engineMs: number;
  eventualMs: number;
  strongMs: number;
}

function latencyOf(x: Inputs, w: Workload, q: Query, path: 'lambda' | 'nodes', threads: number): Latency {
  const e = engineAt(x, w.dim);
  const slots = path === 'lambda' ? Math.min(q.slotsForWarm, v(x, 'maxSearchSlots')) : v(x, 'nodeSlots');
  const searchers = slots * threads;
  const fullest = medianFullestBin(q.shardsProbed, searchers);
  const waveMs = v(x, path === 'lambda' ? 'lambdaWaveMs' : 'nodeWaveMs');
  const engineMs = fullest * e.shardSearchMs;
  // An eventual search overlaps the meta GetItem with the rest (speculation); a strong one reads it first.
  const work = q.centroidProbeMs + waveMs + engineMs;
  return {
    path:
      path === 'lambda'
        ? `${slots} slot Lambda${slots === 1 ? '' : 's'}`
        : `search nodes, ${slots} slots × ${threads} thread${threads === 1 ? '' : 's'}`,
    nprobeFraction: q.nprobeFraction,
    shardsProbed: q.shardsProbed,
    searchers,
    fullest,
    routingMs: q.centroidProbeMs,
    waveMs,
    engineMs,
    eventualMs: v(x, 'apiGatewayMs') + Math.max(v(x, 'getItemMs'), work) + v(x, 'respondMs'),
    strongMs: v(x, 'apiGatewayMs') + v(x, 'getItemMs') + work + v(x, 'respondMs'),
  };
}

export interface WorkloadResult {
  workload: Workload;
  shape: Shape;
  train: Train;
  workersForTarget: number | null;
  atTarget: Fanout | null;
  byWorkers: Fanout[];
  floorWallS: number;
  queries: Query[];
  monthly: Monthly[];
  /** Warm search latency on AWS: the slot Lambdas, and search nodes with one and two threads. */
  latency: Latency[];
  flags: string[];
}

export function model(x: Inputs, w: Workload): WorkloadResult {
  const s = shapeOf(x, w);
  const t = trainOf(x, w, s);
  const at = (workers: number) => fanoutOf(x, w, s, t, workers);
  let workersForTarget: number | null = null;
  for (let n = 1; n <= SCENARIO.maxWorkersSearched; n++) {
    if (at(n).wallS <= SCENARIO.targetWallS) {
      workersForTarget = n;
      break;
    }
  }
  const floorWallS = at(SCENARIO.maxWorkersSearched).wallS;
  const queries = [v(x, 'nprobeFractionLow'), v(x, 'nprobeFractionHigh')].map((f) => queryOf(x, w, s, f));
  const monthly = SCENARIO.queriesPerMonth.map((q) => monthlyOf(x, w, s, queries[0], queries[1], q));
  const ways = [
    ['lambda', 1],
    ['nodes', 1],
    ['nodes', 2],
  ] as const;
  const latency = ways.flatMap(([path, threads]) => queries.map((q) => latencyOf(x, w, q, path, threads)));

  const flags: string[] = [];
  const min = (sec: number) => `${fmt(sec / 60, 1)} min`;
  if (t.seconds > v(x, 'workerTimeoutS')) {
    flags.push(`train takes ${min(t.seconds)} in one task: over the ${min(v(x, 'workerTimeoutS'))} Lambda limit`);
  }
  if (t.coreSeconds > v(x, 'workerTimeoutS')) {
    flags.push(
      `k-means is ${min(t.coreSeconds)} on one core (over the Lambda limit): ` +
        `the model runs it on ${fmt(t.threads, 1)} threads`,
    );
  }
  if (v(x, 'kmeansLevels') >= 2 && t.flatLloydCoreSeconds / t.threads > v(x, 'workerTimeoutS')) {
    flags.push(`one-level (flat) Lloyd k-means would need ${fmt(t.flatLloydCoreSeconds / 3600, 1)} core-hours`);
  }
  if (t.memoryNeededMb > v(x, 'trainMemoryMb')) {
    flags.push(
      `train sample needs ~${fmt(t.memoryNeededMb)} MB, over the train task's ${fmt(v(x, 'trainMemoryMb'))} MB`,
    );
  } else if (t.memoryNeededMb > 3008) {
    flags.push(`train sample needs ~${fmt(t.memoryNeededMb)} MB: above 3,008 MB (new accounts' Lambda quota)`);
  }
  if (s.manifestBytes > DYNAMO_ITEM_LIMIT) {
    // Not a blocker: the catalog spills such manifests to S3 (brotli, named by the item; MANIFEST_ITEM in
    // shared/storage/dynamo-catalog.ts). Readers cache a version's manifest, so it costs one GET per version.
    flags.push(
      `a manifest listing ${fmt(s.shards)} shards is ~${fmt(s.manifestBytes / 1024)} KiB of JSON: over the ` +
        '400 KB item, so it is spilled to S3 (one extra GET per new version and reader)',
    );
  }
  const slots = queries[0].slotsForWarm;
  if (slots > v(x, 'maxSearchSlots')) {
    flags.push(`all-warm needs ${fmt(slots)} searcher slots; the setting allows ${fmt(v(x, 'maxSearchSlots'))}`);
  }
  const atTarget = workersForTarget === null ? null : at(workersForTarget);
  if (atTarget && atTarget.assignBoundBy === 'DynamoDB read quota') {
    flags.push(`assign is bound by the table's ${fmt(v(x, 'dynamoTableReadQuotaRru'))} RRU/s quota, not by W`);
  }
  if (atTarget && atTarget.workers + slots > v(x, 'accountConcurrency')) {
    flags.push(`W + slots = ${fmt(atTarget.workers + slots)}: above the default account concurrency`);
  }
  return {
    workload: w,
    shape: s,
    train: t,
    workersForTarget,
    atTarget,
    byWorkers: SCENARIO.workerCounts.map(at),
    floorWallS,
    queries,
    monthly,
    latency,
    flags,
  };
}

// ---------------------------------------------------------------- formatting

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Two significant figures at least, so small dollar amounts stay visible. */
function usd(n: number): string {
  if (n >= 100) return `$${fmt(n)}`;
  if (n >= 1) return `$${fmt(n, 2)}`;
  return `$${n.toPrecision(2)}`;
}

function minutes(sec: number): string {
  return sec < 120 ? `${fmt(sec)} s` : `${fmt(sec / 60, 1)} min`;
}

function ms(n: number): string {
  return n < 10 ? fmt(n, 1) : fmt(n);
}

function table(head: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const sep = align.map((a) => (a === 'r' ? '---:' : '---'));
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function range(a: string, b: string): string {
  return a === b ? a : `${a}–${b}`;
}

export function markdown(x: Inputs, results: WorkloadResult[]): string {
  const out: string[] = [];
  const target = `≤ ${SCENARIO.targetWallS / 60} min`;
  const ws = SCENARIO.workerCounts.join(' / ');

  out.push('#### Index shape and build wall time', '');
  out.push(
    table(
      ['workload', 'P', 'shards', 'rows/shard', 'shard MB', 'index GB', `W for ${target}`, `wall at W = ${ws}`],
      results.map((r) => [
        r.workload.label,
        fmt(r.shape.partitions),
        fmt(r.shape.shards),
        fmt(r.shape.rowsPerShard),
        fmt(r.shape.shardBytes / 1e6, 1),
        fmt(r.shape.indexBytes / 1e9, 1),
        r.workersForTarget === null ? `none (floor ${minutes(r.floorWallS)})` : fmt(r.workersForTarget),
        r.byWorkers.map((f) => fmt(f.wallS / 60, 1)).join(' / ') + ' min',
      ]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );

  out.push(`#### Critical path at the W that meets ${target}`, '');
  out.push(
    table(
      ['workload', 'W', 'train', 'assign', 'assign bound by', 'build', 'commit + hand-offs', 'total'],
      results.map((r) => {
        const f = r.atTarget ?? r.byWorkers[r.byWorkers.length - 1];
        const rest = f.wallS - f.trainS - f.assignS - f.buildS;
        return [
          r.workload.label,
          r.atTarget ? fmt(f.workers) : `${fmt(f.workers)} (misses)`,
          minutes(f.trainS),
          minutes(f.assignS),
          f.assignBoundBy,
          minutes(f.buildS),
          minutes(rest),
          minutes(f.wallS),
        ];
      }),
      ['l', 'r', 'r', 'r', 'l', 'r', 'r', 'r'],
    ),
    '',
  );

  out.push('#### Stage detail', '');
  out.push(
    table(
      ['workload', 'train sample', 'k-means core-s', 'threads', 'assign tasks', 'chunk objects', 'build task s'],
      results.map((r) => {
        const f = r.atTarget ?? r.byWorkers[r.byWorkers.length - 1];
        return [
          r.workload.label,
          `${fmt(r.train.sampleRows)} rows, ${fmt(r.train.sampleBytes / 1e9, 2)} GB`,
          fmt(r.train.coreSeconds),
          fmt(r.train.threads, 1),
          fmt(f.assignTasks),
          fmt(f.chunkObjects),
          `${fmt(f.buildTaskS, 1)} (longest ${fmt(f.buildLongestTaskS, 1)})`,
        ];
      }),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );

  out.push(`#### $ to build once (at the W that meets ${target})`, '');
  out.push(
    table(
      ['workload', 'Lambda GB-s', 'Lambda', 'Lambda req + SQS', 'S3 PUT', 'S3 GET', 'DynamoDB reads', 'total'],
      results.map((r) => {
        const c = (r.atTarget ?? r.byWorkers[r.byWorkers.length - 1]).cost;
        return [
          r.workload.label,
          fmt(c.lambdaGbS),
          usd(c.lambda),
          usd(c.lambdaRequests + c.sqs),
          usd(c.s3Put),
          usd(c.s3Get),
          `${usd(c.dynamo)} (${fmt(c.dynamoRru / 1e6, 1)} M RRU)`,
          usd(c.total),
        ];
      }),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );

  const lo = fmt(v(x, 'nprobeFractionLow') * 100);
  const hi = fmt(v(x, 'nprobeFractionHigh') * 100);
  out.push(`#### Queries (nprobe ${lo}–${hi} % of P; every slot warm, or every probed shard cold)`, '');
  out.push(
    table(
      [
        'workload',
        'shards probed',
        'slots (all warm)',
        'slots hit/query',
        'shards/slot',
        'centroid ms',
        'warm ms',
        'cold ms',
      ],
      results.map((r) => {
        const [a, b] = r.queries;
        return [
          r.workload.label,
          range(fmt(a.shardsProbed), fmt(b.shardsProbed)),
          fmt(a.slotsForWarm),
          range(fmt(a.slotsInvoked), fmt(b.slotsInvoked)),
          range(fmt(a.shardsPerSlot, 1), fmt(b.shardsPerSlot, 1)),
          ms(a.centroidProbeMs),
          range(ms(a.warmMs), ms(b.warmMs)),
          range(fmt(a.coldMs), fmt(b.coldMs)),
        ];
      }),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );

  out.push(
    '#### Warm search latency on AWS, p50 (API Gateway to answer; docs/operations.md §6, "Request latency on AWS")',
    '',
  );
  out.push(
    table(
      [
        'workload',
        'searched by',
        'nprobe',
        'shards probed',
        'searchers',
        'fullest (median)',
        'routing ms',
        'wave ms',
        'engine ms',
        'eventual ms',
        'strong ms',
      ],
      results.flatMap((r) =>
        r.latency.map((l) => [
          r.workload.label,
          l.path,
          `${fmt(l.nprobeFraction * 100)} %`,
          fmt(l.shardsProbed),
          fmt(l.searchers),
          fmt(l.fullest),
          fmt(l.routingMs, 1),
          fmt(l.waveMs, 1),
          fmt(l.engineMs, 1),
          fmt(l.eventualMs, 1),
          fmt(l.strongMs, 1),
        ]),
      ),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );

  out.push(`#### $ per month (components at nprobe ${lo} %)`, '');
  out.push(
    table(
      [
        'workload',
        'queries',
        'searchers',
        'api',
        'API GW',
        'DDB reads',
        'S3 shards',
        'DDB rows',
        'total',
        `at ${hi} %`,
      ],
      results.flatMap((r) =>
        r.monthly.map((m) => [
          r.workload.label,
          `${fmt(m.queries / 1e6)} M`,
          usd(m.searchers),
          usd(m.api),
          usd(m.apiGateway),
          usd(m.dynamoReads),
          usd(m.s3Shards),
          usd(m.dynamoRows),
          usd(m.total),
          usd(m.totalHighNprobe),
        ]),
      ),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );

  out.push('#### Flags', '');
  for (const r of results) {
    for (const f of r.flags) out.push(`- ${r.workload.label}: ${f}`);
  }
  out.push('');

  out.push('#### Inputs', '');
  out.push(
    table(
      ['input', 'value', 'unit', 'kind', 'source'],
      (Object.keys(x) as InputName[]).map((k) => [k, num(x[k].value), x[k].unit, x[k].kind, x[k].source]),
      ['l', 'r', 'l', 'l', 'l'],
    ),
  );
  return out.join('\n') + '\n';
}

function num(n: number): string {
  if (n !== 0 && Math.abs(n) < 0.01) return n.toPrecision(6);
  if (Number.isInteger(n)) return fmt(n);
  return Math.abs(n) >= 100 ? fmt(n, 1) : fmt(n, 3);
}

// ---------------------------------------------------------------- command line

class UsageError extends Error {}

export function loadInputs(overrides: unknown): Inputs {
  const x: Inputs = structuredClone(DEFAULT_INPUTS);
  if (overrides === undefined) return x;
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new UsageError('--inputs: the file must hold a JSON object of input names');
  }
  for (const [name, given] of Object.entries(overrides)) {
    if (!(name in x)) throw new UsageError(`--inputs: unknown input ${JSON.stringify(name)}`);
    const input = x[name as InputName];
    const value = typeof given === 'object' && given !== null ? (given as { value?: unknown }).value : given;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new UsageError(`--inputs: ${name} must be a positive number`);
    }
    const extra = typeof given === 'object' && given !== null ? (given as { source?: unknown; kind?: unknown }) : {};
    if (name === 'kmeansLevels' && value !== 1 && value !== 2) throw new UsageError('--inputs: kmeansLevels is 1 or 2');
    input.value = value;
    input.source = typeof extra.source === 'string' ? extra.source : 'from --inputs';
    if (extra.kind !== undefined) {
      if (!KINDS.includes(extra.kind as Kind)) throw new UsageError(`--inputs: ${name}.kind must be one of ${KINDS}`);
      input.kind = extra.kind as Kind;
    }
  }
  return x;
}

const HELP = `npm run -s scale-model -- [--json] [--inputs <file.json>]

Sizes the partitioned index and its build fan-out for 1M × 128, 10M × 768 and 100M × 768 vectors:
partitions, shards, workers for a one-hour build, $ to build, query latency and $ per month.

  --inputs <file>  JSON object {"<input>": number | {"value": number, "source": "...", "kind": "measured"}}
  --json           one JSON document on stdout instead of the markdown report
  --help           this text
`;

function main(argv: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, inputs: { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let x: Inputs;
  try {
    const file = parsed.values.inputs;
    x = loadInputs(file === undefined ? undefined : JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const results = SCENARIO.workloads.map((w) => model(x, w));
  if (parsed.values.json) {
    const doc = { model: 'scale-model', scenario: SCENARIO, inputs: x, results };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    process.stdout.write(markdown(x, results));
  }
  return 0;
}

// Runs only as a script, so the model can be imported (by a test, or bench:scale) without printing.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
