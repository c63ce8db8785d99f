/**
 * The web console's assets and how the api function serves them: the committed generated module is
 * what `npm run build:console` makes of console/src today, the whole page stays within 200 KB gzipped,
 * and `/console` answers without a key, with ETags, 304s, cache headers and the strict CSP.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { GENERATED, buildAssets, etagOf, gzippedBytes, renderModule } from '../../console/build.js';
import { CONSOLE_ASSETS } from '../../shared/api/console-assets.gen.js';
import { CONSOLE_CSP, CONSOLE_ROUTES, consoleEtag, consoleResponse } from '../../shared/api/console.js';
import { createApi, type ApiRequest } from '../../shared/api/router.js';
import type { ShoalService } from '../../shared/service.js';

const get = (path: string, headers: Record<string, string> = {}): ApiRequest => ({ method: 'GET', path, headers });

describe('console assets', () => {
  it('the committed module is the build of console/src (else: run npm run build:console)', async () => {
    const assets = await buildAssets();
    const fresh = await renderModule(assets);
    const committed = readFileSync(GENERATED, 'utf8');
    expect(committed === fresh, 'shared/api/console-assets.gen.ts is stale: run `npm run build:console`').toBe(true);
    // esbuild's output is deterministic: a second build is byte for byte the first.
    expect(await renderModule(await buildAssets())).toBe(fresh);
  }, 60_000);

  it('loads in at most 200 KB gzipped, needs nothing from another origin, and runs no inline script', async () => {
    const assets = await buildAssets();
    const gz = gzippedBytes(assets);
    process.stdout.write(`console: ${(gz / 1024).toFixed(1)} KB gzipped (${assets.map((a) => a.path).join(', ')})\n`);
    expect(gz).toBeLessThanOrEqual(200 * 1024);
    const html = CONSOLE_ASSETS['index.html'].body;
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=/);
    expect(CONSOLE_ASSETS['app.css'].body).not.toMatch(/@import|url\(\s*['"]?https?:/);
    expect(CONSOLE_ASSETS['app.js'].body).not.toMatch(/fonts\.googleapis|cdn\.jsdelivr|unpkg\.com/);
    for (const [name, asset] of Object.entries(CONSOLE_ASSETS)) expect(asset.etag, name).toBe(etagOf(asset.body));
  }, 60_000);
});

describe('consoleResponse', () => {
  it('serves index.html at /console and /console/, the bundle by name, with type, ETag, cache and CSP', async () => {
    for (const path of ['/console', '/console/', '/console/index.html']) {
      const res = await consoleResponse(get(path));
      expect(res?.statusCode, path).toBe(200);
      expect(res?.headers['Content-Type']).toBe('text/html; charset=utf-8');
      expect(res?.headers['Cache-Control']).toBe('no-cache');
      expect(res?.body).toContain('<script type="module" src="/console/app.js"></script>');
    }
    const js = await consoleResponse(get('/console/app.js'));
    expect(js?.headers['Content-Type']).toBe('text/javascript; charset=utf-8');
    expect(js?.headers.ETag).toBe(consoleEtag(js?.body ?? ''));
    expect(js?.headers['Cache-Control']).toMatch(/max-age=\d+/);
    expect(js?.headers['Content-Security-Policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("default-src 'self'");
    expect(CONSOLE_CSP).toContain("connect-src 'self'");
    expect(CONSOLE_CSP).not.toContain('unsafe-inline');
    expect((await consoleResponse(get('/console/app.css')))?.headers['Content-Type']).toBe('text/css; charset=utf-8');
  });

  it('answers 304 to a matching If-None-Match, 404 to unknown assets, 405 to writes, nothing elsewhere', async () => {
    const first = await consoleResponse(get('/console/app.js'));
    const etag = first?.headers.ETag ?? '';
    const again = await consoleResponse(get('/console/app.js', { 'If-None-Match': `"other", ${etag}` }));
    expect(again?.statusCode).toBe(304);
    expect(again?.body).toBe('');
    expect(again?.headers.ETag).toBe(etag);
    expect((await consoleResponse(get('/console/app.js', { 'if-none-match': '"stale"' })))?.statusCode).toBe(200);
    expect((await consoleResponse(get('/console/../v1/collections')))?.statusCode).toBe(404);
    expect((await consoleResponse(get('/console/secrets.json')))?.statusCode).toBe(404);
    expect((await consoleResponse(get('/console/constructor')))?.statusCode).toBe(404);
    expect((await consoleResponse({ method: 'POST', path: '/console', headers: {}, body: '{}' }))?.statusCode).toBe(
      405,
    );
    expect(await consoleResponse(get('/consoles'))).toBeUndefined();
    expect(await consoleResponse(get('/v1/collections'))).toBeUndefined();
  });

  it('is answered by the router without a key, and names its API Gateway routes', async () => {
    const authorize = vi.fn(() => false);
    const service = new Proxy({} as ShoalService, {
      get: (_t, prop) => () => {
        throw new Error(`service.${String(prop)} called`);
      },
    });
    const api = createApi({ service, authorize, version: 'test' });
    const page = await api.handle(get('/console/'));
    expect(page.statusCode).toBe(200);
    expect(page.headers['Content-Type']).toBe('text/html; charset=utf-8');
    expect(authorize).not.toHaveBeenCalled();
    // The API itself still needs the key.
    expect((await api.handle(get('/v1/collections'))).statusCode).toBe(401);
    expect(CONSOLE_ROUTES).toEqual(['GET /console', 'GET /console/{proxy+}']);
  });
});
