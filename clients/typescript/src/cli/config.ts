/**
 * Where the CLI finds its server and key: `--url`/`--key` flags, then `SHOAL_URL`/`SHOAL_API_KEY`, then the
 * config file (`SHOAL_CONFIG`, else `~/.config/shoal/config.json`), then the defaults of `npm start`
 * (`http://localhost:8787` and the key it keeps in `.data/api-key`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { UsageError } from './output.js';

export const DEFAULT_URL = 'http://localhost:8787';

export interface CliConfig {
  url: string;
  apiKey: string | undefined;
  /** Where each value came from, for `shoal config`. */
  sources: { url: string; apiKey: string };
}

interface ConfigFile {
  url?: string;
  apiKey?: string;
}

export function configPath(env: NodeJS.ProcessEnv): string {
  if (env.SHOAL_CONFIG) return env.SHOAL_CONFIG;
  const base = env.XDG_CONFIG_HOME || path.join(homedir(), '.config');
  return path.join(base, 'shoal', 'config.json');
}

function readConfigFile(file: string, explicit: boolean): ConfigFile {
  if (!existsSync(file)) {
    if (explicit) throw new UsageError(`SHOAL_CONFIG names ${file}, which does not exist`);
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`config file ${file} is not JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`config file ${file} must hold a JSON object like {"url": "…", "apiKey": "…"}`);
  }
  const c = parsed as Record<string, unknown>;
  const out: ConfigFile = {};
  if (typeof c.url === 'string') out.url = c.url;
  if (typeof c.apiKey === 'string') out.apiKey = c.apiKey;
  return out;
}

export function resolveConfig(flags: { url?: string; key?: string }, env: NodeJS.ProcessEnv, cwd: string): CliConfig {
  const file = configPath(env);
  const fromFile = readConfigFile(file, Boolean(env.SHOAL_CONFIG));
  let url: [string, string] = [DEFAULT_URL, 'default'];
  if (flags.url) url = [flags.url, '--url'];
  else if (env.SHOAL_URL) url = [env.SHOAL_URL, 'SHOAL_URL'];
  else if (fromFile.url) url = [fromFile.url, file];

  let key: [string | undefined, string] = [undefined, 'none'];
  const localKey = path.resolve(cwd, env.SHOAL_DATA_DIR || '.data', 'api-key');
  if (flags.key) key = [flags.key, '--key'];
  else if (env.SHOAL_API_KEY) key = [env.SHOAL_API_KEY.split(',')[0], 'SHOAL_API_KEY'];
  else if (fromFile.apiKey) key = [fromFile.apiKey, file];
  else if (existsSync(localKey)) key = [readFileSync(localKey, 'utf8').trim(), localKey];
  return { url: url[0], apiKey: key[0], sources: { url: url[1], apiKey: key[1] } };
}
