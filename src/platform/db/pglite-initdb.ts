import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A new embedded data folder starts from a dump of a freshly initialised PGlite cluster that the
 * build writes next to this module (dist/platform/db/), instead of running initdb: initdb is most of a first
 * start (seconds of WebAssembly), loading the dump a fraction of it. The dump is only good for the
 * PGlite release that made it, so its name carries the version; from the sources, or after PGlite
 * changed without a rebuild, there is none and PGlite runs initdb as before.
 */
export function initdbDumpFile(): string {
  return fileFor(pgliteVersion());
}

/** The build's dump for the installed PGlite, if there is one. */
export function readInitdbDump(): Blob | undefined {
  const file = initdbDumpFile();
  return existsSync(file) ? new Blob([readFileSync(file)]) : undefined;
}

function fileFor(version: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), `pglite-initdb-${version}.tar.gz`);
}

function pgliteVersion(): string {
  // The package exports no ./package.json; it sits above the entry point that require resolves.
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  let dir = dirname(entry);
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}
