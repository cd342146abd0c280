import { isIP } from 'node:net';
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
  TANGENT_BACKEND: z.enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']).default('auto'),
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
  /**
   * Whether X-Forwarded-For names the client (express's `trust proxy`): `off` (the socket's peer is the
   * client), `on` (every hop is trusted: the leftmost address), a hop count, or a comma-separated list of
   * proxy addresses, CIDR ranges and the presets loopback, linklocal, uniquelocal.
   */
  TANGENT_TRUST_PROXY: z.string().trim().default('off'),
  /** Query limits (graphql-armor), the same on HTTP and WebSocket. */
  TANGENT_MAX_DEPTH: z.coerce.number().int().positive().default(12),
  // armor multiplies a list's cost by a literal `first`: one full page (1000) of a wide type costs ~80k,
  // a page of pages (1000 × 100) millions.
  TANGENT_MAX_COST: z.coerce.number().int().positive().default(200_000),
  TANGENT_MAX_ALIASES: z.coerce.number().int().nonnegative().default(30),
  TANGENT_MAX_DIRECTIVES: z.coerce.number().int().nonnegative().default(50),
  TANGENT_MAX_TOKENS: z.coerce.number().int().positive().default(5_000),
  /** Time limit for one compute call (inline term computation), in milliseconds. */
  TANGENT_COMPUTE_TIMEOUT_MS: z.coerce.number().int().positive().default(300_000),
  /** On-demand terms (src/modules/terms/compute-service*.ts, src/jobs). `on`: the server also works compute jobs (in its compute threads). */
  TANGENT_WORKER: z.enum(['on', 'off']).default('on'),
  /** Compute threads (worker_threads, each with its own tfjs); 0: one per core (one for the tensorflow backend). */
  TANGENT_COMPUTE_THREADS: z.coerce.number().int().nonnegative().max(256).default(0),
  /** Bound on the checkpoint models kept loaded in the compute threads, in bytes of weights (all threads' copies). */
  TANGENT_MODEL_CACHE_BYTES: z.coerce.number().int().positive().default(512 * 1024 * 1024),
  /** Bound on the frozen-trunk cache (table trunk_feature, every process's rows together), in MiB; 0 turns it off. */
  TANGENT_TRUNK_CACHE_MB: z.coerce.number().nonnegative().max(1024 * 1024).default(256),
  /** Most missing samples a query computes inline; above that it starts a job and answers TERMS_PENDING. */
  TANGENT_INLINE_MAX_SAMPLES: z.coerce.number().int().nonnegative().default(512),
  /** `on`: READER keys may start computation too (inline or jobs); by default only WRITER and ADMIN may. */
  TANGENT_READER_COMPUTE: z.enum(['on', 'off']).default('off'),
  /** Samples one API key may have computed per hour (inline, and the samples of the jobs it starts); 0: no limit. */
  TANGENT_COMPUTE_SAMPLES_PER_HOUR: z.coerce.number().int().nonnegative().default(100_000),
  /** Compute jobs one API key may have QUEUED or RUNNING at once; 0: no limit. */
  TANGENT_COMPUTE_JOBS_PER_KEY: z.coerce.number().int().nonnegative().default(4),
  /** Samples per chunk of a compute job (one queue job, one transaction). */
  TANGENT_CHUNK_SIZE: z.coerce.number().int().positive().max(100_000).default(256),
  /** A chunk not finished this long after a worker took it is given to another worker (its worker is taken as dead). */
  TANGENT_CHUNK_EXPIRE_SECONDS: z.coerce.number().int().positive().max(86_400).default(600),
  /** Retries of a failing chunk before its job fails. */
  TANGENT_CHUNK_RETRY_LIMIT: z.coerce.number().int().nonnegative().max(100).default(5),
  TANGENT_CHUNK_RETRY_DELAY_SECONDS: z.coerce.number().int().nonnegative().max(3600).default(5),
  /** How often an idle worker looks for chunks (pg-boss polling; at least 0.5). */
  TANGENT_QUEUE_POLL_SECONDS: z.coerce.number().min(0.5).max(60).default(1),
  /** How often expired chunks are looked for (pg-boss maintenance). */
  TANGENT_QUEUE_MAINTENANCE_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** Chunks one worker process works on at once (each uses every compute thread). */
  TANGENT_WORKER_CONCURRENCY: z.coerce.number().int().positive().max(64).default(1),
  /** Trainings (`trainRun`) started again after their worker failed or died, before the run is FAILED. */
  TANGENT_TRAIN_RETRY_LIMIT: z.coerce.number().int().nonnegative().max(100).default(3),
  TANGENT_TRAIN_RETRY_DELAY_SECONDS: z.coerce.number().int().nonnegative().max(3600).default(10),
  /** A training not finished this long after a worker took it is taken as dead and retried elsewhere (pg-boss allows < 24 h). */
  TANGENT_TRAIN_EXPIRE_SECONDS: z.coerce.number().int().positive().max(86_399).default(6 * 3600),
  /** Finished compute jobs (and the queue's own records of finished jobs) are deleted this many days after they finished; 0 keeps them. */
  TANGENT_JOB_RETENTION_DAYS: z.coerce.number().int().nonnegative().max(36_500).default(7),
  /** How often a worker process deletes finished compute jobs older than the retention. */
  TANGENT_JOB_SWEEP_SECONDS: z.coerce.number().min(0.5).max(86_400).default(3600),
  /** The server's address as clients reach it (e.g. behind a proxy), for absolute export URLs; default: paths. */
  TANGENT_PUBLIC_URL: z.string().url().regex(/^https?:\/\//, 'must be an http:// or https:// URL').optional(),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
});

/** The name of an environment setting (src/platform/environment.ts describes each for --help). */
export type EnvName = keyof z.input<typeof EnvSchema>;

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
  /** TANGENT_PUBLIC_URL without a trailing slash; null: export URLs are paths on this server. */
  publicUrl: string | null;
  /** Whether requests need an API key (TANGENT_AUTH resolved against HOST). */
  authRequired: boolean;
  /** Allowed CORS origins; empty: no cross-origin access. */
  corsOrigins: string[];
  rateLimitPerMin: number;
  authFailuresPerMin: number;
  /** TANGENT_TRUST_PROXY: which peers' X-Forwarded-For is believed when finding a client's address. */
  trustProxy: TrustProxy;
  limits: { maxDepth: number; maxCost: number; maxAliases: number; maxDirectives: number; maxTokens: number };
  computeTimeoutMs: number;
  /** On-demand terms: compute threads, model cache, inline limit, and the job queue (src/jobs). */
  compute: {
    /** Whether this process works compute jobs (TANGENT_WORKER; `tangent worker` always does). */
    worker: boolean;
    /** 0: one per core (one for the tensorflow backend). */
    threads: number;
    modelCacheBytes: number;
    /** TANGENT_TRUNK_CACHE_MB in bytes (0: off). */
    trunkCacheBytes: number;
    /** Most missing samples one request computes inline (all of its fields together). */
    inlineMaxSamples: number;
    /** Who may start computation, and how much per key (src/modules/terms/compute-policy.ts); 0: no limit. */
    readerCompute: boolean;
    samplesPerHourPerKey: number;
    jobsPerKey: number;
    chunkSize: number;
    chunkExpireSeconds: number;
    chunkRetryLimit: number;
    chunkRetryDelaySeconds: number;
    pollSeconds: number;
    maintenanceSeconds: number;
    concurrency: number;
    /** Trainings of runs Tangent trains itself (src/modules/training/train-worker.ts): retries, and when a worker is taken as dead. */
    trainRetryLimit: number;
    trainRetryDelaySeconds: number;
    trainExpireSeconds: number;
    /** Days a finished compute job is kept (src/modules/jobs/retention.ts); 0: forever. */
    jobRetentionDays: number;
    jobSweepSeconds: number;
  };
};

/**
 * TANGENT_TRUST_PROXY parsed: express's `trust proxy` semantics. `none`: the socket's peer is the
 * client; `all`: the leftmost X-Forwarded-For address; `hops`: that many proxies in front are trusted;
 * `list`: peers whose address is in these ranges are proxies.
 */
export type TrustProxy =
  | { kind: 'none' }
  | { kind: 'all' }
  | { kind: 'hops'; hops: number }
  | { kind: 'list'; ranges: { address: string; prefix: number; family: 'ipv4' | 'ipv6' }[] };

/** The presets express's `trust proxy` knows, as CIDR ranges. */
const TRUST_PRESETS: Record<string, string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** Parses TANGENT_TRUST_PROXY; throws a message naming the entry it cannot read. */
export function parseTrustProxy(value: string): TrustProxy {
  const v = value.trim().toLowerCase();
  if (v === '' || v === 'off' || v === 'false' || v === '0') return { kind: 'none' };
  if (v === 'on' || v === 'true') return { kind: 'all' };
  if (/^\d+$/.test(v)) return { kind: 'hops', hops: Number(v) };
  const ranges: { address: string; prefix: number; family: 'ipv4' | 'ipv6' }[] = [];
  for (const entry of v.split(',').map((e) => e.trim()).filter(Boolean)) {
    for (const cidr of TRUST_PRESETS[entry] ?? [entry]) {
      const [address = '', bits] = cidr.split('/');
      const family = isIP(address);
      if (family === 0) throw new Error(`\`${entry}\` is not an address, a CIDR range, loopback, linklocal or uniquelocal`);
      const max = family === 4 ? 32 : 128;
      const prefix = bits === undefined ? max : Number(bits);
      if (!/^\d+$/.test(bits ?? String(max)) || prefix > max) throw new Error(`\`${entry}\` has a prefix length outside 0-${max}`);
      ranges.push({ address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' });
    }
  }
  return ranges.length ? { kind: 'list', ranges } : { kind: 'none' };
}

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

/**
 * Parses an environment (default `process.env`) into a Config, reporting every problem at once.
 * `overrides` (a command's flags, e.g. `tangent serve --port 8080`) win over the environment and
 * are checked the same way; an undefined override leaves the environment's value.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<EnvName, string>> = {}): Config {
  const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const parsed = EnvSchema.safeParse({ ...env, ...given });
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(env)'}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  const loopback = isLoopbackHost(e.HOST);
  let trustProxy: TrustProxy;
  try {
    trustProxy = parseTrustProxy(e.TANGENT_TRUST_PROXY);
  } catch (error) {
    throw new ConfigError([`TANGENT_TRUST_PROXY: ${(error as Error).message}`]);
  }
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
    publicUrl: e.TANGENT_PUBLIC_URL ? e.TANGENT_PUBLIC_URL.replace(/\/+$/, '') : null,
    authRequired: e.TANGENT_AUTH === 'on' || (e.TANGENT_AUTH === 'auto' && !loopback),
    corsOrigins: e.TANGENT_CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean),
    rateLimitPerMin: e.TANGENT_RATE_LIMIT_PER_MIN,
    authFailuresPerMin: e.TANGENT_AUTH_FAILURES_PER_MIN,
    trustProxy,
    limits: {
      maxDepth: e.TANGENT_MAX_DEPTH,
      maxCost: e.TANGENT_MAX_COST,
      maxAliases: e.TANGENT_MAX_ALIASES,
      maxDirectives: e.TANGENT_MAX_DIRECTIVES,
      maxTokens: e.TANGENT_MAX_TOKENS,
    },
    computeTimeoutMs: e.TANGENT_COMPUTE_TIMEOUT_MS,
    compute: {
      worker: e.TANGENT_WORKER === 'on',
      threads: e.TANGENT_COMPUTE_THREADS,
      modelCacheBytes: e.TANGENT_MODEL_CACHE_BYTES,
      trunkCacheBytes: Math.floor(e.TANGENT_TRUNK_CACHE_MB * 1024 * 1024),
      inlineMaxSamples: e.TANGENT_INLINE_MAX_SAMPLES,
      readerCompute: e.TANGENT_READER_COMPUTE === 'on',
      samplesPerHourPerKey: e.TANGENT_COMPUTE_SAMPLES_PER_HOUR,
      jobsPerKey: e.TANGENT_COMPUTE_JOBS_PER_KEY,
      chunkSize: e.TANGENT_CHUNK_SIZE,
      chunkExpireSeconds: e.TANGENT_CHUNK_EXPIRE_SECONDS,
      chunkRetryLimit: e.TANGENT_CHUNK_RETRY_LIMIT,
      chunkRetryDelaySeconds: e.TANGENT_CHUNK_RETRY_DELAY_SECONDS,
      pollSeconds: e.TANGENT_QUEUE_POLL_SECONDS,
      maintenanceSeconds: e.TANGENT_QUEUE_MAINTENANCE_SECONDS,
      concurrency: e.TANGENT_WORKER_CONCURRENCY,
      trainRetryLimit: e.TANGENT_TRAIN_RETRY_LIMIT,
      trainRetryDelaySeconds: e.TANGENT_TRAIN_RETRY_DELAY_SECONDS,
      trainExpireSeconds: e.TANGENT_TRAIN_EXPIRE_SECONDS,
      jobRetentionDays: e.TANGENT_JOB_RETENTION_DAYS,
      jobSweepSeconds: e.TANGENT_JOB_SWEEP_SECONDS,
    },
  };
}
