import { defineConfig } from 'prisma/config';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';

// The Prisma CLI's classic engines are binaries it downloads on first use, which a machine with only
// the npm registry cannot. With the JS schema engine over an in-memory PGlite, `prisma generate` and
// `prisma migrate diff --script` need nothing beyond node_modules. The schema's datasource must
// still resolve its url for the CLI to read the generator's engineType, hence the placeholder;
// at run time the client always goes through a driver adapter and never reads it.
process.env.DATABASE_URL ??= 'postgresql://placeholder@localhost/placeholder';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  experimental: { adapter: true },
  engine: 'js',
  // (cast: the adapter is typed against an older @prisma/driver-adapter-utils, see src/platform/db/database.ts)
  adapter: async () => new PrismaPGlite(new PGlite()) as never,
});
