import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createApiKey } from '../../src/modules/api-keys/service.js';
import { openDatabase } from '../../src/platform/db/database.js';
import { ErrorCode } from '../../src/platform/errors.js';
import { HTTP_STATUS } from '../../src/platform/http/status.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { PgProxy } from '../helpers/pg-proxy.js';
import { createTestDatabase, quietLog } from '../helpers/database.js';
import { startTestServer } from '../helpers/server.js';
import { importUcr, storeCnn } from '../jobs/helpers.js';

/**
 * One table from error code to HTTP status (src/platform/http/status.ts), provoked row by row through HTTP:
 * exports, refusals before GraphQL runs, GraphQL operations, /healthz.
 */

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] };
}

async function answer(response: Response): Promise<Answer> {
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Answer['body'] };
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then(answer);
}

const gql = (url: string, query: string, variables?: unknown, headers?: Record<string, string>) => post(url, JSON.stringify({ query, variables }), headers);

function codes(a: Answer): string[] {
  return (a.body.errors ?? []).map((e) => String(e.extensions?.code));
}

test('every error code has a row in the status table', () => {
  for (const code of Object.values(ErrorCode)) {
    const status = HTTP_STATUS[code];
    assert.ok(Number.isInteger(status) && status >= 200 && status < 600, `${code} → ${status}`);
  }
  assert.equal(HTTP_STATUS.TERMS_PENDING, 409);
  assert.equal(HTTP_STATUS.DATABASE_UNAVAILABLE, 503);
  assert.equal(HTTP_STATUS.OUTCOME_UNKNOWN, 503);
});

describe('an open server: exports and request refusals', () => {
  const defer = cleanupStack({ after: (fn) => test.after(fn) });
  // Every missing term goes to a job (none computed inline), and no worker takes it: it stays pending.
  const ready = startTestServer({ env: { TANGENT_INLINE_MAX_SAMPLES: '0', TANGENT_WORKER: 'off', TANGENT_MAX_BODY_BYTES: '4000000' } }).then((t) => defer(t, (s) => s.close()));
  const origin = async () => (await ready).url.replace(/\/graphql$/, '');

  test('export of terms a job is computing: 409 TERMS_PENDING with the job id and Retry-After, not 500', async () => {
    const t = await ready;
    const { dataset } = await importUcr(t, 'GunPoint');
    const cnn = await storeCnn(t, dataset);
    const res = await fetch(`${await origin()}/export/checkpoints/${cnn.checkpoints[0]!.id}?format=csv`).then(answer);
    assert.deepEqual(codes(res), ['TERMS_PENDING'], JSON.stringify(res.body));
    assert.equal(res.status, 409);
    assert.equal(res.retryAfter, '5');
    const jobId = res.body.errors![0]!.extensions!.jobId;
    assert.match(String(jobId), /^\d+$/);
    const { job } = await t.gql<{ job: { status: string } }>(`query($id: ID!) { job(id: $id) { status } }`, { id: jobId });
    assert.equal(job.status, 'QUEUED');
  });

  test('export refusals: 400 BAD_USER_INPUT, 404 NOT_FOUND', async () => {
    const bad = await fetch(`${await origin()}/export/checkpoints/1?format=xml`).then(answer);
    assert.deepEqual([bad.status, codes(bad)], [400, ['BAD_USER_INPUT']]);
    const missing = await fetch(`${await origin()}/export/checkpoints/987654?format=csv`).then(answer);
    assert.deepEqual([missing.status, codes(missing)], [404, ['NOT_FOUND']]);
    const selection = await fetch(`${await origin()}/export/selections/987654`).then(answer);
    assert.deepEqual([selection.status, codes(selection)], [404, ['NOT_FOUND']]);
  });

  test('GraphQL request refusals: 400 BAD_REQUEST, 413 PAYLOAD_TOO_LARGE, 400 parse and validation failures', async () => {
    const { url } = await ready;
    const notJson = await post(url, '{"query": ');
    assert.deepEqual([notJson.status, codes(notJson)], [400, ['BAD_REQUEST']]);
    const large = await gql(url, `{ datasets { totalCount } }`, { pad: 'x'.repeat(4_100_000) });
    assert.deepEqual([large.status, codes(large)], [413, ['PAYLOAD_TOO_LARGE']]);
    const parse = await gql(url, `{ datasets { `);
    assert.deepEqual([parse.status, codes(parse)], [400, ['GRAPHQL_PARSE_FAILED']]);
    const validation = await gql(url, `{ noSuchField }`);
    assert.deepEqual([validation.status, codes(validation)], [400, ['GRAPHQL_VALIDATION_FAILED']]);
  });

  test('an operation that ran keeps 200, with its field errors beside the data (GraphQL over HTTP)', async () => {
    const { url } = await ready;
    const res = await gql(url, `{ dataset(id: 987654) { id } datasets { totalCount } }`);
    assert.equal(res.status, 200);
    assert.ok(res.body.data?.datasets, 'data is there');
    const conflict = await gql(url, `mutation { a: createModel(input: { name: "dup", format: BUILTIN, architecture: "cnn1d", config: {}, inputLength: 4, numClasses: 2 }) { id } }`);
    assert.equal(conflict.status, 200, JSON.stringify(conflict.body));
  });
});

describe('a server with API keys: 401, 403, 429', () => {
  const defer = cleanupStack({ after: (fn) => test.after(fn) });
  const ready = startTestServer({ env: { TANGENT_AUTH: 'on', TANGENT_RATE_LIMIT_PER_MIN: '4' } }).then((t) => defer(t, (s) => s.close()));

  test('no key: 401 UNAUTHENTICATED, on GraphQL and on exports', async () => {
    const t = await ready;
    const res = await gql(t.url, `{ datasets { totalCount } }`);
    assert.deepEqual([res.status, codes(res)], [401, ['UNAUTHENTICATED']]);
    const exported = await fetch(t.url.replace(/\/graphql$/, '/export/selections/1')).then(answer);
    assert.deepEqual([exported.status, codes(exported)], [401, ['UNAUTHENTICATED']]);
  });

  test('a READER writing: 403 FORBIDDEN; past the rate: 429 RATE_LIMITED with Retry-After', async () => {
    const t = await ready;
    const { secret } = await createApiKey(t.db, { name: 'reader', role: 'READER' });
    const auth = { authorization: `Bearer ${secret}` };
    const write = await gql(t.url, `mutation { createDataset(input: { name: "x", length: 1, classNames: ["a"] }) { id } }`, undefined, auth);
    assert.deepEqual([write.status, codes(write)], [403, ['FORBIDDEN']]);
    let last: Answer | undefined;
    for (let i = 0; i < 10 && last?.status !== 429; i++) last = await gql(t.url, `{ datasets { totalCount } }`, undefined, auth);
    assert.deepEqual([last!.status, codes(last!)], [429, ['RATE_LIMITED']]);
    assert.match(String(last!.retryAfter), /^\d+$/);
  });
});


test(
  'the database unavailable: 503 with Retry-After on GraphQL (no key needed to reach the resolver), exports and /healthz',
  { skip: !process.env.DATABASE_URL && 'needs DATABASE_URL: PGlite runs inside the process and cannot be cut off' },
  async (t) => {
    const defer = cleanupStack(t);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    assert.equal(testDb.config.kind, 'postgres');
    const proxy = defer(await PgProxy.forUrl(testDb.config.url), (p) => p.close());
    const proxied = { ...testDb.config, url: proxy.via(testDb.config.url) };
    const server = defer(
      await startTestServer({ testDb: { ...testDb, config: proxied, open: () => openDatabase(proxied, quietLog) }, env: { TANGENT_WORKER: 'off' } }),
      (s) => s.stop(),
    );
    await server.gql(`mutation { createDataset(input: { name: "before", length: 1, classNames: ["a"] }) { id } }`);

    proxy.cut();
    // An open server: the request reaches its resolver, which is where the database fails it. This
    // answered 200 before the status table (the auth lookup's own 503 hid it on servers with keys).
    for (const query of [`{ datasets { totalCount } }`, `mutation { createDataset(input: { name: "during", length: 1, classNames: ["a"] }) { id } }`]) {
      const res = await gql(server.url, query);
      assert.deepEqual(codes(res), ['DATABASE_UNAVAILABLE'], JSON.stringify(res.body));
      assert.equal(res.body.data ?? null, null);
      assert.equal(res.status, 503);
      assert.equal(res.retryAfter, '5');
    }
    const exported = await fetch(server.url.replace(/\/graphql$/, '/export/checkpoints/1?format=csv')).then(answer);
    assert.deepEqual([exported.status, codes(exported), exported.retryAfter], [503, ['DATABASE_UNAVAILABLE'], '5']);
    const health = await fetch(server.url.replace(/\/graphql$/, '/healthz'));
    assert.deepEqual([health.status, health.headers.get('retry-after')], [503, '5']);
    await health.body?.cancel();
  },
);
