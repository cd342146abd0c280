import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createClient, type Client } from 'graphql-ws';
import { pino } from 'pino';
import WebSocket from 'ws';
import { createApiKey } from '../src/modules/api-keys/service.js';
import { ConfigError, loadConfig, type Config } from '../src/platform/config.js';
import { createServer } from '../src/server.js';
import { cleanupStack } from './helpers/cleanup.js';
import { codes } from './helpers/fixtures.js';
import { createTestDatabase } from './helpers/database.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** One POST with the raw answer: status, headers and body. */
async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] } };
}

/** 16 levels deep; the limit is 12. */
const DEEP = `{ runs { nodes { dataset { runs { nodes { dataset { runs { nodes { dataset { runs { nodes { dataset { runs { nodes { id } } } } } } } } } } } } } } }`;

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

/** The operations of each kind, with the role each needs. */
const OPERATIONS = {
  query: { query: `{ serverInfo { version } datasets { totalCount } }`, role: 'READER' },
  write: { query: `mutation($n: String!) { createDataset(input: { name: $n, length: 2, classNames: ["a"] }) { id } }`, role: 'WRITER' },
  delete: { query: `mutation($id: ID!) { deleteDataset(id: $id) { id } }`, role: 'ADMIN' },
  listKeys: { query: `{ apiKeys { totalCount nodes { id name role prefix } } }`, role: 'ADMIN' },
  createKey: { query: `mutation { createApiKey(input: { name: "made", role: READER }) { secret apiKey { id } } }`, role: 'ADMIN' },
} as const;

describe('API keys and roles (auth on)', () => {
  let t: TestServer;
  const secrets: Record<'READER' | 'WRITER' | 'ADMIN', string> = { READER: '', WRITER: '', ADMIN: '' };

  before(async () => {
    t = await startTestServer({ env: { TANGENT_AUTH: 'on', TANGENT_RATE_LIMIT_PER_MIN: '0', TANGENT_AUTH_FAILURES_PER_MIN: '0' } });
    // The first admin key comes from the database directly (what `tangent keys create` does).
    secrets.ADMIN = (await createApiKey(t.db, { name: 'bootstrap', role: 'ADMIN' })).secret;
    for (const role of ['READER', 'WRITER'] as const) {
      const res = await post(t.url, { query: `mutation($r: Role!, $n: String!) { createApiKey(input: { name: $n, role: $r }) { secret apiKey { role prefix } } }`, variables: { r: role, n: role } }, bearer(secrets.ADMIN));
      assert.equal(res.body.errors, undefined);
      secrets[role] = res.body.data.createApiKey.secret;
      assert.match(secrets[role], /^tgt_[A-Za-z0-9_-]{43}$/);
      assert.equal(res.body.data.createApiKey.apiKey.prefix, secrets[role].slice(0, 12));
    }
  });
  after(() => t?.close());

  const datasetCount = async () => (await t.db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM dataset'))[0]!.n;

  test('no key, a malformed header, an unknown key: 401 UNAUTHENTICATED, distinct from FORBIDDEN', async () => {
    for (const headers of [{}, { authorization: 'Basic abc' }, { authorization: 'Bearer' }, bearer('tgt_' + 'A'.repeat(43)), bearer('not-a-key')]) {
      const res = await post(t.url, { query: OPERATIONS.query.query }, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.deepEqual(codes(res.body), ['UNAUTHENTICATED']);
      assert.equal(res.body.data, undefined);
    }
    const health = await fetch(t.url.replace('/graphql', '/healthz'));
    assert.equal(health.status, 200, '/healthz needs no key');
  });

  test('each role against each kind of operation', async () => {
    const { createDataset } = (await post(t.url, { query: OPERATIONS.write.query, variables: { n: 'victim' } }, bearer(secrets.WRITER))).body.data;
    const rank = { READER: 0, WRITER: 1, ADMIN: 2 };
    const outcomes: string[] = [];
    for (const role of ['READER', 'WRITER', 'ADMIN'] as const) {
      for (const [kind, op] of Object.entries(OPERATIONS)) {
        if (kind === 'delete' && role === 'ADMIN') continue; // run last, below
        const before = await datasetCount();
        const res = await post(t.url, { query: op.query, variables: { n: `${role}-${kind}`, id: createDataset.id } }, bearer(secrets[role]));
        const allowed = rank[role] >= rank[op.role];
        outcomes.push(`${role} ${kind}: ${res.status} ${codes(res.body).join(',') || 'ok'}`);
        if (allowed) {
          assert.equal(res.body.errors, undefined, `${role} may ${kind}: ${JSON.stringify(res.body.errors)}`);
        } else {
          assert.equal(res.status, 403, `${role} ${kind}`);
          assert.deepEqual(codes(res.body), ['FORBIDDEN']);
          assert.equal(res.body.errors![0]!.extensions!.requiredRole, op.role);
          assert.equal(res.body.data, undefined, 'nothing ran');
          assert.equal(await datasetCount(), before, 'nothing was written');
        }
      }
    }
    const del = await post(t.url, { query: OPERATIONS.delete.query, variables: { id: createDataset.id } }, bearer(secrets.ADMIN));
    assert.deepEqual(del.body.data, { deleteDataset: { id: createDataset.id } });
    assert.deepEqual(outcomes.filter((o) => o.includes('FORBIDDEN')), [
      'READER write: 403 FORBIDDEN',
      'READER delete: 403 FORBIDDEN',
      'READER listKeys: 403 FORBIDDEN',
      'READER createKey: 403 FORBIDDEN',
      'WRITER delete: 403 FORBIDDEN',
      'WRITER listKeys: 403 FORBIDDEN',
      'WRITER createKey: 403 FORBIDDEN',
    ]);
  });

  test('one forbidden field refuses the whole operation, through fragments too', async () => {
    const before = await datasetCount();
    const mixed = await post(
      t.url,
      { query: `mutation { createDataset(input: { name: "mixed", length: 1, classNames: ["a"] }) { id } ... on Mutation { deleteModel(id: 1) { id } } }` },
      bearer(secrets.WRITER),
    );
    assert.deepEqual(codes(mixed.body), ['FORBIDDEN']);
    assert.equal(mixed.body.errors![0]!.extensions!.field, 'deleteModel');
    assert.equal(await datasetCount(), before, 'createDataset did not run either');
    const viaFragment = await post(t.url, { query: `query { ...K } fragment K on Query { apiKeys { totalCount } }` }, bearer(secrets.READER));
    assert.deepEqual(codes(viaFragment.body), ['FORBIDDEN']);
    const skipped = await post(t.url, { query: `query($no: Boolean = false) { serverInfo { version } apiKeys @include(if: $no) { totalCount } }` }, bearer(secrets.READER));
    assert.deepEqual(codes(skipped.body), ['FORBIDDEN'], 'a field named in the document needs its role even when skipped');
  });

  test('viewer says who is calling; listings never show secrets, the database holds only hashes', async () => {
    const me = await post(t.url, { query: `{ viewer { role authRequired apiKey { name role } } }` }, bearer(secrets.WRITER));
    assert.deepEqual(me.body.data, { viewer: { role: 'WRITER', authRequired: true, apiKey: { name: 'WRITER', role: 'WRITER' } } });
    const list = await post(t.url, { query: `{ apiKeys { nodes { name role prefix revokedAt } } }` }, bearer(secrets.ADMIN));
    const text = JSON.stringify(list.body);
    for (const secret of Object.values(secrets)) assert.ok(!text.includes(secret), 'no secret in a listing');
    const rows = await t.db.sql.query<{ hash: string; prefix: string }>('SELECT hash, prefix FROM api_key');
    for (const row of rows) {
      assert.match(row.hash, /^[0-9a-f]{64}$/);
      assert.equal(row.prefix.length, 12);
      for (const secret of Object.values(secrets)) assert.notEqual(row.hash, secret);
    }
    const bad = await post(t.url, { query: `mutation { createApiKey(input: { name: "  ", role: READER }) { secret } }` }, bearer(secrets.ADMIN));
    assert.deepEqual(codes(bad.body), ['BAD_USER_INPUT']);
  });

  test('a revoked key stops working at once, on HTTP and on an open WebSocket', async () => {
    const made = await post(t.url, { query: OPERATIONS.createKey.query }, bearer(secrets.ADMIN));
    const { secret, apiKey } = made.body.data.createApiKey;
    assert.equal((await post(t.url, { query: `{ serverInfo { version } }` }, bearer(secret))).status, 200);

    const client = createClient({ url: t.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${secret}` }, lazy: false });
    const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
    await new Promise<void>((resolve, reject) => {
      client.on('connected', () => resolve());
      client.on('error', reject);
    });

    const revoke = await post(t.url, { query: `mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`, variables: { id: apiKey.id } }, bearer(secrets.ADMIN));
    assert.ok(revoke.body.data.revokeApiKey.revokedAt);
    const after = await post(t.url, { query: `{ serverInfo { version } }` }, bearer(secret));
    assert.equal(after.status, 401);
    assert.deepEqual(codes(after.body), ['UNAUTHENTICATED']);
    assert.equal(await closed, 4401, 'the WebSocket opened with the key is closed');
    await client.dispose();
    const again = await post(t.url, { query: `mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, variables: { id: apiKey.id } }, bearer(secrets.ADMIN));
    assert.equal(again.body.data.revokeApiKey.revokedAt, revoke.body.data.revokeApiKey.revokedAt, 'revoking twice keeps the first time');
  });

  test('WebSocket: a key is needed to connect, and roles and limits apply to each operation', async () => {
    const refused = createClient({ url: t.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
    const code = await new Promise<number>((resolve) => refused.on('closed', (event) => resolve((event as { code: number }).code)));
    assert.equal(code, 4401);
    await refused.dispose();

    const run = async (client: Client, query: string) =>
      new Promise<{ data?: any; errors?: any[] }>((resolve) => {
        const out: { data?: any; errors?: any[] } = {};
        client.subscribe({ query }, { next: (r) => Object.assign(out, r), error: (errors) => resolve({ errors: errors as any[] }), complete: () => resolve(out) });
      });
    const reader = createClient({ url: t.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${secrets.READER}` } });
    try {
      assert.ok((await run(reader, `{ serverInfo { version } }`)).data?.serverInfo.version);
      const forbidden = await run(reader, `mutation { createDataset(input: { name: "ws", length: 1, classNames: ["a"] }) { id } }`);
      assert.deepEqual(forbidden.errors?.map((e) => e.extensions?.code), ['FORBIDDEN']);
      const deep = await run(reader, DEEP);
      assert.deepEqual(deep.errors?.map((e) => e.extensions?.code), ['GRAPHQL_VALIDATION_FAILED']);
      assert.match(deep.errors![0].message, /depth/i);
      const aliases = await run(reader, `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: serverInfo { version }`).join(' ')} }`);
      assert.deepEqual(aliases.errors?.map((e) => e.extensions?.code), ['GRAPHQL_VALIDATION_FAILED']);
      const unparsable = await run(reader, `{ serverInfo { `);
      assert.deepEqual(unparsable.errors?.map((e) => e.extensions?.code), ['GRAPHQL_PARSE_FAILED']);
    } finally {
      await reader.dispose();
    }
  });

  test('query limits on HTTP: depth, aliases, tokens; batches refused', async () => {
    const h = bearer(secrets.READER);
    const deep = await post(t.url, { query: DEEP }, h);
    assert.deepEqual(codes(deep.body), ['GRAPHQL_VALIDATION_FAILED']);
    const aliases = await post(t.url, { query: `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: serverInfo { version }`).join(' ')} }` }, h);
    assert.deepEqual(codes(aliases.body), ['GRAPHQL_VALIDATION_FAILED']);
    const tokens = await post(t.url, { query: `{ serverInfo { ${'version '.repeat(6000)} } }` }, h);
    assert.equal(tokens.status, 400);
    assert.deepEqual(codes(tokens.body), ['GRAPHQL_PARSE_FAILED']);
    const batch = await post(t.url, [{ query: '{ serverInfo { version } }' }, { query: '{ serverInfo { version } }' }], h);
    assert.equal(batch.status, 400);
    assert.deepEqual(codes(batch.body), ['BAD_REQUEST']);
  });
});

describe('auth off, rate limits, bodies, CORS, request ids', () => {
  test('TANGENT_AUTH: auto is open on loopback only; off is refused off loopback', () => {
    assert.equal(loadConfig({ HOST: '127.0.0.1' }).authRequired, false);
    assert.equal(loadConfig({ HOST: '::1' }).authRequired, false);
    assert.equal(loadConfig({ HOST: '0.0.0.0' }).authRequired, true);
    assert.equal(loadConfig({ HOST: '192.168.1.20', TANGENT_AUTH: 'auto' }).authRequired, true);
    assert.equal(loadConfig({ HOST: '127.0.0.1', TANGENT_AUTH: 'on' }).authRequired, true);
    assert.throws(() => loadConfig({ HOST: '0.0.0.0', TANGENT_AUTH: 'off' }), (e: unknown) => e instanceof ConfigError && /TANGENT_AUTH/.test(e.message));
  });

  test('an open (loopback) server needs no key, yet refuses a wrong one and honours a real one', async () => {
    const t = await startTestServer();
    try {
      const open = await post(t.url, { query: `{ viewer { role authRequired apiKey { id } } }` });
      assert.deepEqual(open.body.data, { viewer: { role: 'ADMIN', authRequired: false, apiKey: null } });
      const wrong = await post(t.url, { query: `{ serverInfo { version } }` }, bearer('tgt_' + 'B'.repeat(43)));
      assert.deepEqual(codes(wrong.body), ['UNAUTHENTICATED']);
      const { secret } = await createApiKey(t.db, { name: 'r', role: 'READER' });
      const reader = await post(t.url, { query: `mutation { deleteDataset(id: 1) { id } }` }, bearer(secret));
      assert.deepEqual(codes(reader.body), ['FORBIDDEN']);
    } finally {
      await t.close();
    }
  });

  test('rate limits: per key, with Retry-After; failed authentications per address', async () => {
    const t = await startTestServer({ env: { TANGENT_AUTH: 'on', TANGENT_RATE_LIMIT_PER_MIN: '5', TANGENT_AUTH_FAILURES_PER_MIN: '3' } });
    try {
      const a = (await createApiKey(t.db, { name: 'a', role: 'READER' })).secret;
      const b = (await createApiKey(t.db, { name: 'b', role: 'READER' })).secret;
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await post(t.url, { query: `{ serverInfo { version } }` }, bearer(a))).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
      const limited = await post(t.url, { query: `{ serverInfo { version } }` }, bearer(a));
      assert.deepEqual(codes(limited.body), ['RATE_LIMITED']);
      const retry = limited.body.errors![0]!.extensions!.retryAfterSeconds;
      assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60);
      assert.equal(limited.headers.get('retry-after'), String(retry));
      assert.equal((await post(t.url, { query: `{ serverInfo { version } }` }, bearer(b))).status, 200, 'another key has its own budget');

      for (let i = 0; i < 3; i++) assert.equal((await post(t.url, { query: '{ serverInfo { version } }' }, bearer(`tgt_${'x'.repeat(43)}`))).status, 401);
      const guessing = await post(t.url, { query: '{ serverInfo { version } }' }, bearer(`tgt_${'y'.repeat(43)}`));
      assert.deepEqual(codes(guessing.body), ['AUTH_THROTTLED'], 'after 3 failures this address\'s failures are throttled');
      assert.equal((await post(t.url, { query: '{ serverInfo { version } }' }, bearer(b))).status, 200, 'a valid key from the same address is not refused for them');
    } finally {
      await t.close();
    }
  });

  test('introspection: on in development, off in production unless configured; no field suggestions without it', async (ctx) => {
    const defer = cleanupStack(ctx);
    const dev = defer(await startTestServer({ env: { NODE_ENV: 'development' } }), (s) => s.close());
    const prod = defer(await startTestServer({ env: { NODE_ENV: 'production' } }), (s) => s.close());
    const introspect = { query: `{ __schema { queryType { name } } }` };
    assert.deepEqual((await post(dev.url, introspect)).body.data, { __schema: { queryType: { name: 'Query' } } });
    const refused = await post(prod.url, introspect);
    assert.deepEqual(codes(refused.body), ['GRAPHQL_VALIDATION_FAILED']);
    const typo = await post(prod.url, { query: `{ datasetz { totalCount } }` });
    assert.deepEqual(codes(typo.body), ['GRAPHQL_VALIDATION_FAILED']);
    assert.doesNotMatch(typo.body.errors![0]!.message, /Did you mean/);
    assert.match((await post(dev.url, { query: `{ datasetz { totalCount } }` })).body.errors![0]!.message, /Did you mean/);
    assert.equal(loadConfig({ NODE_ENV: 'production', TANGENT_INTROSPECTION: 'true' }).introspection, true);
  });

  test('oversize and malformed bodies get clean errors', async () => {
    const t = await startTestServer({ env: { TANGENT_MAX_BODY_BYTES: '10000' } });
    try {
      const big = await post(t.url, { query: `mutation($s: [SampleInput!]!) { addSamples(datasetId: 1, samples: $s) { added } }`, variables: { s: Array.from({ length: 500 }, (_, i) => ({ index: i, label: 0, series: [1, 2] })) } });
      assert.equal(big.status, 413);
      assert.deepEqual(codes(big.body), ['PAYLOAD_TOO_LARGE']);
      const malformed = await post(t.url, '{"query": "{ serverInfo { version } }"');
      assert.equal(malformed.status, 400);
      assert.deepEqual(codes(malformed.body), ['BAD_REQUEST']);
    } finally {
      await t.close();
    }
  });

  test('CORS: no cross-origin access unless configured, then only for the listed origins', async (ctx) => {
    const defer = cleanupStack(ctx);
    const closed = defer(await startTestServer(), (s) => s.close());
    const open = defer(await startTestServer({ env: { TANGENT_CORS_ORIGINS: 'https://dash.lab.example, https://nb.lab.example' } }), (s) => s.close());
    const preflight = (url: string, origin: string) =>
      fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    assert.equal((await preflight(closed.url, 'https://dash.lab.example')).headers.get('access-control-allow-origin'), null);
    const allowed = await preflight(open.url, 'https://dash.lab.example');
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://dash.lab.example');
    assert.equal((await preflight(open.url, 'https://evil.example')).headers.get('access-control-allow-origin'), null);
  });

  test('every log line about a request carries its id, the client gets the id and no internals', async (ctx) => {
    const defer = cleanupStack(ctx);
    const lines: Record<string, any>[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()) });
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    const db = defer(await testDb.open(), (d) => d.close());
    const config: Config = { ...loadConfig({ PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'test' }), database: testDb.config };
    const server = defer(await createServer(config, { db, log: pino({ level: 'debug' }, sink) }), (s) => s.close());
    await db.sql.query('ALTER TABLE model RENAME TO model_gone');
    const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'trace-42' }, body: JSON.stringify({ query: '{ models { totalCount } }' }) });
    assert.equal(response.headers.get('x-request-id'), 'trace-42');
    const body = (await response.json()) as { errors?: { message: string; extensions?: Record<string, any> }[] };
    assert.deepEqual(codes(body), ['INTERNAL_SERVER_ERROR']);
    assert.doesNotMatch(JSON.stringify(body), /model_gone|relation|SELECT|\.ts:|node_modules/);
    const logged = lines.filter((l) => l.msg === 'unexpected error');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.requestId, 'trace-42');
    assert.match(JSON.stringify(logged[0]!.err), /does not exist/, 'the details are in the log');
    assert.ok(lines.some((l) => l.requestId === 'trace-42' && l.msg === 'request done'));
    assert.ok(lines.some((l) => /running OPEN/.test(l.msg)), 'an open server says so at start-up');
    await db.sql.query('ALTER TABLE model_gone RENAME TO model');
  });
});
