/**
 * `npm run bench:startup -- --json`: how long the `tangent` CLI takes to start, as a user sees it.
 *
 *   - `node bin/tangent.js --help`, spawn to exit: the cost of loading the CLI (target < 1 s);
 *   - `node bin/tangent.js serve` on the embedded database, spawn to the first 200 from /healthz,
 *     with a fresh TANGENT_DATA_DIR each run (database created, migrations applied) and with one
 *     reused data directory (already migrated) (target < 5 s). The server is stopped after each run,
 *     whatever happens.
 *
 * It runs the build (dist/) when there is one, as `npm start` does; `--source` measures the
 * TypeScript sources through tsx instead (TANGENT_FROM_SOURCE=1). Medians of the runs.
 *
 * Flags: --json (only the JSON line on stdout), --runs 5 (--help runs), --serve-runs 3 (per data
 * directory kind), --source. The last line printed is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag, opt } from './args.js';

const jsonOnly = flag('json');
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);
const helpRuns = Math.max(1, Number(opt('runs', '5')));
const serveRuns = Math.max(1, Number(opt('serve-runs', '3')));
const fromSource = flag('source');

const BIN = fileURLToPath(new URL('../bin/tangent.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const HEALTHY_WITHIN_MS = 60_000;
const TARGETS = { helpMs: 1000, healthyMs: 5000 };

/**
 * The environment of a user's shell: no test-runner marker, no external database, no tsx loader
 * inherited from this script (which `npm run` starts through tsx), and the chosen code path.
 */
function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['NODE_TEST_CONTEXT', 'DATABASE_URL', 'TANGENT_DATA_DIR', 'NODE_OPTIONS', 'TANGENT_FROM_SOURCE']) delete env[name];
  if (fromSource) env.TANGENT_FROM_SOURCE = '1';
  return { ...env, ...extra };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const round = (x: number) => Math.round(x);

/** Children still running, killed on the way out whatever happens. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => process.exit(130));
}

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function timeHelp(): Promise<number> {
  const start = performance.now();
  const child = track(spawn(process.execPath, [BIN, '--help'], { env: cliEnv({}), stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await exited(child);
  const ms = performance.now() - start;
  if (code !== 0) throw new Error(`tangent --help exited with ${code}: ${stderr.trim()}`);
  return ms;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Spawns `serve` on `dataDir`, returns the milliseconds until /healthz answers 200, and stops it. */
async function timeServe(dataDir: string): Promise<number> {
  const port = await freePort();
  const env = cliEnv({ PORT: String(port), HOST: '127.0.0.1', TANGENT_DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
  const start = performance.now();
  const child = track(spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const url = `http://127.0.0.1:${port}/healthz`;
    while (!(await healthy(url))) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`tangent serve exited (${child.exitCode ?? child.signalCode}) before it was healthy: ${stderr.trim()}`);
      if (performance.now() - start > HEALTHY_WITHIN_MS) throw new Error(`tangent serve not healthy within ${HEALTHY_WITHIN_MS} ms: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return performance.now() - start;
  } finally {
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited(child).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    if (!stopped) {
      child.kill('SIGKILL');
      await exited(child);
    }
  }
}

const runsFrom = fromSource || !existsSync(BUILT) ? 'source' : 'dist';
say(`tangent start-up, from ${runsFrom}${runsFrom === 'source' && !fromSource ? ' (no dist/: npm run build first)' : ''}, node ${process.version}`);

const scratch = mkdtempSync(join(tmpdir(), 'tangent-bench-startup-'));
try {
  const help: number[] = [];
  for (let i = 0; i < helpRuns; i++) help.push(await timeHelp());
  say(`  --help:                 median ${round(median(help))} ms over ${helpRuns} (${help.map(round).join(', ')}), target < ${TARGETS.helpMs} ms`);

  const fresh: number[] = [];
  for (let i = 0; i < serveRuns; i++) fresh.push(await timeServe(join(scratch, `fresh-${i}`)));
  say(`  serve, fresh data dir:  median ${round(median(fresh))} ms to a healthy /healthz over ${serveRuns} (${fresh.map(round).join(', ')}), target < ${TARGETS.healthyMs} ms`);

  // The reused directory is created (and migrated) by an unmeasured first start.
  const reusedDir = join(scratch, 'reused');
  await timeServe(reusedDir);
  const reused: number[] = [];
  for (let i = 0; i < serveRuns; i++) reused.push(await timeServe(reusedDir));
  say(`  serve, reused data dir: median ${round(median(reused))} ms to a healthy /healthz over ${serveRuns} (${reused.map(round).join(', ')}), target < ${TARGETS.healthyMs} ms`);

  const result = {
    bench: 'startup',
    from: runsFrom,
    node: process.version,
    helpMs: round(median(help)),
    serveFreshMs: round(median(fresh)),
    serveReusedMs: round(median(reused)),
    runs: { help: help.map(round), serveFresh: fresh.map(round), serveReused: reused.map(round) },
    targets: TARGETS,
    withinTargets: median(help) < TARGETS.helpMs && Math.max(median(fresh), median(reused)) < TARGETS.healthyMs,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
