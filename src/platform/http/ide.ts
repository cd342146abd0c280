import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import type { Config } from '../config.js';

/**
 * The page's Content-Security-Policy: everything from this origin, nothing from anywhere else, so a
 * dependency that reached for a CDN would fail loudly rather than work only online. Monaco sets
 * inline styles (hence 'unsafe-inline' for styles only) and starts its workers from bundled files;
 * `connect-src 'self'` covers the page's own ws:// and wss:// for subscriptions.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Where `npm run build:web` writes the IDE (web/vite.config.ts), found from the package root. */
export function defaultIdeDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  // Walk up rather than count levels: this file runs from src/ under tsx and from a build output too.
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return join(dir, 'dist', 'web', 'ide');
}

/** True when the request is a browser navigating to the URL, not a GraphQL client asking a question. */
function wantsPage(req: Request): boolean {
  if (req.query.query !== undefined) return false;
  return req.accepts(['application/json', 'application/graphql-response+json', 'text/html']) === 'text/html';
}

/**
 * The GraphQL IDE (GraphiQL, built from web/ide into dist/web/ide) on Tangent's own origin, with
 * no CDN anywhere:
 *
 * - `GET /graphql` from a browser (accepts HTML, no `query` parameter) answers the IDE's page;
 *   GraphQL clients (POST, or GET with `query`) pass through to the API untouched.
 * - `GET /ide/assets/…` serves the bundle (scripts, styles, Monaco's workers, fonts).
 * - `GET /` is the Explorer's (src/platform/http/explorer.ts).
 *
 * The page and its assets are public: they are the same for everyone and hold no data. Every
 * request the IDE then makes carries the headers its user sets (`authorization: Bearer …`) and goes
 * through the API's authentication, limits and CSRF prevention like any other client's.
 *
 * The IDE is served only when introspection is on, since it builds its editor, explorer and docs
 * from the schema: off by default in production (NODE_ENV=production), where /graphql and /ide
 * answer 404 with a line saying why.
 */
export function ideRoutes(config: Config, directory: string = defaultIdeDirectory()): Router {
  const router = Router();
  // Only reads are the IDE's: an express router would otherwise answer OPTIONS for /graphql itself
  // (its automatic `Allow: GET, HEAD` reply) and so hide the API's CORS preflight.
  router.use((req, _res, next) => (req.method === 'GET' || req.method === 'HEAD' ? next() : next('router')));

  if (!config.introspection) {
    const off = (res: Response) =>
      res.status(404).type('text/plain').send('The GraphQL IDE is off because introspection is off (NODE_ENV=production, or TANGENT_INTROSPECTION=false). POST GraphQL requests to /graphql.\n');
    router.get('/graphql', (req, res, next) => (wantsPage(req) ? off(res) : next()));
    router.use('/ide', (_req, res) => off(res));
    return router;
  }

  router.get('/graphql', async (req, res, next) => {
    // The same URL answers a page or the API depending on Accept: caches must keep them apart.
    res.vary('Accept');
    if (!wantsPage(req)) return next();
    let html: string;
    try {
      html = await readFile(join(directory, 'index.html'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return next(error);
      res.status(503).type('text/plain').send('The GraphQL IDE is not built: run npm run build:web. The API itself works: POST GraphQL requests to /graphql.\n');
      return;
    }
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(html);
  });

  router.use(
    '/ide',
    // File names carry a content hash, so a browser may keep them for good.
    // The policy goes on every file too: workers run under their own script's policy, and the built
    // index.html is reachable here as well.
    express.static(directory, { index: false, immutable: true, maxAge: '365d', setHeaders: (res) => res.setHeader('Content-Security-Policy', CSP) }),
    (_req: Request, res: Response) => {
      res.status(404).type('text/plain').send('No such file in the GraphQL IDE\n');
    },
  );
  return router;
}
