import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../shared/errors.js';
import { linearProjectionModel, readOnnxSignature, writeOnnxModel } from '../../shared/models/onnx.js';
import { ModelRuntime, embeddingIO, type OnnxRuntimeName } from '../../shared/models/runtime.js';
import { mulberry32 } from '../../shared/random.js';

const D = 12;
const K = 4;

function fixture(seed = 7): { weights: Float32Array; mean: Float32Array; rows: Float32Array[] } {
  const rand = mulberry32(seed);
  const weights = Float32Array.from({ length: D * K }, () => rand() - 0.5);
  const mean = Float32Array.from({ length: D }, () => rand());
  const rows = Array.from({ length: 300 }, () => Float32Array.from({ length: D }, () => rand() * 2));
  return { weights, mean, rows };
}

/** (x − mean) · W, L2-normalised: what the ONNX graph must compute. */
function reference(x: Float32Array, weights: Float32Array, mean: Float32Array): Float32Array {
  const out = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += (x[d]! - mean[d]!) * weights[d * K + k]!;
    out[k] = s;
  }
  const norm = Math.hypot(...out);
  return out.map((v) => v / norm);
}

describe('ONNX reader and writer', () => {
  it('reads back the signature it wrote', () => {
    const { weights, mean } = fixture();
    const bytes = linearProjectionModel({ inputDim: D, outputDim: K, weights, mean, normalize: true });
    const sig = readOnnxSignature(bytes);
    expect(sig.irVersion).toBe(8);
    expect(sig.opsets).toEqual([{ domain: '', version: 17 }]);
    expect(sig.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', D] }]);
    expect(sig.outputs).toEqual([{ name: 'embedding', dtype: 'float32', shape: ['batch', K] }]);
    expect(sig.ops).toEqual(['LpNormalization', 'MatMul', 'Sub']);
    expect(sig.parameters).toBe(D * K + D);
  });

  it('refuses bytes that are not a model, naming the artifact field', () => {
    for (const junk of [new Uint8Array(0), new TextEncoder().encode('{"not": "onnx"}'), new Uint8Array([8, 0x80])]) {
      let caught: unknown;
      try {
        readOnnxSignature(junk);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ValidationError);
      expect((caught as ValidationError).field).toBe('artifact');
    }
  });

  it('checks initializer sizes when writing', () => {
    expect(() =>
      writeOnnxModel({
        name: 'g',
        inputs: [{ name: 'x', dtype: 'float32', shape: ['b', 2] }],
        outputs: [{ name: 'y', dtype: 'float32', shape: ['b', 2] }],
        nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
        initializers: [{ name: 'W', dims: [2, 2], data: new Float32Array(3) }],
      }),
    ).toThrow(/dims 2×2 but 3 values/);
  });
});

describe('embeddingIO', () => {
  const sig = readOnnxSignature(linearProjectionModel({ inputDim: D, outputDim: K, weights: new Float32Array(D * K) }));
  it('accepts [batch, D] → [batch, K] with the version dimension', () => {
    expect(embeddingIO(sig, K, 'embedding')).toMatchObject({ inputLength: D, dimension: K });
  });
  it('refuses a dimension that differs from the output, and unknown names', () => {
    expect(() => embeddingIO(sig, K + 1, 'embedding')).toThrow(/4 values per row/);
    expect(() => embeddingIO(sig, K, 'embedding', { input: 'pixels' })).toThrow(/no input named "pixels"/);
  });
});

describe.each<OnnxRuntimeName>(['node', 'wasm'])('ModelRuntime (%s)', (runtime) => {
  it('computes the projection the graph describes, across batch boundaries', async () => {
    const { weights, mean, rows } = fixture();
    const bytes = linearProjectionModel({ inputDim: D, outputDim: K, weights, mean, normalize: true });
    const rt = new ModelRuntime({ runtime, maxLoadedBytes: 1 << 20, batchRows: 128 });
    let fetches = 0;
    const fetch = async (): Promise<Uint8Array> => {
      fetches++;
      return bytes;
    };
    const session = await rt.session('a', bytes.length, fetch);
    expect(await rt.session('a', bytes.length, fetch)).toBe(session);
    expect(fetches).toBe(1);
    const io = embeddingIO(readOnnxSignature(bytes), K, 'embedding');
    const out = await rt.embed(session, io, rows);
    expect(out).toHaveLength(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const want = reference(rows[i]!, weights, mean);
      for (let k = 0; k < K; k++) expect(out[i]![k]).toBeCloseTo(want[k]!, 5);
    }
  });

  it('refuses a model over the budget before loading it', async () => {
    const rt = new ModelRuntime({ runtime, maxLoadedBytes: 100 });
    await expect(rt.session('b', 1000, async () => new Uint8Array(1000))).rejects.toThrow(/model budget of 100/);
  });
});
