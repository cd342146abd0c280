import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { createApiKey } from '../src/modules/api-keys/service.js';
import { migrate } from '../src/platform/db/migrate.js';
import { LeasedLimiter, leaseSize, sharedLimiter } from '../src/platform/http/rate-limit.js';
import { cleanupStack } from './helpers/cleanup.js';
import { codes } from './helpers/fixtures.js';
import { createTestDatabase, quietLog } from './helpers/database.js';
import { startTestServer } from './helpers/server.js';

/**
 * Issue 17: servers cache verified keys (src/platform/auth/authenticate.ts), and a revocation still takes
 * effect at once, on the server that revoked the key and on every other server on the database,
 * which hear of it through LISTEN/NOTIFY. And usage limits, spent in leases rather than a
 * database write per request, still hold across replicas exactly.
 */

type Answer = { status: number; body: { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] } };

async function post(url: string, query: string, secret: string, variables?: Record<string, unknown>): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` }, body: JSON.stringify({ query, variables }) });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

const VIEWER = `{ viewer { role } }`;
const REVOKE = `mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`;

/** Asks until the answer is refused or `withinMs` has passed; the last answer. A bound, not a timing. */
async function refusedWithin(url: string, secret: string, withinMs: number): Promise<Answer> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const answer = await post(url, VIEWER, secret);
    if (answer.status === 401 || Date.now() >= deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('revoked keys are refused at once although verified keys are cached', () => {
  test('a key used many times, then revoked: its next request is UNAUTHENTICATED; another key still answers', async (t) => {
    const defer = cleanupStack(t);
    const api = defer(await startTestServer({ env: { TANGENT_AUTH: 'on' } }), (s) => s.close());
    const admin = (await createApiKey(api.db, { name: 'admin', role: 'ADMIN' })).secret;
    const reader = await createApiKey(api.db, { name: 'reader', role: 'READER' });
    for (let i = 0; i < 5; i++) assert.deepEqual((await post(api.url, VIEWER, reader.secret)).body.data, { viewer: { role: 'READER' } });

    const revoked = await post(api.url, REVOKE, admin, { id: String(reader.key.id) });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const refused = await refusedWithin(api.url, reader.secret, 1000);
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.deepEqual(codes(refused.body), ['UNAUTHENTICATED']);
    assert.deepEqual((await post(api.url, VIEWER, admin)).body.data, { viewer: { role: 'ADMIN' } });
  });

  test('two servers on one PostgreSQL database: a key revoked through one is refused by the other within a second', { skip: process.env.DATABASE_URL ? false : 'needs DATABASE_URL: the embedded database serves one process, so replicas need PostgreSQL' }, async (t) => {
    const defer = cleanupStack(t);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    const env = { TANGENT_AUTH: 'on' };
    const first = defer(await startTestServer({ env, testDb }), (s) => s.stop());
    const second = defer(await startTestServer({ env, testDb }), (s) => s.stop());
    const admin = (await createApiKey(first.db, { name: 'admin', role: 'ADMIN' })).secret;
    const reader = await createApiKey(first.db, { name: 'reader', role: 'READER' });
    // Both servers have verified (and cached) the key.
    for (const server of [first, second]) for (let i = 0; i < 3; i++) assert.equal((await post(server.url, VIEWER, reader.secret)).status, 200);

    assert.equal((await post(first.url, REVOKE, admin, { id: String(reader.key.id) })).status, 200);
    const refused = await refusedWithin(second.url, reader.secret, 1000);
    assert.equal(refused.status, 401, `the second server still served the revoked key after a second: ${JSON.stringify(refused.body)}`);
    assert.deepEqual(codes(refused.body), ['UNAUTHENTICATED']);

    // Nothing negative is cached: a key made now works on the other server at once.
    const fresh = await createApiKey(first.db, { name: 'fresh', role: 'WRITER' });
    assert.deepEqual((await post(second.url, VIEWER, fresh.secret)).body.data, { viewer: { role: 'WRITER' } });
  });
});

describe('usage limits spent in leases', () => {
  test('two replicas leasing one key\'s budget from PostgreSQL serve exactly the limit together, in a fraction of the round trips', { skip: process.env.DATABASE_URL ? false : 'needs DATABASE_URL: leases are how replicas share a PostgreSQL count' }, async (t) => {
    const defer = cleanupStack(t);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    const limit = 1000;
    assert.equal(leaseSize(limit), 5);
    let roundTrips = 0;
    const replicas = [];
    for (let r = 0; r < 2; r++) {
      const db = defer(await testDb.open(), (d) => d.close());
      if (r === 0) await migrate(db, quietLog);
      const store = sharedLimiter(db, 'requests', limit, 60);
      const consume = store.consume.bind(store);
      store.consume = (key, points, options) => {
        roundTrips++;
        return consume(key, points, options);
      };
      replicas.push(new LeasedLimiter(store, limit, leaseSize(limit)));
    }
    // 20 requests at a time on each replica, 1,320 in all: more than the limit.
    const waves = 33;
    let served = 0;
    let refused = 0;
    for (let wave = 0; wave < waves; wave++) {
      const outcomes = await Promise.allSettled(replicas.flatMap((replica) => Array.from({ length: 20 }, () => replica.consume('key:1'))));
      for (const outcome of outcomes) {
        if (outcome.status === 'fulfilled') served++;
        else if (outcome.reason instanceof RateLimiterRes) refused++;
        else throw outcome.reason;
      }
    }
    assert.equal(served, limit, 'neither more nor less than the limit is served');
    assert.equal(refused, waves * 40 - limit);
    assert.ok(roundTrips <= limit / 5 + 4, `${roundTrips} round trips for ${limit} points in leases of 5`);
  });
});
