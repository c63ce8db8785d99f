/**
 * The web console's static files (docs/console.md), served by the api function itself at `/console`.
 * They are answered before the key check: the page holds no data, and the key is entered in it and sent
 * by its own API calls. The assets module (~150 KB of strings) is imported on the first console request
 * only, so the api function's cold start for API traffic does not load it.
 */
import { createHash } from 'node:crypto';
import type { ApiRequest, ApiResponse } from './router.js';

/** API Gateway routes for the console; they need no authorizer (the page itself carries no data). */
export const CONSOLE_ROUTES = ['GET /console', 'GET /console/{proxy+}'] as const;

/**
 * The page's policy: everything from this origin only (scripts, styles, the API); no inline script or
 * style element, no plugins, no framing, no base or form redirection.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONSOLE_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

export function isConsolePath(path: string): boolean {
  const p = pathOnly(path);
  return p === '/console' || p.startsWith('/console/');
}

function header(req: ApiRequest, name: string): string | undefined {
  for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function plain(statusCode: number, body: string, extra: Record<string, string> = {}): ApiResponse {
  return {
    statusCode,
    headers: { 'Content-Type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS, ...extra },
    body,
  };
}

/** The console's answer to a `/console` path, or undefined when the path is not the console's. */
export async function consoleResponse(req: ApiRequest): Promise<ApiResponse | undefined> {
  if (!isConsolePath(req.path)) return undefined;
  const method = req.method.toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') return plain(405, 'method not allowed\n', { Allow: 'GET, HEAD' });
  const { CONSOLE_ASSETS } = await import('./console-assets.gen.js');
  const rest = pathOnly(req.path).slice('/console'.length).replace(/^\/+/, '');
  // Every page is index.html: the router lives in the hash, so any other path is an unknown asset.
  const name = rest === '' || rest === 'index.html' ? 'index.html' : rest;
  const asset = Object.hasOwn(CONSOLE_ASSETS, name) ? CONSOLE_ASSETS[name] : undefined;
  if (!asset) return plain(404, 'not found\n');
  const headers: Record<string, string> = {
    'Content-Type': asset.contentType,
    ETag: asset.etag,
    // index.html is revalidated each time (it names the bundle); the bundle revalidates hourly by ETag.
    'Cache-Control': name === 'index.html' ? 'no-cache' : 'public, max-age=3600, must-revalidate',
    ...SECURITY_HEADERS,
  };
  const match = header(req, 'if-none-match');
  if (match && match.split(',').some((t) => t.trim().replace(/^W\//, '') === asset.etag)) {
    return { statusCode: 304, headers, body: '' };
  }
  return { statusCode: 200, headers, body: method === 'HEAD' ? '' : asset.body };
}

/** sha256 of a served body in the ETag's form (for tests that check a body against its tag). */
export function consoleEtag(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}
