/**
 * The body of `npm run bench:query` (bench/query.ts sets NODE_ENV first, then loads this).
 *
 * `npm run bench:query -- --json`: curation queries on a real PostgreSQL at scale. Loads 1,000,000
 * samples × 3 checkpoints of metrics through the bulk path (upsertSamples, writeMetricColumns:
 * COPY), starts the server in-process on port 0, and measures median and p95 latency of
 *
 *   - a GraphQL top-1000-by-kNorm query (`Checkpoint.rankedSamples(first: 1000)`), as nodes, as
 *     Relay edges, and as parallel columns (`columns`),
 *   - a filtered page (labels, split and a loss range, by ‖G‖, the second page through its cursor),
 *   - a quantile query (`Checkpoint.termStats { quantiles }` over every sample): exact, from the
 *     sketch, and the first request after a write (the sketch rebuilt),
 *   - a 1M-row export (`/export/checkpoints/:id?format=csv`, read to the end over HTTP),
 *
 * each next to the same SQL run directly in the same process (the statements the server issued,
 * recorded and replayed; for the export, the export's statement as one query), printed as ratios.
 * For the top-1000 query it also splits the GraphQL time into its parts (the term-coverage check,
 * the ranking statement, the rest: GraphQL execution, serialisation and HTTP). The last line printed
 * is one JSON object.
 *
 * Flags: --json (only the JSON line on stdout), --url postgresql://postgres@127.0.0.1:5432/test (the
 * server to create the database on), --db tangent_bench_query, --samples 1000000, --checkpoints 3,
 * --reps 60, --export-reps 3, --reuse (keep an already loaded database), --keep (do not drop it),
 * --only top1000,edges,columns,filtered,quantile,export (run only these parts: to iterate on one, or
 * to profile it with `node --cpu-prof --import tsx bench/query.ts …`).
 */
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parse } from 'graphql';
import pg from 'pg';
import { OPEN_CALLER } from '../src/platform/auth/roles.js';
import { loadConfig } from '../src/platform/config.js';
import { openDatabase, type Database } from '../src/platform/db/database.js';
import { createLoaders } from '../src/modules/loaders.js';
import { createContext } from '../src/modules/context.js';
import { buildSchema } from '../src/modules/schema.js';
import { columnField, writeMetricColumns } from '../src/modules/terms/metrics.js';
import { migrate } from '../src/platform/db/migrate.js';
import { CLIENT_PRODUCER } from '../src/modules/terms/producers.js';
import { upsertSamples } from '../src/modules/datasets/service.js';
import { createLogger } from '../src/platform/logger.js';
import { createServer } from '../src/server.js';
import { compiledExecution } from '../src/platform/http/compiled-execution.js';
import { prepareQuery } from '../src/modules/curation/rank.js';
import { rankStatement } from '../src/modules/curation/query-sql.js';
import { seededRandom } from '../src/platform/random.js';
import { flag, opt } from './args.js';

const jsonOnly = flag('json');
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);

const adminUrl = opt('url', 'postgresql://postgres@127.0.0.1:5432/test');
const dbName = opt('db', 'tangent_bench_query');
const nSamples = Number(opt('samples', '1000000'));
const nCheckpoints = Number(opt('checkpoints', '3'));
const reps = Number(opt('reps', '60'));
const exportReps = Number(opt('export-reps', '3'));
const PARTS = ['top1000', 'edges', 'columns', 'filtered', 'quantile', 'export'] as const;
const only = opt('only', PARTS.join(',')).split(',');
for (const part of only) if (!(PARTS as readonly string[]).includes(part)) throw new Error(`--only takes ${PARTS.join(',')}`);
const runs = (part: (typeof PARTS)[number]) => only.includes(part);
const CLASSES = 10;
const CLASS_NAMES = Array.from({ length: CLASSES }, (_, i) => `class-${i}`);
if (!/^[a-z_][a-z0-9_]*$/.test(dbName)) throw new Error('--db must be a plain lowercase identifier');

async function admin(sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A seeded generator: the same data on every run. */
const rng = seededRandom;

async function load(db: Database): Promise<void> {
  const started = performance.now();
  const [dataset] = await db.sql.query<{ id: number }>(
    `INSERT INTO dataset (name, length, channels, class_names) VALUES ($1, 1, 1, $2::text[]) RETURNING id`,
    [`bench-query-${nSamples}`, CLASS_NAMES],
  );
  const datasetId = Number(dataset!.id);
  const random = rng(1);
  const chunk = 250_000;
  for (let start = 0; start < nSamples; start += chunk) {
    const n = Math.min(chunk, nSamples - start);
    const indices = new Int32Array(n).map((_, i) => start + i);
    const labels = new Int32Array(n).map(() => Math.floor(random() * CLASSES));
    const splits = Array.from({ length: n }, () => (random() < 0.9 ? 'train' : 'validation'));
    await db.transaction((tx) =>
      upsertSamples(tx, { id: datasetId, length: 1, channels: 1, classNames: CLASS_NAMES }, { indices, labels, splits, series: new Float32Array(n) }, (row, column) => `${column}[${row}]`),
    );
  }
  say(`  ${nSamples} samples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const [model] = await db.sql.query<{ id: number }>(
    `INSERT INTO model (name, format, architecture, input_length, channels, num_classes) VALUES ('bench-query', 'BUILTIN', 'cnn1d', 1, 1, $1) RETURNING id`,
    [CLASSES],
  );
  const [run] = await db.sql.query<{ id: number }>(`INSERT INTO run (name, model_id, dataset_id, config) VALUES ('bench-query', $1, $2, '{}') RETURNING id`, [
    Number(model!.id),
    datasetId,
  ]);
  for (let c = 0; c < nCheckpoints; c++) {
    const t0 = performance.now();
    const [checkpoint] = await db.sql.query<{ id: number }>(
      `INSERT INTO checkpoint (run_id, step, learning_rate, weight_bytes, weight_sha256) VALUES ($1, $2, $3, 0, 'bench') RETURNING id`,
      [Number(run!.id), (c + 1) * 100, 1e-3 / (c + 1)],
    );
    const shape = { id: Number(checkpoint!.id), datasetId, numClasses: CLASSES };
    for (let start = 0; start < nSamples; start += chunk) {
      const n = Math.min(chunk, nSamples - start);
      const gauss = () => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
      const columns = {
        loss: Float32Array.from({ length: n }, () => random() * 5),
        correct: Array.from({ length: n }, () => random() < 0.7),
        kNorm: Float32Array.from({ length: n }, () => Math.exp(gauss())),
        gNorm: Float32Array.from({ length: n }, () => random() * Math.SQRT2),
        hTrace: Float32Array.from({ length: n }, () => random() * 0.9),
      };
      await writeMetricColumns(db, shape, { sampleIndices: new Int32Array(n).map((_, i) => start + i), columns }, CLIENT_PRODUCER, columnField('metrics'));
    }
    say(`  checkpoint ${c + 1}: ${nSamples} metric rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  await db.sql.query('ANALYZE');
}

interface Timing {
  median: number;
  p95: number;
  n: number;
  /**
   * Median CPU time of this process per call (user + system, ms): the server runs in-process, so this
   * is the Node side of a request (server and client), less moved by other work on the machine than
   * wall time; the database server's own CPU is not in it.
   */
  cpuMs?: number;
}

function summarise(samples: number[], cpu?: number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const timing: Timing = { median: round(at(0.5)), p95: round(at(0.95)), n: sorted.length };
  if (cpu?.length) timing.cpuMs = round([...cpu].sort((a, b) => a - b)[Math.floor((cpu.length - 1) / 2)]!);
  return timing;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Times `a` and `b` alternately, `n` times each after a warm-up (the order flips every round), so
 * both see the same load on the machine and their ratio stays meaningful when the load drifts.
 */
async function measurePair(n: number, a: () => Promise<unknown>, b: () => Promise<unknown>, warmup = Math.min(5, n)): Promise<[Timing, Timing]> {
  for (let i = 0; i < warmup; i++) {
    await a();
    await b();
  }
  const ta: number[] = [];
  const tb: number[] = [];
  const ca: number[] = [];
  const cb: number[] = [];
  const once = async (fn: () => Promise<unknown>, into: number[], cpuInto: number[]) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    into.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuInto.push((c.user + c.system) / 1000);
  };
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      await once(a, ta, ca);
      await once(b, tb, cb);
    } else {
      await once(b, tb, cb);
      await once(a, ta, ca);
    }
  }
  return [summarise(ta, ca), summarise(tb, cb)];
}

/** The garbage collector, to measure what an operation keeps alive rather than what it has not yet freed. */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Peak heap kept alive while `fn` runs (sampled after a full collection every 100 ms), in MiB above the start. */
async function retainedPeak(fn: () => Promise<unknown>): Promise<number> {
  gc();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  const sample = () => {
    gc();
    peak = Math.max(peak, process.memoryUsage().heapUsed - base);
  };
  const timer = setInterval(sample, 100);
  try {
    const result = await fn();
    sample();
    void result;
  } finally {
    clearInterval(timer);
  }
  return round(peak / 2 ** 20, 1);
}

async function main() {
  const exists = (await admin(`SELECT 1 FROM pg_database WHERE datname = '${dbName}'`)).rowCount! > 0;
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const log = createLogger({ logLevel: 'silent' });
  let reuse = flag('reuse') && exists;
  if (!reuse) {
    if (exists) await admin(`DROP DATABASE ${dbName} WITH (FORCE)`);
    await admin(`CREATE DATABASE ${dbName}`);
  }
  const config = { ...loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', NODE_ENV: 'production' }), database: { kind: 'postgres' as const, url: url.toString(), poolSize: 10 } };
  const base = await openDatabase(config.database, log);
  await migrate(base, log);
  if (reuse) {
    const [row] = await base.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM dataset WHERE name = $1`, [`bench-query-${nSamples}`]);
    reuse = Number(row!.n) === 1;
    if (!reuse) throw new Error(`--reuse: ${dbName} has no bench-query-${nSamples} dataset; run without --reuse`);
  }
  if (!reuse) {
    say(`loading ${nSamples} samples × ${nCheckpoints} checkpoints into ${dbName} (bulk path: COPY)`);
    await load(base);
  }

  // The server gets the same database through a recorder: every statement it sends through `sql`
  // is kept with its parameters and its time, so the raw SQL replayed below is exactly its own.
  // `at`: when the statement was sent, in ms after `requestStart` (set by the breakdown below).
  let recording: { text: string; values: unknown[]; ms: number; at: number }[] | null = null;
  let requestStart = 0;
  const db: Database = {
    ...base,
    sql: {
      async query<Row>(text: string, values: readonly unknown[] = []) {
        const t0 = performance.now();
        const rows = await base.sql.query<Row>(text, values);
        recording?.push({ text, values: [...values], ms: performance.now() - t0, at: t0 - requestStart });
        return rows;
      },
      async queryArrays(text: string, values: readonly unknown[] = [], options?: { text?: boolean }) {
        const t0 = performance.now();
        const result = await base.sql.queryArrays(text, values, options);
        recording?.push({ text, values: [...values], ms: performance.now() - t0, at: t0 - requestStart });
        return result;
      },
    },
  };
  const server = await createServer(config, { db, log });
  const [checkpoint] = await base.sql.query<{ id: number }>(
    `SELECT c.id FROM checkpoint c JOIN run r ON r.id = c.run_id JOIN dataset d ON d.id = r.dataset_id WHERE d.name = $1 ORDER BY c.step LIMIT 1`,
    [`bench-query-${nSamples}`],
  );
  const checkpointId = String(checkpoint!.id);
  const gql = async (query: string, variables: Record<string, unknown>) => {
    const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    const body = (await response.json()) as { data?: any; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  /** The statements one GraphQL request issued through `sql`: [coverage check, main statement]. */
  const statementsOf = async (query: string, variables: Record<string, unknown>) => {
    recording = [];
    await gql(query, variables);
    const statements = recording;
    recording = null;
    return statements;
  };
  /**
   * The page's statement among a request's: the one that orders and limits (the checkpoint lookup and
   * the term check run beside it and may finish after it). Replayed as plain `query` (rows as objects).
   */
  const pageStatement = (statements: { text: string; values: unknown[] }[]) => {
    const found = statements.find((s) => /ORDER BY/.test(s.text) && /LIMIT/.test(s.text));
    if (!found) throw new Error('the request sent no page statement');
    return found;
  };
  const raw = (s: { text: string; values: unknown[] }) => () => base.sql.query(s.text, s.values);

  const results: Record<string, unknown> = {};
  const report = (name: string, graphql: Timing, sql: Timing, extra: Record<string, unknown> = {}) => {
    const ratio = round(graphql.median / sql.median);
    const cpuRatio = graphql.cpuMs && sql.cpuMs ? round(graphql.cpuMs / sql.cpuMs) : null;
    results[name] = { graphqlMs: graphql, sqlMs: sql, ratio, cpuRatio, ...extra };
    say(
      `  ${name.padEnd(12)} GraphQL median ${graphql.median} ms, p95 ${graphql.p95} ms, CPU ${graphql.cpuMs} ms | SQL median ${sql.median} ms, p95 ${sql.p95} ms, CPU ${sql.cpuMs} ms | ratio ${ratio} (CPU ${cpuRatio})`,
    );
  };

  // 1. Top 1000 by kNorm: the list and where to continue (`nodes` + `pageInfo`), and the same page
  // in the Relay edge form, a cursor per row (larger: every cursor is encoded and sent).
  const TOP = `query($c: ID!) { checkpoint(id: $c) { rankedSamples(first: 1000, orderBy: { term: K_NORM, direction: DESC }) {
      nodes { sampleId index label kNorm } pageInfo { hasNextPage endCursor } } } }`;
  const TOP_EDGES = `query($c: ID!) { checkpoint(id: $c) { rankedSamples(first: 1000, orderBy: { term: K_NORM, direction: DESC }) {
      edges { cursor node { sampleId index label kNorm } } pageInfo { hasNextPage endCursor } } } }`;
  const topVars = { c: checkpointId };
  const topSql = pageStatement(await statementsOf(TOP, topVars));
  if (runs('top1000')) {
    const [top, topRaw] = await measurePair(reps, () => gql(TOP, topVars), raw(topSql));
    // Where the GraphQL time goes, from the recorder over another round of requests: the statements
    // the request sent (the checkpoint lookup with its run and dataset, the term check and the page;
    // the page is read ahead by Query.checkpoint, beside the other two), when the page was sent and
    // how long after it came back the client had the whole answer (execution of the 1000 nodes,
    // serialisation, HTTP and this client's JSON parsing), and the rest.
    const parts = {
      totalMs: [] as number[],
      checkpointInfoMs: [] as number[],
      termCheckMs: [] as number[],
      rankMs: [] as number[],
      pageSentAtMs: [] as number[],
      afterPageMs: [] as number[],
      statements: [] as number[],
    };
    for (let i = 0; i < reps; i++) {
      recording = [];
      const t0 = performance.now();
      requestStart = t0;
      await gql(TOP, topVars);
      const total = performance.now() - t0;
      parts.totalMs.push(total);
      const find = (pattern: RegExp) => recording!.find((r) => pattern.test(r.text));
      parts.checkpointInfoMs.push(find(/class_names/)?.ms ?? 0);
      parts.termCheckMs.push(find(/dataset_size/)?.ms ?? 0);
      const page = find(/ORDER BY/);
      parts.rankMs.push(page?.ms ?? 0);
      parts.pageSentAtMs.push(page?.at ?? 0);
      parts.afterPageMs.push(page ? total - page.at - page.ms : 0);
      parts.statements.push(recording!.length);
      recording = null;
    }
    const med = (xs: number[]) => summarise(xs).median;
    const breakdown: Record<string, number> = {
      totalMs: med(parts.totalMs),
      rankStatementMs: med(parts.rankMs),
      // These two run side by side with the rank statement (off the critical path).
      checkpointInfoMs: med(parts.checkpointInfoMs),
      termCheckMs: med(parts.termCheckMs),
      // The critical path: from the request's start to the page statement sent (HTTP, Apollo, the
      // resolvers down to Query.checkpoint), the statement, and from its rows to the client's answer.
      pageSentAtMs: med(parts.pageSentAtMs),
      afterPageMs: med(parts.afterPageMs),
      statementsPerRequest: med(parts.statements),
    };
    // The fixed costs of any request, and execution alone: an empty query over HTTP, the parent
    // `checkpoint` lookup over HTTP, and the top-1000 document executed in-process by the executor the
    // server uses (compiled; no HTTP, no Apollo; schema, resolvers and SQL the same) and serialised.
    const schema = buildSchema();
    const document = parse(TOP);
    const { executor } = await compiledExecution(schema).load({ apollo: {} as never });
    const inProcess = async () => {
      const context = createContext({ config, db, pubsub: null as never, log }, 'bench');
      const result = await executor!({ document, request: { query: TOP, variables: topVars }, context } as never);
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      return JSON.stringify(result);
    };
    const [floor] = await measurePair(reps, () => gql('{ serverInfo { version } }', {}), async () => undefined);
    const [lookup] = await measurePair(reps, () => gql('query($c: ID!) { checkpoint(id: $c) { id } }', topVars), async () => undefined);
    const [executed] = await measurePair(reps, inProcess, async () => undefined);
    // Approximate shares of the total, from the medians: the parent `Query.checkpoint` lookup alone (one
    // statement; in the top-1000 request it runs beside the page, which Query.checkpoint reads ahead),
    // execution with the resolvers around the page statement, and HTTP (Apollo's pipeline, JSON both ways).
    const parentLookupMs = round(lookup.median - floor.median);
    Object.assign(breakdown, {
      emptyRequestMs: floor.median,
      checkpointLookupRequestMs: lookup.median,
      inProcessExecuteMs: executed.median,
      parentCheckpointLookupMs: parentLookupMs,
      executionBesidesSqlMs: round(executed.median - breakdown.rankStatementMs!),
      httpAndSerialisationMs: round(breakdown.totalMs! - executed.median),
    });
    report('top1000', top, topRaw, { breakdown });
    say(`               (an empty request ${floor.median} ms; the checkpoint lookup alone ${lookup.median} ms; the page executed in-process ${executed.median} ms)`);
  }
  if (runs('edges')) {
    const [topEdges, topEdgesRaw] = await measurePair(reps, () => gql(TOP_EDGES, topVars), raw(topSql));
    report('top1000Edges', topEdges, topEdgesRaw);
  }
  if (runs('columns')) {
    // The same page as parallel columns (`RankedSampleConnection.columns`): one field per column.
    const TOP_COLUMNS = `query($c: ID!) { checkpoint(id: $c) { rankedSamples(first: 1000, orderBy: { term: K_NORM, direction: DESC }) {
        columns { sampleIds indices labels scores } pageInfo { hasNextPage endCursor } } } }`;
    const [topColumns, topColumnsRaw] = await measurePair(reps, () => gql(TOP_COLUMNS, topVars), raw(topSql));
    report('top1000Columns', topColumns, topColumnsRaw);
  }

  if (runs('filtered')) {
    // 2. A filtered page: the second page (through its cursor) of a filtered query ordered by ‖G‖.
    const FILTERED = `query($c: ID!, $after: String) { checkpoint(id: $c) { rankedSamples(first: 100, after: $after, orderBy: { term: G_NORM },
        filter: { labels: [3], splits: ["train"], terms: [{ term: LOSS, max: 1 }] }) {
        edges { cursor node { sampleId index label loss gNorm } } pageInfo { hasNextPage endCursor } } } }`;
    const first = await gql(FILTERED, { c: checkpointId });
    const filteredVars = { c: checkpointId, after: first.checkpoint.rankedSamples.pageInfo.endCursor };
    const filteredSql = pageStatement(await statementsOf(FILTERED, filteredVars));
    const [filtered, filteredRaw] = await measurePair(reps, () => gql(FILTERED, filteredVars), raw(filteredSql));
    report('filtered', filtered, filteredRaw);
  }

  if (runs('quantile')) {
    // 3. Quantiles of kNorm over every sample at the checkpoint: exact (`exact: true`, percentile_cont
    // sorts every value, per request), next to its statement; then the default, from the checkpoint's
    // sketch, next to the same exact statement (what a request cost before sketches); and the first
    // request after a write, which rebuilds the sketch (a write is simulated by bumping the epoch the
    // term tables' triggers bump).
    const QUANTILES = `query($c: ID!) { checkpoint(id: $c) { termStats(term: K_NORM) { quantiles(at: [0.01, 0.5, 0.9, 0.99]) { p value } } } }`;
    const QUANTILES_EXACT = `query($c: ID!) { checkpoint(id: $c) { termStats(term: K_NORM) { quantiles(at: [0.01, 0.5, 0.9, 0.99], exact: true) { p value } } } }`;
    const quantileSql = (await statementsOf(QUANTILES_EXACT, topVars)).find((r) => /percentile_cont/.test(r.text))!;
    const qReps = Math.max(5, Math.floor(reps / 4));
    const [quantileExact, quantileExactRaw] = await measurePair(qReps, () => gql(QUANTILES_EXACT, topVars), raw(quantileSql), 2);
    report('quantileExact', quantileExact, quantileExactRaw);
    const [quantile, quantileRaw] = await measurePair(qReps, () => gql(QUANTILES, topVars), raw(quantileSql), 2);
    report('quantile', quantile, quantileRaw, { sqlIs: 'the exact percentile_cont statement' });
    const rebuilds: number[] = [];
    for (let i = 0; i < Math.max(3, Math.floor(qReps / 2)); i++) {
      await base.sql.query('UPDATE term_sketch_epoch SET epoch = epoch + 1 WHERE checkpoint_id = $1', [Number(checkpointId)]);
      const t0 = performance.now();
      await gql(QUANTILES, topVars);
      rebuilds.push(performance.now() - t0);
    }
    results.quantileSketchRebuildMs = summarise(rebuilds);
    say(`  quantile, first request after a write (sketch rebuilt): median ${summarise(rebuilds).median} ms`);
  }

  if (runs('export')) {
    // 4. Export every sample, ranked by kNorm, as CSV over HTTP (read to the end), against the same
    // statement as one query (all rows in memory at once); then the heap each keeps alive.
    const ctx = { db: base, config, log, loaders: createLoaders(base), caller: OPEN_CALLER };
    const prepared = await prepareQuery(ctx, Number(checkpointId), { filter: {}, order: { term: 'K_NORM', direction: 'DESC' }, target: null });
    const exportStatement = rankStatement(prepared, null, null);
    const { exportUrl } = (await gql(`query($c: ID!) { checkpoint(id: $c) { exportUrl(format: CSV) } }`, topVars)).checkpoint;
    let exportedRows = 0;
    let exportedBytes = 0;
    const httpExport = async () => {
      const response = await fetch(new URL(exportUrl, server.url));
      let bytes = 0;
      let lines = 0;
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
      }
      exportedRows = lines - 1;
      exportedBytes = bytes;
    };
    const sqlExport = () => base.sql.query(exportStatement.text, exportStatement.values);
    const [exported, exportedRaw] = await measurePair(exportReps, httpExport, sqlExport, 0);
    const retained = { httpExportMiB: await retainedPeak(httpExport), sqlAllRowsMiB: await retainedPeak(sqlExport) };
    report('export', exported, exportedRaw, { rows: exportedRows, megabytes: round(exportedBytes / 2 ** 20, 1), peakRetainedHeap: retained });
    say(`             heap kept alive: HTTP export ${retained.httpExportMiB} MiB, the same rows as one query ${retained.sqlAllRowsMiB} MiB`);
  }

  await server.close();
  await base.close();
  if (!flag('keep')) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  const top1000 = results.top1000 as { graphqlMs: Timing; ratio: number } | undefined;
  const top1000Columns = results.top1000Columns as { graphqlMs: Timing; ratio: number } | undefined;
  const quantile = results.quantile as { graphqlMs: Timing } | undefined;
  const summary = {
    bench: 'query',
    backend: 'postgres',
    // Other work on the machine (the 1-, 5- and 15-minute load averages at the end): on a shared
    // 2-core machine the medians move with it; the ratios less, since each pair is interleaved.
    loadAverage: os.loadavg().map((x) => round(x)),
    cpus: os.cpus().length,
    samples: nSamples,
    checkpoints: nCheckpoints,
    reps,
    ...results,
    // Only the parts that ran (--only) have a verdict.
    targets: {
      ...(top1000 && { top1000Within2x: top1000.ratio <= 2, top1000Under50ms: top1000.graphqlMs.median < 50 }),
      ...(top1000Columns && { top1000ColumnsWithin2x: top1000Columns.ratio <= 2, top1000ColumnsUnder50ms: top1000Columns.graphqlMs.median < 50 }),
      ...(quantile && { quantileUnder50ms: quantile.graphqlMs.median < 50 }),
    },
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:query failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
