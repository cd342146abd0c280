import type { Config } from '../config.js';
import { UnauthenticatedError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PubSub } from '../pubsub.js';
import { OPEN_CALLER, type Caller, type Role } from './roles.js';

/** A key that is live (not revoked): who it is and the role it brings. */
export interface VerifiedKey {
  id: number;
  name: string;
  role: Role;
}

/**
 * Where the Authenticator finds keys: implemented over the api-keys module's storage and given by
 * the server (the platform knows no module). Keys are looked up by the hash of their secret.
 */
export interface KeyLookup {
  /** The hash a presented secret is stored under, or null when it is not shaped like a key (nothing is looked up). */
  hashOf(secret: string): string | null;
  /** The live key with this hash, or null. Database failures propagate. */
  findLiveKeyByHash(hash: string): Promise<VerifiedKey | null>;
  /** Records that a key was used (for listings); throttled here, a failure only costs the record. */
  touch(id: number): Promise<void>;
}

/** How often a key's `lastUsedAt` is written, at most, per process. */
const TOUCH_EVERY_MS = 60_000;
/**
 * How long a verified key is believed without asking the database again. Revocation does not wait
 * for this (it is announced, see Authenticator); the bound only matters if an announcement is lost
 * (the listening connection dropped at that moment), and keeps a deleted row from living on.
 */
const VERIFIED_TTL_MS = 10_000;
/** Verified keys kept, at most; past it the cache is emptied (keys are few; this is against growth, not eviction policy). */
const VERIFIED_MAX = 10_000;

/**
 * Turns an `Authorization` header into a Caller, for HTTP and WebSocket alike. A missing header is
 * the open caller when the server runs open, UNAUTHENTICATED otherwise; a header that is present is
 * always checked (a wrong key is refused even by an open server, and a valid one brings its role).
 * Database failures propagate as they are (the caller maps them to DATABASE_UNAVAILABLE).
 *
 * Verified keys are cached by hash for VERIFIED_TTL_MS, so a busy key costs no database round trip
 * per request. Given `revocations` (the server's PubSub over LISTEN/NOTIFY), a revoked key is
 * dropped from every server's cache as soon as the `apiKeyRevoked` event arrives, which is what
 * keeps revocation immediate on all replicas; without it nothing is cached. Unknown and revoked
 * keys are never cached: a new key works at once, a wrong one is looked up every time (and counted
 * against its address's failure limit).
 */
export class Authenticator {
  private readonly touched = new Map<number, number>();
  private readonly verified = new Map<string, { key: VerifiedKey; until: number }>();
  /** Bumped by every revocation: a lookup that began before one does not fill the cache. */
  private generation = 0;
  private readonly stopped = new AbortController();
  private ttlMs: number;

  constructor(
    private readonly keys: KeyLookup,
    private readonly config: Pick<Config, 'authRequired'>,
    private readonly log: Logger,
    revocations?: PubSub,
  ) {
    this.ttlMs = revocations ? VERIFIED_TTL_MS : 0;
    if (revocations) void this.follow(revocations);
  }

  /** Stops following revocations (server shutdown). */
  close(): void {
    this.stopped.abort();
    this.verified.clear();
  }

  /** Forgets a key at once: every cached entry of it, and any lookup of it still in flight. */
  forget(keyId: number): void {
    this.generation++;
    for (const [hash, entry] of this.verified) if (entry.key.id === keyId) this.verified.delete(hash);
  }

  private async follow(pubsub: PubSub): Promise<void> {
    try {
      for await (const { keyId } of pubsub.subscribe('apiKeyRevoked', this.stopped.signal)) this.forget(keyId);
    } catch (error) {
      if (!this.stopped.signal.aborted) {
        // Without the feed a cached key could outlive its revocation: stop caching.
        this.log.error({ err: error }, 'stopped following key revocations; keys are checked on every request from now on');
        this.ttlMs = 0;
        this.verified.clear();
      }
    }
  }

  async authenticate(authorization: string | undefined | null): Promise<Caller> {
    if (authorization === undefined || authorization === null || authorization === '') {
      if (!this.config.authRequired) return OPEN_CALLER;
      throw new UnauthenticatedError();
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match) throw new UnauthenticatedError('The Authorization header must read `Bearer <key>`');
    const hash = this.keys.hashOf(match[1]!);
    const key = hash === null ? null : await this.lookup(hash);
    if (!key) throw new UnauthenticatedError('The API key is not valid: unknown or revoked');
    this.touch(key.id);
    return { role: key.role, key: { id: key.id, name: key.name } };
  }

  private async lookup(hash: string): Promise<VerifiedKey | null> {
    const now = Date.now();
    const cached = this.verified.get(hash);
    if (cached && now < cached.until) return cached.key;
    const generation = this.generation;
    const key = await this.keys.findLiveKeyByHash(hash);
    if (!key) {
      this.verified.delete(hash);
    } else if (this.ttlMs > 0 && generation === this.generation) {
      if (this.verified.size >= VERIFIED_MAX) this.verified.clear();
      this.verified.set(hash, { key, until: now + this.ttlMs });
    }
    return key;
  }

  private touch(id: number): void {
    const now = Date.now();
    if (now - (this.touched.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    this.touched.set(id, now);
    this.keys.touch(id).catch((error: unknown) => this.log.debug({ err: error, keyId: id }, 'could not record key use'));
  }
}
