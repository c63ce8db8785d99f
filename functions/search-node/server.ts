/**
 * A resident search node (docs/architecture.md §7.7): the shard-search function's body behind a plain
 * HTTP server, for a long-lived process (a Fargate task on AWS, a thread of `npm start` locally). It serves
 * `POST /v1/slots/{slot}/search` with the same request and response as the slot's Lambda, from the same
 * shard cache, and `GET /health`.
 *
 * Errors keep the Lambda's shape, so the coordinator types them the same way (slotFailure): a searcher
 * failure is 500 `{ errorType, errorMessage }`; a slot this node does not serve is 421 and a draining node
 * 503, both of which send the coordinator to the slot's Lambda instead.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ShardCache } from '../../shared/search/shard-cache.js';
import type { ShardSearchRequest } from '../../shared/search/shard-searcher.js';
import { inProcessSearcher, type PartSearcher } from './pool.js';

/** Lambda's synchronous payload limit: a part the Lambda would refuse is refused here too. */
export const MAX_REQUEST_BYTES = 6 * 1024 * 1024;

const SLOT_PATH = /^\/v1\/slots\/(\d{1,5})\/search$/;

export interface SearchNodeOptions {
  /** What searches the parts: the node's thread with this cache, or `searcher` (a thread pool, pool.ts). */
  cache?: ShardCache;
  searcher?: PartSearcher;
  /** Slots this node serves; undefined = every slot (one node for the whole collection). */
  slots?: ReadonlySet<number>;
  /** Told about each searcher failure (the process logs it). */
  onError?: (err: unknown, slot: number) => void;
}

export interface SearchNode {
  /** `http://host:port` */
  url: string;
  server: http.Server;
  /** Refuses new parts (503: callers fall back to the Lambdas), then closes once in-flight parts are answered. */
  stop(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function failure(errorType: string, errorMessage: string) {
  return { errorType, errorMessage };
}

/** The request's shape, checked before any shard is touched (a malformed part is the caller's bug: 400). */
function parseRequest(text: string): ShardSearchRequest | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'body: must be JSON';
  }
  if (typeof body !== 'object' || body === null) return 'body: must be an object';
  const r = body as Partial<ShardSearchRequest>;
  if (r.metric !== 'l2' && r.metric !== 'cosine' && r.metric !== 'ip') return 'metric: must be l2, cosine or ip';
  if (!Array.isArray(r.shards)) return 'shards: must be an array';
  if (!Array.isArray(r.queries) || !r.queries.every((q) => Array.isArray(q))) {
    return 'queries: must be an array of number arrays';
  }
  if (typeof r.k !== 'number' || !Number.isInteger(r.k) || r.k < 1) return 'k: must be a positive integer';
  return r as ShardSearchRequest;
}

function searcherOf(opts: SearchNodeOptions): PartSearcher {
  if (opts.searcher) return opts.searcher;
  if (!opts.cache) throw new Error('a search node needs a cache or a searcher');
  return inProcessSearcher(opts.cache);
}

export function createSearchNodeHandler(opts: SearchNodeOptions, draining: () => boolean) {
  const searcher = searcherOf(opts);
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/health') {
      send(res, draining() ? 503 : 200, {
        status: draining() ? 'draining' : 'ok',
        slots: opts.slots ? [...opts.slots].sort((a, b) => a - b) : 'all',
        cache: searcher.stats(),
      });
      return;
    }
    const match = SLOT_PATH.exec(path);
    if (!match || req.method !== 'POST') {
      send(res, 404, failure('NotFound', `no route ${req.method} ${path}`));
      return;
    }
    const slot = Number(match[1]);
    if (draining()) {
      send(res, 503, failure('Draining', 'this node is shutting down'));
      return;
    }
    if (opts.slots && !opts.slots.has(slot)) {
      send(res, 421, failure('MisdirectedSlot', `this node does not serve slot ${slot}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        if (!refused) send(res, 413, failure('RequestTooLarge', `body: at most ${MAX_REQUEST_BYTES} bytes`));
        refused = true;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (refused) return;
      const parsed = parseRequest(Buffer.concat(chunks).toString('utf8'));
      if (typeof parsed === 'string') {
        send(res, 400, failure('InvalidRequest', parsed));
        return;
      }
      searcher.search(parsed).then(
        (out) => send(res, 200, out),
        (err: unknown) => {
          opts.onError?.(err, slot);
          const e = err instanceof Error ? err : new Error(String(err));
          send(res, 500, failure(e.name, e.message));
        },
      );
    });
  };
}

/** Starts a node listening on host:port (port 0 = ephemeral). */
export async function startSearchNode(opts: SearchNodeOptions & { port?: number; host?: string }): Promise<SearchNode> {
  let draining = false;
  const searcher = searcherOf(opts);
  const server = http.createServer(createSearchNodeHandler({ ...opts, searcher }, () => draining));
  // Longer than the callers' keep-alive idle time, so the node never closes a socket a caller is about to
  // reuse (the race that surfaces as ECONNRESET on the first request after a pause).
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    server,
    stop: async () => {
      draining = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await searcher.stop();
    },
  };
}
