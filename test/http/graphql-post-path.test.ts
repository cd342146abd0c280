import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { createApiKey } from '../../src/modules/api-keys/service.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { startTestServer } from '../helpers/server.js';

/**
 * POST /graphql is answered without express (src/platform/http/graphql-http.ts); every other
 * spelling of the path, like `/graphql/`, still goes through express's router to the same layers.
 * Each request below is sent both ways and must get the same answer: status, the headers a client
 * reads, and the body. Authentication, limits, body-parser refusals, persisted queries, roles,
 * CORS and request ids are all on that path.
 */

const ORIGIN = 'https://dash.lab.example';

interface Answer {
  status: number;
  headers: Record<string, string | null>;
  body: string;
}

const HEADERS = ['content-type', 'content-length', 'retry-after', 'x-request-id', 'access-control-allow-origin', 'vary', 'access-control-expose-headers'];

async function send(url: string, body: string, headers: Record<string, string>): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'parity-1', ...headers }, body });
  return { status: response.status, headers: Object.fromEntries(HEADERS.map((h) => [h, response.headers.get(h)])), body: await response.text() };
}

describe('POST /graphql without express answers as express did', () => {
  const defer = cleanupStack({ after: (fn) => test.after(fn) });
  const ready = (async () => {
    const t = defer(await startTestServer({ env: { TANGENT_AUTH: 'on', TANGENT_MAX_BODY_BYTES: '4096', TANGENT_CORS_ORIGINS: ORIGIN } }), (s) => s.close());
    const reader = await createApiKey(t.db, { name: 'reader', role: 'READER' });
    return { t, reader: `Bearer ${reader.secret}` };
  })();

  const both = async (body: string, headers: Record<string, string> = {}) => {
    const { t } = await ready;
    const fast = await send(t.url, body, headers);
    const routed = await send(`${t.url}/`, body, headers);
    assert.deepEqual(fast, routed, `the same answer on /graphql and /graphql/ for ${body.slice(0, 60)}`);
    return fast;
  };
  const query = (q: string, extra: Record<string, unknown> = {}) => JSON.stringify({ query: q, ...extra });

  test('a query, with CORS for an allowed origin and the client request id echoed', async () => {
    const { reader } = await ready;
    const ok = await both(query('{ __typename }'), { authorization: reader, origin: ORIGIN });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, '{"data":{"__typename":"Query"}}\n');
    assert.equal(ok.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(ok.headers['content-length'], String(Buffer.byteLength(ok.body)));
    assert.equal(ok.headers['x-request-id'], 'parity-1');
    assert.equal(ok.headers['access-control-allow-origin'], ORIGIN);
  });

  test('refusals before GraphQL runs: no key, a wrong key, bad JSON, an oversized body', async () => {
    const { reader } = await ready;
    const code = (a: Answer) => (JSON.parse(a.body) as { errors: { extensions: { code: string } }[] }).errors.map((e) => e.extensions.code);
    const none = await both(query('{ __typename }'));
    assert.deepEqual([none.status, code(none)], [401, ['UNAUTHENTICATED']]);
    const wrong = await both(query('{ __typename }'), { authorization: 'Bearer not-a-key' });
    assert.deepEqual([wrong.status, code(wrong)], [401, ['UNAUTHENTICATED']]);
    const malformed = await both('{"query": ', { authorization: reader });
    assert.deepEqual([malformed.status, code(malformed)], [400, ['BAD_REQUEST']]);
    const large = await both(query(`{ __typename ${' '.repeat(5000)}}`), { authorization: reader });
    assert.deepEqual([large.status, code(large)], [413, ['PAYLOAD_TOO_LARGE']]);
  });

  test('refusals by GraphQL: validation, a persisted query whose hash is not its own, a role', async () => {
    const { reader } = await ready;
    const code = (a: Answer) => (JSON.parse(a.body) as { errors: { extensions: { code: string } }[] }).errors.map((e) => e.extensions.code);
    const invalid = await both(query('{ nope }'), { authorization: reader });
    assert.deepEqual([invalid.status, code(invalid)], [400, ['GRAPHQL_VALIDATION_FAILED']]);
    const q = '{ __typename }';
    const wrongHash = createHash('sha256').update(`${q} `).digest('hex');
    const mismatch = await both(query(q, { extensions: { persistedQuery: { version: 1, sha256Hash: wrongHash } } }), { authorization: reader });
    assert.deepEqual([mismatch.status, code(mismatch)], [400, ['PERSISTED_QUERY_HASH_MISMATCH']]);
    const forbidden = await both(query('mutation { createDataset(input: { name: "x", length: 4, classNames: ["a"] }) { id } }'), { authorization: reader });
    assert.deepEqual([forbidden.status, code(forbidden)], [403, ['FORBIDDEN']]);
  });

  test('a fresh request id where the client sends none', async () => {
    const { t, reader } = await ready;
    const response = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: reader }, body: query('{ __typename }') });
    assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
