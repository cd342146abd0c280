import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createApiKey } from '../src/modules/api-keys/service.js';
import { cleanupStack } from './helpers/cleanup.js';
import { codes } from './helpers/fixtures.js';
import { createTestDatabase } from './helpers/database.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { importUcr, storeCnn } from './jobs/helpers.js';

/**
 * Issue 16, items 7–9 through HTTP: failed authentications throttled per address and apart from a
 * valid key's own budget; X-Forwarded-For believed only with TANGENT_TRUST_PROXY; computation as a
 * permission (READERs do not start it by default) and a per-key budget shown in `viewer`; rate
 * limits shared by two servers on one PostgreSQL.
 */

type Answer = { status: number; headers: Headers; body: { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] } };

async function post(url: string, query: string, headers: Record<string, string> = {}, variables?: Record<string, unknown>): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Answer['body'] };
}

const bearer = (secret: string, forwardedFor?: string) => ({ authorization: `Bearer ${secret}`, ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) });
/** A well-formed key that no server issued. */
const BAD_KEY = `tgt_${'x'.repeat(43)}`;
const PING = `{ serverInfo { version } }`;

describe('failed authentications are throttled per address, apart from valid keys', () => {
  test('61 bad keys from one address: the 61st is AUTH_THROTTLED, and a valid key from the same address still answers', async (t) => {
    const defer = cleanupStack(t);
    const api = defer(await startTestServer({ env: { TANGENT_AUTH: 'on' } }), (s) => s.close());
    const writer = (await createApiKey(api.db, { name: 'w', role: 'WRITER' })).secret;
    assert.equal(api.config.authFailuresPerMin, 60, 'the default limit, which the issue hit');

    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await post(api.url, PING, bearer(BAD_KEY))).status);
    assert.deepEqual(new Set(statuses), new Set([401]));
    const throttled = await post(api.url, PING, bearer(BAD_KEY));
    assert.equal(throttled.status, 429);
    assert.deepEqual(codes(throttled.body), ['AUTH_THROTTLED']);
    const retry = throttled.body.errors![0]!.extensions!.retryAfterSeconds;
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, String(retry));
    assert.equal(throttled.body.errors![0]!.message, `too many failed authentications from this address; retry in ${retry} s`);
    assert.equal(throttled.headers.get('retry-after'), String(retry));

    const valid = await post(api.url, `{ viewer { role } }`, bearer(writer));
    assert.equal(valid.status, 200, JSON.stringify(valid.body));
    assert.deepEqual(valid.body.data, { viewer: { role: 'WRITER' } });
    assert.equal((await post(api.url, PING, bearer(BAD_KEY))).status, 429, 'the bad client is still throttled');
  });

  test('a key over its own budget: RATE_LIMITED naming the key and the limit; another key is unaffected', async (t) => {
    const defer = cleanupStack(t);
    const api = defer(await startTestServer({ env: { TANGENT_AUTH: 'on', TANGENT_RATE_LIMIT_PER_MIN: '3' } }), (s) => s.close());
    const a = (await createApiKey(api.db, { name: 'a', role: 'READER' })).secret;
    const b = (await createApiKey(api.db, { name: 'b', role: 'READER' })).secret;
    for (let i = 0; i < 3; i++) assert.equal((await post(api.url, PING, bearer(a))).status, 200);
    const limited = await post(api.url, PING, bearer(a));
    assert.equal(limited.status, 429);
    assert.deepEqual(codes(limited.body), ['RATE_LIMITED']);
    assert.match(limited.body.errors![0]!.message, /^this key exceeded 3 requests per minute; retry in \d+ s$/);
    assert.equal((await post(api.url, PING, bearer(b))).status, 200);
  });

  test('X-Forwarded-For is ignored by default: a client cannot dodge its throttle by naming another address', async (t) => {
    const defer = cleanupStack(t);
    const api = defer(await startTestServer({ env: { TANGENT_AUTH: 'on', TANGENT_AUTH_FAILURES_PER_MIN: '3' } }), (s) => s.close());
    for (let i = 0; i < 3; i++) assert.equal((await post(api.url, PING, bearer(BAD_KEY, '198.51.100.1'))).status, 401);
    const other = await post(api.url, PING, bearer(BAD_KEY, '203.0.113.9'));
    assert.deepEqual(codes(other.body), ['AUTH_THROTTLED'], 'the socket address (loopback) is what counts');
  });

  test('with TANGENT_TRUST_PROXY the forwarded address is the client: each has its own count', async (t) => {
    const defer = cleanupStack(t);
    const api = defer(await startTestServer({ env: { TANGENT_AUTH: 'on', TANGENT_AUTH_FAILURES_PER_MIN: '3', TANGENT_TRUST_PROXY: 'loopback' } }), (s) => s.close());
    const reader = (await createApiKey(api.db, { name: 'r', role: 'READER' })).secret;
    for (let i = 0; i < 3; i++) assert.equal((await post(api.url, PING, bearer(BAD_KEY, '198.51.100.1'))).status, 401);
    assert.deepEqual(codes((await post(api.url, PING, bearer(BAD_KEY, '198.51.100.1'))).body), ['AUTH_THROTTLED']);
    // A client behind the trusted proxy; the rightmost untrusted hop counts, not what the client prepends.
    assert.equal((await post(api.url, PING, bearer(BAD_KEY, '203.0.113.9'))).status, 401, 'another client behind the proxy');
    assert.deepEqual(codes((await post(api.url, PING, bearer(BAD_KEY, '203.0.113.9, 198.51.100.1'))).body), ['AUTH_THROTTLED'], 'a spoofed leftmost entry does not help');
    assert.equal((await post(api.url, PING, bearer(reader, '198.51.100.1'))).status, 200, 'a valid key from the throttled address');
  });
});

const RANKED = /* GraphQL */ `
  query($c: ID!, $ids: [ID!], $splits: [String!]) {
    checkpoint(id: $c) { rankedSamples(first: 100, filter: { sampleIds: $ids, splits: $splits }, orderBy: { term: K_NORM, direction: DESC }) { totalCount nodes { sampleId kNorm } } }
  }
`;
const VIEWER = `{ viewer { role canCompute computeBudget { samplesPerHour samplesUsed resetsInSeconds concurrentJobs runningJobs } } }`;
const JOBS = `{ jobs(first: 100) { totalCount nodes { id status } } }`;

/** An open (loopback) server: requests without a key are the operator's; a key sent brings its role. */
async function computeServer(t: Parameters<typeof cleanupStack>[0], env: Record<string, string>) {
  const defer = cleanupStack(t);
  const api: TestServer = defer(await startTestServer({ env: { TANGENT_WORKER: 'off', ...env } }), (s) => s.close());
  const { dataset, samples } = await importUcr(api, 'GunPoint');
  const cnn = await storeCnn(api, dataset);
  const key = async (role: 'READER' | 'WRITER') => (await createApiKey(api.db, { name: role, role })).secret;
  return { api, samples, checkpointId: cnn.checkpoints[0]!.id, key };
}

describe('computation is a permission and a budget', () => {
  test('a READER over missing terms: TERMS_PENDING with the missing count and no job; viewer says it cannot compute', async (t) => {
    const { api, samples, checkpointId, key } = await computeServer(t, {});
    const reader = await key('READER');
    const train = samples.filter((s) => s.split === 'train');
    const jobsBefore = (await api.gql(JOBS)).jobs.totalCount;

    const pending = await post(api.url, RANKED, bearer(reader), { c: checkpointId, splits: ['train'] });
    assert.deepEqual(codes(pending.body), ['TERMS_PENDING']);
    const ext = pending.body.errors![0]!.extensions!;
    assert.equal(ext.jobId, undefined, 'no job was started, so none is named');
    assert.deepEqual(ext.missing, [{ term: 'kNorm', count: train.length }]);
    assert.equal(ext.checkpointId, checkpointId);
    assert.match(pending.body.errors![0]!.message, new RegExp(`^${train.length} samples lack kNorm at checkpoint ${checkpointId}; a READER key does not start computation`));
    // A few samples would be computed inline for a WRITER; a READER computes nothing either way.
    const few = await post(api.url, RANKED, bearer(reader), { c: checkpointId, ids: train.slice(0, 3).map((s) => s.id) });
    assert.deepEqual(codes(few.body), ['TERMS_PENDING']);
    assert.deepEqual(few.body.errors![0]!.extensions!.missing, [{ term: 'kNorm', count: 3 }]);
    const firstOrder = await post(api.url, `query($c: ID!, $o: ID!, $u: ID!) { checkpoint(id: $c) { firstOrder(observedId: $o, updatedId: $u) { K } } }`, bearer(reader), {
      c: checkpointId,
      o: train[0]!.id,
      u: train[1]!.id,
    });
    assert.deepEqual(codes(firstOrder.body), ['COMPUTE_FORBIDDEN']);

    assert.equal((await api.gql(JOBS)).jobs.totalCount, jobsBefore, 'no compute job was created');
    const stored = await api.db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM sample_metric WHERE checkpoint_id = $1 AND k_norm IS NOT NULL', [Number(checkpointId)]);
    assert.equal(stored[0]!.n, 0, 'nothing was computed inline either');
    const viewer = await post(api.url, VIEWER, bearer(reader));
    assert.equal(viewer.body.data.viewer.canCompute, false);
    assert.equal(viewer.body.data.viewer.computeBudget.samplesUsed, 0);
  });

  test('TANGENT_READER_COMPUTE=on: the same READER query computes', async (t) => {
    const { api, samples, checkpointId, key } = await computeServer(t, { TANGENT_READER_COMPUTE: 'on' });
    const reader = await key('READER');
    const ids = samples.filter((s) => s.split === 'train').slice(0, 3).map((s) => s.id);
    const res = await post(api.url, RANKED, bearer(reader), { c: checkpointId, ids });
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    const nodes = res.body.data.checkpoint.rankedSamples.nodes as { sampleId: string; kNorm: number }[];
    assert.deepEqual(nodes.map((n) => n.sampleId).sort(), [...ids].sort());
    for (const n of nodes) assert.ok(Number.isFinite(n.kNorm) && n.kNorm > 0);
    const viewer = (await post(api.url, VIEWER, bearer(reader))).body.data.viewer;
    assert.equal(viewer.canCompute, true);
    assert.equal(viewer.computeBudget.samplesUsed, 3);
  });

  test('a WRITER over its samples per hour or its concurrent jobs: COMPUTE_BUDGET_EXCEEDED, and viewer shows the budget', async (t) => {
    const { api, samples, checkpointId, key } = await computeServer(t, { TANGENT_COMPUTE_SAMPLES_PER_HOUR: '10', TANGENT_COMPUTE_JOBS_PER_KEY: '1' });
    const writer = await key('WRITER');
    const train = samples.filter((s) => s.split === 'train').map((s) => s.id);

    const over = await post(api.url, RANKED, bearer(writer), { c: checkpointId, ids: train.slice(0, 20) });
    assert.deepEqual(codes(over.body), ['COMPUTE_BUDGET_EXCEEDED']);
    assert.equal(over.status, 200, 'a GraphQL field error; the operation ran');
    const ext = over.body.errors![0]!.extensions!;
    assert.deepEqual({ limit: ext.limit, samplesPerHour: ext.samplesPerHour, samplesUsed: ext.samplesUsed, requested: ext.requested }, {
      limit: 'samplesPerHour',
      samplesPerHour: 10,
      samplesUsed: 0,
      requested: 20,
    });
    assert.ok(Number.isInteger(ext.retryAfterSeconds) && ext.retryAfterSeconds >= 1);

    const within = await post(api.url, RANKED, bearer(writer), { c: checkpointId, ids: train.slice(0, 5) });
    assert.equal(within.body.errors, undefined, JSON.stringify(within.body.errors));
    assert.equal(within.body.data.checkpoint.rankedSamples.totalCount, 5);

    const jobInput = (terms: string[]) => ({ input: { checkpointId, terms, sampleIds: train.slice(10, 13) } });
    const COMPUTE = `mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id status } }`;
    const job = await post(api.url, COMPUTE, bearer(writer), jobInput(['LOSS']));
    assert.equal(job.body.errors, undefined, JSON.stringify(job.body.errors));
    assert.equal(job.body.data.computeTerms.status, 'QUEUED', 'no worker runs here, so it stays queued');
    const jobsBefore = (await api.gql(JOBS)).jobs.totalCount;
    const second = await post(api.url, COMPUTE, bearer(writer), jobInput(['G_NORM']));
    assert.deepEqual(codes(second.body), ['COMPUTE_BUDGET_EXCEEDED']);
    assert.equal(second.body.errors![0]!.extensions!.limit, 'concurrentJobs');
    assert.equal((await api.gql(JOBS)).jobs.totalCount, jobsBefore, 'the refused job was not made');

    const viewer = (await post(api.url, VIEWER, bearer(writer))).body.data.viewer;
    assert.equal(viewer.role, 'WRITER');
    assert.equal(viewer.canCompute, true);
    const { resetsInSeconds, ...budget } = viewer.computeBudget;
    assert.deepEqual(budget, { samplesPerHour: 10, samplesUsed: 8, concurrentJobs: 1, runningJobs: 1 }, '5 inline + 3 in the job');
    assert.ok(resetsInSeconds >= 1 && resetsInSeconds <= 3600);
    assert.equal((await post(api.url, VIEWER)).body.data.viewer.computeBudget, null, 'the operator (no key, open server) has no budget');
  });
});

describe('limits shared across replicas', () => {
  test('two servers on one PostgreSQL database share a key\'s rate limit', { skip: process.env.DATABASE_URL ? false : 'needs DATABASE_URL: the embedded database serves one process, so replicas need PostgreSQL' }, async (t) => {
    const defer = cleanupStack(t);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    const env = { TANGENT_AUTH: 'on', TANGENT_RATE_LIMIT_PER_MIN: '3', TANGENT_AUTH_FAILURES_PER_MIN: '2' };
    const first = defer(await startTestServer({ env, testDb }), (s) => s.stop());
    const second = defer(await startTestServer({ env, testDb }), (s) => s.stop());
    const key = (await createApiKey(first.db, { name: 'shared', role: 'READER' })).secret;

    for (let i = 0; i < 3; i++) assert.equal((await post(first.url, PING, bearer(key))).status, 200);
    const refused = await post(second.url, PING, bearer(key));
    assert.equal(refused.status, 429);
    assert.deepEqual(codes(refused.body), ['RATE_LIMITED'], 'the second server knows what the first counted');

    for (let i = 0; i < 2; i++) assert.equal((await post(first.url, PING, bearer(BAD_KEY))).status, 401);
    assert.deepEqual(codes((await post(second.url, PING, bearer(BAD_KEY))).body), ['AUTH_THROTTLED'], 'failures are shared too');
  });
});
