import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { from as copyFromStream } from 'pg-copy-streams';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { DatabaseUnavailableError, OutcomeUnknownError } from '../errors.js';
import { DataDirLock } from './data-dir-lock.js';
import { PrismaClient } from './generated/client.js';
import { readInitdbDump } from './pglite-initdb.js';
import { isConnectionError } from './prisma-errors.js';
import type { Session, Sql, Tx } from './sql.js';

export type { PrismaClient };

/**
 * One handle on the database, whichever it is. Prisma serves the ordinary reads and writes; `sql`
 * and `transaction` serve named queries and the bulk paths (COPY), which Prisma does not do fast.
 */
export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly prisma: PrismaClient;
  readonly sql: Sql;
  /** The embedded instance, when this is PGlite (for dumps and for serving it on a socket). */
  readonly pglite?: PGlite;
  /** Runs `fn` in one transaction: all of its writes or none. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Runs `fn` on one dedicated connection (for advisory locks and scripts). */
  session<T>(fn: (session: Session) => Promise<T>): Promise<T>;
  /**
   * LISTEN on a channel: `onMessage` receives each NOTIFY payload, from this process or any other
   * process sharing the database. Resolves to an unlisten function.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  /** Cheap liveness probe for /healthz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Per-statement timeout on a PostgreSQL server, in ms (0: none). */
  statementTimeoutMs?: number;
  /** PGlite only: start a new data folder from this dump (`dumpDataDir`) instead of running initdb. */
  pgliteTemplate?: Blob;
}

/** `memory://` as TANGENT_DATA_DIR keeps the embedded database in memory (gone at exit). */
export const IN_MEMORY = 'memory://';

export async function openDatabase(database: Config['database'], log: Logger, options: OpenOptions = {}): Promise<Database> {
  return database.kind === 'postgres'
    ? openPostgres(database.url, database.poolSize, log, options.statementTimeoutMs ?? 0)
    : openPglite(database.dataDir, log, options.pgliteTemplate);
}

function openPostgres(url: string, poolSize: number, log: Logger, statementTimeoutMs: number): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: 5_000,
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
    // Prepared statements (see `prepared`) are planned for each execution, as unnamed ones are:
    // never PostgreSQL's generic plan, which it may switch to after five runs of a statement. A
    // startup option of every connection, after PGOPTIONS; `options` in DATABASE_URL replaces both.
    options: [process.env.PGOPTIONS, '-c plan_cache_mode=force_custom_plan'].filter(Boolean).join(' '),
  });
  // An idle client losing its connection (the server restarted) must not crash the process.
  pool.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: false }) });
  const listener = new PgListener(url, log);

  const clientSql = (client: pg.PoolClient | pg.Pool): Sql => ({
    async query<Row>(text: string, params: readonly unknown[] = []) {
      const result = await client.query(prepared(text, params));
      return result.rows as Row[];
    },
    async queryArrays(text, params = [], options = {}) {
      const result = await client.query({ ...prepared(text, params), rowMode: 'array', ...(options.text ? { types: TEXT_TYPES } : {}) });
      return { columns: result.fields.map((f) => f.name), rows: result.rows as unknown[][] };
    },
  });

  /**
   * A checked-out client has no pool listener: if the server drops the connection between two of
   * its queries (a restart, a failover), pg emits 'error' on it and, unheard, that kills the
   * process. Listen while it is out, and destroy it on release instead of pooling a dead one.
   */
  const checkOut = async () => {
    const client = await pool.connect();
    let lost: Error | undefined;
    const onError = (error: Error) => {
      lost = error;
      log.warn({ err: error }, 'database connection lost while in use');
    };
    client.on('error', onError);
    return {
      client,
      /** True once the connection has died: nothing sent after that reached the server. */
      isLost: () => lost !== undefined,
      release() {
        client.removeListener('error', onError);
        client.release(lost);
      },
    };
  };

  return {
    kind: 'postgres',
    prisma,
    sql: clientSql(pool),
    async transaction(fn) {
      const { client, isLost, release } = await checkOut();
      try {
        await client.query('BEGIN');
        const tx: Tx = {
          ...clientSql(client),
          async copyFrom(table, columns, lines) {
            const stream = client.query(
              copyFromStream(`COPY ${table} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`),
            );
            await pipeline(Readable.from(lines), stream);
            return Number(stream.rowCount ?? 0);
          },
        };
        const result = await fn(tx);
        await commit(client, isLost);
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        release();
      }
    },
    async session(fn) {
      const { client, release } = await checkOut();
      try {
        return await fn({
          ...clientSql(client),
          async exec(script) {
            await client.query(script);
          },
        });
      } finally {
        release();
      }
    },
    listen: (channel, onMessage) => listener.listen(channel, onMessage),
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await listener.close();
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPglite(dataDir: string, log: Logger, template?: Blob): Promise<Database> {
  const inMemory = dataDir === IN_MEMORY;
  const lock = inMemory ? null : DataDirLock.acquire(dataDir);
  let db: PGlite;
  try {
    const fresh = inMemory || !existsSync(join(dataDir, 'PG_VERSION'));
    // A new cluster starts from a dump rather than initdb: the caller's, else the build's (if any).
    const dump = fresh ? (template ?? readInitdbDump()) : undefined;
    db = await PGlite.create({ ...(inMemory ? {} : { dataDir }), ...(dump ? { loadDataDir: dump } : {}), ...PGLITE_BYTEA });
  } catch (error) {
    lock?.release();
    throw error;
  }
  log.info({ dataDir }, 'embedded PostgreSQL (PGlite) opened');
  // pglite-prisma-adapter is typed against an older @prisma/driver-adapter-utils whose types differ
  // only nominally; at run time it implements the same interface (the test suite runs on it).
  const adapter = new PrismaPGlite(db) as unknown as PrismaPg;
  const prisma = new PrismaClient({ adapter });

  type Queryable = Pick<PGlite, 'query' | 'exec'>;
  const sqlOf = (q: Queryable): Sql => ({
    async query<Row>(text: string, params: readonly unknown[] = []) {
      const result = await q.query<Row>(text, params as unknown[]);
      return result.rows;
    },
    async queryArrays(text, params = [], options = {}) {
      const result = await q.query<unknown[]>(text, params as unknown[], { rowMode: 'array', ...(options.text ? { parsers: PGLITE_TEXT_PARSERS } : {}) });
      return { columns: result.fields.map((f) => f.name), rows: result.rows };
    },
  });

  return {
    kind: 'pglite',
    pglite: db,
    prisma,
    sql: sqlOf(db),
    async transaction(fn) {
      return db.transaction(async (t) =>
        fn({
          ...sqlOf(t),
          async copyFrom(table, columns, lines) {
            // PGlite reads COPY input from a Blob rather than a stream; collect the text first.
            const parts: string[] = [];
            for await (const line of lines) parts.push(line);
            const result = await t.query(
              `COPY ${table} (${columns.map(quoteIdent).join(', ')}) FROM '/dev/blob'`,
              [],
              { blob: new Blob(parts) },
            );
            return result.affectedRows ?? 0;
          },
        }),
      );
    },
    async session(fn) {
      // PGlite is a single connection already; the data-folder lock makes it this process's own.
      return fn({ ...sqlOf(db), exec: async (script) => void (await db.exec(script)) });
    },
    async listen(channel, onMessage) {
      return db.listen(channel, onMessage);
    },
    async ping() {
      await db.query('SELECT 1');
    },
    async close() {
      await prisma.$disconnect();
      await db.close();
      lock?.release();
    },
  };
}

/**
 * Sends COMMIT and tells apart the two ways a lost connection can end a transaction. Lost before
 * COMMIT left: PostgreSQL rolls the transaction back, nothing was written (the caller's
 * DATABASE_UNAVAILABLE). Lost once COMMIT was sent: it may have committed before the reply was
 * lost, and no one can say which (OUTCOME_UNKNOWN).
 */
async function commit(client: pg.PoolClient, isLost: () => boolean): Promise<void> {
  if (isLost()) throw new DatabaseUnavailableError();
  try {
    await client.query('COMMIT');
  } catch (error) {
    // Any other failure of COMMIT (a deferred constraint, a serialization failure) is a rollback.
    if (isConnectionError(error)) throw new OutcomeUnknownError();
    throw error;
  }
}

/** node-postgres: every value as the server's text for it (`queryArrays` with `text`). */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

/**
 * PGlite: the same for the types it parses (others, like text, come as text already): booleans,
 * integers, oids, floats and numerics. Arrays, json and dates keep their parsers (no export reads them as text).
 */
const PGLITE_TEXT_PARSERS: Record<number, (value: string) => string> = Object.fromEntries([16, 20, 21, 23, 26, 700, 701, 1700].map((oid) => [oid, (value: string) => value]));

/**
 * bytea through PGlite by Node's native hex codec. PGlite's own converts each byte in JavaScript: on
 * this 2-core machine 8 MB took 10.5 s to send and 1.9 s to read (a checkpoint of Mantis-8M is 32 MB,
 * and series and trunk features are bytea too), against 0.76 s and 0.21 s this way.
 */
const PGLITE_BYTEA = {
  parsers: { [pgliteTypes.BYTEA]: (text: string) => Buffer.from(text.slice(2), 'hex') },
  serializers: {
    [pgliteTypes.BYTEA]: (value: unknown) => {
      if (typeof value === 'string') return value; // a bytea literal ('\\x…') as given
      const bytes = ArrayBuffer.isView(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : Buffer.from(value as ArrayBuffer);
      return `\\x${bytes.toString('hex')}`;
    },
  },
};

/** Distinct statement texts prepared, at most; past it, statements go unnamed (as before). */
const MAX_PREPARED = 500;
const preparedNames = new Map<string, string>();

/**
 * A statement of `sql.query` or `sql.queryArrays` as a named (prepared) one, named by a hash of its text: node-postgres
 * parses a named statement once per connection, and PostgreSQL then skips parsing and analysing it
 * on every later run. On the run-with-checkpoints read that halved PostgreSQL's CPU time (about
 * 0.4 ms to 0.2 ms per request), which on a small machine is shared with the server. Texts are
 * composed from fixed fragments with every value bound, so they are few; MAX_PREPARED bounds them anyway.
 */
function prepared(text: string, values: readonly unknown[]): pg.QueryConfig {
  let name = preparedNames.get(text);
  if (name === undefined && preparedNames.size < MAX_PREPARED) {
    name = `t${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`;
    preparedNames.set(text, name);
  }
  return name === undefined ? { text, values: values as unknown[] } : { name, text, values: values as unknown[] };
}

/** Quotes an identifier for the few places (COPY column lists) where SQL text is assembled. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * One dedicated connection that holds every LISTEN of this process (a pooled connection would drop
 * them when returned). If the database goes away it reconnects with backoff and listens again;
 * notifications sent meanwhile are lost, which subscribers treat as "refetch on next event".
 */
class PgListener {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  async listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      const client = await this.connect();
      await client.query(`LISTEN ${quoteIdent(channel)}`);
    }
    set.add(onMessage);
    return async () => {
      set.delete(onMessage);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.url });
      client.on('notification', (msg) => {
        for (const handler of this.handlers.get(msg.channel) ?? []) handler(msg.payload ?? '');
      });
      client.on('error', (error) => {
        this.log.warn({ err: error }, 'database listener lost its connection; reconnecting');
        this.client = null;
        void client.end().catch(() => undefined);
        this.reconnectSoon(500);
      });
      await client.connect();
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private reconnectSoon(delayMs: number): void {
    if (this.closed || this.handlers.size === 0) return;
    setTimeout(() => {
      if (this.closed) return;
      this.connect()
        .then(async (client) => {
          for (const channel of this.handlers.keys()) await client.query(`LISTEN ${quoteIdent(channel)}`);
        })
        .catch(() => this.reconnectSoon(Math.min(delayMs * 2, 10_000)));
    }, delayMs).unref();
  }
}
