/**
 * A whole local Shoal (`startLocalShoal`, as `npm start`) on a fresh temp data dir, for the
 * end-to-end suites: one per test file (beforeAll), stopped in afterAll, with `call` for
 * authenticated JSON requests against its HTTP API.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLocalShoal, type LocalShoal, type StartLocalShoalOptions } from '../../infra/local/shoal.js';
import { openApiValidator } from './openapi-validate.js';

/**
 * Opt-in (`SHOAL_OPENAPI_VALIDATE=1`): every response `call` gets is checked against the OpenAPI document
 * (test/helpers/openapi-validate.ts), and a mismatch fails the call.
 */
const VALIDATE = process.env.SHOAL_OPENAPI_VALIDATE === '1';

export interface HttpShoal {
  /** The running shoal (a new one after `restart`). */
  readonly shoal: LocalShoal;
  readonly dataDir: string;
  /**
   * A JSON request to `route`; `json` is the parsed body (undefined when empty). `key` defaults
   * to the shoal's API key; null sends no authorization header.
   */
  // Responses are checked field by field in the suites; typing every body would only restate the API.
  call(
    method: string,
    route: string,
    body?: unknown,
    key?: string | null,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ): Promise<{ status: number; json: any; headers: Headers }>;
  /** Stops the shoal and starts a new one on the same data dir with the same options. */
  restart(): Promise<void>;
  /** Stops the shoal and removes the data dir. */
  stop(): Promise<void>;
}

/**
 * Starts a shoal on `<tmp>/shoal-e2e-<name>-XXXXXX` with an ephemeral port, no logging, an hourly
 * builder tick (builds run when queued, not on the timer) and the API key `<name>-key`; `options`
 * override any of these.
 */
export async function startHttpShoal(
  name: string,
  options: Partial<Omit<StartLocalShoalOptions, 'dataDir'>> = {},
): Promise<HttpShoal> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `shoal-e2e-${name}-`));
  const opts: StartLocalShoalOptions = {
    dataDir,
    port: 0,
    silent: true,
    tickMs: 3_600_000,
    apiKey: `${name}-key`,
    ...options,
  };
  let shoal: LocalShoal;
  try {
    shoal = await startLocalShoal(opts);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    get shoal() {
      return shoal;
    },
    dataDir,
    async call(method, route, body, key = shoal.apiKey) {
      const res = await fetch(`${shoal.url}${route}`, {
        method,
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      const json = text ? JSON.parse(text) : undefined;
      if (VALIDATE) {
        const problems = openApiValidator().check(method, route, res.status, json);
        if (problems.length) throw new Error(`response does not match docs/openapi.json:\n${problems.join('\n')}`);
      }
      return { status: res.status, json, headers: res.headers };
    },
    async restart() {
      await shoal.stop();
      shoal = await startLocalShoal(opts);
    },
    async stop() {
      try {
        await shoal.stop();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
