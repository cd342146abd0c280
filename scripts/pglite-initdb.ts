/**
 * `npm run build:initdb`: writes dist/platform/db/pglite-initdb-<version>.tar.gz, a dump of a freshly
 * initialised PGlite cluster, from which a new embedded data folder starts instead of running
 * initdb (src/platform/db/pglite-initdb.ts). Run after build:server; the dump has no Tangent tables (the
 * server migrates as always), so it depends on the PGlite release alone.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { initdbDumpFile } from '../src/platform/db/pglite-initdb.js';

const out = join(fileURLToPath(new URL('../dist/platform/db/', import.meta.url)), basename(initdbDumpFile()));
const db = await PGlite.create();
const dump = await db.dumpDataDir('gzip');
await db.close();
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.partial`, Buffer.from(await dump.arrayBuffer()));
renameSync(`${out}.partial`, out);
process.stdout.write(`wrote ${out} (${dump.size} bytes)\n`);
