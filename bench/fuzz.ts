/**
 * `npm run bench:fuzz -- --json`: thousands of generated hostile requests (bench/hostile.ts) against
 * a Tangent server run as production runs it: `tangent serve` in its own process (so a crash is
 * seen), NODE_ENV=production, API keys required (TANGENT_AUTH=on; the first ADMIN key made with
 * `tangent keys create`, the WRITER and READER keys with the createApiKey mutation), on PostgreSQL.
 *
 * It counts 5xx answers (by status), INTERNAL_SERVER_ERROR codes, leaks (stack frames, file paths,
 * SQL text, JS error names), hangs (no answer in 10 s), crashes (the process exited or /healthz
 * stopped answering; the server is restarted and the run goes on), codes errors.ts does not define,
 * answers that are not JSON, dropped connections, hostile requests that succeeded, valid keys refused
 * after another client's bad keys, and rows written by failed requests (every table's rows counted,
 * and in the public schema checksummed, before and after; every probe is one that must fail or a
 * read, and reads of computed terms write nothing). The target for each is zero. It is a
 * measurement: the exit code is 0 whatever it counts, 1 only when the harness itself failed.
 *
 * A second server, with the production rate limits on, takes the throttling case: `--auth-failures`
 * bad keys from this address, then a valid key over HTTP and over WebSocket.
 *
 * Flags: --json (only the JSON line on stdout), --seed <n> (default 20261129), --requests <n>
 * (default 6000), --concurrency <n> (default 4), --database-url <url> (a PostgreSQL server; a fresh
 * database tangent_fuzz_<random> is made on it and dropped afterwards; default
 * postgresql://postgres@127.0.0.1:5432/test), --auth-failures <n> (default 70), --dist (run the
 * compiled dist/ instead of src/; the default runs src/ so the measurement is of the code as it is
 * now, not of the last build). The last line printed is one JSON object; each failure kind comes
 * with its first five requests, enough to send them again.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { buildSchema } from '../src/modules/schema.js';
import {
  FAILURE_KINDS,
  badKeysThenValidKey,
  compareSnapshots,
  describeTally,
  generateProbes,
  healthy,
  record,
  runProbes,
  seedFuzzData,
  snapshotTables,
  type Tally,
} from './hostile.js';
import { flag, opt as option } from './args.js';

const jsonOnly = flag('json');
const seed = Number(option('seed', '20261129'));
const requests = Number(option('requests', '6000'));
const concurrency = Number(option('concurrency', '4'));
const authFailures = Number(option('auth-failures', '70'));
const adminUrl = option('database-url', process.env.FUZZ_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test');
const fromDist = flag('dist');
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tangent.js');
/** Small enough that the oversize probe is cheap to send, as a deployment behind a proxy would set it. */
const MAX_BODY_BYTES = 1024 * 1024;

for (const [name, value] of [['seed', seed], ['requests', requests], ['concurrency', concurrency], ['auth-failures', authFailures]] as const) {
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`bench:fuzz: --${name} must be a whole number\n`);
    process.exit(1);
  }
}

const dbName = `tangent_fuzz_${randomBytes(6).toString('hex')}`;
const dbUrl = (() => {
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  return url.toString();
})();
const children = new Set<ChildProcess>();
let created = false;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Stops every server and drops the database; safe to call twice. */
let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    await Promise.all([...children].map((child) => stop(child)));
    if (created) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((error) => process.stderr.write(`bench:fuzz: could not drop ${dbName}: ${error}\n`));
  })());
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench:fuzz: ${signal}, stopping the server and dropping ${dbName}\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

const serverEnv = (extra: Record<string, string>) => {
  const { DATABASE_URL: _a, TANGENT_DATA_DIR: _b, NODE_TEST_CONTEXT: _c, ...inherited } = process.env;
  return { ...inherited, ...(fromDist ? {} : { TANGENT_FROM_SOURCE: '1' }), DATABASE_URL: dbUrl, NODE_ENV: 'production', TANGENT_AUTH: 'on', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...extra };
};

/** Errors the server logged (level ≥ 50): what the server itself thought went wrong. */
const serverErrors: string[] = [];
let serverErrorCount = 0;

/** `tangent serve` in a child process; resolves with its origin once it serves. */
function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; origin: string }> {
  const child = spawn(process.execPath, [BIN, 'serve'], { env: serverEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not serve within 120 s: ${stderr}`)), 120_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: { url?: string; level?: number; msg?: string; err?: { message?: string } };
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (entry.url) {
        clearTimeout(timer);
        resolve({ child, origin: new URL(entry.url).origin });
      }
      if ((entry.level ?? 0) >= 50) {
        serverErrorCount++;
        if (serverErrors.length < 5) serverErrors.push(`${entry.msg}: ${entry.err?.message ?? ''}`.slice(0, 300));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before serving: ${stderr}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function tables(): Promise<ReturnType<typeof snapshotTables>> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    return await snapshotTables(async (sql) => (await client.query(sql)).rows);
  } finally {
    await client.end();
  }
}

const started = performance.now();
try {
  await admin(`CREATE DATABASE ${dbName}`);
  created = true;
  // The first ADMIN key, the way an operator makes it: the CLI, on the database, before any server.
  const made = spawnSync(process.execPath, [BIN, 'keys', 'create', '--name', 'fuzz-admin', '--role', 'admin', '--json', '--database-url', dbUrl], { env: serverEnv({ LOG_LEVEL: 'warn' }), encoding: 'utf8', timeout: 120_000 });
  if (made.status !== 0) throw new Error(`tangent keys create failed (${made.status}): ${made.stderr}`);
  const adminKey = (JSON.parse(made.stdout.trim().split('\n').pop()!) as { secret: string }).secret;

  // Limits that run without refusing: the hostile requests must reach what they aim at.
  const open = { TANGENT_RATE_LIMIT_PER_MIN: '100000000', TANGENT_AUTH_FAILURES_PER_MIN: '100000000', TANGENT_MAX_BODY_BYTES: String(MAX_BODY_BYTES) };
  let server = await startServer({ ...open, PORT: '0' });
  const port = new URL(server.origin).port;
  say(`bench:fuzz: seed ${seed}, ${requests} requests, server from ${fromDist ? 'dist/' : 'src/'} on PostgreSQL (${dbName}), NODE_ENV=production, TANGENT_AUTH=on, ${server.origin}`);
  const { ids, keys } = await seedFuzzData(server.origin, adminKey);
  const probes = generateProbes({ seed, requests, schema: buildSchema(), ids, maxBodyBytes: MAX_BODY_BYTES });
  say(`seeded dataset ${ids.dataset}, checkpoints ${ids.checkpoint} (computed) and ${ids.fresh.join(', ')} (never computed), selection ${ids.selection}; ${probes.length} probes`);

  const before = await tables();
  let lastShown = 0;
  const tally: Tally = await runProbes(probes, {
    origin: server.origin,
    keys,
    alive: async () => server.child.exitCode === null && server.child.signalCode === null && (await healthy(server.origin)),
    async restart() {
      say('the server died; restarting it on the same port');
      await stop(server.child);
      server = await startServer({ ...open, PORT: port });
    },
  }, {
    concurrency,
    onProgress(done) {
      if (!jsonOnly && done - lastShown >= 1000) {
        lastShown = done;
        say(`  ${done}/${probes.length} (${Math.round((performance.now() - started) / 1000)} s)`);
      }
    },
  });
  // Jobs a refused request may have started get a moment to write what they would write.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const after = await tables();
  const written = compareSnapshots(before, after);
  if (written.changed.length) {
    // Rows added or removed; a table whose rows only changed in place counts as one.
    const n = Math.max(written.rows, written.changed.length);
    record(tally, 'rowsWrittenByFailedRequests', () => ({ label: `tables changed: ${written.changed.map((c) => `${c.table} ${c.before}→${c.after}`).join(', ')}`, family: 'database', transport: 'http-post', auth: 'admin', method: '-', url: '-', status: '-', answer: 'the requests that wrote them are among acceptedHostile (reader-compute, unstorable)', ms: 0 }), n);
  }
  const healthyAtEnd = await healthy(server.origin);
  await stop(server.child);

  // Throttling: the production limits, and another client's bad keys before a valid one.
  const limited = await startServer({ TANGENT_MAX_BODY_BYTES: String(MAX_BODY_BYTES), PORT: '0' });
  await badKeysThenValidKey(tally, limited.origin, keys, authFailures, 'writer');
  await stop(limited.child);

  const wallS = Math.round((performance.now() - started) / 100) / 10;
  for (const line of describeTally(tally, { rowsChanged: written.changed })) say(line);
  say(`server logged ${serverErrorCount} errors${serverErrors.length ? `, e.g. ${serverErrors[0]}` : ''}; healthy at the end: ${healthyAtEnd}; ${wallS} s`);
  const out = {
    bench: 'fuzz',
    seed,
    requests: tally.requests,
    requestsPerTransport: tally.byTransport,
    requestsPerFamily: tally.byFamily,
    wallS,
    server: { from: fromDist ? 'dist' : 'src', database: 'postgres', nodeEnv: 'production', auth: 'on', concurrency },
    counts: tally.counts,
    allZero: FAILURE_KINDS.every((k) => tally.counts[k] === 0),
    status5xx: tally.status5xx,
    tablesChanged: written.changed,
    answersByCode: tally.codes,
    serverLoggedErrors: serverErrorCount,
    samples: tally.samples,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} catch (error) {
  process.stderr.write(`bench:fuzz: the harness failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  if (serverErrors.length) process.stderr.write(`the server logged: ${serverErrors.join('\n')}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
