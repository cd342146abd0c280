import { Router } from 'express';
import { builtBundleDirectory, bundleAssets, bundleCsp, sendBundlePage } from './web-bundle.js';

/** The Explorer's forms may submit to this origin only. */
const CSP = bundleCsp("'self'");

/** Where `npm run build:web` writes the Explorer (web/explorer/vite.config.ts): beside the IDE's bundle. */
export function defaultExplorerDirectory(): string {
  return builtBundleDirectory('explorer');
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
  router.get('/', (_req, res, next) =>
    sendBundlePage(res, next, directory, CSP, 'The Explorer is not built: run npm run build:web. The API itself works: POST GraphQL requests to /graphql; the GraphQL IDE is at /graphql.\n'),
  );
  router.use('/explorer', ...bundleAssets(directory, CSP, 'the Explorer'));
  return router;
}
