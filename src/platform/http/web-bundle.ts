import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

/**
 * What the IDE (ide.ts) and the Explorer (explorer.ts) have in common: a single-page app that
 * `npm run build:web` writes under dist/web/<name>, served from Tangent's own origin with no CDN.
 */

/**
 * A page's Content-Security-Policy: everything from this origin, nothing from anywhere else, so a
 * dependency that reached for a CDN fails loudly rather than works only online. Monaco and the chart
 * libraries set inline styles (hence 'unsafe-inline' for styles only); workers are bundled files
 * (blob: for a library that makes one from a bundled script); `connect-src 'self'` covers the page's
 * own ws:// and wss:// for subscriptions. `formAction` is the one difference between the two apps:
 * the Explorer's forms may submit to this origin, the IDE's may not submit anywhere.
 */
export function bundleCsp(formAction: "'self'" | "'none'"): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "worker-src 'self' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    `form-action ${formAction}`,
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Where `npm run build:web` writes the app `name` (web/vite.config.ts, web/explorer/vite.config.ts), found from the package root. */
export function builtBundleDirectory(name: 'ide' | 'explorer'): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  // Walk up rather than count levels: this file runs from src/ under tsx and from a build output too.
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return join(dir, 'dist', 'web', name);
}

/** Answers the app's index.html under its policy, or 503 with `unbuilt` (what to run) when it was never built. */
export async function sendBundlePage(res: Response, next: NextFunction, directory: string, csp: string, unbuilt: string): Promise<void> {
  let html: string;
  try {
    html = await readFile(join(directory, 'index.html'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return next(error);
    res.status(503).type('text/plain').send(unbuilt);
    return;
  }
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('Cache-Control', 'no-cache');
  res.type('html').send(html);
}

/**
 * The app's files (scripts, styles, workers, fonts), then 404 naming the app for anything else.
 * File names carry a content hash, so a browser may keep them for good. The policy goes on every
 * file too: workers run under their own script's policy, and the built index.html is reachable here
 * as well.
 */
export function bundleAssets(directory: string, csp: string, what: string): RequestHandler[] {
  return [
    express.static(directory, { index: false, immutable: true, maxAge: '365d', setHeaders: (res) => res.setHeader('Content-Security-Policy', csp) }),
    (_req: Request, res: Response) => {
      res.status(404).type('text/plain').send(`No such file in ${what}\n`);
    },
  ];
}
