import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createApiKey } from '../src/auth/keys.js';
import { cleanupStack } from './helpers/cleanup.js';
import { codes } from './helpers/fixtures.js';
import { createTestDatabase } from './helpers/database.js';
import { startTestServer } from './helpers/server.js';

/**
 * Issue 17: servers cache verified keys (src/auth/authenticate.ts), and a revocation still takes
 * effect at once, on the server that revoked the key and on every other server on the database,
 * which hear of it through LISTEN/NOTIFY.
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
