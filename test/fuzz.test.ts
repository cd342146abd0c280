import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../src/modules/api-keys/service.js';
import { buildSchema } from '../src/modules/schema.js';
import {
  FAILURE_KINDS,
  badKeysThenValidKey,
  compareSnapshots,
  describeTally,
  emptyTally,
  generateProbes,
  healthy,
  runProbes,
  seedFuzzData,
  snapshotTables,
  type FuzzIds,
  type Keys,
  type Tally,
} from '../bench/hostile.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The seeded slice of `npm run bench:fuzz`: the same generator (bench/hostile.ts) and the same
 * judge, fewer random requests. Every reported case is in it (NUL and lone surrogates in every
 * String/ID argument and JSON value, 500-level JSON, persisted-query hashes, 2,000-level
 * selections, READER requests over terms nobody computed, export URLs with bad parameters), on HTTP
 * POST, HTTP GET and graphql-ws, against a server in production mode with keys required. Every
 * failure count must be zero and every table exactly as it was; a failure prints the first
 * requests of each kind, which send again as they are.
 */
const SEED = 20261129;
/** Requests in all: the fixed cases (about 500) and random arguments for every field for the rest. */
const REQUESTS = 1500;
const MAX_BODY = 1024 * 1024;
/** Limits that run without refusing, so hostile requests reach what they aim at. */
const OPEN = { TANGENT_RATE_LIMIT_PER_MIN: '100000000', TANGENT_AUTH_FAILURES_PER_MIN: '100000000' };

/** Fails with the counts and a reproduction of each failure kind that is not zero. */
function assertClean(tally: Tally, extra: Parameters<typeof describeTally>[1] = {}) {
  const nonzero = Object.fromEntries(FAILURE_KINDS.filter((k) => tally.counts[k] !== 0).map((k) => [k, tally.counts[k]]));
  const detail = [...describeTally(tally, extra), JSON.stringify(tally.samples, null, 1).slice(0, 20_000)].join('\n');
  assert.deepEqual(nonzero, {}, detail);
}

describe('fuzz: every hostile request gets a coded answer and changes nothing', () => {
  let t: TestServer | undefined;
  let limited: TestServer | undefined;
  let keys: Keys;
  let ids: FuzzIds;
  const origin = () => new URL(t!.url).origin;

  before(async () => {
    t = await startTestServer({ env: { NODE_ENV: 'production', TANGENT_AUTH: 'on', TANGENT_MAX_BODY_BYTES: String(MAX_BODY), ...OPEN } });
    // The bootstrap ADMIN key, as `tangent keys create` makes it; the others through the API.
    const adminKey = (await createApiKey(t.db, { name: 'fuzz', role: 'ADMIN' })).secret;
    ({ ids, keys } = await seedFuzzData(origin(), adminKey));
  });
  after(async () => {
    await limited?.stop();
    await t?.close();
  });

  test(`${REQUESTS} seeded hostile requests over HTTP and WebSocket`, async (tc) => {
    const probes = generateProbes({ seed: SEED, requests: REQUESTS, schema: buildSchema(), ids, maxBodyBytes: MAX_BODY });
    const query = async (sql: string) => t!.db.sql.query<Record<string, unknown>>(sql);
    const before = await snapshotTables(query);
    const tally = await runProbes(probes, { origin: origin(), keys, alive: () => healthy(origin()) });
    const written = compareSnapshots(before, await snapshotTables(query));
    tally.counts.rowsWrittenByFailedRequests = Math.max(written.rows, written.changed.length);
    for (const line of describeTally(tally, { rowsChanged: written.changed })) tc.diagnostic(line);
    assert.ok(tally.requests >= REQUESTS, `${tally.requests} requests`);
    assert.ok(tally.byTransport.ws > 100 && tally.byTransport['http-get'] > 100 && tally.byTransport['http-post'] > 100, JSON.stringify(tally.byTransport));
    assertClean(tally, { rowsChanged: written.changed });
    assert.equal(await healthy(origin()), true, 'and the server is still well');
  });

  test('bad keys from one address do not lock out a valid key (production limits)', async (tc) => {
    // The same database, a server with the default limits: 60 failed keys a minute per address.
    await t!.stop();
    limited = await startTestServer({ testDb: t!.testDb, env: { NODE_ENV: 'production', TANGENT_AUTH: 'on' } });
    const tally = emptyTally();
    await badKeysThenValidKey(tally, new URL(limited.url).origin, keys, 70, 'writer');
    for (const line of describeTally(tally)) tc.diagnostic(line);
    assert.ok((tally.codes.UNAUTHENTICATED ?? 0) + (tally.codes.AUTH_THROTTLED ?? 0) + (tally.codes.RATE_LIMITED ?? 0) >= 70, JSON.stringify(tally.codes));
    assertClean(tally);
  });
});
