import { z } from 'zod';
import type { Database } from '../../platform/db/database.js';
import { BadUserInputError, NotFoundError } from '../../platform/errors.js';
import { afterId, pageSize, toConnection } from '../../platform/graphql/pagination.js';
import type { ConnectionRow } from '../../platform/graphql/rows.js';
import { ROLES, type Role } from '../../platform/auth/roles.js';
import type { KeyLookup } from '../../platform/auth/authenticate.js';
import { hashSecret, isKeyShaped, newSecret } from './secret.js';
import { apiKeyPage, countApiKeys, findApiKeyById, findLiveKeyByHash, insertApiKey, markApiKeyRevoked, touchApiKey, type ApiKeyRow, type VerifiedKey } from './storage.js';

export type { ApiKeyRow, VerifiedKey } from './storage.js';

export interface NewApiKey {
  key: ApiKeyRow;
  /** The whole key. Shown once: only its hash is stored. */
  secret: string;
}

export const ApiKeyInput = z.object({
  name: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(100, 'must be at most 100 characters')
    .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
  role: z.enum(ROLES as [Role, ...Role[]]),
});

export async function createApiKey(db: Database, input: { name: string; role: string }): Promise<NewApiKey> {
  const parsed = ApiKeyInput.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadUserInputError(`${issue.path.join('.')}: ${issue.message}`, issue.path.join('.'));
  }
  const { secret, prefix, hash } = newSecret();
  const key = await insertApiKey(db, { name: parsed.data.name, role: parsed.data.role, prefix, hash });
  return { key, secret };
}

/** The stored key with this id, or null (the viewer's own key). */
export function apiKeyById(db: Database, id: number): Promise<ApiKeyRow | null> {
  return findApiKeyById(db, id);
}

/**
 * Revokes a key. Servers cache verified keys for seconds (src/platform/auth/authenticate.ts): whoever
 * revokes publishes `apiKeyRevoked` (the revokeApiKey resolver does), which every server on the
 * database hears through LISTEN/NOTIFY and drops the key at once. Revoking a revoked key keeps its first revocation time. */
export async function revokeApiKey(db: Database, id: number): Promise<ApiKeyRow> {
  const key = await findApiKeyById(db, id);
  if (!key) throw new NotFoundError('ApiKey', id);
  if (key.revokedAt) return key;
  return markApiKeyRevoked(db, id);
}

export async function listApiKeys(
  db: Database,
  args: { first?: number | null; after?: string | null; includeRevoked?: boolean | null },
  maxPageSize: number,
): Promise<ConnectionRow<ApiKeyRow>> {
  const limit = pageSize(args.first, maxPageSize);
  const after = afterId('apiKeys', args.after);
  const includeRevoked = Boolean(args.includeRevoked);
  const rows = limit === 0 ? [] : await apiKeyPage(db, includeRevoked, after, limit + 1);
  return toConnection('apiKeys', rows, limit, (row) => [row.id], () => countApiKeys(db, includeRevoked));
}

/**
 * The live key whose secret this is, or null (malformed, unknown or revoked). One indexed lookup;
 * the Authenticator caches what it finds (see there for how revocation stays immediate).
 */
export async function findLiveKey(db: Database, secret: string): Promise<VerifiedKey | null> {
  if (!isKeyShaped(secret)) return null;
  return findLiveKeyByHash(db, hashSecret(secret));
}

/** How the server's Authenticator (src/platform/auth/authenticate.ts) finds keys in this database. */
export function keyLookup(db: Database): KeyLookup {
  return {
    hashOf: (secret) => (isKeyShaped(secret) ? hashSecret(secret) : null),
    findLiveKeyByHash: (hash) => findLiveKeyByHash(db, hash),
    touch: (id) => touchApiKey(db, id),
  };
}
