import type { ChildProcess } from 'node:child_process';
import { spawnCli } from '../helpers/cli.js';

export interface Tangent {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal) once its output has been read to the end. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code (or signal) once it has exited. Safe to call twice. */
  stop(): Promise<number | NodeJS.Signals | null>;
}

/**
 * `tangent <args>` as a child process, from the sources (never a stale dist/), through the suite's
 * one process helper (test/helpers/cli.ts: tracked, and killed when the test process ends however
 * it ends); DATABASE_URL is not inherited (a test gives its own database or none).
 */
export function tangent(args: string[], env: Record<string, string> = {}): Tangent {
  const cli = spawnCli(args, { env: { TANGENT_FROM_SOURCE: '1', ...env } });
  return {
    child: cli.child,
    stdout: () => cli.stdout,
    stderr: () => cli.stderr,
    exited: cli.exited.then(({ code, signal }) => code ?? signal),
    stop: () => cli.stop(10_000).then(({ code, signal }) => code ?? signal),
  };
}

/** Waits until `predicate` holds for what the child wrote, or fails with its output if it exits first. */
export async function waitFor(t: Tangent, predicate: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let done = false;
  void t.exited.then(() => (done = true));
  while (!predicate()) {
    if (done) throw new Error(`tangent exited before ${what}; stdout: ${t.stdout().slice(-2000)}; stderr: ${t.stderr().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs / 1000} s; stderr: ${t.stderr().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
