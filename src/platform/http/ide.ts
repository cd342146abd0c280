import { Router, type Request, type Response } from 'express';
import type { Config } from '../config.js';
import { builtBundleDirectory, bundleAssets, bundleCsp, sendBundlePage } from './web-bundle.js';

/** The IDE's page submits no forms. */
const CSP = bundleCsp("'none'");

/** Where `npm run build:web` writes the IDE (web/vite.config.ts). */
export function defaultIdeDirectory(): string {
  return builtBundleDirectory('ide');
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
    await sendBundlePage(res, next, directory, CSP, 'The GraphQL IDE is not built: run npm run build:web. The API itself works: POST GraphQL requests to /graphql.\n');
  });

  router.use('/ide', ...bundleAssets(directory, CSP, 'the GraphQL IDE'));
  return router;
}
