import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  getNamedType,
  getNullableType,
  isEnumType,
  isInputObjectType,
  isListType,
  isObjectType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
} from 'graphql';
import { createApiKey } from '../src/auth/keys.js';
import { ErrorCode } from '../src/errors.js';
import { buildSchema } from '../src/schema/index.js';
import { createModelAndRun } from './helpers/fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { seededRandom } from '../src/random.js';

/**
 * A few thousand hostile requests, generated from the schema with a fixed seed: every argument of
 * every Query and Mutation field gets wrong types, out-of-range numbers, non-finite floats, bad ids
 * and cursors, and injection strings; on top come malformed HTTP bodies, oversize bodies, deep and
 * wide documents, and requests with no key or too small a role. Every answer must be a clean error
 * with a code from errors.ts (or, for reads, a valid result), nothing may leak internals, no hostile
 * mutation may succeed, and every table must be exactly as it was.
 */
const SEED = 20261129;
/** Field requests in all, spread over the fields (so the run stays ~30 s as the schema grows). */
const FIELD_REQUESTS = 2200;
const MAX_BODY = 200_000;

/** Seeded choices, so a failure reproduces. */
function rng(seed: number) {
  const next = seededRandom(seed);
  return { next, pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]! };
}

/** Literal JSON text spliced into a body: values JSON.stringify cannot write. */
const RAW = (text: string) => ({ __raw: text });

const INJECTIONS = [
  "'; DROP TABLE dataset; --",
  "1' OR '1'='1",
  '" OR ""="',
  "admin'--",
  '$1',
  '%s%s%s%n',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  '{{7*7}}',
  '${process.exit(1)}',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\u202e\u0000evil',
  ' ',
  '',
  'x'.repeat(70_000),
  'SELECT pg_sleep(10)',
  '1; UPDATE api_key SET role = $$ADMIN$$',
  '\\x00\\',
];
const BAD_IDS = ['0', '-1', '999999999', '2147483648', '99999999999999999999', '1e3', '0x10', 'abc', '１', ' 7', '7 ', '', ...INJECTIONS.slice(0, 6), 1.5, -3, true, null, {}, [], [1]];
const BAD_INTS = [2147483648, -2147483649, -1, -100000, 1e308, 1.5, '1', 'NaN', true, null, [], {}, [7], 9007199254740993, RAW('NaN'), RAW('Infinity'), RAW('1e999'), RAW('-0.0e-999')];
const BAD_FLOATS = [RAW('NaN'), RAW('Infinity'), RAW('-Infinity'), RAW('1e999'), RAW('-1e999'), '1.0', 'NaN', true, null, [], {}, 1e39];
const BAD_BOOLS = ['true', 1, 0, null, [], {}];
const BAD_ENUMS = ['DROP', '', 'reader', 'ADMIN ', 1, null, ['READER'], {}];
const BAD_SCALARS = [['NaN'], [RAW('NaN')], [1e39, -1e39], '!!!not base64!!!', 'AAAA=', '====', [[1, 2]], { $where: '1' }, '', 'x', [null], [true], 'A'.repeat(5), Array.from({ length: 3000 }, () => 1e-45), -1, 'now', '2026-13-45T99:99:99Z', ...INJECTIONS.slice(0, 4)];
const BAD_CURSORS = [
  'garbage',
  '',
  '!!!',
  Buffer.from('{"l":"datasets","k":[1e308]}').toString('base64url'),
  Buffer.from(`{"l":"datasets","k":["' OR 1=1 --"]}`).toString('base64url'),
  Buffer.from('{"l":"runs","k":[1]}').toString('base64url'),
  Buffer.from('{"l":"datasets","k":[-1]}').toString('base64url'),
  Buffer.from('{"l":"datasets","k":[1.5]}').toString('base64url'),
  Buffer.from('{"l":"datasets","k":[]}').toString('base64url'),
  Buffer.from('{"l":"datasets","k":[1,2,3,4,5,6,7,8,9]}').toString('base64url'),
  Buffer.from('not json').toString('base64url'),
  'x'.repeat(5000),
];

type Gen = ReturnType<typeof rng>;

/** A hostile value for an input type (sometimes of the wrong shape altogether). */
function hostile(type: GraphQLInputType, r: Gen, argName: string, depth = 0): unknown {
  // Never a small positive integer: that could be the id of a real row, and a valid delete is no finding.
  if (r.next() < 0.05) return r.pick([null, 'x', -7, [], {}]);
  const inner = getNullableType(type) as GraphQLInputType;
  if (isListType(inner)) {
    if (r.next() < 0.15) return hostile(inner.ofType, r, argName, depth + 1); // not a list
    if (r.next() < 0.05) return JSON.parse('['.repeat(200) + ']'.repeat(200)); // deep nesting
    const n = r.pick([0, 1, 2, 3]);
    return Array.from({ length: n }, () => hostile(inner.ofType, r, argName, depth + 1));
  }
  if (isInputObjectType(inner)) {
    if (depth > 4) return {};
    const out: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(inner.getFields())) {
      if (r.next() < 0.1) continue; // a missing field
      out[name] = hostile(field.type, r, name, depth + 1);
    }
    if (r.next() < 0.1) out.notAField = 1;
    return out;
  }
  if (isEnumType(inner)) return r.pick(BAD_ENUMS);
  if (isScalarType(inner)) {
    if (argName === 'after') return r.pick(BAD_CURSORS);
    switch (inner.name) {
      case 'ID':
        return r.pick(BAD_IDS);
      case 'Int':
        return r.pick(BAD_INTS);
      case 'Float':
        return r.pick(BAD_FLOATS);
      case 'Boolean':
        return r.pick(BAD_BOOLS);
      case 'String':
        return r.pick(INJECTIONS);
      default:
        return r.pick(BAD_SCALARS);
    }
  }
  return null;
}

/** JSON with RAW markers spliced in as literal text. */
function toBody(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v) => {
    if (v && typeof v === 'object' && '__raw' in v) {
      raws.push((v as { __raw: string }).__raw);
      return `__RAW_${raws.length - 1}__`;
    }
    return v;
  });
  return text.replace(/"__RAW_(\d+)__"/g, (_m, i) => raws[Number(i)]!);
}

/** A small selection for a field's return type: its scalar fields, or __typename. */
function selection(field: GraphQLField<unknown, unknown>): string {
  const type = getNamedType(field.type);
  if (!isObjectType(type)) return '';
  const scalars = Object.values(type.getFields())
    .filter((f) => isScalarType(getNamedType(f.type)) && f.args.every((a) => !(a.type.toString().endsWith('!'))))
    .map((f) => f.name)
    .slice(0, 6);
  return `{ __typename ${scalars.join(' ')} }`;
}

interface Probe {
  label: string;
  body: string;
  headers?: Record<string, string>;
  method?: string;
  url?: string;
  mutation: boolean;
}

function fieldProbes(r: Gen, headers: Record<string, string>): Probe[] {
  const schema = buildSchema();
  const probes: Probe[] = [];
  const fields = Object.keys(schema.getQueryType()!.getFields()).length + Object.keys(schema.getMutationType()!.getFields()).length;
  const variants = Math.max(20, Math.ceil(FIELD_REQUESTS / fields));
  for (const [kind, type] of [['query', schema.getQueryType()!], ['mutation', schema.getMutationType()!]] as const) {
    for (const field of Object.values(type.getFields())) {
      for (let v = 0; v < variants; v++) {
        const args = field.args as readonly GraphQLArgument[];
        const variables: Record<string, unknown> = {};
        const inline = r.next() < 0.25;
        const argText = args
          .filter(() => r.next() > 0.05)
          .map((arg) => {
            const value = hostile(arg.type, r, arg.name);
            if (inline) return `${arg.name}: ${literal(value)}`;
            variables[arg.name] = value;
            return `${arg.name}: $${arg.name}`;
          });
        const declared = inline ? '' : args.filter((a) => a.name in variables).map((a) => `$${a.name}: ${a.type}`).join(', ');
        const query = `${kind}${declared ? `(${declared})` : ''} { ${field.name}${argText.length ? `(${argText.join(', ')})` : ''} ${selection(field)} }`;
        probes.push({ label: `${kind} ${field.name}#${v}`, body: toBody({ query, variables }), headers, mutation: kind === 'mutation' });
      }
    }
  }
  return probes;
}

/** GraphQL literal text for a value (strings JSON-escaped, raws as written, objects as input objects). */
function literal(value: unknown): string {
  if (value && typeof value === 'object' && '__raw' in value) return (value as { __raw: string }).__raw;
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  if (value && typeof value === 'object') return `{ ${Object.entries(value).map(([k, v]) => `${k}: ${literal(v)}`).join(', ')} }`;
  if (value === null) return 'null';
  return JSON.stringify(value);
}

function protocolProbes(r: Gen, url: string, keys: { admin: string; reader: string }): Probe[] {
  const admin = { authorization: `Bearer ${keys.admin}` };
  const q = (query: string, extra: Record<string, unknown> = {}) => JSON.stringify({ query, ...extra });
  const probes: Probe[] = [
    { label: 'oversize body', body: q(`mutation($s: [SampleInput!]!) { addSamples(datasetId: 1, samples: $s) { added } }`, { variables: { s: Array.from({ length: 20000 }, (_, i) => ({ index: i, label: 0, series: [1] })) } }), headers: admin, mutation: true },
    { label: 'truncated JSON', body: '{"query": "{ serverInfo { version } }"', headers: admin, mutation: false },
    { label: 'NaN in JSON', body: '{"query": "query($f: Int) { datasets(first: $f) { totalCount } }", "variables": {"f": NaN}}', headers: admin, mutation: false },
    { label: 'body is an array', body: '[]', headers: admin, mutation: false },
    { label: 'body is a string', body: '"{ serverInfo { version } }"', headers: admin, mutation: false },
    { label: 'body is null', body: 'null', headers: admin, mutation: false },
    { label: 'query is a number', body: '{"query": 123}', headers: admin, mutation: false },
    { label: 'query is an object', body: '{"query": {"a": 1}}', headers: admin, mutation: false },
    { label: 'no query', body: '{"variables": {}}', headers: admin, mutation: false },
    { label: 'variables not an object', body: q('{ serverInfo { version } }', { variables: 'x' }), headers: admin, mutation: false },
    { label: 'variables an array', body: q('{ serverInfo { version } }', { variables: [1] }), headers: admin, mutation: false },
    { label: 'unknown operationName', body: q('query A { serverInfo { version } } query B { serverInfo { database } }', { operationName: 'C' }), headers: admin, mutation: false },
    { label: 'two operations, none chosen', body: q('query A { serverInfo { version } } query B { serverInfo { database } }'), headers: admin, mutation: false },
    { label: 'deep nesting', body: q(`{ ${'runs { nodes { dataset { '.repeat(20)}id${' } } }'.repeat(20)} }`), headers: admin, mutation: false },
    { label: 'deeply nested braces', body: q('{'.repeat(5000) + '}'.repeat(5000)), headers: admin, mutation: false },
    { label: 'alias bomb', body: q(`{ ${Array.from({ length: 2000 }, (_, i) => `a${i}: serverInfo { version }`).join(' ')} }`), headers: admin, mutation: false },
    { label: 'directive bomb', body: q(`{ serverInfo { version ${'@skip(if: false) '.repeat(500)} } }`), headers: admin, mutation: false },
    { label: 'fragment cycle', body: q('{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }'), headers: admin, mutation: false },
    { label: 'wide page of pages', body: q('{ datasets(first: 1000) { nodes { samples(first: 1000) { nodes { series } } } } }'), headers: admin, mutation: false },
    { label: 'token flood', body: q(`{ serverInfo { ${'version '.repeat(20000)} } }`), headers: admin, mutation: false },
    { label: 'subscription over HTTP', body: q('subscription { runUpdated(id: 1) { id } }'), headers: admin, mutation: false },
    { label: 'batch', body: JSON.stringify([{ query: '{ serverInfo { version } }' }, { query: 'mutation { deleteDataset(id: 1) { id } }' }]), headers: admin, mutation: true },
    { label: 'text/plain (CSRF)', body: q('mutation { deleteDataset(id: 1) { id } }'), headers: { ...admin, 'content-type': 'text/plain' }, mutation: true },
    { label: 'GET mutation', body: '', method: 'GET', url: `${url}?query=${encodeURIComponent('mutation { deleteDataset(id: 1) { id } }')}`, headers: { ...admin, 'apollo-require-preflight': '1' }, mutation: true },
    { label: 'introspection field on a mutation', body: q('mutation { __schema { types { name } } }'), headers: admin, mutation: false },
    { label: 'no key', body: q('mutation { deleteDataset(id: 1) { id } }'), headers: {}, mutation: true },
    { label: 'wrong key', body: q('mutation { deleteDataset(id: 1) { id } }'), headers: { authorization: `Bearer tgt_${'Z'.repeat(43)}` }, mutation: true },
    { label: 'key with injection', body: q('{ serverInfo { version } }'), headers: { authorization: "Bearer tgt_' OR 1=1 --" }, mutation: false },
    { label: 'huge header key', body: q('{ serverInfo { version } }'), headers: { authorization: `Bearer ${'a'.repeat(7000)}` }, mutation: false },
    { label: 'reader deletes', body: q('mutation { deleteDataset(id: 1) { id } }'), headers: { authorization: `Bearer ${keys.reader}` }, mutation: true },
    { label: 'reader makes a key', body: q('mutation { createApiKey(input: { name: "x", role: ADMIN }) { secret } }'), headers: { authorization: `Bearer ${keys.reader}` }, mutation: true },
  ];
  // Random garbage documents.
  const alphabet = '{}()[]:$@!.,"\\ \n\tqueryfragment_on0123456789#é\u0000';
  for (let i = 0; i < 150; i++) {
    const text = Array.from({ length: 1 + Math.floor(r.next() * 200) }, () => r.pick([...alphabet])).join('');
    probes.push({ label: `garbage document #${i}`, body: q(text), headers: admin, mutation: false });
  }
  return probes;
}

const CODES = new Set<string>(Object.values(ErrorCode));
const LEAKS = /\n\s+at |\.ts:\d+|\.js:\d+|node_modules|\/work\/|relation "|DriverAdapterError|Prisma|violates|pg_catalog|stack/i;

describe('fuzz: hostile requests get clean errors and change nothing', () => {
  let t: TestServer;
  let keys: { admin: string; reader: string };

  before(async () => {
    t = await startTestServer({ env: { TANGENT_AUTH: 'on', TANGENT_RATE_LIMIT_PER_MIN: '0', TANGENT_AUTH_FAILURES_PER_MIN: '0', TANGENT_MAX_BODY_BYTES: String(MAX_BODY) } });
    keys = { admin: (await createApiKey(t.db, { name: 'fuzz', role: 'ADMIN' })).secret, reader: (await createApiKey(t.db, { name: 'fuzz-r', role: 'READER' })).secret };
    const auth = { authorization: `Bearer ${keys.admin}` };
    // Something to read, so that reads of real rows are fuzzed too.
    const { createDataset } = await t.gql(
      `mutation { createDataset(input: { name: "fuzz", length: 2, classNames: ["a", "b"], samples: [{ index: 0, label: 0, series: [1, 2] }, { index: 1, label: 1, series: [3, 4] }] }) { id } }`,
      undefined,
      auth,
    );
    const withKey: TestServer = { ...t, gql: (q, v) => t.gql(q, v, auth) };
    await createModelAndRun(withKey, { id: createDataset.id, length: 2, channels: 1, classes: 2 });
  });
  after(() => t?.close());

  /** Row count and checksum of every table (api_key without its last-use time, which reads update). */
  async function snapshot(): Promise<Record<string, string>> {
    const tables = await t.db.sql.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
    const out: Record<string, string> = {};
    for (const { tablename } of tables) {
      const source = tablename === 'api_key' ? `(SELECT id, name, role, prefix, hash, created_at, revoked_at FROM api_key)` : `"${tablename}"`;
      const [row] = await t.db.sql.query<{ n: number; sum: string | null }>(`SELECT count(*)::int AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS sum FROM ${source} x`);
      out[tablename] = `${row!.n}:${row!.sum}`;
    }
    return out;
  }

  test('a few thousand hostile requests', async (tc) => {
    const r = rng(SEED);
    const admin = { authorization: `Bearer ${keys.admin}` };
    const probes = [...fieldProbes(r, admin), ...protocolProbes(r, t.url, keys)];
    const before = await snapshot();
    const problems: string[] = [];
    const seen = new Map<string, number>();
    let index = 0;
    const worker = async () => {
      while (index < probes.length) {
        const probe = probes[index++]!;
        const response = await fetch(probe.url ?? t.url, {
          method: probe.method ?? 'POST',
          headers: { 'content-type': 'application/json', ...probe.headers },
          ...(probe.method === 'GET' ? {} : { body: probe.body }),
        });
        const text = await response.text();
        const fail = (why: string) => problems.push(`${probe.label}: ${why} — sent ${probe.body.slice(0, 300)} — got ${response.status}: ${text.slice(0, 300)}`);
        if (response.status >= 500) fail('a 5xx');
        let body: { data?: unknown; errors?: { message?: unknown; extensions?: { code?: unknown } }[] };
        try {
          body = JSON.parse(text);
        } catch {
          fail('not JSON');
          continue;
        }
        if (LEAKS.test(text)) fail('leaks internals');
        if (body.errors) {
          if (!Array.isArray(body.errors) || body.errors.length === 0) fail('malformed errors');
          for (const error of body.errors) {
            const code = String(error.extensions?.code);
            seen.set(code, (seen.get(code) ?? 0) + 1);
            if (!CODES.has(code)) fail(`code ${code} is not in errors.ts`);
            if (code === 'INTERNAL_SERVER_ERROR') fail('an internal error');
            if (typeof error.message !== 'string') fail('no message');
          }
        } else {
          seen.set('ok', (seen.get('ok') ?? 0) + 1);
          if (probe.mutation || probe.label.startsWith('mutation')) fail('a hostile mutation succeeded');
          if (body.data === undefined) fail('neither data nor errors');
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    tc.diagnostic(`${probes.length} requests; answers by code: ${JSON.stringify(Object.fromEntries([...seen].sort((a, b) => b[1] - a[1])))}`);
    assert.ok(probes.length >= 2000);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
    assert.deepEqual(await snapshot(), before, 'the database is unchanged');
    const health = await fetch(t.url.replace('/graphql', '/healthz'));
    assert.equal(health.status, 200, 'and the server is still well');
  });
});
