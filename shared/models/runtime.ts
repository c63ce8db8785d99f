/**
 * Runs registered ONNX models (docs/models.md): one inference session per model artifact per
 * process, loaded on first use from its content-addressed S3 key and kept while the memory budget
 * allows, so a warm container embeds without touching S3.
 *
 * Two runtimes, one interface. `node` (onnxruntime-node: prebuilt native binaries in the npm
 * package for linux x64/arm64, nothing downloaded — its install script, which only fetches GPU
 * providers, is disabled in package.json `allowScripts`) is the default: ~3× the throughput of
 * `wasm` (onnxruntime-web's WebAssembly backend) on this machine's PCA models and ~5× faster to
 * load (`npm run bench:models`). `wasm` runs anywhere Node runs and is kept selectable
 * (`SHOAL_ONNX_RUNTIME=wasm`) for platforms without a native build. Both are loaded lazily: a
 * function that never embeds never pays their init.
 */
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LimitExceededError, ValidationError } from '../errors.js';
import { logger } from '../log.js';
import type { OnnxSignature, OnnxTensorInfo } from './onnx.js';

export type OnnxRuntimeName = 'node' | 'wasm';
export const ONNX_RUNTIMES: readonly OnnxRuntimeName[] = ['node', 'wasm'];

/**
 * Rows per inference call. Default 256: large enough that per-call overhead (~50 µs) is noise
 * beside a PCA-sized matmul, small enough that a batch's input tensor stays a few MB at 784-d.
 * Larger batches buy little throughput and hold more memory per request.
 */
export const DEFAULT_EMBED_BATCH_ROWS = 256;

/** The subset of onnxruntime-common's API Shoal uses (both runtimes implement it). */
interface OrtTensor {
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly type: string;
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(bytes: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  env: { wasm?: { numThreads?: number; wasmBinary?: ArrayBuffer | Uint8Array; wasmPaths?: unknown } };
}

const loaded = new Map<OnnxRuntimeName, Promise<OrtModule>>();

/** Where onnxruntime-web's .wasm lives: beside the bundle (Lambda), else in node_modules. */
async function wasmBinary(): Promise<Uint8Array> {
  const file = 'ort-wasm-simd-threaded.wasm';
  const candidates = [path.join(path.dirname(fileURLToPath(import.meta.url)), file)];
  try {
    const require = createRequire(import.meta.url);
    candidates.push(path.join(path.dirname(require.resolve('onnxruntime-web')), file));
  } catch {
    // not installed: only the bundle's copy can serve
  }
  for (const candidate of candidates) {
    try {
      return new Uint8Array(await readFile(candidate));
    } catch {
      // try the next place
    }
  }
  throw new Error(`onnxruntime-web's ${file} not found (looked in ${candidates.join(', ')})`);
}

async function runtimeModule(name: OnnxRuntimeName): Promise<OrtModule> {
  let mod = loaded.get(name);
  if (!mod) {
    mod = (async () => {
      if (name === 'node') return (await import('onnxruntime-node')) as unknown as OrtModule;
      const ort = (await import('onnxruntime-web')) as unknown as OrtModule;
      // One thread: a Lambda function's vCPUs serve concurrent work already, and worker threads
      // would need the threaded glue beside the bundle. The binary is handed over so nothing is
      // fetched or resolved relative to a bundle that moved it.
      ort.env.wasm!.numThreads = 1;
      ort.env.wasm!.wasmBinary = await wasmBinary();
      return ort;
    })();
    loaded.set(name, mod);
    mod.catch(() => loaded.delete(name));
  }
  return mod;
}

/** What a collection's embedding function feeds and reads, fixed when the collection is created. */
export interface EmbeddingIO {
  input: OnnxTensorInfo;
  output: OnnxTensorInfo;
  /** Values per row fed to the model (product of the input's non-batch dimensions). */
  inputLength: number;
  /** The embedding's dimension (product of the output's non-batch dimensions). */
  dimension: number;
}

/**
 * Picks the input and output a collection's embedding function uses and checks they can embed rows:
 * one float32 input whose non-batch dimensions are fixed, an output of `dimension` floats per row.
 * ValidationError naming `field` otherwise.
 */
export function embeddingIO(
  signature: OnnxSignature,
  dimension: number,
  field: string,
  names: { input?: string; output?: string } = {},
): EmbeddingIO {
  const pick = (list: OnnxTensorInfo[], name: string | undefined, what: string): OnnxTensorInfo => {
    if (name !== undefined) {
      const found = list.find((t) => t.name === name);
      if (!found) {
        throw new ValidationError(`the model has no ${what} named ${JSON.stringify(name)}`, {
          field,
          details: { [`${what}s`]: list.map((t) => t.name) },
        });
      }
      return found;
    }
    if (list.length !== 1 && what === 'input') {
      throw new ValidationError(`the model has ${list.length} inputs; name the one to feed`, {
        field,
        details: { inputs: list.map((t) => t.name) },
      });
    }
    return list[0]!;
  };
  const input = pick(signature.inputs, names.input, 'input');
  const output = pick(signature.outputs, names.output, 'output');
  const rowDims = (t: OnnxTensorInfo, what: string): number => {
    const dims = t.shape.slice(1);
    if (t.shape.length < 2 || dims.some((d) => typeof d !== 'number' || d <= 0)) {
      throw new ValidationError(
        `the model's ${what} ${JSON.stringify(t.name)} has shape [${t.shape.join(', ')}]; ` +
          'Shoal needs [batch, fixed dims…]',
        { field },
      );
    }
    return (dims as number[]).reduce((a, b) => a * b, 1);
  };
  if (input.dtype !== 'float32') {
    throw new ValidationError(
      `the model's input ${JSON.stringify(input.name)} is ${input.dtype}; embedding functions feed float32 tensors`,
      { field },
    );
  }
  if (output.dtype !== 'float32') {
    throw new ValidationError(`the model's output ${JSON.stringify(output.name)} is ${output.dtype}, not float32`, {
      field,
    });
  }
  const inputLength = rowDims(input, 'input');
  const outDim = rowDims(output, 'output');
  if (outDim !== dimension) {
    throw new ValidationError(
      `the model's output ${JSON.stringify(output.name)} has ${outDim} values per row; the model version says ` +
        `dimension ${dimension}`,
      { field, details: { output: output.shape, dimension } },
    );
  }
  return { input, output, inputLength, dimension: outDim };
}

/** A text model's tensors: int64 token ids `[batch, maxLength]`, and the attention mask when it takes one. */
export interface TextEmbeddingIO {
  ids: OnnxTensorInfo;
  mask?: OnnxTensorInfo;
  output: OnnxTensorInfo;
  maxLength: number;
  dimension: number;
}

/**
 * Picks a text model's inputs: int64 token ids (the named input, else the int64 input whose name does not
 * mention a mask) and, when the model has a second int64 input, the attention mask. Their length must be
 * symbolic or `maxLength`; the output as for tensors.
 */
export function textEmbeddingIO(
  signature: OnnxSignature,
  dimension: number,
  maxLength: number,
  field: string,
  names: { input?: string; output?: string } = {},
): TextEmbeddingIO {
  const ints = signature.inputs.filter((t) => t.dtype === 'int64');
  const ids =
    names.input !== undefined ? ints.find((t) => t.name === names.input) : ints.find((t) => !/mask/i.test(t.name));
  if (!ids) {
    throw new ValidationError('a model with a tokenizer needs an int64 input of token ids', {
      field,
      details: { inputs: signature.inputs.map((t) => `${t.name}: ${t.dtype}`) },
    });
  }
  const mask = ints.find((t) => t !== ids);
  if (signature.inputs.length > 1 + (mask ? 1 : 0)) {
    throw new ValidationError('a text model may take token ids and an attention mask, nothing else', { field });
  }
  for (const t of [ids, ...(mask ? [mask] : [])]) {
    const len = t.shape[1];
    if (t.shape.length !== 2 || (typeof len === 'number' && len !== maxLength)) {
      throw new ValidationError(
        `the model's input ${JSON.stringify(t.name)} has shape [${t.shape.join(', ')}]; the tokenizer gives ` +
          `[batch, ${maxLength}]`,
        { field },
      );
    }
  }
  // The output check is the tensor one's (its input side does not apply to text).
  const probe: OnnxSignature = {
    ...signature,
    inputs: [{ name: ids.name, dtype: 'float32', shape: ['batch', 1] }],
  };
  const { output } = embeddingIO(probe, dimension, field, names.output !== undefined ? { output: names.output } : {});
  return { ids, ...(mask ? { mask } : {}), output, maxLength, dimension };
}

interface CachedSession {
  session: OrtSession;
  bytes: number;
}

export interface ModelRuntimeOptions {
  runtime: OnnxRuntimeName;
  /**
   * Artifact bytes kept loaded at once (a session holds about its artifact's size in weights).
   * Default: a quarter of the function's memory, leaving the rest to shards and requests. A model
   * larger than the budget is refused (LimitExceededError), never loaded and evicted per request.
   */
  maxLoadedBytes: number;
  /** Rows per inference call (DEFAULT_EMBED_BATCH_ROWS). */
  batchRows?: number;
  /** Native runtime's intra-op threads. Default 1: concurrency comes from requests, not one call. */
  threads?: number;
}

/** Loaded sessions by artifact sha256, least recently used first out. */
export class ModelRuntime {
  private readonly sessions = new Map<string, Promise<CachedSession>>();
  private loadedBytes = 0;
  readonly batchRows: number;

  constructor(readonly options: ModelRuntimeOptions) {
    this.batchRows = options.batchRows ?? DEFAULT_EMBED_BATCH_ROWS;
  }

  /** Loads (once) the session of an artifact; `fetch` reads its bytes on a miss. */
  async session(sha256: string, bytes: number, fetch: () => Promise<Uint8Array>): Promise<OrtSession> {
    const hit = this.sessions.get(sha256);
    if (hit) {
      this.sessions.delete(sha256);
      this.sessions.set(sha256, hit);
      return (await hit).session;
    }
    if (bytes > this.options.maxLoadedBytes) {
      throw new LimitExceededError(
        `model artifact of ${bytes} bytes exceeds this function's model budget of ${this.options.maxLoadedBytes}`,
        { field: 'model', details: { bytes, limit: this.options.maxLoadedBytes } },
      );
    }
    const loading = (async (): Promise<CachedSession> => {
      const ort = await runtimeModule(this.options.runtime);
      const model = await fetch();
      const started = performance.now();
      const session = await ort.InferenceSession.create(
        model,
        this.options.runtime === 'node'
          ? { intraOpNumThreads: this.options.threads ?? 1, interOpNumThreads: 1 }
          : { executionProviders: ['wasm'] },
      );
      logger.info('model loaded', {
        sha256,
        bytes: model.byteLength,
        runtime: this.options.runtime,
        ms: Math.round(performance.now() - started),
      });
      return { session, bytes: model.byteLength };
    })();
    this.sessions.set(sha256, loading);
    try {
      const cached = await loading;
      this.loadedBytes += cached.bytes;
      this.evict(sha256);
      return cached.session;
    } catch (err) {
      this.sessions.delete(sha256);
      throw err;
    }
  }

  private evict(keep: string): void {
    for (const [key, entry] of this.sessions) {
      if (this.loadedBytes <= this.options.maxLoadedBytes) return;
      if (key === keep) continue;
      this.sessions.delete(key);
      void entry.then(async (e) => {
        this.loadedBytes -= e.bytes;
        await e.session.release().catch(() => undefined);
      });
    }
  }

  /** Embeds tokenized texts (ids and masks of `io.maxLength` each), in batches of `batchRows`. */
  async embedText(
    session: OrtSession,
    io: TextEmbeddingIO,
    rows: Array<{ ids: BigInt64Array; mask: BigInt64Array }>,
    fieldOf: (i: number) => string = (i) => `inputs[${i}]`,
  ): Promise<Float32Array[]> {
    const ort = await runtimeModule(this.options.runtime);
    const out: Float32Array[] = [];
    const L = io.maxLength;
    for (let start = 0; start < rows.length; start += this.batchRows) {
      const batch = rows.slice(start, start + this.batchRows);
      const ids = new BigInt64Array(batch.length * L);
      const mask = new BigInt64Array(batch.length * L);
      batch.forEach((r, i) => {
        ids.set(r.ids, i * L);
        mask.set(r.mask, i * L);
      });
      const feeds: Record<string, OrtTensor> = { [io.ids.name]: new ort.Tensor('int64', ids, [batch.length, L]) };
      if (io.mask) feeds[io.mask.name] = new ort.Tensor('int64', mask, [batch.length, L]);
      const result = await session.run(feeds);
      const tensor = result[io.output.name];
      if (!tensor || !(tensor.data instanceof Float32Array)) {
        throw new Error(`model produced no float32 output ${JSON.stringify(io.output.name)}`);
      }
      for (let i = 0; i < batch.length; i++) {
        const v = tensor.data.slice(i * io.dimension, (i + 1) * io.dimension);
        if (v.some((x) => !Number.isFinite(x))) {
          throw new ValidationError(`the model's output for row ${start + i} is not finite`, {
            field: fieldOf(start + i),
          });
        }
        out.push(v);
      }
    }
    return out;
  }

  /**
   * Embeds rows of `io.inputLength` floats each, in batches of `batchRows`; returns one vector per
   * row. A non-finite output (a model that overflows on some input) is refused, naming the row.
   */
  async embed(
    session: OrtSession,
    io: EmbeddingIO,
    rows: Float32Array[],
    fieldOf: (i: number) => string = (i) => `inputs[${i}]`,
  ): Promise<Float32Array[]> {
    const ort = await runtimeModule(this.options.runtime);
    const out: Float32Array[] = [];
    const fixedBatch = typeof io.input.shape[0] === 'number' ? io.input.shape[0] : undefined;
    const step = fixedBatch ?? this.batchRows;
    for (let start = 0; start < rows.length; start += step) {
      const batch = rows.slice(start, start + step);
      const n = fixedBatch ?? batch.length;
      const data = new Float32Array(n * io.inputLength);
      batch.forEach((row, i) => data.set(row, i * io.inputLength));
      const dims = [n, ...(io.input.shape.slice(1) as number[])];
      const result = await session.run({ [io.input.name]: new ort.Tensor('float32', data, dims) });
      const tensor = result[io.output.name];
      if (!tensor || !(tensor.data instanceof Float32Array)) {
        throw new Error(`model produced no float32 output ${JSON.stringify(io.output.name)}`);
      }
      const values = tensor.data;
      for (let i = 0; i < batch.length; i++) {
        const v = values.slice(i * io.dimension, (i + 1) * io.dimension);
        for (let j = 0; j < v.length; j++) {
          if (!Number.isFinite(v[j]!)) {
            throw new ValidationError(`the model's output for row ${start + i} is not finite`, {
              field: fieldOf(start + i),
            });
          }
        }
        out.push(v);
      }
    }
    return out;
  }
}
