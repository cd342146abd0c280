import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * Structured JSON logs, one entry a line; one logger per process, children carry request ids.
 * Servers and workers log on stdout. CLI commands whose stdout is their result (an export, a job's
 * outcome, a key) log on stderr (`toStderr`), beside their progress, at warn and above.
 */
export function createLogger(config: Pick<Config, 'logLevel'>, options: { toStderr?: boolean } = {}): Logger {
  const base = { level: config.logLevel, base: { service: 'tangent' } };
  return options.toStderr ? pino(base, pino.destination({ fd: 2, sync: true })) : pino(base);
}
