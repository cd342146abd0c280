import type { Command } from 'commander';
import type { Api } from './api.js';
import { envOverrides, reportError, withEnvironment } from './shared.js';

/**
 * `tangent keys create|list|revoke`: API keys through the `createApiKey`, `apiKeys` and
 * `revokeApiKey` operations. Directly on the database by default (so the first admin key can be
 * made before any key exists; with the embedded database the server must be stopped first), or
 * with `--url` through a running server, with an ADMIN `--api-key` where the server requires keys.
 */
interface KeysOptions {
  url?: string;
  apiKey?: string;
  /** The database flags (--database-url, --data-dir). */
  [flag: string]: unknown;
}

interface ApiKeyRow {
  id: string;
  name: string;
  role: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const KEY = 'id name role prefix createdAt lastUsedAt revokedAt';

/** The options every keys subcommand takes: where the keys are. */
function withTarget(command: Command): Command {
  command
    .option('--url <url>', 'go through a running server (e.g. http://127.0.0.1:4000) instead of the database')
    .option('--api-key <key>', 'an ADMIN key for --url, when the server requires one');
  return withEnvironment(command, ['database']);
}

/** Runs `fn` on the API the options name; errors are printed and exit 1. */
async function withApi(opts: KeysOptions, fn: (api: Api) => Promise<void>): Promise<void> {
  let api: Api | null = null;
  try {
    const { directApi, httpApi } = await import('./api.js');
    api = opts.url ? httpApi(opts.url, opts.apiKey) : await directApi({ command: 'keys', env: envOverrides(opts) });
    await fn(api);
  } catch (error) {
    reportError('keys', error);
    process.exitCode = 1;
  } finally {
    await api?.close().catch(() => undefined);
  }
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('create, list and revoke API keys (in the database, or through a server with --url)');

  withTarget(
    keys
      .command('create')
      .description('make a key and print its secret, once')
      .requiredOption('--name <name>', 'what the key is for, e.g. ci')
      .option('--role <role>', 'reader, writer or admin', 'reader')
      .option('--json', 'print {id, name, role, prefix, secret} as JSON'),
  ).action(async (opts: KeysOptions & { name: string; role: string; json?: boolean }) => {
    await withApi(opts, async (api) => {
      const { createApiKey } = await api.request<{ createApiKey: { apiKey: ApiKeyRow; secret: string } }>(
        `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { ${KEY} } } }`,
        { input: { name: opts.name, role: opts.role.toUpperCase() } },
      );
      const { apiKey: key, secret } = createApiKey;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ id: Number(key.id), name: key.name, role: key.role, prefix: key.prefix, secret })}\n`);
      } else {
        process.stderr.write(`API key ${key.id} "${key.name}" (${key.role.toLowerCase()}). The secret is shown once; store it now:\n`);
        process.stdout.write(`${secret}\n`);
      }
    });
  });

  withTarget(
    keys
      .command('list')
      .description('list keys (no secrets)')
      .option('--all', 'include revoked keys')
      .option('--json', 'print one JSON object per key'),
  ).action(async (opts: KeysOptions & { all?: boolean; json?: boolean }) => {
    await withApi(opts, async (api) => {
      let after: string | null = null;
      do {
        const { apiKeys: page }: { apiKeys: { nodes: ApiKeyRow[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } = await api.request(
          `query($after: String, $all: Boolean) { apiKeys(first: 1000, after: $after, includeRevoked: $all) { nodes { ${KEY} } pageInfo { hasNextPage endCursor } } }`,
          { after, all: opts.all ?? false },
          { idempotent: true },
        );
        for (const k of page.nodes) {
          const row = { ...k, id: Number(k.id) };
          process.stdout.write(
            opts.json
              ? `${JSON.stringify(row)}\n`
              : `${String(k.id).padStart(5)}  ${k.prefix}…  ${k.role.toLowerCase().padEnd(6)}  ${k.revokedAt ? `revoked ${k.revokedAt}` : 'active'}  ${k.name}\n`,
          );
        }
        after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      } while (after);
    });
  });

  withTarget(
    keys
      .command('revoke')
      .description('revoke a key: it stops working at once, on every server of the database')
      .argument('<id>', 'the key id (see keys list)'),
  ).action(async (id: string, opts: KeysOptions) => {
    if (!/^[1-9][0-9]{0,9}$/.test(id)) {
      process.stderr.write(`tangent keys: not a key id: ${id}\n`);
      process.exitCode = 1;
      return;
    }
    await withApi(opts, async (api) => {
      // The mutation also tells servers on the same database to close the key's WebSocket connections.
      const { revokeApiKey: key } = await api.request<{ revokeApiKey: ApiKeyRow }>(`mutation($id: ID!) { revokeApiKey(id: $id) { ${KEY} } }`, { id });
      process.stderr.write(`API key ${key.id} "${key.name}" revoked at ${key.revokedAt}\n`);
    });
  });
}
