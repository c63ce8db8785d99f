/**
 * The Lambda bundles carry Shoal's hnsw WASM module: a ShoalFunction's synthesized asset holds
 * shoal-hnsw.wasm beside index.mjs, byte for byte the committed artifact (its recorded sha256),
 * and the bundled engine finds it there and answers a search.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_WASM, PROJECT_ROOT, ShoalFunction } from '../../infra/cdk/constructs/shoal-function.js';

const ARM64_BINDING = 'node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node';

describe('ShoalFunction bundles the hnsw WASM engine', () => {
  let outdir: string;
  let assetDir: string;
  let template: Template;

  beforeAll(() => {
    outdir = mkdtempSync(path.join(tmpdir(), 'shoal-engine-bundle-'));
    const app = new App({ outdir });
    const stack = new Stack(app, 'EngineBundle');
    new ShoalFunction(stack, 'Engine', {
      entry: 'test/infra/fixtures/engine-entry.ts',
      description: 'engine bundle test',
      memoryMb: 512,
      timeout: Duration.seconds(10),
      environment: {},
      logRetention: logs.RetentionDays.ONE_DAY,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    template = Template.fromStack(stack);
    const assembly = app.synth();
    const assets = readdirSync(assembly.directory).filter((d) => d.startsWith('asset.'));
    const withBundle = assets.find((d) => existsSync(path.join(assembly.directory, d, 'index.mjs')));
    if (!withBundle) throw new Error(`no bundled asset in ${assembly.directory}`);
    assetDir = path.join(assembly.directory, withBundle);
  }, 120_000);

  afterAll(() => {
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  it('puts the recorded shoal-hnsw.wasm beside index.mjs', () => {
    template.resourceCountIs('AWS::Lambda::Function', 1);
    const shipped = readFileSync(path.join(assetDir, 'shoal-hnsw.wasm'));
    const recorded = readFileSync(path.join(PROJECT_ROOT, `${ENGINE_WASM}.sha256`), 'utf8').split(/\s+/)[0];
    expect(createHash('sha256').update(shipped).digest('hex')).toBe(recorded);
  });

  it('the bundled engine finds the module beside the bundle and searches', async () => {
    const previous = process.env.SHOAL_HNSW_WASM;
    delete process.env.SHOAL_HNSW_WASM;
    try {
      const mod = (await import(pathToFileURL(path.join(assetDir, 'index.mjs')).href)) as {
        handler: () => Promise<{ wasm: string; top: number }>;
      };
      const result = await mod.handler();
      expect(result).toEqual({ wasm: path.join(assetDir, 'shoal-hnsw.wasm'), top: 2 });
    } finally {
      if (previous !== undefined) process.env.SHOAL_HNSW_WASM = previous;
    }
  });
});

describe('ShoalFunction with models ships onnxruntime-node for arm64 only', () => {
  let outdir: string;
  const assets = new Map<string, string>();

  beforeAll(() => {
    outdir = mkdtempSync(path.join(tmpdir(), 'shoal-model-bundle-'));
    const app = new App({ outdir });
    const stack = new Stack(app, 'ModelBundle');
    for (const [id, models] of [
      ['WithModels', true],
      ['Plain', false],
    ] as const) {
      new ShoalFunction(stack, id, {
        entry: 'test/infra/fixtures/engine-entry.ts',
        description: `model bundle test ${id}`,
        memoryMb: 512,
        timeout: Duration.seconds(10),
        environment: {},
        logRetention: logs.RetentionDays.ONE_DAY,
        removalPolicy: RemovalPolicy.DESTROY,
        models,
      });
    }
    const assembly = app.synth();
    for (const d of readdirSync(assembly.directory).filter((x) => x.startsWith('asset.'))) {
      const dir = path.join(assembly.directory, d);
      if (existsSync(path.join(dir, 'index.mjs')))
        assets.set(existsSync(path.join(dir, 'node_modules')) ? 'models' : 'plain', dir);
    }
  }, 120_000);

  afterAll(() => {
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  it('copies the runtime, its dependency and the arm64 library beside the bundle; nothing else', () => {
    const dir = assets.get('models')!;
    expect(dir).toBeDefined();
    for (const f of [
      ARM64_BINDING,
      'node_modules/onnxruntime-node/dist/index.js',
      'node_modules/onnxruntime-common/dist',
    ]) {
      expect(existsSync(path.join(dir, f)), f).toBe(true);
    }
    expect(existsSync(path.join(dir, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64'))).toBe(false);
    expect(existsSync(path.join(dir, 'node_modules/onnxruntime-web'))).toBe(false);
    // The library is the package's own bytes.
    const shipped = readFileSync(path.join(dir, ARM64_BINDING));
    expect(shipped.equals(readFileSync(path.join(PROJECT_ROOT, ARM64_BINDING)))).toBe(true);
  });

  it('leaves the runtime out of functions that run no model', () => {
    const dir = assets.get('plain');
    expect(dir).toBeDefined();
    expect(existsSync(path.join(dir!, 'node_modules'))).toBe(false);
  });
});
