import type { Database } from '../../platform/db/database.js';
import type { ApiKey } from '../../platform/db/generated/client.js';
import type { Role } from '../../platform/auth/roles.js';

export type ApiKeyRow = ApiKey;

export interface VerifiedKey {
  id: number;
  name: string;
  role: Role;
}

/** Stores a new key: its name, role, visible prefix and the hash of its secret (never the secret). */
export function insertApiKey(db: Database, data: { name: string; role: Role; prefix: string; hash: string }): Promise<ApiKeyRow> {
  return db.prisma.apiKey.create({ data });
}

export function findApiKeyById(db: Database, id: number): Promise<ApiKeyRow | null> {
  return db.prisma.apiKey.findUnique({ where: { id } });
}

/** Marks a key revoked now; returns it as stored after. */
export function markApiKeyRevoked(db: Database, id: number): Promise<ApiKeyRow> {
  return db.prisma.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
}

function keyWhere(includeRevoked: boolean) {
  return includeRevoked ? {} : { revokedAt: null };
}

/** Up to `take` keys with ids above `after`, by id; revoked ones only when asked. */
export function apiKeyPage(db: Database, includeRevoked: boolean, after: number | null, take: number): Promise<ApiKeyRow[]> {
  return db.prisma.apiKey.findMany({ where: { ...keyWhere(includeRevoked), ...(after === null ? {} : { id: { gt: after } }) }, orderBy: { id: 'asc' }, take });
}

export function countApiKeys(db: Database, includeRevoked: boolean): Promise<number> {
  return db.prisma.apiKey.count({ where: keyWhere(includeRevoked) });
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
