import { loadConfig, type Config } from '../../src/platform/config.js';
import type { Database } from '../../src/platform/db/database.js';
import { createServer, type RunningServer } from '../../src/server.js';
import { createTestDatabase, quietLog, type TestDatabase } from './database.js';

export interface GraphQLResponse<T = Record<string, any>> {
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, any> }[];
}

export interface TestServer {
  url: string;
  server: RunningServer;
  db: Database;
  testDb: TestDatabase;
  config: Config;
  /** POSTs one operation and returns the whole response (data and errors). */
  request<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResponse<T>>;
  /** Like request, but fails the test on any error and returns `data`. */
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<T>;
  /** Stops the server (the database stays, so a new server can be started on it). */
  stop(): Promise<void>;
  /** Stops the server and removes the database. */
  close(): Promise<void>;
}

/**
 * Starts a real Tangent server on port 0 over a database of the test's own (a real PostgreSQL
 * when DATABASE_URL is set, PGlite otherwise), the way `npm start` would.
 *
 * Either it returns a running server, which the caller stops (register it on the very next line:
 * `defer(await startTestServer(), (s) => s.close())`, see cleanup.ts), or it throws having stopped
 * whatever it had started: a half-started server would keep the test process alive after the
 * test failed, and the runner would wait on it.
 */
export async function startTestServer(options: { env?: Record<string, string>; testDb?: TestDatabase } = {}): Promise<TestServer> {
  const ownsTestDb = !options.testDb;
  const testDb = options.testDb ?? (await createTestDatabase());
  let db: Database | undefined;
  let server: RunningServer | undefined;
  try {
    const config: Config = {
      ...loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', NODE_ENV: 'test', ...options.env }),
      database: testDb.config,
    };
    db = await testDb.open();
    server = await createServer(config, { db, log: quietLog });
    return testServer(server, db, testDb, config);
  } catch (error) {
    // Undo in reverse order; a failure here must not hide the one that brought us here.
    await server?.close().catch(() => undefined);
    await db?.close().catch(() => undefined);
    if (ownsTestDb) await testDb.destroy().catch(() => undefined);
    throw error;
  }
}

function testServer(server: RunningServer, db: Database, testDb: TestDatabase, config: Config): TestServer {
  const request = async <T>(query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as GraphQLResponse<T>;
  };
  let stopping: Promise<void> | null = null;
  // The database is closed even when the server's close fails, so the process can still end.
  const stop = () =>
    (stopping ??= (async () => {
      try {
        await server.close();
      } finally {
        await db.close();
      }
    })());
  return {
    url: server.url,
    server,
    db,
    testDb,
    config,
    request,
    async gql<T>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) {
      const result = await request<T>(query, variables, headers);
      if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors, null, 2)}`);
      return result.data as T;
    },
    stop,
    async close() {
      try {
        await stop();
      } finally {
        await testDb.destroy();
      }
    },
  };
}
