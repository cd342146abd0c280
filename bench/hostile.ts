/**
 * Hostile requests for a running Tangent server, and the judge of its answers: the instrument behind
 * `npm run bench:fuzz` and the seeded slice in test/fuzz.test.ts (both call the same functions, so
 * the test asserts exactly what the benchmark counts).
 *
 * What it sends, all from one seed so a run reproduces:
 * - every argument of every Query and Mutation field, and of the fields one level under a real
 *   dataset, model, run, checkpoint, sample, selection and job, with wrong types, out-of-range and
 *   non-finite numbers, bad ids and cursors, injection strings, missing fields and unknown ones;
 * - the reported cases: NUL and lone surrogates in every String and ID argument and in JSON values
 *   (with the other arguments valid, so the string reaches the resolver), 500-level JSON in every
 *   JSON argument, persisted-query extensions with wrong hashes, 2,000-level selections, READER
 *   requests over terms nobody computed, and export URLs with bad parameters;
 * - malformed bodies, oversize bodies, wide and deep documents, garbage documents, missing keys and
 *   roles that are too small;
 * over HTTP POST, HTTP GET and graphql-ws. `badKeysThenValidKey` is the separate throttling case,
 * for a server whose limits are on.
 *
 * What counts as a failure (`FailureKind`): a 5xx (or a WebSocket closed as an internal error), an
 * INTERNAL_SERVER_ERROR, an answer that leaks internals (stack frames, file paths, SQL text, JS error
 * names), no answer within 10 s, a dead server, a code that errors.ts does not define, an answer
 * that is not JSON, a connection dropped without an answer, a request that had to fail but
 * succeeded, a valid key refused because of another client's bad keys, and rows written by failed
 * requests (a snapshot of every table before and after, compared by the caller).
 */
import { createHash } from 'node:crypto';
import {
  getNamedType,
  getNullableType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';
import WebSocket from 'ws';
import { ErrorCode } from '../src/platform/errors.js';
import { seededRandom } from '../src/platform/random.js';

/** How long a client waits for any one answer before it counts a hang. */
export const HANG_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Seeded choices and hostile values

export interface Gen {
  next(): number;
  pick<T>(items: readonly T[]): T;
}

/** Seeded choices, so a failure reproduces from its seed. */
export function rng(seed: number): Gen {
  const next = seededRandom(seed);
  return { next, pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]! };
}

/** Literal JSON text spliced into a body: values JSON.stringify cannot write (NaN, 1e999). */
export const RAW = (text: string) => ({ __raw: text });

/** Strings PostgreSQL or Prisma cannot store: NUL bytes and unpaired UTF-16 surrogates. */
export const UNSTORABLE = ['a\u0000b', '\u0000', 'x\ud800', '\udc00', '\ud800\u0000', 'ok\udfff\ud800tail'];

export const INJECTIONS = [
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
  '\u202e\u0000evil',
  ' ',
  '',
  'x'.repeat(70_000),
  'SELECT pg_sleep(10)',
  '1; UPDATE api_key SET role = $$ADMIN$$',
  '\\x00\\',
  ...UNSTORABLE,
];
const BAD_IDS = ['0', '-1', '999999999', '2147483648', '99999999999999999999', '1e3', '0x10', 'abc', '１', ' 7', '7 ', '', ...INJECTIONS.slice(0, 6), ...UNSTORABLE, 1.5, -3, true, null, {}, [], [1]];
const BAD_INTS = [2147483648, -2147483649, -1, -100000, 1e308, 1.5, '1', 'NaN', true, null, [], {}, [7], 9007199254740993, RAW('NaN'), RAW('Infinity'), RAW('1e999'), RAW('-0.0e-999')];
const BAD_FLOATS = [RAW('NaN'), RAW('Infinity'), RAW('-Infinity'), RAW('1e999'), RAW('-1e999'), '1.0', 'NaN', true, null, [], {}, 1e39];
const BAD_BOOLS = ['true', 1, 0, null, [], {}];
const BAD_ENUMS = ['DROP', '', 'reader', 'ADMIN ', 'K_NORM\u0000', 1, null, ['READER'], {}];
const BAD_SCALARS = [['NaN'], [RAW('NaN')], [1e39, -1e39], '!!!not base64!!!', 'AAAA=', '====', [[1, 2]], { $where: '1' }, '', 'x', [null], [true], 'A'.repeat(5), Array.from({ length: 3000 }, () => 1e-45), -1, 'now', '2026-13-45T99:99:99Z', ...INJECTIONS.slice(0, 4), ...UNSTORABLE.slice(0, 3)];
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
  Buffer.from('{"l":"datasets","k":["a\\u0000b"]}').toString('base64url'),
  Buffer.from('not json').toString('base64url'),
  'x'.repeat(5000),
  ...UNSTORABLE.slice(0, 3),
];

/** JSON nested `levels` deep: arrays, objects, or both. */
export function deepJson(levels: number, shape: 'array' | 'object' | 'mixed' = 'array'): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = shape === 'array' || (shape === 'mixed' && i % 2) ? [value] : { a: value };
  return value;
}

/** JSON values with unstorable strings in values and in keys, deep nesting, and wide objects. */
function hostileJson(r: Gen): unknown {
  return r.pick<() => unknown>([
    () => ({ name: r.pick(UNSTORABLE) }),
    () => ({ [r.pick(UNSTORABLE)]: 1 }),
    () => [r.pick(UNSTORABLE)],
    () => ({ nested: { deeper: [r.pick(UNSTORABLE)] } }),
    () => deepJson(500, 'array'),
    () => deepJson(500, 'object'),
    () => deepJson(500, 'mixed'),
    () => Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])),
  ])();
}

type Leaf = 'string' | 'json';

/** A hostile value for an input type (sometimes of the wrong shape altogether). */
function hostile(type: GraphQLInputType, r: Gen, argName: string, depth = 0): unknown {
  // Never a small positive integer: that could be the id of a real row, and a valid delete is no finding.
  if (r.next() < 0.05) return r.pick([null, 'x', -7, [], {}]);
  const inner = getNullableType(type) as GraphQLInputType;
  if (isListType(inner)) {
    if (r.next() < 0.15) return hostile(inner.ofType, r, argName, depth + 1); // not a list
    if (r.next() < 0.05) return deepJson(200); // deep nesting
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
      case 'JSON':
        return r.next() < 0.5 ? hostileJson(r) : r.pick(BAD_SCALARS);
      default:
        return r.pick(BAD_SCALARS);
    }
  }
  return null;
}

/** The ids of the rows `seedFuzzData` made; valid values reach them. */
export interface FuzzIds {
  dataset: string;
  model: string;
  run: string;
  /** Terms computed: reads on it compute nothing. */
  checkpoint: string;
  /** Checkpoints nobody computed terms for: a READER over them must get TERMS_PENDING and start nothing. */
  fresh: string[];
  sample: string;
  sampleIds: string[];
  selection: string;
  job: string;
}

/**
 * A valid value for an input type, with `leaf` (a path of field names and `[]`) replaced by `hole`.
 * Optional fields and arguments are left out, so the hole is the only thing that can be refused.
 * Returns undefined when the type has no such leaf.
 */
function validWith(type: GraphQLInputType, name: string, ids: FuzzIds, path: readonly string[], hole: unknown): unknown {
  const inner = getNullableType(type) as GraphQLInputType;
  if (path.length === 0) return hole;
  if (isListType(inner) && path[0] === '[]') return [validWith(inner.ofType, name, ids, path.slice(1), hole)];
  if (isInputObjectType(inner)) {
    const out: Record<string, unknown> = {};
    for (const [fieldName, field] of Object.entries(inner.getFields())) {
      if (fieldName === path[0]) out[fieldName] = validWith(field.type, fieldName, ids, path.slice(1), hole);
      else if (isNonNullType(field.type) && field.defaultValue === undefined) out[fieldName] = valid(field.type, fieldName, ids);
    }
    return out;
  }
  return hole;
}

/** A plausible valid value for a required input, with real ids where the name says which kind. */
function valid(type: GraphQLInputType, name: string, ids: FuzzIds, depth = 0): unknown {
  const inner = getNullableType(type) as GraphQLInputType;
  if (isListType(inner)) return depth > 4 ? [] : [valid(inner.ofType, name, ids, depth + 1)];
  if (isInputObjectType(inner)) {
    const out: Record<string, unknown> = {};
    if (depth > 4) return out;
    for (const [fieldName, field] of Object.entries(inner.getFields())) {
      if (isNonNullType(field.type) && field.defaultValue === undefined) out[fieldName] = valid(field.type, fieldName, ids, depth + 1);
    }
    return out;
  }
  if (isEnumType(inner)) return inner.getValues()[0]!.value;
  if (!isScalarType(inner)) return null;
  switch (inner.name) {
    case 'ID':
      return idFor(name, ids);
    case 'Int':
      return 1;
    case 'Float':
      return 0.5;
    case 'Boolean':
      return false;
    case 'String':
      return 'fuzz';
    case 'JSON':
      return {};
    case 'Base64':
      return 'AAAAAA==';
    case 'DateTime':
      return '2026-01-01T00:00:00Z';
    default:
      return [0.5];
  }
}

function idFor(name: string, ids: FuzzIds): string {
  const n = name.toLowerCase();
  for (const kind of ['checkpoint', 'dataset', 'model', 'selection', 'sample', 'run', 'job'] as const) if (n.includes(kind)) return kind === 'sample' ? ids.sample : ids[kind];
  return ids.dataset;
}

/** Paths to every String/ID and JSON leaf of an input type ([] for a list's items). */
function leaves(type: GraphQLInputType, depth = 0, seen = new Set<string>()): { path: string[]; kind: Leaf }[] {
  const inner = getNullableType(type) as GraphQLInputType;
  if (isListType(inner)) return leaves(inner.ofType, depth + 1, seen).map((l) => ({ ...l, path: ['[]', ...l.path] }));
  if (isInputObjectType(inner)) {
    if (depth > 5 || seen.has(inner.name)) return [];
    const next = new Set(seen).add(inner.name);
    return Object.entries(inner.getFields()).flatMap(([name, field]) => leaves(field.type, depth + 1, next).map((l) => ({ ...l, path: [name, ...l.path] })));
  }
  if (isScalarType(inner) && (inner.name === 'String' || inner.name === 'ID')) return [{ path: [], kind: 'string' }];
  if (isScalarType(inner) && inner.name === 'JSON') return [{ path: [], kind: 'json' }];
  return [];
}

// ---------------------------------------------------------------------------------------------
// Probes

export type Transport = 'http-post' | 'http-get' | 'ws';
/** Whose credentials a probe carries; `raw:` sends the rest as the Authorization header. */
export type Auth = 'admin' | 'writer' | 'reader' | 'none' | 'bad' | `raw:${string}`;

export interface Probe {
  /** What it is, e.g. `mutation createModel#3`, `nul mutation createModel input.name`. */
  label: string;
  /** Which family of cases it belongs to (field, unstorable, deep-json, persisted, deep-selection, reader-compute, export, protocol, garbage). */
  family: string;
  transport: Transport;
  auth: Auth;
  /** The GraphQL request; RAW markers in it are written as literal JSON text. */
  doc?: { query?: unknown; variables?: unknown; extensions?: unknown; operationName?: unknown };
  /** A body sent as it is instead of doc (malformed JSON and the like); HTTP POST only. */
  rawBody?: string;
  /** For HTTP: the path (with query string) when not /graphql, e.g. an export URL. */
  path?: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Whether any success is a finding (every mutation, every protocol probe, the reported cases). */
  mustFail: boolean;
}

/** JSON with RAW markers spliced in as literal text. */
export function toBody(value: unknown): string {
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

/** GraphQL literal text for a value (strings JSON-escaped, raws as written, objects as input objects). */
function literal(value: unknown): string {
  if (value && typeof value === 'object' && '__raw' in value) return (value as { __raw: string }).__raw;
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  if (value && typeof value === 'object') return `{ ${Object.entries(value).map(([k, v]) => `${/^[_A-Za-z][_0-9A-Za-z]*$/.test(k) ? k : '_bad'}: ${literal(v)}`).join(', ')} }`;
  if (value === null || value === undefined) return 'null';
  return JSON.stringify(value);
}

/** A small selection for a field's return type: its scalar fields without required arguments, or __typename. */
function selection(field: GraphQLField<unknown, unknown>): string {
  const type = getNamedType(field.type);
  if (!isObjectType(type)) return '';
  const scalars = Object.values(type.getFields())
    .filter((f) => isScalarType(getNamedType(f.type)) && f.args.every((a) => !isNonNullType(a.type)))
    .map((f) => f.name)
    .slice(0, 6);
  return `{ __typename ${scalars.join(' ')} }`;
}

/** Where a field is reached from: a root field, or a field under a real row (`dataset(id: "3") { … }`). */
interface Site {
  kind: 'query' | 'mutation';
  field: GraphQLField<unknown, unknown>;
  /** Wraps the field's text in the path that reaches it. */
  wrap(inner: string): string;
  name: string;
}

/** Every field that takes arguments: at the roots, and one level under each row that a root field finds by id. */
function sites(schema: GraphQLSchema, ids: FuzzIds): Site[] {
  const out: Site[] = [];
  for (const [kind, type] of [['query', schema.getQueryType()!], ['mutation', schema.getMutationType()!]] as const) {
    // A field without arguments has nothing hostile to be sent (a no-argument ADMIN mutation such as
    // purgeTrunkCache rightly succeeds for an admin), so only fields that take arguments are sites.
    for (const field of Object.values(type.getFields())) if (field.args.length > 0) out.push({ kind, field, wrap: (s) => s, name: field.name });
  }
  const rows: Record<string, string> = { dataset: ids.dataset, model: ids.model, run: ids.run, checkpoint: ids.checkpoint, sample: ids.sample, selection: ids.selection, job: ids.job };
  for (const root of Object.values(schema.getQueryType()!.getFields())) {
    const id = rows[root.name];
    if (!id || !isObjectType(getNamedType(root.type))) continue;
    for (const field of Object.values((getNamedType(root.type) as GraphQLObjectType).getFields())) {
      if (field.args.length === 0) continue;
      out.push({ kind: 'query', field, wrap: (s) => `${root.name}(id: ${JSON.stringify(id)}) { ${s} }`, name: `${root.name}.${field.name}` });
    }
  }
  return out;
}

/** The text of one call of a site's field, with its arguments inline or as variables. */
function call(site: Site, args: { arg: GraphQLArgument; value: unknown }[], inline: boolean): NonNullable<Probe['doc']> {
  const variables: Record<string, unknown> = {};
  const argText = args.map(({ arg, value }) => {
    if (inline) return `${arg.name}: ${literal(value)}`;
    variables[arg.name] = value;
    return `${arg.name}: $${arg.name}`;
  });
  const declared = inline ? '' : args.map(({ arg }) => `$${arg.name}: ${arg.type}`).join(', ');
  const inner = `${site.field.name}${argText.length ? `(${argText.join(', ')})` : ''} ${selection(site.field)}`;
  return { query: `${site.kind}${declared ? `(${declared})` : ''} { ${site.wrap(inner)} }`, variables };
}

/** Random hostile arguments for every site, `perSite` times each. */
function fieldProbes(r: Gen, all: Site[], count: number): Probe[] {
  const probes: Probe[] = [];
  for (let i = 0; i < count; i++) {
    const site = all[i % all.length]!;
    const args = (site.field.args as readonly GraphQLArgument[]).filter(() => r.next() > 0.05).map((arg) => ({ arg, value: hostile(arg.type, r, arg.name) }));
    const auth = r.pick<Auth>(['admin', 'admin', 'admin', 'admin', 'admin', 'admin', 'admin', 'admin', 'writer', 'reader', 'none', 'bad']);
    probes.push({
      label: `${site.kind} ${site.name}#${Math.floor(i / all.length)}`,
      family: 'field',
      transport: transportFor(r, site.kind),
      auth,
      doc: call(site, args, r.next() < 0.25),
      mustFail: site.kind === 'mutation',
    });
  }
  return probes;
}

function transportFor(r: Gen, kind: 'query' | 'mutation'): Transport {
  const x = r.next();
  if (x < 0.5) return 'http-post';
  if (x < 0.85) return 'ws';
  return kind === 'query' || x < 0.87 ? 'http-get' : 'http-post';
}

/**
 * The reported cases: for every String/ID leaf of every argument an unstorable string, and for
 * every JSON leaf unstorable strings and 500-level nesting, with every other argument valid.
 */
function unstorableProbes(r: Gen, all: Site[], ids: FuzzIds): Probe[] {
  const probes: Probe[] = [];
  for (const site of all) {
    const args = site.field.args as readonly GraphQLArgument[];
    for (const target of args) {
      for (const leaf of leaves(target.type)) {
        const holes = leaf.kind === 'string' ? [r.pick(UNSTORABLE)] : [{ name: r.pick(UNSTORABLE) }, { [r.pick(UNSTORABLE)]: 1 }, deepJson(500, r.pick(['array', 'object', 'mixed'] as const))];
        for (const hole of holes) {
          const values = args
            .filter((a) => a === target || (isNonNullType(a.type) && a.defaultValue === undefined))
            .map((arg) => ({ arg, value: arg === target ? validWith(arg.type, arg.name, ids, leaf.path, hole) : valid(arg.type, arg.name, ids) }));
          const where = [target.name, ...leaf.path].join('.').replace(/\.\[\]/g, '[]');
          probes.push({
            label: `${leaf.kind === 'json' ? (typeof hole === 'object' && JSON.stringify(hole).length > 1000 ? 'deep-json' : 'json-unstorable') : 'unstorable'} ${site.kind} ${site.name} ${where}`,
            family: leaf.kind === 'json' ? 'json' : 'unstorable',
            transport: transportFor(r, site.kind),
            auth: 'admin',
            // JSON keys that are not GraphQL names cannot be written inline: JSON goes as variables.
            doc: call(site, values, leaf.kind === 'string' && r.next() < 0.3),
            mustFail: true,
          });
        }
      }
    }
  }
  return probes;
}

/** A document with selections nested `levels` deep (two tokens a level, or three with aliases). */
export function deepSelection(levels: number, alias = false): string {
  return `{ serverInfo ${(alias ? '{ a: b ' : '{ a ').repeat(levels)}${'}'.repeat(levels)} }`;
}

function persistedQueryProbes(): Probe[] {
  const query = '{ serverInfo { version } }';
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const ext = (persistedQuery: unknown) => ({ persistedQuery });
  const cases: [string, NonNullable<Probe['doc']>][] = [
    ['wrong hash deadbeef', { query, extensions: ext({ version: 1, sha256Hash: 'deadbeef' }) }],
    ['hash of another document', { query, extensions: ext({ version: 1, sha256Hash: sha('{ viewer { role } }') }) }],
    ['hash in upper case', { query, extensions: ext({ version: 1, sha256Hash: sha(query).toUpperCase() }) }],
    ['hash only, never registered', { extensions: ext({ version: 1, sha256Hash: sha('{ nothing }') }) }],
    ['hash only, not hex', { extensions: ext({ version: 1, sha256Hash: 'zz' }) }],
    ['version 2', { query, extensions: ext({ version: 2, sha256Hash: sha(query) }) }],
    ['version a string', { query, extensions: ext({ version: 'x', sha256Hash: 'deadbeef' }) }],
    ['hash a number', { query, extensions: ext({ version: 1, sha256Hash: 123 }) }],
    ['hash with NUL', { query, extensions: ext({ version: 1, sha256Hash: 'dead\u0000beef' }) }],
    ['hash a lone surrogate', { query, extensions: ext({ version: 1, sha256Hash: '\ud800' }) }],
    ['hash 10k long', { query, extensions: ext({ version: 1, sha256Hash: 'a'.repeat(10_000) }) }],
    ['persistedQuery a string', { query, extensions: ext('deadbeef') }],
    ['persistedQuery deep', { query, extensions: ext(deepJson(500, 'object')) }],
    ['extensions an array', { query, extensions: [1] }],
    ['mutation with wrong hash', { query: 'mutation { deleteDataset(id: "999999999") { id } }', extensions: ext({ version: 1, sha256Hash: 'deadbeef' }) }],
  ];
  const probes: Probe[] = [];
  for (const transport of ['http-post', 'http-get', 'ws'] as const) {
    // graphql-ws has no persisted queries: it runs the query text and ignores extensions, which is
    // fine; only a request without a query has to fail there.
    for (const [label, doc] of cases) probes.push({ label: `persisted query: ${label}`, family: 'persisted', transport, auth: 'admin', doc, mustFail: transport !== 'ws' || doc.query === undefined || /^mutation/.test(String(doc.query)) });
  }
  return probes;
}

function deepSelectionProbes(): Probe[] {
  const probes: Probe[] = [];
  for (const transport of ['http-post', 'http-get', 'ws'] as const) {
    for (const [levels, alias] of [[2000, false], [2400, false], [1600, true], [2000, true]] as const) {
      // (A GET of these is a 20 KB URL, which Node refuses with 431 before any code of the server runs: sent as POST.)
      probes.push({ label: `${levels}-level selection${alias ? ' with aliases' : ''}`, family: 'deep-selection', transport, auth: 'admin', doc: { query: deepSelection(levels, alias) }, mustFail: true });
    }
  }
  probes.push({ label: '2000-level list nesting in a variable', family: 'deep-selection', transport: 'http-post', auth: 'admin', doc: { query: 'query($f: [ID!]!) { checkpoint(id: "1") { sampleTerms(sampleIds: $f, terms: [LOSS]) { loss } } }', variables: { f: deepJson(2000) } }, mustFail: true });
  return probes;
}

/** READER requests over terms nobody computed: each must be refused (TERMS_PENDING), and start no job. */
function readerComputeProbes(ids: FuzzIds): Probe[] {
  const [a, b, c] = ids.fresh;
  const two = JSON.stringify(ids.sampleIds.slice(0, 2));
  return [
    { label: `READER rankedSamples over never-computed kNorm at checkpoint ${a}`, family: 'reader-compute', transport: 'http-post', auth: 'reader', doc: { query: `{ checkpoint(id: "${a}") { rankedSamples(first: 5, orderBy: { term: K_NORM, direction: DESC }) { totalCount nodes { kNorm } } } }` }, mustFail: true },
    { label: `READER sampleTerms over never-computed kNorm at checkpoint ${b}`, family: 'reader-compute', transport: 'ws', auth: 'reader', doc: { query: `{ checkpoint(id: "${b}") { sampleTerms(sampleIds: ${two}, terms: [K_NORM, H_TRACE]) { kNorm hTrace } } }` }, mustFail: true },
    { label: `READER export of never-computed kNorm at checkpoint ${c}`, family: 'reader-compute', transport: 'http-get', auth: 'reader', path: `/export/checkpoints/${c}?format=csv`, mustFail: true },
  ] as Probe[];
}

/** Export URLs with bad parameters: every one is a client error with a code. */
function exportProbes(r: Gen, ids: FuzzIds): Probe[] {
  const q = (value: unknown) => Buffer.from(toBody(value)).toString('base64url');
  const ck = ids.checkpoint;
  const sel = ids.selection;
  const paths = [
    `/export/checkpoints/${ck}?format=xml`,
    `/export/checkpoints/${ck}?format=`,
    `/export/checkpoints/${ck}?format=csv&format=jsonl`,
    `/export/checkpoints/${ck}?format=csv%00`,
    `/export/checkpoints/${ck}?format=%ED%A0%80`,
    `/export/checkpoints/${ck}?format=${'c'.repeat(5000)}`,
    `/export/checkpoints/abc?format=csv`,
    `/export/checkpoints/-1?format=csv`,
    `/export/checkpoints/0?format=csv`,
    `/export/checkpoints/99999999999999999999?format=csv`,
    `/export/checkpoints/1e3?format=csv`,
    `/export/checkpoints/%00?format=csv`,
    `/export/checkpoints/%E0%A4%A?format=csv`,
    `/export/checkpoints/${ck}%00?format=csv`,
    `/export/checkpoints/${ck}?format=csv&q=garbage!`,
    `/export/checkpoints/${ck}?format=csv&q=${'A'.repeat(12_000)}`,
    `/export/checkpoints/${ck}?format=csv&q=${q({ orderBy: { term: 'NOPE' } })}`,
    `/export/checkpoints/${ck}?format=csv&q=${q({ filter: { splits: ['a\u0000b'] } })}`,
    `/export/checkpoints/${ck}?format=csv&q=${q({ filter: { splits: ['\ud800'] } })}`,
    `/export/checkpoints/${ck}?format=csv&q=${q({ subset: 'x\u0000' })}`,
    `/export/checkpoints/${ck}?format=csv&q=${q({ target: { split: '\udc00' } })}`,
    `/export/checkpoints/${ck}?format=csv&q=${q({ filter: deepJson(500, 'object') })}`,
    `/export/checkpoints/${ck}?format=csv&q=${q(deepJson(500, 'array'))}`,
    `/export/checkpoints/${ck}?format=csv&q=${q({ target: { selectionId: '999999999' } })}`,
    `/export/checkpoints/${ck}?format=csv&q=${q({ filter: { sampleIds: ["' OR 1=1 --"] } })}`,
    `/export/selections/abc?format=csv`,
    `/export/selections/999999999?format=csv`,
    `/export/selections/${sel}?format=xml`,
    `/export/selections/${sel}?format=csv&checkpoint=abc`,
    `/export/selections/${sel}?format=csv&checkpoint=-1`,
    `/export/selections/${sel}?format=csv&checkpoint=999999999`,
    `/export/selections/${sel}?format=csv&checkpoint=%00`,
    `/export/selections/${sel}?checkpoint=${ck}&checkpoint=${ck}`,
    `/export/selections/%ED%A0%80`,
    `/export/selections/`,
    `/export/nothing/1`,
  ];
  const probes: Probe[] = [];
  for (const path of paths) {
    for (const auth of ['reader', r.pick<Auth>(['admin', 'writer', 'none', 'bad'])] as const) {
      probes.push({ label: `export ${path.slice(0, 120)}`, family: 'export', transport: 'http-get', auth, path, mustFail: true });
    }
  }
  return probes;
}

/** Malformed bodies, limits, keys and roles: HTTP only, plus raw frames over WebSocket. */
function protocolProbes(r: Gen, maxBodyBytes: number): Probe[] {
  const q = (query: string, extra: Record<string, unknown> = {}) => JSON.stringify({ query, ...extra });
  const post = (label: string, rawBody: string, auth: Auth = 'admin', headers?: Record<string, string>): Probe => ({ label, family: 'protocol', transport: 'http-post', auth, rawBody, mustFail: true, ...(headers ? { headers } : {}) });
  const oversize = Math.ceil(maxBodyBytes / 40) + 10;
  const probes: Probe[] = [
    post('oversize body', q(`mutation($s: [SampleInput!]!) { addSamples(datasetId: "999999999", samples: $s) { added } }`, { variables: { s: Array.from({ length: oversize }, (_, i) => ({ index: i, label: 0, series: [1] })) } })),
    post('truncated JSON', '{"query": "{ serverInfo { version } }"'),
    post('NaN in JSON', '{"query": "query($f: Int) { datasets(first: $f) { totalCount } }", "variables": {"f": NaN}}'),
    post('NUL escape in the body', '{"query": "{ datasets(filter: { nameContains: \\"a\\u0000b\\" }) { totalCount } }"}'),
    post('lone surrogate escape in the body', '{"query": "query($s: String) { datasets(filter: { nameContains: $s }) { totalCount } }", "variables": {"s": "\\ud800"}}'),
    post('invalid UTF-8 bytes', Buffer.from([0x7b, 0x22, 0x71, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString('latin1')),
    post('500-level JSON variable', toBody({ query: 'query($c: JSON!) { __typename }', variables: { c: deepJson(500, 'object') } })),
    { ...post('500-level JSON in unused variables', toBody({ query: '{ serverInfo { version } }', variables: deepJson(500, 'object') })), mustFail: false },
    post('5000-level JSON body', '['.repeat(5000) + ']'.repeat(5000)),
    post('body is an array', '[]'),
    post('body is a string', '"{ serverInfo { version } }"'),
    post('body is null', 'null'),
    post('query is a number', '{"query": 123}'),
    post('query is an object', '{"query": {"a": 1}}'),
    post('no query', '{"variables": {}}'),
    post('variables not an object', q('{ serverInfo { version } }', { variables: 'x' })),
    post('variables an array', q('{ serverInfo { version } }', { variables: [1] })),
    post('operationName a number', q('{ serverInfo { version } }', { operationName: 5 })),
    post('unknown operationName', q('query A { serverInfo { version } } query B { serverInfo { database } }', { operationName: 'C' })),
    post('two operations, none chosen', q('query A { serverInfo { version } } query B { serverInfo { database } }')),
    post('deep nesting', q(`{ ${'runs { nodes { dataset { '.repeat(20)}id${' } } }'.repeat(20)} }`)),
    post('deeply nested braces', q('{'.repeat(5000) + '}'.repeat(5000))),
    post('alias bomb', q(`{ ${Array.from({ length: 2000 }, (_, i) => `a${i}: serverInfo { version }`).join(' ')} }`)),
    post('directive bomb', q(`{ serverInfo { version ${'@skip(if: false) '.repeat(500)} } }`)),
    post('fragment cycle', q('{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }')),
    post('wide page of pages', q('{ datasets(first: 1000) { nodes { samples(first: 1000) { nodes { series } } } } }')),
    post('token flood', q(`{ serverInfo { ${'version '.repeat(20000)} } }`)),
    post('subscription over HTTP', q('subscription { runUpdated(id: 1) { id } }')),
    post('batch', JSON.stringify([{ query: '{ serverInfo { version } }' }, { query: 'mutation { deleteDataset(id: "999999999") { id } }' }])),
    post('text/plain (CSRF)', q('mutation { deleteDataset(id: "999999999") { id } }'), 'admin', { 'content-type': 'text/plain' }),
    post('no content type', q('mutation { deleteDataset(id: "999999999") { id } }'), 'admin', { 'content-type': '' }),
    post('introspection in production', q('{ __schema { types { name } } }')),
    post('introspection field on a mutation', q('mutation { __schema { types { name } } }')),
    post('no key', q('mutation { deleteDataset(id: "999999999") { id } }'), 'none'),
    post('wrong key', q('mutation { deleteDataset(id: "999999999") { id } }'), 'bad'),
    post('key with injection', q('{ serverInfo { version } }'), "raw:Bearer tgt_' OR 1=1 --"),
    post('Basic auth', q('{ serverInfo { version } }'), 'raw:Basic YWRtaW46YWRtaW4='),
    post('huge header key', q('{ serverInfo { version } }'), `raw:Bearer ${'a'.repeat(7000)}`),
    post('reader deletes', q('mutation { deleteDataset(id: "999999999") { id } }'), 'reader'),
    post('reader makes a key', q('mutation { createApiKey(input: { name: "x", role: ADMIN }) { secret } }'), 'reader'),
    post('writer makes a key', q('mutation { createApiKey(input: { name: "x", role: ADMIN }) { secret } }'), 'writer'),
    post('writer revokes a key', q('mutation { revokeApiKey(id: "1") { id } }'), 'writer'),
    { label: 'GET mutation', family: 'protocol', transport: 'http-get', auth: 'admin', doc: { query: 'mutation { deleteDataset(id: "999999999") { id } }' }, mustFail: true },
    { label: 'GET without the preflight header', family: 'protocol', transport: 'http-get', auth: 'admin', doc: { query: '{ serverInfo { version } }' }, headers: { 'apollo-require-preflight': '', 'content-type': '' }, mustFail: true },
    { label: 'GET with variables not JSON', family: 'protocol', transport: 'http-get', auth: 'admin', path: `/graphql?query=${encodeURIComponent('query($f: Int) { datasets(first: $f) { totalCount } }')}&variables=%7Bnope`, mustFail: true },
    { label: 'GET with extensions not JSON', family: 'protocol', transport: 'http-get', auth: 'admin', path: `/graphql?query=${encodeURIComponent('{ serverInfo { version } }')}&extensions=%7B`, mustFail: true },
    { label: 'GET with a bad percent escape', family: 'protocol', transport: 'http-get', auth: 'admin', path: `/graphql?query=%E0%A4%A`, mustFail: true },
    { label: 'ws: subscribe with NaN', family: 'protocol', transport: 'ws', auth: 'admin', rawBody: '{"query": "query($f: Int) { datasets(first: $f) { totalCount } }", "variables": {"f": NaN}}', mustFail: true },
    { label: 'ws: payload not an object', family: 'protocol', transport: 'ws', auth: 'admin', rawBody: '"{ serverInfo { version } }"', mustFail: true },
    { label: 'ws: query a number', family: 'protocol', transport: 'ws', auth: 'admin', rawBody: '{"query": 5}', mustFail: true },
    { label: 'ws: no key', family: 'protocol', transport: 'ws', auth: 'none', doc: { query: 'mutation { deleteDataset(id: "999999999") { id } }' }, mustFail: true },
    { label: 'ws: wrong key', family: 'protocol', transport: 'ws', auth: 'bad', doc: { query: '{ serverInfo { version } }' }, mustFail: true },
    { label: 'ws: reader deletes', family: 'protocol', transport: 'ws', auth: 'reader', doc: { query: 'mutation { deleteDataset(id: "999999999") { id } }' }, mustFail: true },
    { label: 'ws: oversize frame', family: 'protocol', transport: 'ws', auth: 'admin', doc: { query: `{ serverInfo { version } }`, variables: { x: 'x'.repeat(1_100_000) } }, mustFail: true },
    { label: 'ws: two operations, none chosen', family: 'protocol', transport: 'ws', auth: 'admin', doc: { query: 'query A { serverInfo { version } } query B { serverInfo { database } }' }, mustFail: true },
  ];
  // Random garbage documents, on every transport.
  const alphabet = '{}()[]:$@!.,"\\ \n\tqueryfragment_on0123456789#é\u0000\ud800';
  for (let i = 0; i < 150; i++) {
    const text = Array.from({ length: 1 + Math.floor(r.next() * 200) }, () => r.pick([...alphabet])).join('');
    probes.push({ label: `garbage document #${i}`, family: 'garbage', transport: transportFor(r, 'query'), auth: 'admin', doc: { query: text }, mustFail: true });
  }
  return probes;
}

export interface GenerateOptions {
  seed: number;
  /** Requests in all; the fixed cases always go, random field probes fill the rest (at least one per site). */
  requests: number;
  schema: GraphQLSchema;
  ids: FuzzIds;
  /** The server's TANGENT_MAX_BODY_BYTES, so the oversize body is over it. */
  maxBodyBytes: number;
}

/** Every probe of one run, in a seeded order. */
export function generateProbes(options: GenerateOptions): Probe[] {
  const r = rng(options.seed);
  const all = sites(options.schema, options.ids);
  const fixed = [
    ...unstorableProbes(r, all, options.ids),
    ...persistedQueryProbes(),
    ...deepSelectionProbes(),
    ...readerComputeProbes(options.ids),
    ...exportProbes(r, options.ids),
    ...protocolProbes(r, options.maxBodyBytes),
  ];
  const random = fieldProbes(r, all, Math.max(all.length, options.requests - fixed.length));
  // Interleave, so the deep and the reported cases arrive while other requests are in flight.
  const probes = [...fixed, ...random].map((p) =>
    // Past Node's 16 KB header limit a GET is refused with a bare 431 before the server sees it; a
    // client then POSTs, so that is what is sent.
    p.transport === 'http-get' && !p.path && httpRequest(p, '', { admin: '', writer: '', reader: '' }).url.length > 8000 ? { ...p, transport: 'http-post' as const } : p,
  );
  for (let i = probes.length - 1; i > 0; i--) {
    const j = Math.floor(r.next() * (i + 1));
    [probes[i], probes[j]] = [probes[j]!, probes[i]!];
  }
  return probes;
}

// ---------------------------------------------------------------------------------------------
// Sending

export interface Keys {
  admin: string;
  writer: string;
  reader: string;
}

/** The Authorization header a probe carries, or none. */
function authorization(auth: Auth, keys: Keys): string | undefined {
  if (auth === 'none') return undefined;
  if (auth === 'bad') return `Bearer tgt_${'Z'.repeat(43)}`;
  if (auth.startsWith('raw:')) return auth.slice(4);
  return `Bearer ${keys[auth as keyof Keys]}`;
}

/** One answer, on either transport, reduced to what the judge reads. */
export interface Answer {
  /** The HTTP status, or `ws:<close code>` when a WebSocket closed instead of answering. */
  status: number | string;
  /** The response body (HTTP), the messages (WebSocket, as JSON), or the close reason. */
  text: string;
  contentType?: string;
  /** No answer within HANG_MS. */
  hung?: boolean;
  /** The connection failed without an answer (refused, reset). */
  dropped?: string;
  ms: number;
}

function httpRequest(probe: Probe, origin: string, keys: Keys): { url: string; init: RequestInit } {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const auth = authorization(probe.auth, keys);
  if (auth !== undefined) headers.authorization = auth;
  if (probe.transport === 'http-get') {
    headers['apollo-require-preflight'] = '1';
    Object.assign(headers, probe.headers);
    for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];
    let path = probe.path;
    if (!path) {
      const params = new URLSearchParams();
      const doc = probe.doc ?? {};
      if (doc.query !== undefined) params.set('query', typeof doc.query === 'string' ? doc.query : toBody(doc.query));
      if (doc.variables !== undefined && Object.keys(doc.variables as object).length) params.set('variables', toBody(doc.variables));
      if (doc.extensions !== undefined) params.set('extensions', toBody(doc.extensions));
      if (doc.operationName !== undefined) params.set('operationName', String(doc.operationName));
      path = `/graphql?${params}`;
    }
    return { url: origin + path, init: { method: 'GET', headers } };
  }
  Object.assign(headers, probe.headers);
  for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];
  return { url: origin + (probe.path ?? '/graphql'), init: { method: probe.method ?? 'POST', headers, body: probe.rawBody ?? toBody(probe.doc ?? {}) } };
}

async function sendHttp(probe: Probe, origin: string, keys: Keys): Promise<Answer> {
  const started = performance.now();
  const { url, init } = httpRequest(probe, origin, keys);
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(HANG_MS) });
    const text = await response.text();
    return { status: response.status, text, contentType: response.headers.get('content-type') ?? '', ms: performance.now() - started };
  } catch (error) {
    const err = error as Error & { cause?: { code?: string; message?: string } };
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return { status: 0, text: '', hung: true, ms: performance.now() - started };
    return { status: 0, text: '', dropped: `${err.cause?.code ?? err.name}: ${err.cause?.message ?? err.message}`, ms: performance.now() - started };
  }
}

/**
 * A minimal graphql-ws client (the protocol's four messages), so that frames the library would
 * refuse to send (NaN, a payload that is not an object) can be sent too, and so a close is an
 * answer like any other. One connection per key, reopened after the server closes it.
 */
class WsLane {
  private socket: WebSocket | null = null;
  private ready: Promise<void> | null = null;
  private seq = 0;
  private closed: { code: number; reason: string } | null = null;
  private readonly pending = new Map<string, { messages: unknown[]; done(answer: Omit<Answer, 'ms'>): void }>();

  constructor(
    private readonly url: string,
    private readonly authorization: string | undefined,
  ) {}

  private open(): Promise<void> {
    this.closed = null;
    const socket = new WebSocket(this.url, 'graphql-transport-ws');
    this.socket = socket;
    return new Promise<void>((resolve, reject) => {
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: this.authorization === undefined ? {} : { authorization: this.authorization } })));
      socket.on('message', (data) => {
        let message: { type?: string; id?: string; payload?: unknown };
        try {
          message = JSON.parse(String(data));
        } catch {
          return;
        }
        if (message.type === 'connection_ack') return resolve();
        if (message.type === 'ping') return socket.send('{"type":"pong"}');
        const entry = message.id === undefined ? undefined : this.pending.get(message.id);
        if (!entry) return;
        if (message.type === 'next') entry.messages.push(message.payload);
        if (message.type === 'error') entry.messages.push({ errors: message.payload });
        if (message.type === 'complete' || message.type === 'error') {
          this.pending.delete(message.id!);
          entry.done({ status: 'ws:ok', text: JSON.stringify(entry.messages) });
        }
      });
      socket.on('close', (code, reason) => {
        this.closed = { code, reason: String(reason) };
        this.socket = null;
        this.ready = null;
        for (const [id, entry] of this.pending) {
          this.pending.delete(id);
          entry.done({ status: `ws:${code}`, text: entry.messages.length ? JSON.stringify(entry.messages) : String(reason) });
        }
        reject(Object.assign(new Error('closed'), { code, reason: String(reason) }));
      });
      socket.on('error', () => undefined); // a close follows
    });
  }

  async send(payloadText: string): Promise<Answer> {
    const started = performance.now();
    const deadline = new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => resolve({ status: 0, text: '', hung: true, ms: performance.now() - started }), HANG_MS);
      timer.unref();
    });
    const attempt = (async (): Promise<Answer> => {
      try {
        this.ready ??= this.open();
        await this.ready;
      } catch (error) {
        const e = error as { code?: number; reason?: string; message?: string };
        if (typeof e.code === 'number') return { status: `ws:${e.code}`, text: e.reason ?? '', ms: performance.now() - started };
        return { status: 0, text: '', dropped: String(e.message), ms: performance.now() - started };
      }
      const socket = this.socket;
      if (!socket) return { status: `ws:${this.closed?.code ?? 0}`, text: this.closed?.reason ?? '', ms: performance.now() - started };
      const id = String(++this.seq);
      return new Promise<Answer>((resolve) => {
        this.pending.set(id, { messages: [], done: (answer) => resolve({ ...answer, ms: performance.now() - started }) });
        socket.send(`{"id":"${id}","type":"subscribe","payload":${payloadText}}`, (error) => {
          if (error && this.pending.delete(id)) resolve({ status: 0, text: '', dropped: error.message, ms: performance.now() - started });
        });
      });
    })();
    const answer = await Promise.race([attempt, deadline]);
    if (answer.hung) this.close(); // what a client does with a request that never answers
    return answer;
  }

  close(): void {
    this.socket?.terminate();
    this.socket = null;
    this.ready = null;
  }
}

/** Sends probes over the transport each names; WebSocket lanes are kept per key and closed by `close`. */
export class Sender {
  private readonly lanes = new Map<string, WsLane>();

  constructor(
    private readonly origin: string,
    private readonly keys: Keys,
  ) {}

  send(probe: Probe): Promise<Answer> {
    if (probe.transport !== 'ws') return sendHttp(probe, this.origin, this.keys);
    const auth = authorization(probe.auth, this.keys);
    let lane = this.lanes.get(probe.auth);
    if (!lane) {
      lane = new WsLane(`${this.origin.replace(/^http/, 'ws')}/graphql`, auth);
      this.lanes.set(probe.auth, lane);
    }
    return lane.send(probe.rawBody ?? toBody(probe.doc ?? {}));
  }

  close(): void {
    for (const lane of this.lanes.values()) lane.close();
    this.lanes.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Judging

/** Every kind of failure a run counts; the target for each is zero. */
export const FAILURE_KINDS = [
  'status5xx',
  'internalErrors',
  'leaks',
  'hangs',
  'crashes',
  'rowsWrittenByFailedRequests',
  'unknownCodes',
  'notJson',
  'dropped',
  'acceptedHostile',
  'validKeyRefused',
] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

/** Stack frames, file paths, SQL and driver text, JS error names: none of it belongs in an answer. */
export const LEAK =
  /\n\s+at |\bat [\w.<>$]+ \(|\.(ts|js|mjs|cjs):\d+|node_modules|file:\/\/|\/work\/|\/home\/|\/usr\/|\/src\/|relation "|column "|syntax error at or near|duplicate key value|violates|invalid byte sequence|invalid input syntax|unsupported Unicode escape|pg_catalog|SQLSTATE|\bINSERT INTO\b|\bSELECT\b[^"]{0,200}\bFROM\b|DriverAdapterError|Prisma|PrismaClient|\b(RangeError|TypeError|SyntaxError|ReferenceError|EvalError|URIError|AggregateError)\b|Maximum call stack|call stack size|stack/i;

/** What a developer needs to send the request again. */
export interface Reproduction {
  label: string;
  family: string;
  transport: Transport;
  auth: Auth;
  method: string;
  url: string;
  /** The body (HTTP) or the subscribe payload (WebSocket), cut at 2,000 characters. */
  body?: string;
  status: number | string;
  answer: string;
  ms: number;
}

export interface Tally {
  requests: number;
  byTransport: Record<Transport, number>;
  byFamily: Record<string, number>;
  /** Answers by code (`ok` for a result without errors, `http:<status>` for a body that is not GraphQL). */
  codes: Record<string, number>;
  counts: Record<FailureKind, number>;
  /** 5xx answers by status (and WebSocket closes that mean an internal error). */
  status5xx: Record<string, number>;
  /** The first five of each kind. */
  samples: Partial<Record<FailureKind, Reproduction[]>>;
}

export function emptyTally(): Tally {
  return {
    requests: 0,
    byTransport: { 'http-post': 0, 'http-get': 0, ws: 0 },
    byFamily: {},
    codes: {},
    counts: Object.fromEntries(FAILURE_KINDS.map((k) => [k, 0])) as Record<FailureKind, number>,
    status5xx: {},
    samples: {},
  };
}

const CODES = new Set<string>(Object.values(ErrorCode));
/** WebSocket close codes that mean the server failed (1011 internal error, graphql-ws 4500). */
const WS_INTERNAL = new Set(['ws:1011', 'ws:4500']);

export function reproduction(probe: Probe, answer: Answer, origin: string, keys: Keys): Reproduction {
  const body = probe.transport === 'ws' ? (probe.rawBody ?? toBody(probe.doc ?? {})) : httpRequest(probe, origin, keys).init.body;
  const { url, init } = probe.transport === 'ws' ? { url: `${origin.replace(/^http/, 'ws')}/graphql`, init: { method: 'subscribe' } } : httpRequest(probe, origin, keys);
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
  return {
    label: probe.label,
    family: probe.family,
    transport: probe.transport,
    auth: probe.auth.startsWith('raw:') ? (cut(probe.auth, 80) as Auth) : probe.auth,
    method: String(init.method),
    url: cut(url.replace(origin, ''), 500),
    ...(typeof body === 'string' ? { body: cut(body, 2000) } : {}),
    status: answer.status,
    answer: answer.hung ? `no answer in ${HANG_MS / 1000} s` : answer.dropped ? `dropped: ${answer.dropped}` : cut(answer.text, 600),
    ms: Math.round(answer.ms),
  };
}

/** Removes the probe's own strings from an answer, so that an echoed injection is not a leak. */
function withoutEcho(text: string, probe: Probe): string {
  let out = text;
  for (const s of INJECTIONS) {
    if (s.length < 3) continue;
    out = out.split(JSON.stringify(s).slice(1, -1)).join('').split(s).join('');
  }
  if (probe.doc && typeof probe.doc.query === 'string' && probe.doc.query.length > 3) out = out.split(JSON.stringify(probe.doc.query).slice(1, -1)).join('');
  return out;
}

interface Parsed {
  data?: unknown;
  errors?: { message?: unknown; extensions?: { code?: unknown } }[];
}

/** Counts one answer into the tally; returns the kinds it failed as. */
export function judge(tally: Tally, probe: Probe, answer: Answer, repro: () => Reproduction): FailureKind[] {
  tally.requests++;
  tally.byTransport[probe.transport]++;
  tally.byFamily[probe.family] = (tally.byFamily[probe.family] ?? 0) + 1;
  const failed = new Set<FailureKind>();
  const code = (c: string) => (tally.codes[c] = (tally.codes[c] ?? 0) + 1);
  if (answer.hung) failed.add('hangs');
  else if (answer.dropped) failed.add('dropped');
  else {
    const status = String(answer.status);
    if ((typeof answer.status === 'number' && answer.status >= 500) || WS_INTERNAL.has(status)) {
      failed.add('status5xx');
      tally.status5xx[status] = (tally.status5xx[status] ?? 0) + 1;
    }
    if (LEAK.test(withoutEcho(answer.text, probe))) failed.add('leaks');
    const isWsClose = typeof answer.status === 'string' && answer.status !== 'ws:ok';
    if (isWsClose) {
      // A closed socket is a refusal (4400 bad message, 4401 no key, 4429, 1009 too big); its reason names the code.
      code(status);
      if (answer.text.includes('INTERNAL_SERVER_ERROR')) failed.add('internalErrors');
    } else {
      const exportFile = typeof answer.status === 'number' && answer.status < 300 && /text\/csv|ndjson|jsonl/.test(answer.contentType ?? '');
      let results: Parsed[] = [];
      if (exportFile) {
        code('export');
        if (probe.mustFail) failed.add('acceptedHostile');
      } else {
        try {
          const parsed = JSON.parse(answer.text) as Parsed | Parsed[];
          results = Array.isArray(parsed) ? parsed : [parsed];
        } catch {
          code(`http:${status}`);
          // Express's own 404 for a path no route serves is an honest answer; anything else must be JSON.
          if (!(answer.status === 404 && /Cannot (GET|POST)/.test(answer.text))) failed.add('notJson');
        }
      }
      for (const result of results) {
        if (!result || typeof result !== 'object') {
          failed.add('notJson');
          continue;
        }
        if (result.errors !== undefined) {
          if (!Array.isArray(result.errors) || result.errors.length === 0) failed.add('notJson');
          for (const error of Array.isArray(result.errors) ? result.errors : []) {
            const c = String(error?.extensions?.code);
            code(c);
            if (c === 'INTERNAL_SERVER_ERROR') failed.add('internalErrors');
            else if (!CODES.has(c)) failed.add('unknownCodes');
            if (typeof error?.message !== 'string') failed.add('notJson');
          }
        } else {
          code('ok');
          if (result.data === undefined) failed.add('notJson');
          else if (probe.mustFail) failed.add('acceptedHostile');
        }
      }
    }
  }
  for (const kind of failed) record(tally, kind, repro);
  return [...failed];
}

/** Counts one failure and keeps its reproduction among the first five of its kind. */
export function record(tally: Tally, kind: FailureKind, repro: () => Reproduction, n = 1): void {
  tally.counts[kind] += n;
  const list = (tally.samples[kind] ??= []);
  if (list.length < 5) list.push(repro());
}

// ---------------------------------------------------------------------------------------------
// Running

export interface RunTarget {
  /** The server's origin, e.g. http://127.0.0.1:4123. */
  origin: string;
  keys: Keys;
  /** Whether the server is still there: its process alive and /healthz answering. */
  alive(): Promise<boolean>;
  /** Brings a dead server back, so the run can go on; absent: a crash ends the run. */
  restart?(): Promise<void>;
}

/** Whether GET /healthz answers 200 within 5 s. */
export async function healthy(origin: string): Promise<boolean> {
  try {
    const response = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(5000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/**
 * Sends every probe (`concurrency` at a time), judges every answer, and checks the server is alive
 * every 250 requests and after any dropped or hung request. A dead server is one crash; the run
 * goes on after `restart`, or stops when there is none.
 */
export async function runProbes(probes: Probe[], target: RunTarget, options: { concurrency?: number; onProgress?(done: number): void } = {}): Promise<Tally> {
  const tally = emptyTally();
  const senders: Sender[] = [];
  let index = 0;
  let stopped = false;
  let checking: Promise<void> | null = null;
  const check = (probe: Probe, answer: Answer) =>
    (checking ??= (async () => {
      if (await target.alive()) return;
      record(tally, 'crashes', () => reproduction(probe, answer, target.origin, target.keys));
      for (const s of senders) s.close();
      if (target.restart) await target.restart();
      else stopped = true;
    })().finally(() => (checking = null)));
  const worker = async () => {
    const sender = new Sender(target.origin, target.keys);
    senders.push(sender);
    while (!stopped && index < probes.length) {
      const probe = probes[index++]!;
      await checking;
      const answer = await sender.send(probe);
      judge(tally, probe, answer, () => reproduction(probe, answer, target.origin, target.keys));
      if (answer.hung || answer.dropped || tally.requests % 250 === 0) await check(probe, answer);
      options.onProgress?.(tally.requests);
    }
    sender.close();
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  return tally;
}

/**
 * The throttling case, on a server whose limits are on: `failures` requests with wrong keys from
 * this address, then one with a valid key, which must be answered (another client's failures are
 * no reason to refuse it). Counts into the tally as one request of family `throttle`.
 */
export async function badKeysThenValidKey(tally: Tally, origin: string, keys: Keys, failures: number, validAuth: Auth = 'writer'): Promise<void> {
  const bad: Probe = { label: `bad key (${failures} times)`, family: 'throttle', transport: 'http-post', auth: 'bad', doc: { query: '{ viewer { role } }' }, mustFail: true };
  for (let i = 0; i < failures; i++) {
    const answer = await sendHttp(bad, origin, keys);
    judge(tally, bad, answer, () => reproduction(bad, answer, origin, keys));
  }
  for (const transport of ['http-post', 'ws'] as const) {
    const good: Probe = { label: `valid ${validAuth.toUpperCase()} key after ${failures} bad keys from the same address`, family: 'throttle', transport, auth: validAuth, doc: { query: '{ viewer { role } }' }, mustFail: false };
    const sender = new Sender(origin, keys);
    const answer = await sender.send(good);
    sender.close();
    const failed = judge(tally, good, answer, () => reproduction(good, answer, origin, keys));
    if (!failed.length && !/"role"\s*:/.test(answer.text)) record(tally, 'validKeyRefused', () => reproduction(good, answer, origin, keys));
  }
}

// ---------------------------------------------------------------------------------------------
// Database state

/** Tables that count requests rather than hold data (rate limiters); a refused request may write them. */
export const BOOKKEEPING = /rate.?limit|rlflx|throttl|auth.?fail/i;

/**
 * Row count (and, in the public schema, a checksum of the rows) of every base table in every schema
 * but PostgreSQL's own. api_key is read without its last-use time, which valid reads update.
 */
export async function snapshotTables(query: (sql: string) => Promise<Record<string, unknown>[]>): Promise<Map<string, { rows: number; sum: string }>> {
  const tables = await query(
    `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
     WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg_%'
     ORDER BY 1, 2`,
  );
  const out = new Map<string, { rows: number; sum: string }>();
  for (const t of tables) {
    const schema = String(t.schema);
    const name = String(t.name);
    if (BOOKKEEPING.test(name)) continue;
    const ident = `"${schema.replace(/"/g, '""')}"."${name.replace(/"/g, '""')}"`;
    const source = name === 'api_key' ? `(SELECT id, name, role, prefix, hash, created_at, revoked_at FROM ${ident})` : ident;
    const sum = schema === 'public' ? `md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))` : `''`;
    const [row] = await query(`SELECT count(*)::int AS n, ${sum} AS sum FROM ${source} x`);
    out.set(`${schema}.${name}`, { rows: Number(row!.n), sum: String(row!.sum) });
  }
  return out;
}

/** Rows added or removed between two snapshots, and the tables whose rows changed at all. */
export function compareSnapshots(before: Map<string, { rows: number; sum: string }>, after: Map<string, { rows: number; sum: string }>) {
  let rows = 0;
  const changed: { table: string; before: number; after: number }[] = [];
  for (const table of new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(table);
    const a = after.get(table);
    if (b?.rows === a?.rows && b?.sum === a?.sum) continue;
    const delta = Math.abs((a?.rows ?? 0) - (b?.rows ?? 0));
    rows += delta;
    changed.push({ table, before: b?.rows ?? 0, after: a?.rows ?? 0 });
  }
  return { rows, changed };
}

// ---------------------------------------------------------------------------------------------
// Seed data

/** Speaks GraphQL to the server with the admin key; fails on any error. */
export function adminGql(origin: string, key: string) {
  return async <T = any>(query: string, variables?: Record<string, unknown>): Promise<T> => {
    const response = await fetch(`${origin}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
    const body = (await response.json()) as { data?: T; errors?: unknown[] };
    if (body.errors?.length) throw new Error(`${query.slice(0, 80)}…: ${JSON.stringify(body.errors).slice(0, 1000)}`);
    return body.data as T;
  };
}

/**
 * What the probes read and aim at, made through the API with an ADMIN key: WRITER and READER keys, a
 * dataset of 24 series, a small 1D-CNN with four checkpoints, terms computed for the first (reads on
 * it compute nothing) and none for the other three, and a saved selection.
 */
export async function seedFuzzData(origin: string, adminKey: string): Promise<{ ids: FuzzIds; keys: Keys }> {
  const gql = adminGql(origin, adminKey);
  const key = async (role: string) => (await gql(`mutation($r: Role!) { createApiKey(input: { name: "fuzz-${role.toLowerCase()}", role: $r }) { secret } }`, { r: role })).createApiKey.secret as string;
  const keys: Keys = { admin: adminKey, writer: await key('WRITER'), reader: await key('READER') };
  const length = 16;
  const r = rng(7);
  const { createDataset } = await gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id samples(first: 100) { nodes { id } } } }`, {
    input: {
      name: 'fuzz',
      length,
      classNames: ['a', 'b'],
      samples: Array.from({ length: 24 }, (_, index) => ({ index, label: index % 2, split: index < 16 ? 'train' : 'test', series: Array.from({ length }, (_, t) => Math.sin(t / (2 + (index % 2))) + 0.1 * r.next()) })),
    },
  });
  const { cnn1d, initBackend, serializeModel } = await import('../src/compute/index.js');
  const config = { filters: [4], kernelSizes: [3], pool: 2, dropout: 0, seed: 3, length, channels: 1, classes: 2 };
  const { createModel } = await gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: 'fuzz-cnn', format: 'BUILTIN', architecture: 'cnn1d', config, inputLength: length, channels: 1, numClasses: 2 },
  });
  const { createRun } = await gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, { input: { name: 'fuzz-run', modelId: createModel.id, datasetId: createDataset.id, config: { learningRate: 0.01 } } });
  await initBackend('cpu', () => undefined);
  const stored = await serializeModel(cnn1d(config));
  const base = new Float32Array(stored.weightData.slice(0));
  const checkpoints: string[] = [];
  for (let k = 0; k < 4; k++) {
    const { createCheckpoint } = await gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: { runId: createRun.id, step: k * 10, learningRate: 0.01, weightSpecs: stored.weightSpecs, weightData: Buffer.from(base.map((w) => w * (1 + 0.05 * k)).buffer).toString('base64') },
    });
    checkpoints.push(createCheckpoint.id);
  }
  const { computeTerms } = await gql(`mutation($c: ID!) { computeTerms(input: { checkpointId: $c }) { id } }`, { c: checkpoints[0] });
  const deadline = Date.now() + 180_000;
  for (;;) {
    const { job } = await gql(`query($id: ID!) { job(id: $id) { status error } }`, { id: computeTerms.id });
    if (job.status === 'COMPLETED') break;
    if (job.status === 'FAILED' || job.status === 'CANCELLED' || Date.now() > deadline) throw new Error(`seeding: the compute job ended ${job.status}: ${job.error ?? 'timed out'}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const { createSelection } = await gql(`mutation($c: ID!) { createSelection(input: { name: "fuzz-top", strategy: { checkpointIds: [$c], method: TOP_K, k: 5 } }) { id } }`, { c: checkpoints[0] });
  const sampleIds = (createDataset.samples.nodes as { id: string }[]).map((s) => s.id);
  return {
    keys,
    ids: { dataset: createDataset.id, model: createModel.id, run: createRun.id, checkpoint: checkpoints[0]!, fresh: checkpoints.slice(1), sample: sampleIds[0]!, sampleIds, selection: createSelection.id, job: computeTerms.id },
  };
}

/** Human lines for a tally: counts first, then one reproduction of each failure kind. */
export function describeTally(tally: Tally, extra: { rowsChanged?: { table: string; before: number; after: number }[] } = {}): string[] {
  const lines = [
    `${tally.requests} requests: ${Object.entries(tally.byTransport).map(([t, n]) => `${t} ${n}`).join(', ')}`,
    `by family: ${Object.entries(tally.byFamily).map(([f, n]) => `${f} ${n}`).join(', ')}`,
    `answers by code: ${Object.entries(tally.codes).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}`,
    ...FAILURE_KINDS.map((k) => `${k.padEnd(28)} ${tally.counts[k]}${k === 'status5xx' && tally.counts[k] ? `  (${Object.entries(tally.status5xx).map(([s, n]) => `${s}: ${n}`).join(', ')})` : ''}`),
  ];
  if (extra.rowsChanged?.length) lines.push(`tables changed by failed requests: ${extra.rowsChanged.map((c) => `${c.table} ${c.before}→${c.after}`).join(', ')}`);
  for (const kind of FAILURE_KINDS) {
    const first = tally.samples[kind]?.[0];
    if (first) lines.push(`first ${kind}: [${first.transport} ${first.auth}] ${first.label} → ${first.status} ${first.answer.slice(0, 300)}`);
  }
  return lines;
}
