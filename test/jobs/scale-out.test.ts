import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { cleanupStack } from '../helpers/cleanup.js';
import { spawnCli, tail, type CliProcess } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/database.js';
import { httpGql, importUcr, JOB_FIELDS, pollJob, SMALL_CNN, storeCnn } from './helpers.js';

/**
 * Scale-out as deployed: two API servers that work no jobs (TANGENT_WORKER=off) and three
 * `tangent worker` processes on one PostgreSQL database. A compute job queued through one server
 * is cut into chunks that every worker takes a share of, each chunk is committed exactly once, and
 * the finished job is read through the other server. PostgreSQL only: on the embedded database one
 * process holds the data folder, so there is nothing to scale out.
 */
const url = process.env.DATABASE_URL;

const SERVERS = 2;
const WORKERS = 3;
/** GunPoint has 200 samples: 20 chunks, enough for every worker to take several. */
const CHUNK_SIZE = 10;

const ENV = {
  TANGENT_COMPUTE_THREADS: '1',
  TANGENT_CHUNK_SIZE: String(CHUNK_SIZE),
  TANGENT_QUEUE_POLL_SECONDS: '0.5',
};

interface ChunkDone {
  jobId: number;
  chunk: number;
  outcome: 'committed' | 'duplicate' | 'inactive';
}

test(
  `${SERVERS} API servers and ${WORKERS} workers on one PostgreSQL: a job's chunks spread over the workers, each committed once, read through the other server`,
  { skip: url ? false : 'PostgreSQL only (set DATABASE_URL): the embedded database admits one process, so there is no scale-out', timeout: 150_000 },
  async (t) => {
    const defer = cleanupStack(t);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    const databaseUrl = testDb.config.kind === 'postgres' ? testDb.config.url : '';
    const env = { ...ENV, DATABASE_URL: databaseUrl };

    // Servers log at info (their URL); workers at debug, for the 'chunk done' line of each chunk they work.
    const servers = Array.from({ length: SERVERS }, () => defer(spawnCli(['serve'], { env: { ...env, PORT: '0', LOG_LEVEL: 'info', TANGENT_WORKER: 'off' } }), (c) => c.stop()));
    const workers = Array.from({ length: WORKERS }, () => defer(spawnCli(['worker'], { env: { ...env, LOG_LEVEL: 'debug' } }), (c) => c.stop()));
    const urls = await Promise.all(servers.map((s) => ready(s, (e) => (typeof e.url === 'string' ? e.url : undefined))));
    await Promise.all(workers.map((w) => ready(w, (e) => (e.msg === 'Tangent worker is taking compute jobs' ? true : undefined))));

    const [first, second] = [httpGql(urls[0]!), httpGql(urls[1]!)];
    const { dataset, samples } = await importUcr(first, 'GunPoint');
    const cnn = await storeCnn(first, dataset, { config: SMALL_CNN });
    const { computeTerms: job } = await first.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, {
      input: { checkpointId: cnn.checkpoints[0]!.id, terms: ['LOSS', 'K_NORM'] },
    });
    const chunks = Math.ceil(samples.length / CHUNK_SIZE);
    assert.equal(job.progress.chunksTotal, chunks);

    // Read through the server that did not queue it.
    const done = await pollJob(second, job.id);
    assert.equal(done.status, 'COMPLETED', done.error ?? '');
    assert.deepEqual(
      { chunksDone: done.progress.chunksDone, samplesDone: done.progress.samplesDone, samplesComputed: done.progress.samplesComputed },
      { chunksDone: chunks, samplesDone: samples.length, samplesComputed: samples.length },
    );

    // Who worked what, from each worker's own log.
    const jobId = Number(job.id);
    const perWorker = workers.map((w) => chunkLines(w).filter((c) => c.jobId === jobId));
    const committed = perWorker.map((lines) => lines.filter((c) => c.outcome === 'committed').map((c) => c.chunk));
    t.diagnostic(`chunks committed per worker: ${committed.map((c) => c.length).join(', ')}`);
    for (const [i, mine] of committed.entries()) assert.ok(mine.length >= 1, `worker ${i + 1} (pid ${workers[i]!.pid}) committed at least one chunk; each committed ${committed.map((c) => c.length).join(', ')}`);
    const all = committed.flat().sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: chunks }, (_, k) => k), 'every chunk committed by exactly one worker, once');

    // The job's chunk records agree: one row per chunk, and every sample's values written once.
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const rows = await client.query<{ chunk: number; samples: number; computed: number }>('SELECT chunk, samples, computed FROM compute_job_chunk WHERE job_id = $1 ORDER BY chunk', [jobId]);
      assert.deepEqual(
        rows.rows.map((r) => r.chunk),
        all,
      );
      assert.equal(rows.rows.reduce((n, r) => n + r.samples, 0), samples.length);
      assert.equal(rows.rows.reduce((n, r) => n + r.computed, 0), samples.length);
      const metrics = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM sample_metric WHERE checkpoint_id = $1 AND loss IS NOT NULL AND k_norm >= 0', [Number(cnn.checkpoints[0]!.id)]);
      assert.equal(metrics.rows[0]!.n, samples.length, 'every sample has its terms');
    } finally {
      await client.end();
    }
    for (const cli of [...servers, ...workers]) {
      assert.equal(cli.child.exitCode, null, `process ${cli.pid} is still running; stderr: ${tail(cli.stderr)}`);
      assert.doesNotMatch(cli.stdout + cli.stderr, /unhandled|"level":(50|60)/i, `process ${cli.pid} logged no error`);
    }
  },
);

/** The 'chunk done' lines a worker logged (at debug). */
function chunkLines(cli: CliProcess): ChunkDone[] {
  return logLines(cli).flatMap((e) => (e.msg === 'chunk done' ? [{ jobId: Number(e.jobId), chunk: Number(e.chunk), outcome: e.outcome as ChunkDone['outcome'] }] : []));
}

function logLines(cli: CliProcess): Record<string, unknown>[] {
  // Whole lines only: the last one may still be being written.
  return cli.stdout
    .split('\n')
    .slice(0, -1)
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return []; // not a log line
      }
    });
}

/** Resolves with `pick`'s first defined value over the process's log lines; rejects, with its output, if it exits first or takes too long. */
async function ready<T>(cli: CliProcess, pick: (entry: Record<string, unknown>) => T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void cli.exited.then(() => (exited = true));
  for (;;) {
    for (const entry of logLines(cli)) {
      const value = pick(entry);
      if (value !== undefined) return value;
    }
    if (exited || Date.now() > deadline) {
      const why = exited ? `exited (${cli.child.signalCode ?? cli.child.exitCode})` : `was not ready within ${timeoutMs / 1000} s`;
      throw new Error(`${why} before it was ready; stdout: ${tail(cli.stdout)}; stderr: ${tail(cli.stderr)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
