import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { loadConfig } from '../../src/platform/config.js';
import { explorerRoutes } from '../../src/platform/http/explorer.js';
import { ideRoutes } from '../../src/platform/http/ide.js';
import { VERSION } from '../../src/platform/version.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The GraphQL IDE over plain HTTP: who gets the page and who gets the API, that the page refers to
 * nothing off this server, and that it is gone where introspection is. The page in a real browser
 * is test/http/ide.test.ts.
 */

/** What Chromium sends when a user types the URL. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8';

/** The URLs an HTML page or a stylesheet loads: src/href attributes, CSS url(…). */
function referencesIn(text: string): string[] {
  const attributes = [...text.matchAll(/\b(?:src|href)\s*=\s*["']([^"']+)["']/g)].map((m) => m[1]!);
  const cssUrls = [...text.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)/g)].map((m) => m[1]!);
  return [...attributes, ...cssUrls];
}

/** The modules and workers a script loads: static and dynamic imports, `new Worker(…)`, `new URL(…, import.meta.url)`. */
function scriptReferencesIn(js: string): string[] {
  const patterns = [
    /\bimport\s*\(\s*["'`]([^"'`]+)["'`]/g,
    /\b(?:from|import)\s*["'`]([^"'`]+)["'`]/g,
    /\bnew\s+(?:Shared)?Worker\s*\(\s*["'`]([^"'`]+)["'`]/g,
    /\bnew\s+URL\s*\(\s*["'`]([^"'`]+)["'`]\s*,\s*import\.meta\.url/g,
  ];
  // Minified code also has strings that merely look like these; keep what reads as a URL or a path.
  const url = /^(?:https?:\/\/|\/\/|\.{0,2}\/)[\w\-.~%@/:]+\.(?:m?js|css|ttf|woff2?|svg|png|wasm)$/;
  return patterns.flatMap((pattern) => [...js.matchAll(pattern)].map((m) => m[1]!)).filter((ref) => url.test(ref));
}

describe('the GraphQL IDE over HTTP', () => {
  let t: TestServer;
  let origin: string;

  before(async () => {
    t = await startTestServer();
    origin = new URL(t.url).origin;
  });
  after(() => t?.close());

  test('GET / is the Explorer, not a redirect to the IDE', async () => {
    const res = await fetch(`${origin}/`, { headers: { accept: BROWSER_ACCEPT }, redirect: 'manual' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await res.text();
    assert.match(html, /<title>Tangent Explorer<\/title>/);
    // Its bundle is under /explorer/, apart from the IDE's /ide/, and served from here.
    const script = html.match(/<script[^>]+src="([^"]+\.js)"/)?.[1];
    assert.ok(script?.startsWith('/explorer/assets/'), `the Explorer's script: ${script}`);
    assert.equal((await fetch(`${origin}${script}`)).status, 200);
    assert.equal((await fetch(`${origin}/explorer/assets/nothing-here.js`)).status, 404);
  });

  test('GET /graphql from a browser answers the page, whose every script, style, font and worker comes from this server', async () => {
    const res = await fetch(`${origin}/graphql`, { headers: { accept: BROWSER_ACCEPT } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    // The page's own policy forbids other origins, so a CDN reference would fail in the browser too.
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    const html = await res.text();
    assert.match(html, /<div id="root">/);

    // Each reference with the URL it is relative to: the page's, or the stylesheet's or script's that holds it.
    const pending = referencesIn(html).map((ref) => ({ ref, base: `${origin}/graphql` }));
    assert.ok(pending.some(({ ref }) => /\.js$/.test(ref)), `the page loads a script: ${pending.map(({ ref }) => ref).join(', ')}`);
    const seen = new Set<string>();
    const kinds = new Set<string>();
    while (pending.length) {
      const { ref, base } = pending.pop()!;
      if (ref.startsWith('data:')) continue;
      const url = new URL(ref, base);
      assert.equal(url.origin, origin, `${ref} is on another host`);
      if (seen.has(url.pathname)) continue;
      seen.add(url.pathname);
      const asset = await fetch(url);
      assert.equal(asset.status, 200, `${url.pathname}: ${asset.status}`);
      kinds.add(url.pathname.replace(/^.*\./, ''));
      const body = await asset.text();
      const found = url.pathname.endsWith('.css') ? referencesIn(body) : url.pathname.endsWith('.js') ? scriptReferencesIn(body) : [];
      pending.push(...found.map((inner) => ({ ref: inner, base: url.href })));
    }
    // Scripts and styles followed from the page, and the three Monaco workers among the scripts.
    assert.ok(kinds.has('js') && kinds.has('css'), `scripts and styles: ${[...kinds].join(', ')}`);
    for (const worker of ['editor.worker', 'json.worker', 'graphql.worker']) {
      assert.ok([...seen].some((path) => path.includes(worker)), `${worker} is bundled and referenced (seen: ${[...seen].join(', ')})`);
    }
  });

  test('GraphQL clients still reach the API: POST, GET with a query (CSRF prevention intact), and GET without HTML', async () => {
    const post = await t.gql<{ serverInfo: { version: string } }>('{ serverInfo { version } }');
    assert.deepEqual(post, { serverInfo: { version: VERSION } });

    const query = encodeURIComponent('{ serverInfo { version } }');
    // A browser-like GET with a query is an API call, not a page, and Apollo's CSRF prevention still guards it.
    const blocked = await fetch(`${origin}/graphql?query=${query}`, { headers: { accept: BROWSER_ACCEPT } });
    assert.equal(blocked.status, 400);
    assert.match(((await blocked.json()) as { errors: { message: string }[] }).errors[0]!.message, /Cross-Site Request Forgery/);
    const preflighted = await fetch(`${origin}/graphql?query=${query}`, { headers: { accept: BROWSER_ACCEPT, 'apollo-require-preflight': 'true' } });
    assert.equal(preflighted.status, 200);
    assert.deepEqual(await preflighted.json(), { data: { serverInfo: { version: VERSION } } });

    const noQuery = await fetch(`${origin}/graphql`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    assert.equal(noQuery.status, 400);
    assert.match(noQuery.headers.get('content-type') ?? '', /json/);
  });

  test('an asset that does not exist is a 404, not the API', async () => {
    const res = await fetch(`${origin}/ide/assets/nothing-here.js`);
    assert.equal(res.status, 404);
  });
});

describe('the GraphQL IDE with API keys on', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ env: { TANGENT_AUTH: 'on' } });
  });
  after(() => t?.close());

  test('the page is public, the API it calls is not', async () => {
    const page = await fetch(t.url, { headers: { accept: BROWSER_ACCEPT } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<div id="root">/);
    const api = await t.request('{ serverInfo { version } }');
    assert.equal(api.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  });
});

describe('the GraphQL IDE in production with introspection off', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ env: { NODE_ENV: 'production' } });
  });
  after(() => t?.close());

  test('no IDE page, no IDE assets; the Explorer (which needs no introspection) and the API still answer', async () => {
    assert.equal(t.config.introspection, false);
    const origin = new URL(t.url).origin;
    const page = await fetch(t.url, { headers: { accept: BROWSER_ACCEPT } });
    assert.equal(page.status, 404);
    assert.match(await page.text(), /introspection is off/);
    const root = await fetch(`${origin}/`, { headers: { accept: BROWSER_ACCEPT }, redirect: 'manual' });
    assert.equal(root.status, 200);
    assert.match(await root.text(), /<title>Tangent Explorer<\/title>/);
    const asset = await fetch(`${origin}/ide/assets/anything.js`);
    assert.equal(asset.status, 404);
    assert.deepEqual(await t.gql('{ serverInfo { version } }'), { serverInfo: { version: VERSION } });
  });
});

describe('the Explorer before `npm run build:web`', () => {
  test('`/` answers 503 with what to run, and nothing else is taken over', async (t) => {
    const app = express();
    app.use(explorerRoutes('/nonexistent/tangent-explorer'));
    app.post('/', (_req, res) => res.json({ reached: 'next' }));
    const server = createHttpServer(app).listen(0, '127.0.0.1');
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await once(server, 'listening');
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const page = await fetch(`${origin}/`, { headers: { accept: BROWSER_ACCEPT } });
    assert.equal(page.status, 503);
    assert.match(await page.text(), /Explorer is not built: run npm run build:web/);
    assert.equal((await fetch(`${origin}/explorer/assets/index.js`)).status, 404);
    const post = await fetch(`${origin}/`, { method: 'POST' });
    assert.deepEqual(await post.json(), { reached: 'next' });
  });
});

describe('the GraphQL IDE before `npm run build:web`', () => {
  test('the page answers 503 with what to run, and the API is untouched', async (t) => {
    const app = express();
    app.use(ideRoutes(loadConfig({ NODE_ENV: 'test' }), '/nonexistent/tangent-ide'));
    app.post('/graphql', (_req, res) => res.json({ reached: 'api' }));
    const server = createHttpServer(app).listen(0, '127.0.0.1');
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await once(server, 'listening');
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const page = await fetch(`${origin}/graphql`, { headers: { accept: BROWSER_ACCEPT } });
    assert.equal(page.status, 503);
    assert.match(await page.text(), /run npm run build:web/);
    const api = await fetch(`${origin}/graphql`, { method: 'POST' });
    assert.deepEqual(await api.json(), { reached: 'api' });
  });
});
