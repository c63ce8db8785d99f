/**
 * Sends a slot's part of a search to a resident search node over HTTP (docs/architecture.md §7.7) instead
 * of invoking the slot's Lambda. On AWS an invoke is a ~10 ms round trip through the Lambda service and a
 * search waits for the slowest of its slots' invokes; a node is a long-lived process in the VPC, one
 * keep-alive HTTP hop (~1 ms) away, with the slot's shards already in memory.
 *
 * A node that cannot be reached, answers 421/503, or does not answer within the timeout is skipped for
 * that call: the part goes to the slot's Lambda instead (`fallback`), so a node restart or a bad deploy
 * costs latency, never availability. A node's own search failure (500 with the error, as a Lambda's
 * function error) is not retried on the Lambda: the same shards would fail the same way.
 */
import http from 'node:http';
import https from 'node:https';
import { currentTrace } from '../storage/trace.js';
import { SearchUnavailableError, slotFailure } from './coordinator.js';
import type { ShardSearchRequest, ShardSearchResponse } from './shard-searcher.js';

export type Scatter = (slot: number, request: ShardSearchRequest) => Promise<ShardSearchResponse>;

export interface NodeScatterOptions {
  /** URL template of a slot's node, `{slot}` replaced by the slot number (no `{slot}`: one node serves all). */
  nodes: string;
  /** Per call; past it the call goes to the fallback. */
  timeoutMs: number;
  /** The slot's Lambda; undefined = a node failure fails the slot (SearchUnavailableError, retryable). */
  fallback?: Scatter;
  /** Told about every fallback (the runtime logs it and counts it). */
  onFallback?: (slot: number, reason: string) => void;
}

/** The path a node serves a slot's part on. */
export function slotPath(slot: number): string {
  return `/v1/slots/${slot}/search`;
}

/** A node's answer that means "not me, not now": the part goes to the fallback. */
const UNAVAILABLE_STATUSES = new Set([421, 502, 503, 504]);

class NodeUnavailable extends Error {}

export function nodeScatter(opts: NodeScatterOptions): Scatter {
  // One pool per process: connections stay open between requests, so a warm call is one HTTP exchange on
  // an established socket (no TCP or TLS handshake). maxSockets bounds concurrent parts per node.
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
  };
  const post = (slot: number, body: string): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const url = new URL(slotPath(slot), opts.nodes.replaceAll('{slot}', String(slot)));
      const proto = url.protocol === 'https:' ? https : http;
      const req = proto.request(
        url,
        {
          method: 'POST',
          agent: agents[url.protocol as 'http:' | 'https:'],
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: opts.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (err) => reject(new NodeUnavailable(`response: ${err.message}`)));
        },
      );
      // The timeout is socket idleness; a node that accepted the request and then stalls trips it too.
      req.on('timeout', () => req.destroy(new NodeUnavailable(`no answer within ${opts.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof NodeUnavailable ? err : new NodeUnavailable(err.message)));
      req.end(body);
    });

  const viaNode = async (slot: number, request: ShardSearchRequest): Promise<ShardSearchResponse> => {
    const call = () => post(slot, JSON.stringify(request));
    const trace = currentTrace();
    const { status, text } = trace ? await trace.record('SearchNode', 'Search', call) : await call();
    if (status === 200) return JSON.parse(text) as ShardSearchResponse;
    if (UNAVAILABLE_STATUSES.has(status)) throw new NodeUnavailable(`HTTP ${status}: ${text.slice(0, 200)}`);
    // 500: the node's searcher failed, as a Lambda function error would (typed the same way).
    throw slotFailure(slot, text);
  };

  return async (slot, request) => {
    try {
      return await viaNode(slot, request);
    } catch (err) {
      if (!(err instanceof NodeUnavailable)) throw err;
      if (!opts.fallback) {
        throw new SearchUnavailableError(`search node of slot ${slot} is unavailable: ${err.message}`, {
          details: { slot },
        });
      }
      opts.onFallback?.(slot, err.message);
      return opts.fallback(slot, request);
    }
  };
}
