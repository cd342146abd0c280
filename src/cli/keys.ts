import type { Command } from 'commander';
import { createApiKey, listApiKeys, revokeApiKey } from '../auth/keys.js';
import type { Role } from '../auth/roles.js';
import { openDatabase, type Database } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { TangentError } from '../errors.js';
import { createLogger } from '../logger.js';
import { PubSub } from '../pubsub.js';
import { configOrExit } from './shared.js';

/**
 * `tangent keys create|list|revoke`: API keys, straight against the database (so the first admin
 * key can be made before any key exists). With the embedded database the server must be stopped
 * first (one process per data folder); against PostgreSQL it may run.
 */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('create, list and revoke API keys (directly in the database)');

  keys
    .command('create')
    .description('make a key and print its secret, once')
    .requiredOption('--name <name>', 'what the key is for, e.g. ci')
    .option('--role <role>', 'reader, writer or admin', 'reader')
    .option('--json', 'print {id, name, role, prefix, secret} as JSON')
    .action(async (opts: { name: string; role: string; json?: boolean }) => {
      await withDatabase(async (db) => {
        const { key, secret } = await createApiKey(db, { name: opts.name, role: opts.role.toUpperCase() as Role });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ id: key.id, name: key.name, role: key.role, prefix: key.prefix, secret })}\n`);
        } else {
          process.stderr.write(`API key ${key.id} "${key.name}" (${key.role.toLowerCase()}). The secret is shown once; store it now:\n`);
          process.stdout.write(`${secret}\n`);
        }
      });
    });

  keys
    .command('list')
    .description('list keys (no secrets)')
    .option('--all', 'include revoked keys')
    .option('--json', 'print one JSON object per key')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      await withDatabase(async (db) => {
        let after: string | null = null;
        do {
          const page = await listApiKeys(db, { first: 1000, after, includeRevoked: opts.all ?? false }, 1000);
          for (const { node: k } of page.edges) {
            const row = { id: k.id, name: k.name, role: k.role, prefix: k.prefix, createdAt: k.createdAt, lastUsedAt: k.lastUsedAt, revokedAt: k.revokedAt };
            process.stdout.write(
              opts.json
                ? `${JSON.stringify(row)}\n`
                : `${String(k.id).padStart(5)}  ${k.prefix}…  ${k.role.toLowerCase().padEnd(6)}  ${k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active'}  ${k.name}\n`,
            );
          }
          after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
        } while (after);
      });
    });

  keys
    .command('revoke')
    .description('revoke a key: it stops working at once')
    .argument('<id>', 'the key id (see keys list)')
    .action(async (id: string) => {
      if (!/^[1-9][0-9]{0,9}$/.test(id)) fail(`not a key id: ${id}`);
      await withDatabase(async (db, log) => {
        const key = await revokeApiKey(db, Number(id));
        // Servers on the same database close the key's open WebSocket connections on this event.
        const pubsub = await PubSub.start(db, log);
        await pubsub.publish('apiKeyRevoked', { keyId: key.id });
        await pubsub.close();
        process.stderr.write(`API key ${key.id} "${key.name}" revoked at ${key.revokedAt?.toISOString()}\n`);
      });
    });
}

async function withDatabase(fn: (db: Database, log: ReturnType<typeof createLogger>) => Promise<void>): Promise<void> {
  const config = configOrExit();
  const log = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  let db: Database;
  try {
    db = await openDatabase(config.database, log, { statementTimeoutMs: config.statementTimeoutMs });
  } catch (error) {
    fail(`cannot open the database: ${(error as Error).message}`);
  }
  let refused: string | null = null;
  try {
    await migrate(db, log);
    await fn(db, log);
  } catch (error) {
    if (!(error instanceof TangentError)) throw error;
    refused = error.message;
  } finally {
    await db.close();
  }
  if (refused) fail(refused);
}

function fail(message: string): never {
  process.stderr.write(`tangent keys: ${message}\n`);
  process.exit(1);
}
