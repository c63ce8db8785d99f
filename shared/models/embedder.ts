/**
 * Embedding functions (docs/models.md, docs/architecture.md §8.9): a collection bound to an ONNX model
 * version gets raw inputs, Shoal runs the model and stores the vectors. This module checks a version can
 * serve as one, binds it to a collection, and runs it — model versions read once per process (a ready
 * version is immutable), sessions cached by artifact sha256 in the ModelRuntime.
 */
import { ValidationError } from '../errors.js';
import { LIMITS } from '../validation.js';
import type { LifecycleStore } from '../lifecycle/types.js';
import type { EmbeddingRequest, ModelAliasTarget, ModelVersion } from '../service-types.js';

export type { EmbeddingRequest };
import type { EmbeddingBinding, ObjectStore } from '../storage/types.js';
import { readOnnxSignature, type OnnxSignature } from './onnx.js';
import { embeddingIO, textEmbeddingIO, type ModelRuntime } from './runtime.js';
import { MAX_TEXT_CHARS, Tokenizer } from './tokenizer.js';
import type { InputRow, RawInput, VectorInput } from '../service.js';
import { storeInputs } from './inputs.js';

/** Raw input values per row (`LIMITS.maxInputValues`, shared with the request schemas). */
export const MAX_INPUT_VALUES = LIMITS.maxInputValues;

/**
 * Largest ONNX artifact Shoal validates and serves (1 GiB). A session holds about the artifact's size
 * in memory, and validation reads it whole; larger models belong on an inference service, not in a
 * search function's memory.
 */
export const MAX_ONNX_ARTIFACT_BYTES = 1024 ** 3;

export interface EmbedderDeps {
  store: LifecycleStore;
  objects: ObjectStore;
  runtime: ModelRuntime;
}

export class Embedder {
  private readonly versions = new Map<string, ModelVersion>();

  constructor(private readonly deps: EmbedderDeps) {}

  get runtimeName(): string {
    return this.deps.runtime.options.runtime;
  }

  /**
   * Commit-time check of an ONNX artifact: it parses, a runtime loads it, its signature is returned.
   * ValidationError (`artifact`) otherwise: the version then stays uncommitted.
   */
  async validateArtifact(bytes: Uint8Array, sha256: string): Promise<OnnxSignature> {
    if (bytes.byteLength > MAX_ONNX_ARTIFACT_BYTES) {
      throw new ValidationError(
        `ONNX artifacts are limited to ${MAX_ONNX_ARTIFACT_BYTES} bytes; this one has ${bytes.byteLength}`,
        { field: 'artifact' },
      );
    }
    const signature = readOnnxSignature(bytes);
    try {
      await this.deps.runtime.session(sha256, bytes.byteLength, async () => bytes);
    } catch (err) {
      throw new ValidationError(`the ONNX model does not load: ${(err as Error).message}`, {
        field: 'artifact',
        cause: err,
      });
    }
    return signature;
  }

  /** Resolves and checks `embedding` of a new collection → the binding to store. */
  async bind(request: EmbeddingRequest): Promise<{ binding: EmbeddingBinding; version: ModelVersion }> {
    let version = request.version;
    if (request.alias !== undefined) {
      const pointer = await this.deps.store.getPointer(`model:${request.model}`, request.alias);
      if (!pointer) {
        throw new ValidationError(`model ${request.model} has no alias ${JSON.stringify(request.alias)}`, {
          field: 'embedding.alias',
        });
      }
      version = (pointer.target as ModelAliasTarget).version;
    }
    if (version === undefined) {
      throw new ValidationError('must name a model version or alias', { field: 'embedding' });
    }
    const mv = await this.deps.store.getModelVersion(request.model, version);
    if (!mv) {
      throw new ValidationError(`model ${request.model} version ${version} not found`, { field: 'embedding.version' });
    }
    if (mv.state !== 'ready') {
      throw new ValidationError(`model ${request.model} version ${version} is not committed yet`, {
        field: 'embedding.version',
      });
    }
    if (mv.format !== 'onnx' || !mv.signature) {
      throw new ValidationError(
        `model ${request.model} version ${version} is not an ONNX model (register it with format "onnx")`,
        { field: 'embedding.model' },
      );
    }
    const names = {
      ...(request.input !== undefined ? { input: request.input } : {}),
      ...(request.output !== undefined ? { output: request.output } : {}),
    };
    let io: Pick<EmbeddingBinding, 'input' | 'output' | 'inputLength' | 'text'>;
    if (mv.tokenizer) {
      const text = textEmbeddingIO(mv.signature, mv.dimension, mv.tokenizer.maxLength, 'embedding', names);
      io = {
        input: text.ids.name,
        output: text.output.name,
        inputLength: text.maxLength,
        text: text.mask ? { mask: text.mask.name } : {},
      };
    } else {
      const tensor = embeddingIO(mv.signature, mv.dimension, 'embedding', names);
      if (tensor.inputLength > MAX_INPUT_VALUES) {
        throw new ValidationError(
          `the model takes ${tensor.inputLength} values per row; embedding functions take at most ${MAX_INPUT_VALUES}`,
          { field: 'embedding.model' },
        );
      }
      io = { input: tensor.input.name, output: tensor.output.name, inputLength: tensor.inputLength };
    }
    this.versions.set(`${mv.name}@${mv.version}`, mv);
    return {
      binding: {
        model: mv.name,
        version: mv.version,
        ...(request.alias !== undefined ? { alias: request.alias } : {}),
        ...io,
      },
      version: mv,
    };
  }

  private async version(binding: EmbeddingBinding): Promise<ModelVersion> {
    const key = `${binding.model}@${binding.version}`;
    const cached = this.versions.get(key);
    if (cached) return cached;
    const mv = await this.deps.store.getModelVersion(binding.model, binding.version);
    if (!mv || mv.state !== 'ready' || !mv.signature || !mv.artifact.sha256) {
      // Committed versions are immutable and never deleted; this is a damaged catalog, not bad input.
      throw new Error(`embedding model ${key} is missing or not ready`);
    }
    this.versions.set(key, mv);
    return mv;
  }

  /**
   * Checks each row has the binding's input length (ValidationError naming `fieldOf(i)`), then runs
   * the model: one vector per row, in order.
   */
  async embed(
    binding: EmbeddingBinding,
    rows: RawInput[],
    fieldOf: (i: number) => string = (i) => `inputs[${i}]`,
  ): Promise<Float32Array[]> {
    rows.forEach((row, i) => {
      if (binding.text && typeof row !== 'string') {
        throw new ValidationError(`must be a string (model ${binding.model} v${binding.version} takes text)`, {
          field: fieldOf(i),
        });
      }
      if (typeof row === 'string') {
        if (!binding.text) {
          throw new ValidationError(
            `must be an array of ${binding.inputLength} numbers (model ${binding.model} v${binding.version} ` +
              'takes a tensor, not text)',
            { field: fieldOf(i) },
          );
        }
        if (row.length === 0 || row.length > MAX_TEXT_CHARS) {
          throw new ValidationError(`must have 1–${MAX_TEXT_CHARS} characters`, { field: fieldOf(i) });
        }
        return;
      }
      if (row.length !== binding.inputLength) {
        throw new ValidationError(
          `must have ${binding.inputLength} values (the input of model ${binding.model} v${binding.version}), ` +
            `got ${row.length}`,
          { field: fieldOf(i) },
        );
      }
    });
    if (rows.length === 0) return [];
    const mv = await this.version(binding);
    const artifact = mv.artifact as { key: string; sha256: string; bytes: number };
    const session = await this.deps.runtime.session(artifact.sha256, artifact.bytes, () =>
      this.deps.objects.get(artifact.key, artifact.bytes),
    );
    if (binding.text) {
      const io = textEmbeddingIO(mv.signature!, mv.dimension, binding.inputLength, 'embedding', {
        input: binding.input,
        output: binding.output,
      });
      const tokenizer = this.tokenizer(mv);
      return this.deps.runtime.embedText(
        session,
        io,
        (rows as string[]).map((t) => tokenizer.encode(t)),
        fieldOf,
      );
    }
    const io = embeddingIO(mv.signature!, mv.dimension, 'embedding', {
      input: binding.input,
      output: binding.output,
    });
    return this.deps.runtime.embed(session, io, rows as Float32Array[], fieldOf);
  }

  /**
   * Rows of raw inputs → vectors ready for the write path: embedded, and their inputs kept first (a record never
   * names an object that is not there; a batch whose records then fail leaves an unreferenced object, collected
   * with the collection's generation). The API's upserts, imports and migrations all write through here.
   */
  async toVectors(
    target: { binding: EmbeddingBinding; ck: string },
    rows: InputRow[],
    fieldOf?: (i: number) => string,
  ): Promise<VectorInput[]> {
    const inputs = rows.map((r) => r.input);
    const values = await this.embed(target.binding, inputs, fieldOf);
    const refs = await storeInputs(this.deps.objects, target.ck, inputs, target.binding.inputLength);
    return rows.map((r, i) => ({
      id: r.id,
      values: values[i]!,
      inputRef: refs[i]!,
      ...(r.metadata !== undefined ? { metadata: r.metadata } : {}),
    }));
  }

  private readonly tokenizers = new Map<string, Tokenizer>();

  private tokenizer(mv: ModelVersion): Tokenizer {
    const key = `${mv.name}@${mv.version}`;
    let t = this.tokenizers.get(key);
    if (!t) {
      t = new Tokenizer(mv.tokenizer!);
      this.tokenizers.set(key, t);
    }
    return t;
  }
}
