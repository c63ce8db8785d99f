/**
 * Embedded AWS emulators for the local runtime (`npm start`) and integration tests.
 *
 * All three run inside the current Node process, bound to 127.0.0.1 (DynamoDB in its own worker thread,
 * `dynalite-thread.mjs`, so its work never holds the API's event loop), and speak the real AWS wire
 * protocols, so Shoal's handlers use the real `@aws-sdk/*` v3 clients with only the endpoint changed
 * (see `aws-clients.ts`):
 * - S3       -> s3rver   (REST/XML; objects on disk under `<dataDir>/s3`)
 * - DynamoDB -> dynalite (JSON 1.0; LevelDB under `<dataDir>/dynamodb`, in memory without a dataDir)
 * - SQS      -> fauxqs   (JSON 1.0; in memory only, queues are lost on stop)
 *
 * Feature coverage and quirks of each emulator: docs/local-emulators.md.
 */
import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { buildApp } from 'fauxqs';

export interface EmulatorEndpoints {
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  s3: string;
  dynamodb: string;
  sqs: string;
}

/** An S3 event notification as s3rver emits it (the AWS shape; keys are not URL-encoded). */
export interface S3EventNotification {
  Records: Array<{
    eventName: string;
    s3: { bucket: { name: string }; object: { key: string; size?: number; eTag?: string; sequencer?: string } };
    [field: string]: unknown;
  }>;
}

export interface Emulators {
  endpoints: EmulatorEndpoints;
  /** Subscribes to S3 object events (create, copy, multipart complete, delete); returns the unsubscribe. */
  onS3Event(listener: (event: S3EventNotification) => void): () => void;
  stop(): Promise<void>;
}

export interface StartEmulatorsOptions {
  /** Root of the persisted state; undefined = DynamoDB in memory, S3 in a temp dir removed on stop. */
  dataDir?: string;
  /** Fixed ports; 0 or undefined = an ephemeral port. */
  ports?: { s3?: number; dynamodb?: number; sqs?: number };
  /** Quiet unless explicitly `false`. */
  silent?: boolean;
}

const HOST = '127.0.0.1';
const REGION = 'us-east-1';
/**
 * s3rver verifies SigV4 signatures against this fixed key pair (anything else gets InvalidAccessKeyId /
 * SignatureDoesNotMatch); dynalite and fauxqs accept any credentials, so all three share it.
 */
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
const READY_TIMEOUT_MS = 10_000;

// s3rver is CommonJS without type declarations: load it through require and describe the small surface
// used here (dynalite is loaded by its thread, dynalite-thread.mjs).
const require = createRequire(import.meta.url);

/** The slice of a Koa context (s3rver is a Koa app) that the shims below use. */
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  body: unknown;
  status: number;
  type: string;
  get(header: string): string;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

interface S3rverStore {
  getMetadata(bucket: string, key: string): Promise<Record<string, string>>;
  putObjectMultipart(bucket: string, uploadId: string, parts: Array<{ number: number }>): Promise<unknown>;
  /** `<dir>/<bucket>/<resource>` for key '' (used for the multipart uploads directory). */
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
}

interface S3rverInstance {
  /** Koa's middleware stack, composed when callback() is called. */
  middleware: KoaMiddleware[];
  store: S3rverStore;
  /** s3rver (a Koa app) emits 'event' with an S3 event notification for object writes and deletes. */
  on(event: 'event', listener: (e: S3EventNotification) => void): void;
  off(event: 'event', listener: (e: S3EventNotification) => void): void;
  callback(): http.RequestListener;
}
type S3rverConstructor = new (options: {
  directory: string;
  silent: boolean;
  address?: string;
  port?: number;
  vhostBuckets?: boolean;
  allowMismatchedSignatures?: boolean;
}) => S3rverInstance;

const S3rver = require('s3rver') as S3rverConstructor;

/** s3rver's error type: thrown from its store, rendered as S3's XML error with the code's status. */
const S3Error = require('s3rver/lib/models/error.js') as new (
  code: string,
  message: string,
  detail?: Record<string, unknown>,
) => Error;

/** Starts S3, DynamoDB and SQS emulators and resolves once each one answers HTTP. */
export async function startEmulators(opts: StartEmulatorsOptions = {}): Promise<Emulators> {
  const silent = opts.silent !== false;
  const cleanups: Array<() => Promise<void>> = [];
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Reverse start order; every step runs even if an earlier one fails.
    const results = await Promise.allSettled(cleanups.reverse().map((fn) => fn()));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
  };

  try {
    // --- S3 (s3rver): always needs a directory; a temp one when there is no dataDir.
    let s3Dir: string;
    if (opts.dataDir) {
      s3Dir = path.join(opts.dataDir, 's3');
      await mkdir(s3Dir, { recursive: true });
    } else {
      const tmp = await mkdtemp(path.join(tmpdir(), 'shoal-s3-'));
      s3Dir = tmp;
      cleanups.push(() => rm(tmp, { recursive: true, force: true }));
    }
    const s3rver = new S3rver({ directory: s3Dir, silent, vhostBuckets: false });
    installS3rverShims(s3rver);
    const s3Server = http.createServer(s3rver.callback());
    const s3Port = await listen(s3Server, opts.ports?.s3 ?? 0);
    cleanups.push(() => closeServer(s3Server));

    // --- DynamoDB (dynalite): LevelDB on disk with a dataDir, memory-level without.
    let dynamoPath: string | undefined;
    if (opts.dataDir) {
      dynamoPath = path.join(opts.dataDir, 'dynamodb');
      await mkdir(dynamoPath, { recursive: true });
    }
    const dynamo = await startDynaliteThread({ path: dynamoPath, verbose: !silent, port: opts.ports?.dynamodb ?? 0 });
    cleanups.push(dynamo.stop);
    const dynamoPort = dynamo.port;

    // --- SQS (fauxqs): built directly (not startFauxqs, which binds 0.0.0.0). Queue URLs read
    // http://sqs.<region>.localhost:<port>/000000000000/<name>; SDK clients with an explicit endpoint
    // send to the endpoint, not to the queue URL's host, so that name never needs to resolve.
    const sqsApp = buildApp({ logger: !silent, defaultRegion: REGION });
    const sqsAddress = await sqsApp.listen({ port: opts.ports?.sqs ?? 0, host: HOST });
    const sqsPort = Number(new URL(sqsAddress).port);
    cleanups.push(() => sqsApp.close());

    const endpoints: EmulatorEndpoints = {
      region: REGION,
      credentials: { ...CREDENTIALS },
      s3: `http://${HOST}:${s3Port}`,
      dynamodb: `http://${HOST}:${dynamoPort}`,
      sqs: `http://${HOST}:${sqsPort}`,
    };

    await Promise.all([
      waitUntilAnswering(`${endpoints.s3}/`, 'GET'),
      waitUntilAnswering(`${endpoints.dynamodb}/`, 'POST'),
      waitUntilAnswering(`${endpoints.sqs}/health`, 'GET'),
    ]);

    const onS3Event = (listener: (event: S3EventNotification) => void): (() => void) => {
      const safe = (e: S3EventNotification): void => {
        try {
          listener(e);
        } catch (err) {
          console.error('[emulators] S3 event listener failed', err);
        }
      };
      s3rver.on('event', safe);
      return () => s3rver.off('event', safe);
    };
    return { endpoints, onS3Event, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------
// s3rver shims. Both run as Koa middleware just before s3rver's router (after its vhost rewrite, so the
// path is always /<bucket>/<key>). s3rver does not verify SigV4 signatures (it only checks the access
// key id), so rewriting the query string of a signed request is safe.

function installS3rverShims(s3rver: S3rverInstance): void {
  const routerIndex = s3rver.middleware.findIndex((fn) => fn.name === 'dispatch');
  if (routerIndex < 0) throw new Error('s3rver: router middleware not found; shims need updating');
  s3rver.middleware.splice(
    routerIndex,
    0,
    listObjectsV2Shim,
    conditionalPutShim(s3rver.store),
    multipartShim(s3rver.store),
    copyIfMatchShim(s3rver.store),
  );
  guardMultipartParts(s3rver.store);
}

/**
 * CompleteMultipartUpload with a part that was never uploaded: S3 answers 400 InvalidPart, s3rver opens a
 * read stream on the missing part file and its ENOENT escapes as an uncaught exception that ends the whole
 * local process. The parts are checked first, and a missing one is S3's InvalidPart.
 */
function guardMultipartParts(store: S3rverStore): void {
  const complete = store.putObjectMultipart.bind(store);
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const dir = path.join(store.getResourcePath(bucket, undefined, 'uploads'), path.basename(uploadId));
    for (const part of parts) {
      const found = await access(path.join(dir, String(part.number))).then(
        () => true,
        () => false,
      );
      if (!found) {
        throw new S3Error(
          'InvalidPart',
          'One or more of the specified parts could not be found. The part may not have been uploaded, or ' +
            "the specified entity tag may not match the part's entity tag.",
          { PartNumber: part.number, UploadId: uploadId },
        );
      }
    }
    return complete(bucket, uploadId, parts);
  };
}

/**
 * ListObjectsV2 pagination. s3rver encrypts continuation tokens with DES, which OpenSSL 3 (Node >= 17)
 * no longer provides, so any truncated V2 listing fails with InternalError. V2 requests are served by
 * s3rver's V1 code path (marker = start-after / decoded token) and the response is reshaped into V2
 * with an opaque base64url token. The body is still a plain object here: s3rver's XML encoder runs
 * further up the stack.
 */
const listObjectsV2Shim: KoaMiddleware = async (ctx, next) => {
  const bucket = /^\/([^/]+)\/?$/.exec(ctx.path)?.[1];
  if (ctx.method !== 'GET' || !bucket || ctx.query['list-type'] !== '2') return next();

  const {
    'list-type': _listType,
    'continuation-token': token,
    'start-after': startAfter,
    'fetch-owner': fetchOwner,
    marker,
    ...rest
  } = ctx.query;
  if (marker !== undefined) return next(); // s3rver rejects marker with list-type=2 itself
  let after = typeof startAfter === 'string' ? startAfter : undefined;
  if (typeof token === 'string' && token !== '') {
    const decoded = decodeContinuationToken(token, bucket);
    if (decoded === undefined) {
      xmlError(ctx, 400, 'InvalidArgument', 'The continuation token provided is incorrect');
      return;
    }
    after = decoded;
  }
  ctx.query = after ? { ...rest, marker: after } : rest;

  await next();

  const result = (ctx.body as { ListBucketResult?: Record<string, unknown> } | undefined)?.ListBucketResult;
  if (!result) return;
  const contents = (result.Contents ?? []) as Array<{ Key: string; Owner?: unknown }>;
  const prefixes = (result.CommonPrefixes ?? []) as unknown[];
  delete result.Marker;
  delete result.NextMarker;
  if (fetchOwner !== 'true') for (const c of contents) delete c.Owner;
  if (typeof token === 'string' && token !== '') result.ContinuationToken = token;
  else if (after) result.StartAfter = after;
  result.KeyCount = contents.length + prefixes.length;
  // s3rver only truncates on objects (common prefixes do not count towards max-keys), so a truncated
  // page always ends with an object key.
  const last = contents.at(-1);
  if (result.IsTruncated && last) result.NextContinuationToken = encodeContinuationToken(bucket, last.Key);
};

function encodeContinuationToken(bucket: string, key: string): string {
  return Buffer.from(JSON.stringify({ b: bucket, k: key }), 'utf8').toString('base64url');
}

function decodeContinuationToken(token: string, bucket: string): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { b?: unknown; k?: unknown };
    return parsed.b === bucket && typeof parsed.k === 'string' ? parsed.k : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Conditional PutObject (`If-None-Match: *` create-only, `If-Match: <etag>` compare-and-swap), which
 * s3rver ignores (it silently overwrites). Checks are serialized per key for the whole request, so
 * two conditional writers of one key cannot both win; an unconditional PUT is not held back, as on S3.
 */
function conditionalPutShim(store: S3rverStore): KoaMiddleware {
  const locks = new Map<string, Promise<void>>();
  return async (ctx, next) => {
    const match = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
    const ifNoneMatch = ctx.get('if-none-match');
    const ifMatch = ctx.get('if-match');
    const isPutObject =
      ctx.method === 'PUT' &&
      match !== null &&
      !ctx.get('x-amz-copy-source') &&
      !['uploadId', 'partNumber', 'tagging', 'acl'].some((q) => q in ctx.query);
    if (!isPutObject || (!ifNoneMatch && !ifMatch)) return next();
    const [, bucket, rawKey] = match;
    const key = decodeURIComponent(rawKey);

    const lockKey = `${bucket}/${key}`;
    const previous = locks.get(lockKey) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => current);
    locks.set(lockKey, chained);
    await previous;
    try {
      const etag = await store.getMetadata(bucket, key).then(
        (m) => m.etag,
        () => undefined, // missing object (or bucket: s3rver's router answers NoSuchBucket next)
      );
      if (ifNoneMatch && ifNoneMatch.trim() !== '*') {
        xmlError(ctx, 501, 'NotImplemented', 'If-None-Match supports only * on PutObject');
      } else if (ifNoneMatch && etag !== undefined) {
        xmlError(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      } else if (ifMatch && etag === undefined) {
        xmlError(ctx, 404, 'NoSuchKey', 'The specified key does not exist.');
      } else if (ifMatch && !etagMatches(ifMatch, etag)) {
        xmlError(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      } else {
        await next();
      }
    } finally {
      release();
      if (locks.get(lockKey) === chained) locks.delete(lockKey);
    }
  };
}

/**
 * Multipart uploads as S3 checks them. s3rver has no AbortMultipartUpload (DELETE ?uploadId is a
 * 405), answers UploadPart/CompleteMultipartUpload for an unknown or finished upload id with a 500
 * (it reads a missing directory), and completes an upload into the key it was created for whatever
 * key the request names. Here: abort removes the upload; an unknown id, or one created for another
 * key, is 404 NoSuchUpload, as on S3. Part sizes and ETags are still not checked on complete.
 */
function multipartShim(store: S3rverStore): KoaMiddleware {
  return async (ctx, next) => {
    const match = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
    const uploadId = ctx.query.uploadId;
    if (!match || typeof uploadId !== 'string' || !['PUT', 'POST', 'DELETE'].includes(ctx.method)) return next();
    const [, bucket, rawKey] = match;
    const dir = path.join(store.getResourcePath(bucket, undefined, 'uploads'), path.basename(uploadId));
    const owner = await readFile(path.join(dir, 'key'), 'utf8').catch(() => undefined);
    if (path.basename(uploadId) !== uploadId || owner !== decodeURIComponent(rawKey)) {
      xmlError(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      return;
    }
    if (ctx.method !== 'DELETE') return next();
    await rm(dir, { recursive: true, force: true });
    ctx.status = 204;
    ctx.body = '';
  };
}

/**
 * CopyObject's `x-amz-copy-source-if-match`, which s3rver ignores: 412 PreconditionFailed when the
 * source's ETag differs, as on S3 (model commits copy only the object version they hashed).
 */
function copyIfMatchShim(store: S3rverStore): KoaMiddleware {
  return async (ctx, next) => {
    const source = ctx.get('x-amz-copy-source');
    const ifMatch = ctx.get('x-amz-copy-source-if-match');
    if (ctx.method !== 'PUT' || !source || !ifMatch) return next();
    const [bucket, ...key] = decodeURIComponent(source.replace(/^\//, '').split('?')[0]).split('/');
    const etag = await store.getMetadata(bucket, key.join('/')).then(
      (m) => m.etag,
      () => undefined, // missing source: s3rver answers NoSuchKey itself
    );
    if (etag !== undefined && !etagMatches(ifMatch, etag)) {
      xmlError(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      return;
    }
    await next();
  };
}

function etagMatches(header: string, etag: string | undefined): boolean {
  if (etag === undefined) return false;
  const unquote = (v: string): string => v.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  return header.split(',').some((candidate) => candidate.trim() === '*' || unquote(candidate) === unquote(etag));
}

function xmlError(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><Resource>${escapeXml(ctx.path)}</Resource></Error>`;
}

function escapeXml(value: string): string {
  return value.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---------------------------------------------------------------------------------------------------

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, HOST, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** dynalite in its worker thread (dynalite-thread.mjs): resolves once it listens. */
async function startDynaliteThread(options: {
  path?: string;
  verbose: boolean;
  port: number;
}): Promise<{ port: number; stop: () => Promise<void> }> {
  const worker = new Worker(new URL('./dynalite-thread.mjs', import.meta.url), {
    workerData: { ...options, host: HOST },
  });
  type Reply = { port: number } | { error: string } | { stopped: true };
  const port = await new Promise<number>((resolve, reject) => {
    const onMessage = (msg: Reply) => {
      worker.off('exit', onExit);
      if ('port' in msg) resolve(msg.port);
      else reject(new Error(`dynalite did not start: ${'error' in msg ? msg.error : 'stopped'}`));
    };
    const onExit = (code: number) => reject(new Error(`the dynalite thread exited (code ${code}) before listening`));
    worker.once('message', onMessage);
    worker.once('exit', onExit);
    worker.once('error', reject);
  });
  const stop = async (): Promise<void> => {
    const closed = new Promise<void>((resolve, reject) => {
      worker.once('message', (msg: Reply) =>
        'error' in msg ? reject(new Error(`dynalite did not close: ${msg.error}`)) : resolve(),
      );
      worker.once('exit', () => resolve());
    });
    worker.postMessage('stop');
    await closed;
    await worker.terminate();
  };
  return { port, stop };
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // Drop keep-alive sockets held by SDK clients, otherwise close() waits for them to time out.
    server.closeAllConnections();
  });
}

/** Resolves on the first HTTP response of any status; retries connection errors until the deadline. */
async function waitUntilAnswering(url: string, method: 'GET' | 'POST'): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await probe(url, method);
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`emulator at ${url} did not answer within ${READY_TIMEOUT_MS} ms`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function probe(url: string, method: 'GET' | 'POST'): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve());
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
    req.end();
  });
}
