import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { UnauthenticatedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { findLiveKey, touchApiKey } from './keys.js';
import { OPEN_CALLER, type Caller } from './roles.js';

/** How often a key's `lastUsedAt` is written, at most, per process. */
const TOUCH_EVERY_MS = 60_000;

/**
 * Turns an `Authorization` header into a Caller, for HTTP and WebSocket alike. A missing header is
 * the open caller when the server runs open, UNAUTHENTICATED otherwise; a header that is present is
 * always checked (a wrong key is refused even by an open server, and a valid one brings its role).
 * Database failures propagate as they are (the caller maps them to DATABASE_UNAVAILABLE).
 */
export class Authenticator {
  private readonly touched = new Map<number, number>();

  constructor(
    private readonly db: Database,
    private readonly config: Pick<Config, 'authRequired'>,
    private readonly log: Logger,
  ) {}

  async authenticate(authorization: string | undefined | null): Promise<Caller> {
    if (authorization === undefined || authorization === null || authorization === '') {
      if (!this.config.authRequired) return OPEN_CALLER;
      throw new UnauthenticatedError();
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match) throw new UnauthenticatedError('The Authorization header must read `Bearer <key>`');
    const key = await findLiveKey(this.db, match[1]!);
    if (!key) throw new UnauthenticatedError('The API key is not valid: unknown or revoked');
    this.touch(key.id);
    return { role: key.role, key: { id: key.id, name: key.name } };
  }

  private touch(id: number): void {
    const now = Date.now();
    if (now - (this.touched.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    this.touched.set(id, now);
    touchApiKey(this.db, id).catch((error: unknown) => this.log.debug({ err: error, keyId: id }, 'could not record key use'));
  }
}
