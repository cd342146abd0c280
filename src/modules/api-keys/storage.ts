import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Database } from '../../platform/db/database.js';
import type { ApiKey } from '../../platform/db/generated/client.js';
import { BadUserInputError, NotFoundError } from '../../platform/errors.js';
import { afterId, pageSize, toConnection } from '../../platform/graphql/pagination.js';
import type { ConnectionRow } from '../../platform/graphql/rows.js';
import { ROLES, type Role } from '../../platform/auth/roles.js';

/**
 * API keys: `tgt_` followed by 43 base64url characters (256 random bits). The database keeps the
 * SHA-256 of the secret and its first characters, never the secret. A fast hash is right here,
 * unlike for passwords: a 256-bit random secret cannot be guessed from its hash however many
 * hashes per second an attacker computes, and a slow hash (bcrypt, scrypt) would add tens of
 * milliseconds to every request for no gain. Lookups go by hash through a unique index.
 */
export const KEY_PREFIX = 'tgt_';
const SECRET_BYTES = 32;
/** How much of the secret a listing shows: the `tgt_` tag and 8 characters (48 bits, not enough to use). */
const VISIBLE_CHARS = KEY_PREFIX.length + 8;
const KEY_PATTERN = /^tgt_[A-Za-z0-9_-]{43}$/;

export type ApiKeyRow = ApiKey;

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

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export async function createApiKey(db: Database, input: { name: string; role: string }): Promise<NewApiKey> {
  const parsed = ApiKeyInput.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadUserInputError(`${issue.path.join('.')}: ${issue.message}`, issue.path.join('.'));
  }
  const secret = KEY_PREFIX + randomBytes(SECRET_BYTES).toString('base64url');
  const key = await db.prisma.apiKey.create({
    data: { name: parsed.data.name, role: parsed.data.role, prefix: secret.slice(0, VISIBLE_CHARS), hash: hashSecret(secret) },
  });
  return { key, secret };
}

/**
 * Revokes a key. Servers cache verified keys for seconds (src/platform/auth/authenticate.ts): whoever
 * revokes publishes `apiKeyRevoked` (the revokeApiKey resolver does), which every server on the
 * database hears through LISTEN/NOTIFY and drops the key at once. Revoking a revoked key keeps its first revocation time. */
export async function revokeApiKey(db: Database, id: number): Promise<ApiKeyRow> {
  const key = await db.prisma.apiKey.findUnique({ where: { id } });
  if (!key) throw new NotFoundError('ApiKey', id);
  if (key.revokedAt) return key;
  return db.prisma.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
}

export async function listApiKeys(
  db: Database,
  args: { first?: number | null; after?: string | null; includeRevoked?: boolean | null },
  maxPageSize: number,
): Promise<ConnectionRow<ApiKeyRow>> {
  const limit = pageSize(args.first, maxPageSize);
  const after = afterId('apiKeys', args.after);
  const where = args.includeRevoked ? {} : { revokedAt: null };
  const rows =
    limit === 0
      ? []
      : await db.prisma.apiKey.findMany({ where: { ...where, ...(after === null ? {} : { id: { gt: after } }) }, orderBy: { id: 'asc' }, take: limit + 1 });
  return toConnection('apiKeys', rows, limit, (row) => [row.id], () => db.prisma.apiKey.count({ where }));
}

export interface VerifiedKey {
  id: number;
  name: string;
  role: Role;
}

/** Whether a string has the shape of a key (`tgt_` and 43 base64url characters): nothing else is looked up. */
export function isKeyShaped(secret: string): boolean {
  return KEY_PATTERN.test(secret);
}

/**
 * The live key whose secret this is, or null (malformed, unknown or revoked). One indexed lookup;
 * the Authenticator caches what it finds (see there for how revocation stays immediate).
 */
export async function findLiveKey(db: Database, secret: string): Promise<VerifiedKey | null> {
  if (!isKeyShaped(secret)) return null;
  return findLiveKeyByHash(db, hashSecret(secret));
}

/** The live key with this hash (hashSecret), or null. */
export async function findLiveKeyByHash(db: Database, hash: string): Promise<VerifiedKey | null> {
  // named: auth.find_live_key
  const rows = await db.sql.query<{ id: number; name: string; role: Role }>(
    'SELECT id, name, role::text AS role FROM api_key WHERE hash = $1 AND revoked_at IS NULL',
    [hash],
  );
  return rows[0] ?? null;
}

/** Records that a key was used (for listings); callers throttle it, a failure only costs the record. */
export async function touchApiKey(db: Database, id: number): Promise<void> {
  // named: auth.touch_key
  await db.sql.query('UPDATE api_key SET last_used_at = now() WHERE id = $1', [id]);
}
