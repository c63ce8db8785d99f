/**
 * Embedding functions end to end over HTTP (docs/models.md): an ONNX model registered with `format: onnx`
 * is validated at commit (a junk artifact is refused), a collection bound to it takes raw `inputs` on
 * upsert and search, and a search with `inputs` returns the ids a search with the same embeddings
 * computed outside returns. Bad input names its field.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearProjectionModel, readOnnxSignature, writeOnnxModel } from '../../shared/models/onnx.js';
import { Tokenizer } from '../../shared/models/tokenizer.js';
import { ModelRuntime, embeddingIO } from '../../shared/models/runtime.js';
import { mulberry32 } from '../../shared/random.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

let server: HttpShoal;
const call: HttpShoal['call'] = (...args) => server.call(...args);

const D = 64;
const K = 16;
const rand = mulberry32(16);
const weights = Float32Array.from({ length: D * K }, () => rand() - 0.5);
const mean = Float32Array.from({ length: D }, () => rand());
const model = linearProjectionModel({ inputDim: D, outputDim: K, weights, mean, normalize: true });
/** Raw inputs from 4 clusters, so neighbours are meaningful. */
const rows = Array.from({ length: 400 }, (_, i) =>
  Array.from({ length: D }, (_, d) => (i % 4 === d % 4 ? 1 : 0) + rand() * 0.5),
);

async function register(name: string, bytes: Uint8Array, dimension: number): Promise<number> {
  const reg = await call('POST', `/v1/models/${name}/versions`, {
    dimension,
    metric: 'cosine',
    format: 'onnx',
    artifact: Buffer.from(bytes).toString('base64'),
  });
  expect(reg.status).toBe(201);
  return reg.json.model.version;
}

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  server = await startHttpShoal('models');
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('ONNX model versions', () => {
  it('commits a model that loads, storing its signature; refuses one that does not', async () => {
    const v = await register('pca', model, K);
    const committed = await call('POST', `/v1/models/pca/versions/${v}/commit`, { sha256: sha(model) });
    expect(committed.status).toBe(200);
    expect(committed.json.state).toBe('ready');
    expect(committed.json.format).toBe('onnx');
    expect(committed.json.signature.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', D] }]);
    expect(committed.json.signature.outputs).toEqual([{ name: 'embedding', dtype: 'float32', shape: ['batch', K] }]);

    const junk = new TextEncoder().encode('not a model at all');
    const j = await register('junk', junk, K);
    const refused = await call('POST', `/v1/models/junk/versions/${j}/commit`, { sha256: sha(junk) });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'artifact' });
    expect((await call('GET', `/v1/models/junk/versions/${j}`)).json.state).toBe('pending');

    // A model whose output is not the registered dimension: refused naming `dimension`.
    const w = await register('wrongdim', model, K + 1);
    const wrong = await call('POST', `/v1/models/wrongdim/versions/${w}/commit`, { sha256: sha(model) });
    expect(wrong.status).toBe(400);
    expect(wrong.json.error.field).toBe('dimension');
  });
});

describe('a collection with an embedding function', () => {
  it('is created from the model version (dimension and metric from it)', async () => {
    const res = await call('POST', '/v1/collections', { name: 'pixels', embedding: { model: 'pca', version: 1 } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      dimension: K,
      metric: 'cosine',
      model: { name: 'pca', version: 1 },
      embedding: { model: 'pca', version: 1, input: 'input', output: 'embedding', inputLength: D },
    });
    const bad = [
      [{ name: 'x1', embedding: { model: 'pca', version: 1 }, dimension: K + 1 }, 'dimension'],
      [{ name: 'x2', embedding: { model: 'pca', version: 1 }, model: { name: 'pca', version: 1 } }, 'model'],
      [{ name: 'x3', embedding: { model: 'pca', version: 9 } }, 'embedding.version'],
      [{ name: 'x4', embedding: { model: 'pca' } }, 'embedding'],
      [{ name: 'x5', embedding: { model: 'pca', version: 1, input: 'pixels' } }, 'embedding'],
      [{ name: 'x6' }, 'dimension'],
    ] as const;
    for (const [body, field] of bad) {
      const r = await call('POST', '/v1/collections', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.field, JSON.stringify(body)).toBe(field);
    }
  });

  it('embeds inputs on upsert and search; the ids equal a search with the embeddings computed outside', async () => {
    for (let i = 0; i < rows.length; i += 200) {
      const vectors = rows.slice(i, i + 200).map((inputs, j) => ({
        id: `r${i + j}`,
        inputs,
        metadata: { label: (i + j) % 4 },
      }));
      const up = await call('POST', '/v1/collections/pixels/vectors', { vectors });
      expect(up.status).toBe(200);
      expect(up.json.upserted).toBe(vectors.length);
    }
    // The same model run here: what a user embedding outside would send as vectors.
    const runtime = new ModelRuntime({ runtime: 'node', maxLoadedBytes: 1 << 24 });
    const session = await runtime.session('outside', model.length, async () => model);
    const io = embeddingIO(readOnnxSignature(model), K, 'embedding');
    const queries = rows.slice(0, 20).map((r) => Float32Array.from(r.map((x) => x + 0.05)));
    const outside = await runtime.embed(session, io, queries);
    const byInputs = await call('POST', '/v1/collections/pixels/search', {
      inputs: queries.map((q) => Array.from(q)),
      k: 10,
      include: ['metadata'],
    });
    expect(byInputs.status).toBe(200);
    const byVectors = await call('POST', '/v1/collections/pixels/search', {
      vectors: outside.map((v) => Array.from(v)),
      k: 10,
    });
    expect(byVectors.status).toBe(200);
    const ids = (r: { results: Array<Array<{ id: string }>> }) => r.results.map((hits) => hits.map((h) => h.id));
    expect(ids(byInputs.json)).toEqual(ids(byVectors.json));
    // Same cluster: the neighbours of a cluster-0 input are cluster-0 rows.
    expect(byInputs.json.results[0].every((h: { metadata: { label: number } }) => h.metadata.label === 0)).toBe(true);
    const single = await call('POST', '/v1/collections/pixels/search', { input: Array.from(queries[0]!), k: 3 });
    expect(single.json.results.map((h: { id: string }) => h.id)).toEqual(ids(byInputs.json)[0]!.slice(0, 3));
  });

  it('imports a JSONL file of raw inputs: embedded per batch, the same vectors as the API writes', async () => {
    const up = await call('POST', '/v1/collections/pixels/imports/uploads', { filename: 'raw.jsonl' });
    expect(up.status).toBe(201);
    const lines = rows.slice(0, 120).map((inputs, i) => JSON.stringify({ id: `f${i}`, inputs, label: i % 4 }));
    lines.push(JSON.stringify({ id: 'short', inputs: [1, 2] }));
    const put = await fetch(up.json.uploadUrl, { method: 'PUT', body: lines.join('\n'), headers: up.json.headers });
    expect(put.status).toBe(200);
    const started = await call('POST', '/v1/collections/pixels/imports', { uri: up.json.uri });
    let job = started.json;
    for (const until = Date.now() + 45_000; !['succeeded', 'partial', 'failed'].includes(job.state); ) {
      expect(Date.now()).toBeLessThan(until);
      await new Promise((r) => setTimeout(r, 100));
      job = (await call('GET', `/v1/collections/pixels/imports/${started.json.jobId}`)).json;
    }
    expect(job).toMatchObject({ state: 'partial', rowsWritten: 120, rowsRejected: 1 });
    // f7 was imported from the same raw input as r7: the same model, the same vector.
    const got = await call('POST', '/v1/collections/pixels/vectors/get', { ids: ['r7', 'f7'] });
    const [a, b] = ['r7', 'f7'].map((id) => got.json.vectors.find((v: { id: string }) => v.id === id));
    expect(b.metadata).toEqual({ label: 3 });
    b.values.forEach((x: number, i: number) => expect(x).toBeCloseTo(a.values[i], 6));
  });

  it('names the field of bad inputs and refuses inputs where no model runs', async () => {
    const short = await call('POST', '/v1/collections/pixels/vectors', {
      vectors: [
        { id: 'ok', inputs: rows[0] },
        { id: 'short', inputs: [1, 2, 3] },
      ],
    });
    expect(short.status).toBe(400);
    expect(short.json.error.field).toBe('vectors[1].inputs');
    const both = await call('POST', '/v1/collections/pixels/search', { input: rows[0], vector: [1], k: 1 });
    expect(both.status).toBe(400);
    expect((await call('POST', '/v1/collections', { name: 'plain', dimension: K, metric: 'l2' })).status).toBe(201);
    const plain = await call('POST', '/v1/collections/plain/search', { inputs: [rows[0]], k: 1 });
    expect(plain.status).toBe(400);
    expect(plain.json.error.field).toBe('inputs[0]');
    const plainUp = await call('POST', '/v1/collections/plain/vectors', { vectors: [{ id: 'a', inputs: rows[0] }] });
    expect(plainUp.status).toBe(400);
    expect(plainUp.json.error.field).toBe('vectors[0].inputs');
  });
});

describe('an experiment between collections of two model versions', () => {
  it('may differ in dimension when both embed the same inputs; each arm embeds the query itself', async () => {
    const K8 = 8;
    const narrow = linearProjectionModel({ inputDim: D, outputDim: K8, weights: weights.slice(0, D * K8), mean });
    const v = await register('pca', narrow, K8);
    expect((await call('POST', `/v1/models/pca/versions/${v}/commit`, { sha256: sha(narrow) })).status).toBe(200);
    const created = await call('POST', '/v1/collections', { name: 'pixels8', embedding: { model: 'pca', version: v } });
    expect(created.status).toBe(201);
    const up = await call('POST', '/v1/collections/pixels8/vectors', {
      vectors: rows.slice(0, 100).map((inputs, i) => ({ id: `r${i}`, inputs })),
    });
    expect(up.status).toBe(200);
    expect((await call('PUT', '/v1/aliases/px', { collection: 'pixels' })).status).toBe(201);
    // A plain collection of another dimension cannot be an arm: a vector would fit only one side.
    const plain = await call('POST', '/v1/aliases/px/experiment', {
      challenger: { collection: 'plain' },
      mode: 'split',
    });
    expect(plain.status).toBe(400);
    expect(plain.json.error.field).toBe('challenger.collection');
    // Half the traffic each way: 20 sticky keys all on one arm is then a 2 × 2⁻²⁰ event.
    const started = await call('POST', '/v1/aliases/px/experiment', {
      challenger: { collection: 'pixels8' },
      mode: 'split',
      weight: 50,
    });
    expect(started.status, JSON.stringify(started.json)).toBeLessThan(300);
    const arms = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const out = await call('POST', '/v1/collections/px/search', { input: rows[i], k: 3, stickyKey: `u${i}` });
      expect(out.status).toBe(200);
      expect(out.json.results).toHaveLength(3);
      arms.add(out.json.servedBy.collection);
    }
    expect(arms).toEqual(new Set(['pixels', 'pixels8']));
  });
});

describe('a text model (a version with a tokenizer)', () => {
  const vocab = ['[PAD]', '[UNK]', 'red', 'blue', 'green', 'shoe', '##s', 'shirt', 'hat', 'fast', 'slow', 'car'];
  const tokenizer = { type: 'wordpiece' as const, vocab, maxLength: 6 };
  const K = 8;
  const r = mulberry32(99);
  // Token embeddings (the pad row zero, so padding adds nothing); the model: mean over tokens, L2-normalised.
  const table = Float32Array.from({ length: vocab.length * K }, (_, i) => (i < K ? 0 : r() - 0.5));
  const textModel = writeOnnxModel({
    name: 'bag-of-pieces',
    inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', 6] }],
    outputs: [{ name: 'embedding', dtype: 'float32', shape: ['batch', K] }],
    nodes: [
      { op: 'Gather', inputs: ['E', 'input_ids'], outputs: ['tokens'] },
      { op: 'ReduceMean', inputs: ['tokens'], outputs: ['pooled'], attributes: { axes: [1], keepdims: 0 } },
      { op: 'LpNormalization', inputs: ['pooled'], outputs: ['embedding'], attributes: { axis: -1, p: 2 } },
    ],
    initializers: [{ name: 'E', dims: [vocab.length, K], data: table }],
  });
  /** The same model computed here: what a client embedding outside would send. */
  const outside = (text: string): number[] => {
    const { ids } = new Tokenizer(tokenizer).encode(text);
    const v = new Array<number>(K).fill(0);
    for (const id of ids) for (let k = 0; k < K; k++) v[k]! += table[Number(id) * K + k]! / ids.length;
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const texts = ['red shoes', 'blue shoes', 'red shirt', 'green hat', 'fast car', 'slow car', 'blue hat', 'red car'];

  it('takes strings on upsert and search; the ids equal a search with the embeddings computed outside', async () => {
    const reg = await call('POST', '/v1/models/words/versions', {
      dimension: K,
      metric: 'cosine',
      format: 'onnx',
      tokenizer,
      artifact: Buffer.from(textModel).toString('base64'),
    });
    expect(reg.status).toBe(201);
    const v = reg.json.model.version;
    const committed = await call('POST', `/v1/models/words/versions/${v}/commit`, { sha256: sha(textModel) });
    expect(committed.json).toMatchObject({ state: 'ready', tokenizer: { maxLength: 6 } });
    const created = await call('POST', '/v1/collections', {
      name: 'captions',
      embedding: { model: 'words', version: v },
    });
    expect(created.json.embedding).toMatchObject({ input: 'input_ids', inputLength: 6, text: {} });
    const up = await call('POST', '/v1/collections/captions/vectors', {
      vectors: texts.map((t, i) => ({ id: `t${i}`, inputs: t, metadata: { text: t } })),
    });
    expect(up.json.upserted).toBe(texts.length);
    const queries = ['red shoe', 'Slow cars!', 'green'];
    const byText = await call('POST', '/v1/collections/captions/search', { inputs: queries, k: 4 });
    const byVector = await call('POST', '/v1/collections/captions/search', { vectors: queries.map(outside), k: 4 });
    const ids = (res: { json: { results: Array<Array<{ id: string }>> } }) =>
      res.json.results.map((hits) => hits.map((h) => h.id));
    expect(ids(byText)).toEqual(ids(byVector));
    expect(ids(byText)[0]![0]).toBe('t0');

    // Text where numbers are expected, and numbers where text is: 400 naming the field.
    const wrong = await call('POST', '/v1/collections/captions/vectors', { vectors: [{ id: 'x', inputs: [1, 2] }] });
    expect(wrong.status).toBe(400);
    expect(wrong.json.error.field).toBe('vectors[0].inputs');
    const textInPixels = await call('POST', '/v1/collections/pixels/search', { input: 'red shoes', k: 1 });
    expect(textInPixels.status).toBe(400);
    expect(textInPixels.json.error.field).toBe('inputs[0]');
  });

  it('refuses a tokenizer that does not fit the model or itself', async () => {
    const badVocab = await call('POST', '/v1/models/words/versions', {
      dimension: K,
      metric: 'cosine',
      format: 'onnx',
      tokenizer: { ...tokenizer, cls: '<s>' },
    });
    expect(badVocab.status).toBe(400);
    expect(badVocab.json.error.field).toBe('tokenizer.cls');
    // A tensor model registered with a tokenizer: its float input takes no token ids.
    const reg = await call('POST', '/v1/models/words/versions', {
      dimension: K,
      metric: 'cosine',
      format: 'onnx',
      tokenizer,
      artifact: Buffer.from(
        linearProjectionModel({ inputDim: 6, outputDim: K, weights: new Float32Array(6 * K) }),
      ).toString('base64'),
    });
    const bytes = linearProjectionModel({ inputDim: 6, outputDim: K, weights: new Float32Array(6 * K) });
    const commit = await call('POST', `/v1/models/words/versions/${reg.json.model.version}/commit`, {
      sha256: sha(bytes),
    });
    expect(commit.status).toBe(400);
    expect(commit.json.error.field).toBe('tokenizer');
  });
});
