import { Worker } from 'node:worker_threads';

/**
 * Starts the worker-thread module `specifier` (written as an import is, `./worker.js`) next to
 * the calling module `from` (its `import.meta.url`).
 *
 * Built (dist/), that is the `.js` file itself. Run from the TypeScript sources through tsx (dev,
 * tests, TANGENT_FROM_SOURCE=1), the caller is a `.ts` file and a worker does not inherit tsx's
 * loader, so the thread starts from a one-line bootstrap that registers tsx and then imports the
 * `.ts` module.
 */
export function startWorkerThread(from: string, specifier: string): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(specifier, from));
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL(specifier.replace(/\.js$/, '.ts'), from).href;
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true });
}
