import { createHash, randomBytes } from 'node:crypto';

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

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Whether a string has the shape of a key (`tgt_` and 43 base64url characters): nothing else is looked up. */
export function isKeyShaped(secret: string): boolean {
  return KEY_PATTERN.test(secret);
}

/** A new key: the whole secret (shown once), the part a listing shows, and the hash that is stored. */
export function newSecret(): { secret: string; prefix: string; hash: string } {
  const secret = KEY_PREFIX + randomBytes(SECRET_BYTES).toString('base64url');
  return { secret, prefix: secret.slice(0, VISIBLE_CHARS), hash: hashSecret(secret) };
}
