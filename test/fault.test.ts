import assert from 'node:assert/strict';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { createApiKey } from '../src/modules/api-keys/service.js';
import { openDatabase } from '../src/platform/db/database.js';
import { cleanupStack } from './helpers/cleanup.js';
import { PgProxy } from './helpers/pg-proxy.js';
import { startCli as startTangent } from './helpers/cli.js';
import { createTestDatabase, quietLog } from './helpers/database.js';
import { startTestServer } from './helpers/server.js';

/**
 * Faults: a server killed with SIGKILL in the middle of a stream of metric batches, a database that
 * goes away and comes back, a PostgreSQL restarted under load. Each batch writes the metrics of its
 * own samples (batch b: sample indices b·K … b·K+K−1, loss b + 0.5), so after the fault every batch
 * is either whole or absent, and every batch the client saw acknowledged must be whole.
 */
const K = 40;
const BATCHES = 150;
const PG_BIN = '/usr/lib/postgresql/15/bin';

interface Cli {
  child: ChildProcess;
  url: string;
}

/** `tangent serve`, tracked so that it cannot outlive the test (see helpers/cli.ts). */
async function startCli(env: Record<string, string>): Promise<Cli> {
  const cli = await startTangent('serve', { env });
  return { child: cli.child, url: cli.url! };
}

/** Kills what is still running and waits until each has exited. */
async function killAll(children: ChildProcess[]): Promise<void> {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(children.map(exited));
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

async function gql(url: string, query: string, variables?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  return { status: response.status, ...((await response.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] }) };
}

async function must(url: string, query: string, variables?: unknown, headers?: Record<string, string>) {
  const res = await gql(url, query, variables, headers);
  assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  return res.data;
}

/** A dataset of BATCHES·K tiny samples, a model, a run and one checkpoint; returns ids and sample ids by index. */
async function seed(url: string, headers?: Record<string, string>) {
  const n = BATCHES * K;
  const { createDataset } = await must(
    url,
    `mutation($s: [SampleInput!]) { createDataset(input: { name: "fault", length: 4, classNames: ["a", "b"], samples: $s }) { id } }`,
    { s: Array.from({ length: n }, (_, index) => ({ index, label: index % 2, series: [index, 1, 2, 3] })) },
    headers,
  );
  const { createModel } = await must(url, `mutation { createModel(input: { name: "m", format: BUILTIN, architecture: "cnn1d", config: {}, inputLength: 4, numClasses: 2 }) { id } }`, undefined, headers);
  const { createRun } = await must(url, `mutation($m: ID!, $d: ID!) { createRun(input: { name: "r", modelId: $m, datasetId: $d }) { id } }`, { m: createModel.id, d: createDataset.id }, headers);
  const weights = Buffer.from(new Float32Array([1, 2]).buffer).toString('base64');
  const { createCheckpoint } = await must(
    url,
    `mutation($r: ID!, $w: Base64!) { createCheckpoint(input: { runId: $r, step: 1, weightSpecs: [{ name: "w", shape: [2], dtype: "float32" }], weightData: $w }) { id } }`,
    { r: createRun.id, w: weights },
    headers,
  );
  const ids: string[] = [];
  let after: string | null = null;
  do {
    const { dataset } = await must(url, `query($d: ID!, $a: String) { dataset(id: $d) { samples(first: 1000, after: $a) { pageInfo { hasNextPage endCursor } nodes { id index } } } }`, { d: createDataset.id, a: after }, headers);
    for (const s of dataset.samples.nodes) ids[s.index] = s.id;
    after = dataset.samples.pageInfo.hasNextPage ? dataset.samples.pageInfo.endCursor : null;
  } while (after);
  return { checkpointId: createCheckpoint.id as string, sampleIds: ids };
}

const RECORD = `mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`;

function batchRows(b: number, sampleIds: string[]) {
  return Array.from({ length: K }, (_, i) => ({ sampleId: sampleIds[b * K + i]!, loss: b + 0.5, correct: i % 2 === 0 }));
}

/**
 * Streams batches from `concurrency` writers until `stop()` says so or all are sent. Returns the
 * batches acknowledged (a complete response without errors) and those that failed cleanly (an
 * error response with a code); a request cut off by the fault is neither.
 */
function streamBatches(
  getUrl: () => string,
  checkpointId: string,
  sampleIds: string[],
  opts: { concurrency: number; batches?: number[]; headers?: Record<string, string>; onAck?: (acked: number) => void },
) {
  const acked = new Set<number>();
  const refused = new Map<number, string>();
  const cut = new Set<number>();
  const queue = opts.batches ?? Array.from({ length: BATCHES }, (_, b) => b);
  let next = 0;
  let stopped = false;
  const writer = async () => {
    while (!stopped && next < queue.length) {
      const b = queue[next++]!;
      try {
        const res = await gql(getUrl(), RECORD, { c: checkpointId, m: batchRows(b, sampleIds) }, opts.headers);
        if (res.errors) refused.set(b, res.errors[0]?.extensions?.code ?? 'NO_CODE');
        else {
          assert.equal(res.data.recordMetrics.written, K);
          acked.add(b);
          opts.onAck?.(acked.size);
        }
      } catch {
        cut.add(b); // the connection died with the server: the client does not know the outcome
      }
    }
  };
  const done = Promise.all(Array.from({ length: opts.concurrency }, writer));
  return { acked, refused, cut, done, stop: () => (stopped = true) };
}

/** Loss per sample index at the checkpoint, read through GraphQL. */
async function storedLosses(url: string, checkpointId: string, headers?: Record<string, string>): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  let after: string | null = null;
  do {
    const { checkpoint } = await must(url, `query($c: ID!, $a: String) { checkpoint(id: $c) { metrics(first: 1000, after: $a) { pageInfo { hasNextPage endCursor } nodes { loss sample { index } } } } }`, { c: checkpointId, a: after }, headers);
    for (const m of checkpoint.metrics.nodes) out.set(m.sample.index, m.loss);
    after = checkpoint.metrics.pageInfo.hasNextPage ? checkpoint.metrics.pageInfo.endCursor : null;
  } while (after);
  return out;
}

/** Every acknowledged batch whole; every other batch whole or absent. Returns the batches present. */
function assertNoLossNoTear(losses: Map<number, number>, acked: Set<number>): number[] {
  const present: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const rows = Array.from({ length: K }, (_, i) => losses.get(b * K + i));
    const count = rows.filter((l) => l !== undefined).length;
    assert.ok(count === 0 || count === K, `batch ${b} is partly present (${count}/${K} rows)`);
    if (count === K) {
      assert.ok(rows.every((l) => l === b + 0.5), `batch ${b} holds another batch's values`);
      present.push(b);
    }
    if (acked.has(b)) assert.equal(count, K, `batch ${b} was acknowledged but is not all there`);
  }
  return present;
}

async function killMidStream(t: TestContext, env: Record<string, string>) {
  const children: ChildProcess[] = [];
  try {
    const first = await startCli(env);
    children.push(first.child);
    const { checkpointId, sampleIds } = await seed(first.url);
    let killedAfter = -1;
    const stream = streamBatches(() => first.url, checkpointId, sampleIds, {
      concurrency: 4,
      onAck: (n) => {
        if (n === 15 && killedAfter < 0) {
          killedAfter = n;
          first.child.kill('SIGKILL'); // three more requests are in flight right now
          stream.stop();
        }
      },
    });
    await stream.done;
    await exited(first.child);
    assert.equal(first.child.signalCode, 'SIGKILL');
    assert.ok(stream.acked.size >= 15, 'the kill came mid-stream');
    assert.ok(stream.cut.size >= 1, 'some batches were in flight when the server died');

    const second = await startCli(env);
    children.push(second.child);
    const present = assertNoLossNoTear(await storedLosses(second.url, checkpointId), stream.acked);
    const unacknowledgedButStored = present.filter((b) => !stream.acked.has(b));
    assert.ok(unacknowledgedButStored.every((b) => stream.cut.has(b)), 'only batches cut off in flight may be stored without an acknowledgement');
    // The restarted server takes the rest of the stream.
    t.diagnostic(`acknowledged ${stream.acked.size}, cut off in flight ${stream.cut.size} (of which stored ${unacknowledgedButStored.length})`);
    const missing = Array.from({ length: BATCHES }, (_, b) => b).filter((b) => !present.includes(b));
    const rest = streamBatches(() => second.url, checkpointId, sampleIds, { concurrency: 2, batches: missing });
    await rest.done;
    assert.equal(rest.cut.size + rest.refused.size, 0);
    const all = assertNoLossNoTear(await storedLosses(second.url, checkpointId), new Set([...stream.acked, ...rest.acked]));
    assert.equal(all.length, BATCHES);
    second.child.kill('SIGTERM');
    await exited(second.child);
  } finally {
    await killAll(children);
  }
}

describe('faults', () => {
  test('SIGKILL mid-stream: every acknowledged batch is there after a restart, no batch is torn', async (t) => {
    const testDb = await createTestDatabase();
    try {
      if (testDb.config.kind === 'postgres') {
        await killMidStream(t, { DATABASE_URL: testDb.config.url });
      } else {
        await killMidStream(t, { TANGENT_DATA_DIR: testDb.config.dataDir });
      }
    } finally {
      await testDb.destroy();
    }
  });

  test('the database goes away and comes back: clean errors meanwhile, then work again without a restart', { skip: !process.env.DATABASE_URL && 'needs DATABASE_URL (PGlite lives in the process)' }, async (ctx) => {
    const defer = cleanupStack(ctx);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    assert.equal(testDb.config.kind, 'postgres');
    const proxy = defer(await PgProxy.forUrl(testDb.config.url), (p) => p.close());
    const proxied = { ...testDb.config, url: proxy.via(testDb.config.url) };
    const t = defer(await startTestServer({ testDb: { ...testDb, config: proxied, open: () => openDatabase(proxied, quietLog, { statementTimeoutMs: 10_000 }) }, env: { TANGENT_AUTH: 'on' } }), (s) => s.stop());
    const { secret } = await createApiKey(t.db, { name: 'w', role: 'WRITER' });
    const auth = { authorization: `Bearer ${secret}` };
    const health = () => fetch(t.url.replace('/graphql', '/healthz')).then((r) => r.status);
    assert.equal(await health(), 200);
    await must(t.url, `mutation { createDataset(input: { name: "before", length: 1, classNames: ["a"] }) { id } }`, undefined, auth);

    proxy.cut();
    assert.equal(await health(), 503);
    for (const query of [`{ datasets { totalCount } }`, `mutation { createDataset(input: { name: "during", length: 1, classNames: ["a"] }) { id } }`]) {
      const res = await gql(t.url, query, undefined, auth);
      assert.deepEqual(res.errors?.map((e) => e.extensions?.code), ['DATABASE_UNAVAILABLE'], JSON.stringify(res));
      assert.equal(res.status, 503);
      assert.doesNotMatch(JSON.stringify(res), /ECONN|5432|pg|\.ts/);
    }

    await proxy.restore();
    assert.equal(await health(), 200);
    const { datasets } = await must(t.url, `{ datasets { nodes { name } } }`, undefined, auth);
    assert.deepEqual(datasets.nodes, [{ name: 'before' }], 'nothing from the outage was written');
    await must(t.url, `mutation { createDataset(input: { name: "after", length: 1, classNames: ["a"] }) { id } }`, undefined, auth);
  });

  test('a statement past TANGENT_STATEMENT_TIMEOUT_MS fails with TIMEOUT, and nothing is written', { skip: !process.env.DATABASE_URL && 'PGlite has no statement timeout' }, async (ctx) => {
    const defer = cleanupStack(ctx);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    assert.equal(testDb.config.kind, 'postgres');
    const config = testDb.config;
    const t = defer(await startTestServer({ testDb: { ...testDb, open: () => openDatabase(config, quietLog, { statementTimeoutMs: 300 }) } }), (s) => s.stop());
    // Another session holds the dataset table, so the server's statements wait on it until their limit.
    const blocker = defer(new pg.Client({ connectionString: config.url }), (c) => c.end());
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE dataset IN ACCESS EXCLUSIVE MODE');
    for (const query of [`{ datasets { totalCount } }`, `mutation { createDataset(input: { name: "late", length: 1, classNames: ["a"] }) { id } }`]) {
      const res = await gql(t.url, query);
      assert.deepEqual(res.errors?.map((e) => e.extensions?.code), ['TIMEOUT'], JSON.stringify(res));
      assert.doesNotMatch(JSON.stringify(res), /statement|cancel|57014/);
    }
    await blocker.query('ROLLBACK');
    const { datasets } = await must(t.url, `{ datasets { totalCount } }`);
    assert.equal(datasets.totalCount, 0);
  });

  const privateCluster = process.env.DATABASE_URL && existsSync(`${PG_BIN}/initdb`) && process.getuid?.() === 0;
  test(
    'PostgreSQL restarted under load: the server keeps serving, no acknowledged batch lost, none torn',
    { skip: !privateCluster && 'needs DATABASE_URL, root and PostgreSQL 15 binaries (to run a private cluster)' },
    async (t) => {
      // A cluster of the test's own, so the restart disturbs nobody sharing the machine's server.
      const cluster = await PrivateCluster.start();
      const children: ChildProcess[] = [];
      try {
        const url = `postgresql://postgres@127.0.0.1:${cluster.port}/postgres`;
        const cli = await startCli({ DATABASE_URL: url, TANGENT_STATEMENT_TIMEOUT_MS: '10000' });
        children.push(cli.child);
        const { checkpointId, sampleIds } = await seed(cli.url);
        let restarting: Promise<void> | null = null;
        const stream = streamBatches(() => cli.url, checkpointId, sampleIds, {
          concurrency: 4,
          onAck: (n) => {
            if (n === 15) restarting ??= cluster.restart();
          },
        });
        while (!restarting) await sleep(10);
        await restarting;
        // Keep writing a little after PostgreSQL is back, then stop.
        const ackedAtRestart = stream.acked.size;
        while (stream.acked.size < ackedAtRestart + 10 && stream.acked.size + stream.refused.size < BATCHES) await sleep(10);
        stream.stop();
        await stream.done;
        t.diagnostic(`acknowledged ${stream.acked.size}, refused during the restart ${stream.refused.size}`);
        assert.ok(stream.refused.size >= 1, 'writes arrived while PostgreSQL was down');
        // A batch whose commit was in flight when the connection went is OUTCOME_UNKNOWN (it may have
        // landed); one sent while PostgreSQL was down is DATABASE_UNAVAILABLE. Both are retried below.
        for (const code of stream.refused.values()) assert.ok(['DATABASE_UNAVAILABLE', 'OUTCOME_UNKNOWN'].includes(code), code);
        assert.equal(stream.cut.size, 0, 'the server itself never dropped a connection');

        // The same server process, without a restart, takes the batches that failed.
        for (const b of stream.refused.keys()) {
          const res = await gql(cli.url, RECORD, { c: checkpointId, m: batchRows(b, sampleIds) });
          assert.equal(res.errors, undefined, JSON.stringify(res.errors));
          stream.acked.add(b);
        }
        const present = assertNoLossNoTear(await storedLosses(cli.url, checkpointId), stream.acked);
        assert.deepEqual(present, [...stream.acked].sort((a, b) => a - b), 'nothing else was written');
        assert.equal(cli.child.exitCode, null, 'the server was never restarted');
        cli.child.kill('SIGTERM');
        await exited(cli.child);
      } finally {
          await killAll(children);
        await cluster.destroy();
      }
    },
  );
});


/** A throwaway PostgreSQL 15 cluster in a temporary folder, run as the postgres user. */
class PrivateCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<PrivateCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'tangent-pg-'));
    chmodSync(dir, 0o700);
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    const port = await freePort();
    const cluster = new PrivateCluster(dir, port);
    cluster.asPostgres(`${PG_BIN}/initdb`, ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    cluster.pgCtl('start');
    return cluster;
  }

  /** A fast restart: PostgreSQL aborts open transactions and drops every connection. */
  async restart(): Promise<void> {
    await promisify(execFile)('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, ...this.pgCtlArgs('restart', ['-m', 'fast'])], { cwd: this.dir });
  }

  async destroy(): Promise<void> {
    try {
      this.pgCtl('stop', ['-m', 'immediate']);
    } catch {
      /* already stopped */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private pgCtl(action: string, extra: string[] = []): void {
    this.asPostgres(`${PG_BIN}/pg_ctl`, this.pgCtlArgs(action, extra));
  }

  private pgCtlArgs(action: string, extra: string[]): string[] {
    return [action, '-D', join(this.dir, 'data'), '-w', '-l', join(this.dir, 'log'), ...extra, '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`];
  }

  private asPostgres(command: string, args: string[]): void {
    execFileSync('runuser', ['-u', 'postgres', '--', command, ...args], { stdio: 'ignore', cwd: this.dir });
  }
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
