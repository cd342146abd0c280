import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import express, { Router, type Request, type Response } from 'express';
import { defaultIdeDirectory } from './ide.js';

/**
 * The Explorer's Content-Security-Policy: everything from this origin, nothing from anywhere else, so
 * a dependency that reached for a CDN fails loudly rather than works only online. Chart libraries set
 * inline styles (hence 'unsafe-inline' for styles only); workers are bundled files (blob: for a
 * library that makes one from a bundled script); `connect-src 'self'` covers the page's own ws:// and
 * wss:// for subscriptions.
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
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Where `npm run build:web` writes the Explorer (web/explorer/vite.config.ts): beside the IDE's bundle. */
export function defaultExplorerDirectory(): string {
  return join(defaultIdeDirectory(), '..', 'explorer');
}

/**
 * The Explorer (built from web/explorer into dist/web/explorer) on Tangent's own origin:
 *
 * - `GET /` answers its page (one page: the Explorer routes in the URL's hash);
 * - `GET /explorer/…` serves the bundle (scripts, styles, workers), names carrying content hashes.
 *
 * The page and its assets are public and hold no data; everything the Explorer shows it asks the
 * GraphQL API for, with the user's key, through the same authentication and limits as any client.
 * Unlike the IDE it needs no introspection (its queries are compiled in), so it is served in
 * production too.
 */
export function explorerRoutes(directory: string = defaultExplorerDirectory()): Router {
  const router = Router();
  router.use((req, _res, next) => (req.method === 'GET' || req.method === 'HEAD' ? next() : next('router')));

  router.get('/', async (_req, res, next) => {
    let html: string;
    try {
      html = await readFile(join(directory, 'index.html'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return next(error);
      res.status(503).type('text/plain').send('The Explorer is not built: run npm run build:web. The API itself works: POST GraphQL requests to /graphql; the GraphQL IDE is at /graphql.\n');
      return;
    }
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(html);
  });

  router.use(
    '/explorer',
    express.static(directory, { index: false, immutable: true, maxAge: '365d', setHeaders: (res) => res.setHeader('Content-Security-Policy', CSP) }),
    (_req: Request, res: Response) => {
      res.status(404).type('text/plain').send('No such file in the Explorer\n');
    },
  );
  return router;
}
