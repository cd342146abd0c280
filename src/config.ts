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
  TANGENT_INTROSPECTION: z.enum(['true', 'false']).optional(),
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
  shutdownGraceMs: number;
  statementTimeoutMs: number;
  introspection: boolean;
  env: z.infer<typeof EnvSchema>['NODE_ENV'];
};

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
    shutdownGraceMs: e.TANGENT_SHUTDOWN_GRACE_MS,
    statementTimeoutMs: e.TANGENT_STATEMENT_TIMEOUT_MS,
    introspection: e.TANGENT_INTROSPECTION ? e.TANGENT_INTROSPECTION === 'true' : e.NODE_ENV !== 'production',
    env: e.NODE_ENV,
  };
}
