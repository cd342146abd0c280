import { useSyncExternalStore } from 'react';

/**
 * Hash routing with a query inside the hash: `#/samples/12?checkpoint=3`. wouter's own hash hook
 * (wouter/use-hash-location) keeps the query in the route path (so `/samples/:id` would not match)
 * and writes a navigation's query before the `#`; this hook splits the hash at `?` instead, so the
 * server only ever serves `/` and every page of the Explorer is one bookmarkable fragment.
 */
function subscribe(onChange: () => void): () => void {
  addEventListener('hashchange', onChange);
  return () => removeEventListener('hashchange', onChange);
}

function hashBody(): string {
  return location.hash.replace(/^#?\/?/, '');
}

function currentPath(): string {
  return '/' + (hashBody().split('?')[0] ?? '');
}

function currentSearch(): string {
  const body = hashBody();
  const at = body.indexOf('?');
  return at < 0 ? '' : body.slice(at + 1);
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const hash = '#' + (to.startsWith('/') ? to : '/' + to);
  if (options.replace) location.replace(hash);
  else location.hash = hash;
}

export function useHashPath(): [string, typeof navigate] {
  return [useSyncExternalStore(subscribe, currentPath, () => '/'), navigate];
}

export function useHashSearch(): string {
  return useSyncExternalStore(subscribe, currentSearch, () => '');
}

/** The href a route path is written as in a link. */
export const hashHref = (path: string): string => '#' + path;
