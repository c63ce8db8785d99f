/**
 * The stack's `CreateApiKeyCommand` output, run for real: the synthesized shell command, with the catalog
 * table's token replaced by a local table and `aws` standing in as test/helpers/aws-cli-shim.mjs (the same
 * PutItem, sent to dynalite). The key it prints must authenticate as an admin, be listed by `GET /v1/keys`'s
 * store and be revocable by its id — a key made by the command is a key like any other.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShoal } from '../../infra/cdk/shoal.js';
import { PROJECT_ROOT } from '../../infra/cdk/constructs/shoal-function.js';
import { DynamoApiKeyStore } from '../../shared/auth/dynamo-key-store.js';
import { ApiKeys } from '../../shared/auth/keys.js';
import { startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';

let stack: EmulatedStack;
let bin: string;

/** The output's value with every token (the table name) replaced by `table`. */
function commandFor(table: string): string {
  const { context } = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: object };
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const outputs = Template.fromStack(createShoal(app).service).findOutputs('CreateApiKeyCommand');
  const value = Object.values(outputs)[0].Value as { 'Fn::Join': [string, unknown[]] };
  return value['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : table)).join('');
}

function run(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', command],
      {
        env: {
          ...process.env,
          PATH: `${bin}:${process.env.PATH ?? ''}`,
          SHIM_DYNAMODB_ENDPOINT: stack.emulators.endpoints.dynamodb,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-bootstrap-key', now: () => Date.now() });
  bin = await mkdtemp(path.join(tmpdir(), 'shoal-aws-shim-'));
  const shim = path.join(PROJECT_ROOT, 'test/helpers/aws-cli-shim.mjs');
  await writeFile(path.join(bin, 'aws'), `#!/bin/sh\nexec "${process.execPath}" "${shim}" "$@"\n`);
  await chmod(path.join(bin, 'aws'), 0o755);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  if (bin) await rm(bin, { recursive: true, force: true });
});

describe('the CreateApiKeyCommand output', () => {
  it('creates a registered admin key that authenticates, is listed and is revoked by its id', async () => {
    // The stand-in by its path, not by PATH lookup: a machine with the real AWS CLI installed (this one has one
    // under pyenv) must never send the command to AWS, whatever a busy test run did to the environment.
    const out = await run(commandFor('catalog').replaceAll('aws dynamodb', `"${path.join(bin, 'aws')}" dynamodb`));
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const [, key, id] = /^API key: (shoal_\S+) \(id (key_[0-9a-f]{16})\)$/m.exec(out.stdout) ?? [];
    expect(key, out.stdout).toBeDefined();

    const keys = new ApiKeys({ store: new DynamoApiKeyStore({ ddb: stack.aws.ddb, table: 'catalog' }) });
    expect(await keys.authenticate(key)).toMatchObject({ role: 'admin', keyId: id });
    expect(await keys.authenticate(`${key}x`)).toBeUndefined();
    expect((await keys.list()).map((k) => ({ id: k.id, role: k.role, name: k.name }))).toContainEqual({
      id,
      role: 'admin',
      name: 'bootstrap admin',
    });
    await keys.revoke(id);
    expect(
      await new ApiKeys({ store: new DynamoApiKeyStore({ ddb: stack.aws.ddb, table: 'catalog' }) }).authenticate(key),
    ).toBeUndefined();
    // Synthesizes the whole service stack and runs a shell: seconds alone, far more beside a busy suite.
  }, 90_000);
});
