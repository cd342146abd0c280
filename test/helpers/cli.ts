import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The `tangent` CLI as a child process of a test, started so that it cannot outlive the test:
 * every child is tracked from the moment it is spawned, `stop()` ends it and waits for its exit,
 * and whatever a test failed to stop is killed when the test process exits (normally, by
 * `--test-force-exit`, or by the runner's SIGTERM at a file's timeout). A child left running
 * would otherwise keep holding its database, its port and a core long after its test failed.
 *
 * `tangent` runs in one process (compute threads are worker threads, not processes), so ending
 * the process ends everything it started; no process group is needed.
 */
export const BIN = fileURLToPath(new URL('../../bin/tangent.js', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it wrote so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  /** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<Exit>;
  /** Sends a signal (SIGKILL by default) and resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<Exit>;
}

export interface CliOptions {
  /** Added to the environment. DATABASE_URL is never inherited: the child gets the test's own database only when given. */
  env?: Record<string, string | undefined>;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Kills what is still running when this process ends, however it ends. */
function hookProcessExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  // The runner stops a file past its timeout with SIGTERM; by default that skips 'exit' handlers.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => process.exit(signal === 'SIGTERM' ? 143 : 130));
  }
}

/** Spawns `tangent <args>`. The caller registers `t.after(() => cli.stop())` on the next line. */
export function spawnCli(args: string[], options: CliOptions = {}): CliProcess {
  hookProcessExit();
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...inherited, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // 'close' (not 'exit'): by then its output has been read to the end.
  const exited = new Promise<Exit>((resolve) => {
    child.once('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', () => {
      // Spawning itself failed (no 'close' follows when there is no process).
      if (child.pid === undefined) {
        live.delete(child);
        resolve({ code: null, signal: null });
      }
    });
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (running()) child.kill(signal);
    return exited;
  };
  let stopping: Promise<Exit> | null = null;
  const stop = (graceMs = 5000) =>
    (stopping ??= (async () => {
      if (!running()) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => running() && child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    })());
  return {
    child,
    pid: child.pid ?? -1,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    stop,
    kill,
  };
}

/** The end of what a child wrote, for error messages. */
export function tail(text: string, chars = 2000): string {
  return text.length > chars ? `…${text.slice(-chars)}` : text;
}

/**
 * Runs `tangent <args>` to its end. Past `timeoutMs` the child is killed and this rejects with
 * what it wrote: a command that hangs fails its test with a reason instead of hanging the suite.
 */
export async function runCli(args: string[], options: CliOptions & { timeoutMs?: number } = {}): Promise<Exit & { stdout: string; stderr: string }> {
  const cli = spawnCli(args, options);
  const timeoutMs = options.timeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const outcome = await Promise.race([cli.exited, timedOut]);
    if (outcome === 'timeout') {
      await cli.kill();
      throw new Error(`tangent ${args.join(' ')} did not exit within ${timeoutMs / 1000} s; stderr: ${tail(cli.stderr)}`);
    }
    return { ...outcome, stdout: cli.stdout, stderr: cli.stderr };
  } finally {
    clearTimeout(timer);
    await cli.kill();
  }
}

/**
 * Starts `tangent serve` or `tangent worker` and resolves once its log says it is ready, with the
 * GraphQL URL for serve. If it exits first, or is not ready within `readyTimeoutMs`, it is killed
 * and this rejects with its exit and the end of its stderr.
 */
export async function startCli(
  command: 'serve' | 'worker',
  options: CliOptions & { readyTimeoutMs?: number } = {},
): Promise<CliProcess & { url: string | null }> {
  const cli = spawnCli([command], { env: { PORT: '0', LOG_LEVEL: 'info', ...options.env } });
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  let onData: (() => void) | undefined;
  try {
    const url = await new Promise<string | null>((resolve, reject) => {
      // Read from the output the child keeps writing (a pipe nobody reads would block it).
      let scanned = 0;
      onData = () => {
        const text = cli.stdout;
        let end: number;
        while ((end = text.indexOf('\n', scanned)) >= 0) {
          const line = text.slice(scanned, end);
          scanned = end + 1;
          let entry: { url?: string; msg?: string };
          try {
            entry = JSON.parse(line);
          } catch {
            continue; // not a log line
          }
          if (command === 'serve' && entry.url) resolve(entry.url);
          if (command === 'worker' && entry.msg === 'Tangent worker is taking compute jobs') resolve(null);
        }
      };
      cli.child.stdout!.on('data', onData);
      void cli.exited.then(({ code, signal }) =>
        reject(new Error(`tangent ${command} exited (${signal ?? code}) before it was ready; stderr: ${tail(cli.stderr)}`)),
      );
      timer = setTimeout(
        () => reject(new Error(`tangent ${command} was not ready within ${readyTimeoutMs / 1000} s; stderr: ${tail(cli.stderr)}`)),
        readyTimeoutMs,
      );
    });
    return Object.assign(cli, { url });
  } catch (error) {
    await cli.kill();
    throw error;
  } finally {
    clearTimeout(timer);
    if (onData) cli.child.stdout!.off('data', onData);
  }
}
