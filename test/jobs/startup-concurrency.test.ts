import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupStack } from '../helpers/cleanup.js';
import { spawnCli, tail, type CliProcess } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/database.js';
import { httpGql, importUcr, JOB_FIELDS, pollJob, SMALL_CNN, storeCnn } from './helpers.js';

/**
 * Scale-out starts: several servers and workers started at the same instant on a database nobody
 * has set up yet all come up and stay up. Each of them migrates, installs pg-boss's schema and
 * creates the same queues; unserialised, those DDL statements deadlock (40P01) and a process dies
 * at start. PostgreSQL only: on the embedded database one process holds the data folder.
 */
const url = process.env.DATABASE_URL;

/**
 * Fresh databases, one after another. The issue asks for ten; on this 2-core machine, shared, a
 * round (five processes loading the TypeScript sources and TensorFlow.js at once) took 21–54 s,
 * and ten rounds 5 min 16 s, so four run by default (about 2 min). TANGENT_STARTUP_ROUNDS=10 runs
 * the ten. Before the set-up lock, about one round in two lost a process to a deadlock.
 */
const ROUNDS = Number(process.env.TANGENT_STARTUP_ROUNDS ?? 4);
const SERVERS = 3;
const WORKERS = 2;

const ENV = {
  TANGENT_COMPUTE_THREADS: '1',
  TANGENT_CHUNK_SIZE: '50',
  TANGENT_QUEUE_POLL_SECONDS: '0.5',
};

test(
  `${SERVERS} servers and ${WORKERS} workers started at once on a fresh PostgreSQL database, ${ROUNDS} times: all healthy; a job queued through one is worked`,
  { skip: url ? false : 'PostgreSQL only (set DATABASE_URL): the embedded database admits one process', timeout: 120_000 + ROUNDS * 90_000 },
  async (t) => {
    for (let round = 1; round <= ROUNDS; round++) {
      // A cleanup stack per round, emptied at its end, so each round's processes and database go before the next.
      await t.test(`round ${round}`, async (rt) => {
        const defer = cleanupStack(rt);
        const testDb = defer(await createTestDatabase(), (d) => d.destroy());
        const env = { ...ENV, DATABASE_URL: testDb.config.kind === 'postgres' ? testDb.config.url : '' };

        // All five spawned in the same tick; none waits for another.
        const commands = [...Array<'serve'>(SERVERS).fill('serve'), ...Array<'worker'>(WORKERS).fill('worker')];
        const running = commands.map((command) => defer(spawnCli([command], { env: { ...env, PORT: '0', LOG_LEVEL: 'info' } }), (c) => c.stop()));
        const ready = await Promise.allSettled(running.map((cli, i) => readiness(cli, commands[i]!)));
        const failures = ready.flatMap((o, i) => (o.status === 'rejected' ? [`${commands[i]} ${running[i]!.pid}: ${(o.reason as Error).message}`] : []));
        assert.deepEqual(failures, [], 'every process started');

        const servers = ready.flatMap((o) => (o.status === 'fulfilled' && o.value ? [o.value] : []));
        assert.equal(servers.length, SERVERS);
        for (const server of servers) {
          const health = await fetch(new URL('/healthz', server));
          assert.equal(health.status, 200, `${server}: ${await health.text()}`);
        }
        for (const cli of running) {
          assert.equal(cli.child.exitCode, null, `process ${cli.pid} is still running; stderr: ${tail(cli.stderr)}`);
          assert.doesNotMatch(cli.stdout + cli.stderr, /unhandled|"level":60/i, `process ${cli.pid} logged no start-up failure`);
        }

        if (round === ROUNDS) {
          // Queued through one server, worked by whichever process takes it, read through another.
          const [first, second] = [httpGql(servers[0]!), httpGql(servers[1]!)];
          const { dataset, samples } = await importUcr(first, 'GunPoint');
          const cnn = await storeCnn(first, dataset, { config: SMALL_CNN });
          const { computeTerms: job } = await first.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, {
            input: { checkpointId: cnn.checkpoints[0]!.id, terms: ['LOSS'] },
          });
          const done = await pollJob(second, job.id);
          assert.equal(done.status, 'COMPLETED', done.error ?? '');
          assert.equal(done.progress.samplesDone, samples.length);
          for (const cli of running) assert.equal(cli.child.exitCode, null, `process ${cli.pid} is still running; stderr: ${tail(cli.stderr)}`);
        }
      });
    }
  },
);

/**
 * Resolves when a `tangent serve` has logged its URL (with it) or a `tangent worker` that it takes
 * jobs (with null); rejects, with everything it wrote, if it exits first or is not ready in time.
 */
async function readiness(cli: CliProcess, command: 'serve' | 'worker', timeoutMs = 90_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void cli.exited.then(() => (exited = true));
  for (;;) {
    // Whole lines only: the last one may still be being written.
    for (const line of cli.stdout.split('\n').slice(0, -1)) {
      let entry: { url?: string; msg?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        continue; // not a log line
      }
      if (command === 'serve' && entry.url) return entry.url;
      if (command === 'worker' && entry.msg === 'Tangent worker is taking compute jobs') return null;
    }
    if (exited || Date.now() > deadline) {
      const why = exited ? `exited (${cli.child.signalCode ?? cli.child.exitCode})` : `was not ready within ${timeoutMs / 1000} s`;
      throw new Error(`${why} before it was ready; stdout: ${tail(cli.stdout)}; stderr: ${tail(cli.stderr)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
