import type { EnvName } from './config.js';

/**
 * What each environment setting means, for people: the `Environment:` section of `tangent serve
 * --help` (and of `worker` and `migrate`) is generated from this table. It is keyed by the names
 * src/platform/config.ts parses, so the type checker refuses a setting that is parsed but not described, or
 * described but no longer parsed; test/cli checks that the defaults shown are the ones applied.
 *
 * This module imports nothing at run time: `--help` must not load zod, Prisma or tfjs.
 */
export type EnvGroup = 'general' | 'database' | 'http' | 'limits' | 'compute' | 'jobs';

export interface EnvSetting {
  group: EnvGroup;
  /** The default as a value of the variable; absent when the default is not one (e.g. "one per core"). */
  default?: string;
  /** The default in words, where `default` cannot say it. */
  defaultText?: string;
  help: string;
  /** A command-line flag that sets it for one command (`--port <n>`), where that is natural. */
  flag?: string;
}

export const ENVIRONMENT: { readonly [K in EnvName]: EnvSetting } = {
  DATABASE_URL: { group: 'database', defaultText: 'none: the embedded database', help: 'postgresql://… of a PostgreSQL server', flag: '--database-url <url>' },
  TANGENT_DATA_DIR: { group: 'database', default: './.tangent', help: 'folder of the embedded database (memory:// for a throwaway one); unused with DATABASE_URL', flag: '--data-dir <dir>' },
  TANGENT_DB_POOL_SIZE: { group: 'database', default: '10', help: 'connections to PostgreSQL per process' },
  TANGENT_STATEMENT_TIMEOUT_MS: { group: 'database', default: '60000', help: 'time limit of one database statement, in ms (0: none)' },
  LOG_LEVEL: { group: 'general', default: 'info', help: 'fatal, error, warn, info, debug, trace or silent (logs are JSON lines)', flag: '--log-level <level>' },
  NODE_ENV: { group: 'general', default: 'development', help: 'development, production or test (production turns introspection off)' },
  TANGENT_SHUTDOWN_GRACE_MS: { group: 'general', default: '10000', help: 'how long a shutdown waits for requests and chunks under way, in ms' },
  PORT: { group: 'http', default: '4000', help: 'TCP port to listen on (0: any free port)', flag: '--port <port>' },
  HOST: { group: 'http', default: '127.0.0.1', help: 'address to listen on; anything but loopback requires API keys', flag: '--host <host>' },
  TANGENT_AUTH: { group: 'http', default: 'auto', help: 'API keys: auto (required unless HOST is loopback), on, or off (loopback only)' },
  TANGENT_CORS_ORIGINS: { group: 'http', default: '', defaultText: 'none', help: 'origins allowed to call from a browser, comma-separated (* for any)' },
  TANGENT_PUBLIC_URL: { group: 'http', defaultText: 'paths on this server', help: 'the address clients reach the server at (behind a proxy), for absolute export URLs' },
  TANGENT_TRUST_PROXY: { group: 'http', default: 'off', help: 'whose X-Forwarded-For names the client (for per-address limits): off, on (all), a hop count, or proxies\' addresses/CIDRs and loopback, linklocal, uniquelocal, comma-separated' },
  TANGENT_INTROSPECTION: { group: 'http', defaultText: 'on unless NODE_ENV=production', help: 'true or false: schema introspection' },
  TANGENT_MAX_BODY_BYTES: { group: 'limits', default: String(64 * 1024 * 1024), help: 'largest request body, in bytes' },
  TANGENT_MAX_PAGE_SIZE: { group: 'limits', default: '1000', help: 'largest page a connection returns, whatever `first` asks' },
  TANGENT_MAX_BULK_ROWS: { group: 'limits', default: '250000', help: 'rows one bulk write may carry' },
  TANGENT_RATE_LIMIT_PER_MIN: { group: 'limits', default: '6000', help: 'requests per minute per API key (per IP without one), counted in PostgreSQL across replicas; 0: no limit' },
  TANGENT_AUTH_FAILURES_PER_MIN: { group: 'limits', default: '60', help: 'failed authentications per minute per IP before its failures answer 429 (valid keys from it still pass); 0: no limit' },
  TANGENT_MAX_DEPTH: { group: 'limits', default: '12', help: 'deepest query' },
  TANGENT_MAX_COST: { group: 'limits', default: '200000', help: 'costliest query (a list costs its `first` times its fields)' },
  TANGENT_MAX_ALIASES: { group: 'limits', default: '30', help: 'aliases per query' },
  TANGENT_MAX_DIRECTIVES: { group: 'limits', default: '50', help: 'directives per query' },
  TANGENT_MAX_TOKENS: { group: 'limits', default: '5000', help: 'tokens per query' },
  TANGENT_BACKEND: { group: 'compute', default: 'auto', help: 'auto (tensorflow on a CUDA device, then webgpu on a GPU adapter, then tensorflow on the CPU, wasm, cpu), tensorflow, webgpu, wasm or cpu', flag: '--backend <name>' },
  TANGENT_COMPUTE_THREADS: { group: 'compute', default: '0', defaultText: 'one per core (one for tensorflow)', help: 'compute threads, each with its own tfjs' },
  TANGENT_MODEL_CACHE_BYTES: { group: 'compute', default: String(512 * 1024 * 1024), help: 'weights of loaded checkpoint models kept in the compute threads (all copies), in bytes' },
  TANGENT_TRUNK_CACHE_MB: {
    group: 'compute',
    default: '256',
    help: 'frozen-trunk cache in the database: activations entering a parameter subset, kept per sample and trunk weights (least recently used go first); 0: off; purgeTrunkCache empties it',
  },
  TANGENT_COMPUTE_TIMEOUT_MS: { group: 'compute', default: '300000', help: 'time limit of one inline computation, in ms' },
  TANGENT_INLINE_MAX_SAMPLES: { group: 'compute', default: '512', help: 'missing samples one request computes inline (all its fields together) before it starts a job' },
  TANGENT_READER_COMPUTE: { group: 'compute', default: 'off', help: 'on: READER keys may start computation too (default: WRITER and ADMIN only)' },
  TANGENT_COMPUTE_SAMPLES_PER_HOUR: { group: 'compute', default: '100000', help: 'samples one API key may have computed per hour (inline and in the jobs it starts); 0: no limit' },
  TANGENT_COMPUTE_JOBS_PER_KEY: { group: 'compute', default: '4', help: 'compute jobs one API key may have queued or running at once; 0: no limit' },
  TANGENT_WORKER: { group: 'jobs', default: 'on', help: 'on or off: whether the server also works compute and training jobs' },
  TANGENT_WORKER_CONCURRENCY: { group: 'jobs', default: '1', help: 'chunks one worker process works at once' },
  TANGENT_CHUNK_SIZE: { group: 'jobs', default: '256', help: 'samples per chunk of a compute job' },
  TANGENT_CHUNK_EXPIRE_SECONDS: { group: 'jobs', default: '600', help: 'a chunk not finished this long after it was taken goes to another worker' },
  TANGENT_CHUNK_RETRY_LIMIT: { group: 'jobs', default: '5', help: 'retries of a failing chunk before its job fails' },
  TANGENT_CHUNK_RETRY_DELAY_SECONDS: { group: 'jobs', default: '5', help: 'wait before a failed chunk is retried' },
  TANGENT_QUEUE_POLL_SECONDS: { group: 'jobs', default: '1', help: 'how often an idle worker looks for chunks (at least 0.5)' },
  TANGENT_QUEUE_MAINTENANCE_SECONDS: { group: 'jobs', default: '30', help: 'how often expired chunks are looked for' },
  TANGENT_TRAIN_RETRY_LIMIT: { group: 'jobs', default: '3', help: 'restarts of a training whose worker failed or died' },
  TANGENT_TRAIN_RETRY_DELAY_SECONDS: { group: 'jobs', default: '10', help: 'wait before a training is restarted' },
  TANGENT_TRAIN_EXPIRE_SECONDS: { group: 'jobs', default: String(6 * 3600), help: 'a training not finished this long after it was taken is retried elsewhere' },
  TANGENT_JOB_RETENTION_DAYS: { group: 'jobs', default: '7', help: 'days a finished compute job is kept before it is deleted; 0 keeps them' },
  TANGENT_JOB_SWEEP_SECONDS: { group: 'jobs', default: '3600', help: 'how often a worker deletes finished compute jobs older than the retention' },
};

/** The settings of these groups, in table order. */
export function settingsOf(groups: readonly EnvGroup[]): [EnvName, EnvSetting][] {
  return (Object.entries(ENVIRONMENT) as [EnvName, EnvSetting][]).filter(([, s]) => groups.includes(s.group));
}

/** The `Environment:` section of a command's help: each setting, its default, what it does. */
export function environmentHelp(groups: readonly EnvGroup[]): string {
  const rows = settingsOf(groups);
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, s]) => {
    const fallback = s.defaultText ?? (s.default === undefined ? '' : s.default);
    return `  ${name.padEnd(width)}  ${s.help}${fallback ? ` [default: ${fallback}]` : ''}`;
  });
  return `\nEnvironment (read once at start; a flag above that sets one wins over it):\n${lines.join('\n')}\n`;
}
