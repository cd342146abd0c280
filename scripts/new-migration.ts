/**
 * `npm run migration:new -- <name>`: writes the SQL that takes the database from the schema of the
 * newest migration to the current prisma/schema.prisma. Each migration folder keeps a snapshot of
 * the schema it produces, because Prisma's offline (wasm) engine can diff two schema files but
 * cannot replay a migrations folder. `npm run migration:new -- --check` exits 1 if a diff exists.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const migrations = join(root, 'prisma', 'migrations');
const schema = join(root, 'prisma', 'schema.prisma');

const latest = readdirSync(migrations, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(migrations, e.name, 'schema.prisma')))
  .map((e) => e.name)
  .sort()
  .at(-1);
if (!latest) throw new Error('No migration has a schema.prisma snapshot to diff from');

const sql = execFileSync(
  join(root, 'node_modules', '.bin', 'prisma'),
  ['migrate', 'diff', '--from-schema-datamodel', join(migrations, latest, 'schema.prisma'), '--to-schema-datamodel', schema, '--script'],
  { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
const empty = !/\b(CREATE|ALTER|DROP)\b/i.test(sql);
const arg = process.argv[2];

if (arg === '--check') {
  if (!empty) {
    process.stderr.write(`prisma/schema.prisma differs from the migrations (newest: ${latest}); run npm run migration:new -- <name>:\n${sql}`);
    process.exit(1);
  }
  process.stdout.write(`schema.prisma matches the migrations (newest: ${latest})\n`);
} else {
  if (!arg || !/^[a-z0-9_]+$/.test(arg)) throw new Error('usage: npm run migration:new -- <snake_case_name> | --check');
  if (empty) {
    process.stdout.write('schema.prisma has no changes since the newest migration\n');
    process.exit(0);
  }
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const dir = join(migrations, `${stamp}_${arg}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'migration.sql'), sql);
  copyFileSync(schema, join(dir, 'schema.prisma'));
  process.stdout.write(`wrote ${dir}/migration.sql\n`);
}
