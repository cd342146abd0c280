import type { Command } from 'commander';
import type { Config, EnvName } from '../platform/config.js';
import { ENVIRONMENT, environmentHelp, settingsOf, type EnvGroup } from '../platform/environment.js';

/*
 * What every command shares. This module is loaded for `tangent --help`, so it imports only types
 * and the settings table at load time; config (zod) is imported when a command runs.
 */

/** Settings a command's flags give, over the environment's (see `withEnvironment`). */
export type EnvOverrides = Partial<Record<EnvName, string>>;

/** Parses the environment (with the command's flags over it) or exits 1 listing every problem. */
export async function configOrExit(overrides: EnvOverrides = {}): Promise<Config> {
  const { ConfigError, loadConfig } = await import('../platform/config.js');
  try {
    return loadConfig(undefined, overrides);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

/** Commander's attribute for a flag: `--database-url <url>` → `databaseUrl`. */
function attributeOf(flag: string): string {
  return flag.split(' ')[0]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Lists the environment settings of these groups in the command's --help (from the one table in
 * src/platform/environment.ts), and adds the flags of those that have one (`--port`, `--database-url`, …).
 */
export function withEnvironment(command: Command, groups: readonly EnvGroup[]): Command {
  for (const [name, setting] of settingsOf(groups)) {
    if (setting.flag) command.option(setting.flag, `sets ${name} for this command`);
  }
  return command.addHelpText('after', environmentHelp(groups));
}

/** The settings the flags of `withEnvironment` gave, to pass to `configOrExit`. */
export function envOverrides(opts: Record<string, unknown>): EnvOverrides {
  const overrides: EnvOverrides = {};
  for (const [name, setting] of Object.entries(ENVIRONMENT) as [EnvName, (typeof ENVIRONMENT)[EnvName]][]) {
    if (!setting.flag) continue;
    const value = opts[attributeOf(setting.flag)];
    if (value !== undefined) overrides[name] = String(value);
  }
  return overrides;
}

/** Writes `tangent <command>: message [CODE] (field)` for an error from the API, the database or the command line. */
export function reportError(command: string, error: unknown): void {
  const e = error as Error & { code?: unknown; extensions?: Record<string, unknown>; field?: unknown };
  const code = typeof e?.code === 'string' && /^[A-Z_]+$/.test(e.code) ? ` [${e.code}]` : '';
  const field = e?.field ?? e?.extensions?.field;
  process.stderr.write(`tangent ${command}: ${e instanceof Error ? e.message : String(error)}${code}${typeof field === 'string' ? ` (${field})` : ''}\n`);
}

/**
 * Runs `stop` once on SIGINT/SIGTERM; a second signal exits at once. A failed stop is logged on
 * `log` (the server's or worker's JSON logger), so their output stays JSON lines.
 */
export function onShutdownSignal(stop: () => Promise<void>, log: { error(obj: object, msg: string): void }): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    stop().then(
      () => process.exit(0),
      (error) => {
        log.error({ err: error, signal }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
