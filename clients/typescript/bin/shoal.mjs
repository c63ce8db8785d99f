#!/usr/bin/env node
// The built CLI when the package was built (`npm run build`, what is published); in the repository, the
// TypeScript sources through tsx, so there is no build step to forget.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const dist = new URL('../dist/cli.js', import.meta.url);
let cli;
if (existsSync(dist)) {
  cli = await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(new URL('../src/cli.ts', import.meta.url).href);
}
const code = await cli.main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
