import { z } from 'zod';

/**
 * The whole environment Tangent reads, parsed once at boot. Nothing else in the code base reads
 * `process.env`: everything takes a `Config`.
 */
const EnvSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  TANGENT_DATA_DIR: z.string().min(1).default('./.tangent'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TANGENT_BACKEND: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  /** Largest request body the HTTP endpoint accepts, in bytes. */
  TANGENT_MAX_BODY_BYTES: z.coerce.number().int().positive().default(64 * 1024 * 1024),
  /** Largest page a connection returns, whatever `first` asks for. */
  TANGENT_MAX_PAGE_SIZE: z.coerce.number().int().positive().default(1000),
  /** How long graceful shutdown waits for in-flight requests before closing connections. */
  TANGENT_SHUTDOWN_GRACE_MS: z.coerce.number().int().nonnegative().default(10_000),
  /** Per-statement timeout on the database, in milliseconds (0 disables). */
  TANGENT_STATEMENT_TIMEOUT_MS: z.coerce.number().int().nonnegative().default(60_000),
  TANGENT_DB_POOL_SIZE: z.coerce.number().int().positive().default(10),
  /** Most rows one bulk write (samples or per-sample metrics) may carry; larger sets go in several requests. */
  TANGENT_MAX_BULK_ROWS: z.coerce.number().int().positive().max(10_000_000).default(250_000),
  TANGENT_INTROSPECTION: z.enum(['true', 'false']).optional(),
  /** API keys: `auto` (on unless HOST is loopback), `on`, or `off` (refused unless HOST is loopback). */
  TANGENT_AUTH: z.enum(['auto', 'on', 'off']).default('auto'),
  /** Origins allowed to call the API from a browser, comma-separated (`*` for any); none by default. */
  TANGENT_CORS_ORIGINS: z.string().default(''),
  /** Requests per minute per API key (per client IP for callers without a key); 0 disables. */
  TANGENT_RATE_LIMIT_PER_MIN: z.coerce.number().int().nonnegative().default(6000),
  /** Failed authentications per minute per client IP before it is refused outright; 0 disables. */
  TANGENT_AUTH_FAILURES_PER_MIN: z.coerce.number().int().nonnegative().default(60),
  /** Query limits (graphql-armor), the same on HTTP and WebSocket. */
  TANGENT_MAX_DEPTH: z.coerce.number().int().positive().default(12),
  TANGENT_MAX_COST: z.coerce.number().int().positive().default(20_000),
  TANGENT_MAX_ALIASES: z.coerce.number().int().nonnegative().default(30),
  TANGENT_MAX_DIRECTIVES: z.coerce.number().int().nonnegative().default(50),
  TANGENT_MAX_TOKENS: z.coerce.number().int().positive().default(5_000),
  /** Time limit for one compute call (inline term computation), in milliseconds. */
  TANGENT_COMPUTE_TIMEOUT_MS: z.coerce.number().int().positive().default(300_000),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
});

export type Config = {
  /** Where the data lives: a real PostgreSQL, or PGlite in a folder. */
  database: { kind: 'postgres'; url: string; poolSize: number } | { kind: 'pglite'; dataDir: string };
  port: number;
  host: string;
  logLevel: z.infer<typeof EnvSchema>['LOG_LEVEL'];
  backend: z.infer<typeof EnvSchema>['TANGENT_BACKEND'];
  maxBodyBytes: number;
  maxPageSize: number;
  /** Most rows per bulk write request (TANGENT_MAX_BULK_ROWS); bytes are bounded by maxBodyBytes. */
  maxBulkRows: number;
  shutdownGraceMs: number;
  statementTimeoutMs: number;
  introspection: boolean;
  env: z.infer<typeof EnvSchema>['NODE_ENV'];
  /** Whether requests need an API key (TANGENT_AUTH resolved against HOST). */
  authRequired: boolean;
  /** Allowed CORS origins; empty: no cross-origin access. */
  corsOrigins: string[];
  rateLimitPerMin: number;
  authFailuresPerMin: number;
  limits: { maxDepth: number; maxCost: number; maxAliases: number; maxDirectives: number; maxTokens: number };
  computeTimeoutMs: number;
};

/** True for addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses an environment (default `process.env`) into a Config, reporting every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(env)'}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  const loopback = isLoopbackHost(e.HOST);
  if (e.TANGENT_AUTH === 'off' && !loopback) {
    throw new ConfigError([`TANGENT_AUTH: cannot be off while HOST (${e.HOST}) is reachable from other machines; use a loopback HOST or API keys`]);
  }
  return {
    database: e.DATABASE_URL
      ? { kind: 'postgres', url: e.DATABASE_URL, poolSize: e.TANGENT_DB_POOL_SIZE }
      : { kind: 'pglite', dataDir: e.TANGENT_DATA_DIR },
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    backend: e.TANGENT_BACKEND,
    maxBodyBytes: e.TANGENT_MAX_BODY_BYTES,
    maxPageSize: e.TANGENT_MAX_PAGE_SIZE,
    maxBulkRows: e.TANGENT_MAX_BULK_ROWS,
    shutdownGraceMs: e.TANGENT_SHUTDOWN_GRACE_MS,
    statementTimeoutMs: e.TANGENT_STATEMENT_TIMEOUT_MS,
    introspection: e.TANGENT_INTROSPECTION ? e.TANGENT_INTROSPECTION === 'true' : e.NODE_ENV !== 'production',
    env: e.NODE_ENV,
    authRequired: e.TANGENT_AUTH === 'on' || (e.TANGENT_AUTH === 'auto' && !loopback),
    corsOrigins: e.TANGENT_CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean),
    rateLimitPerMin: e.TANGENT_RATE_LIMIT_PER_MIN,
    authFailuresPerMin: e.TANGENT_AUTH_FAILURES_PER_MIN,
    limits: {
      maxDepth: e.TANGENT_MAX_DEPTH,
      maxCost: e.TANGENT_MAX_COST,
      maxAliases: e.TANGENT_MAX_ALIASES,
      maxDirectives: e.TANGENT_MAX_DIRECTIVES,
      maxTokens: e.TANGENT_MAX_TOKENS,
    },
    computeTimeoutMs: e.TANGENT_COMPUTE_TIMEOUT_MS,
  };
}
