import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/**
 * The suite ends. A test file whose setup starts a server, a database or a `tangent` child process
 * and then fails must still end on its own, fail, and say why: once, a missing data set made two
 * files fail in setup and leave their servers running, and `npm test` waited on them for good.
 *
 * Each case runs a small fixture file (test/meta/fixtures, not picked up by the suite's glob)
 * under node's test runner, as `npm test` does. HANG_MS is a hang detector, not a timing
 * assertion: a runner still there after it is killed (with everything it started) and the test
 * fails; one that ends, ends in seconds (tens of seconds on a loaded 2-core machine).
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const HANG_MS = 120_000;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether it had to be killed for not ending within HANG_MS. */
  hung: boolean;
  output: string;
}

/** Runs one fixture file under `node --test`; its runner leads a process group of its own, so a hang is killed whole. */
function runFixture(t: TestContext, file: string, runnerFlags: string[] = [], env: Record<string, string> = {}): Promise<Outcome> {
  // Without NODE_TEST_CONTEXT, which marks this process as a test file: the child is a runner of its own.
  const { NODE_TEST_CONTEXT: _ignored, ...inherited } = process.env;
  const runner = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...runnerFlags, `${FIXTURES}${file}`], {
    cwd: ROOT,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const killGroup = () => {
    try {
      process.kill(-runner.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  t.after(killGroup);
  let output = '';
  runner.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  runner.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  return new Promise((resolve) => {
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      killGroup();
    }, HANG_MS);
    runner.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, hung, output });
    });
  });
}

function assertEndedAndFailed(outcome: Outcome): void {
  assert.equal(outcome.hung, false, `the runner did not end within ${HANG_MS / 1000} s (killed); it wrote:\n${outcome.output}`);
  assert.equal(outcome.signal, null, outcome.output);
  assert.notEqual(outcome.code, 0, `a failed setup fails the run:\n${outcome.output}`);
}

/** The values a fixture printed on `FIXTURE <key> …` lines. */
function reported(output: string, key: string): string[] {
  return [...output.matchAll(new RegExp(`^FIXTURE ${key} (.+)$`, 'gm'))].map((m) => m[1]!.trim());
}

/** Whether a process is still running (a zombie waiting to be reaped has ended). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; Z is a process that has exited.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits (up to 10 s, for the kernel to finish a kill) for a process to end; false if it is still there. */
async function ended(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && running(pid); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  return !running(pid);
}

async function assertChildrenEnded(output: string): Promise<void> {
  const pids = reported(output, 'child').map(Number);
  assert.equal(pids.length, 1, `the fixture started its child:\n${output}`);
  for (const pid of pids) assert.ok(await ended(pid), `tangent serve (pid ${pid}) is still running after the test process ended`);
}

describe('a test file whose setup fails half-way still ends', { timeout: 280_000 }, () => {
  test('a server started in a test, and one started in a before hook, are stopped, their databases removed', async (t) => {
    const outcome = await runFixture(t, 'server-setup-throws.fixture.ts');
    assertEndedAndFailed(outcome);
    assert.match(outcome.output, /setup failed on purpose after starting a server \(test\)/);
    assert.match(outcome.output, /setup failed on purpose after starting a server \(before hook\)/);
    const databases = reported(outcome.output, 'database');
    assert.equal(databases.length, 2, outcome.output);
    for (const line of databases) {
      const [kind, where] = line.split(' ') as [string, string];
      if (kind === 'pglite') {
        assert.equal(existsSync(where), false, `the PGlite folder ${where} was removed`);
      } else {
        const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await admin.connect();
        try {
          const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [new URL(where).pathname.slice(1)]);
          assert.equal(rowCount, 0, `the database ${where} was dropped`);
        } finally {
          await admin.end();
        }
      }
    }
  });

  test('a tangent serve child left running by the failed setup is stopped by its cleanup', async (t) => {
    const outcome = await runFixture(t, 'cli-setup-throws.fixture.ts');
    assertEndedAndFailed(outcome);
    assert.match(outcome.output, /setup failed on purpose with tangent serve running/);
    await assertChildrenEnded(outcome.output);
  });

  test('a tangent serve child nobody stops ends with the test process (--test-force-exit)', async (t) => {
    const outcome = await runFixture(t, 'cli-forgotten.fixture.ts', ['--test-force-exit']);
    assertEndedAndFailed(outcome);
    assert.match(outcome.output, /failed on purpose, leaving tangent serve running/);
    await assertChildrenEnded(outcome.output);
  });

  test('a test that never ends is stopped at the file timeout (--test-timeout), and its child with it', async (t) => {
    const outcome = await runFixture(t, 'cli-forgotten.fixture.ts', ['--test-timeout=30000'], { FIXTURE_HANG: '1' });
    assertEndedAndFailed(outcome);
    assert.match(outcome.output, /timed out after 30000ms/);
    await assertChildrenEnded(outcome.output);
  });
});

test('npm test runs every *.test.ts with a file timeout and force-exit, and no fixture', () => {
  const script = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).scripts.test as string;
  assert.match(script, /--test-timeout=\d+/);
  assert.match(script, /--test-force-exit/);
  assert.match(script, /--test-reporter=spec/);
  assert.match(script, /find test -name '\*\.test\.ts'/);
});
