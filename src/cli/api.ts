import type { Config } from '../platform/config.js';
import type { Database } from '../platform/db/database.js';
import type { Logger } from '../platform/logger.js';
import type { PubSub } from '../platform/pubsub.js';
import type { ComputeRuntime } from '../modules/jobs/runtime.js';
import { configOrExit, type EnvOverrides } from './shared.js';

/**
 * How the CLI commands that speak GraphQL (import, train, compute, keys) reach Tangent. Two transports, the same
 * operations: by default the schema runs in this process on the configured database (DATABASE_URL
 * or the embedded data folder), so nothing else needs to run; with `--url` the same requests go to
 * a running server. The embedded database admits one process per data folder, so while a server
 * holds it the direct mode is refused by the pid lock and `--url` is the way in. Either way the
 * server's validation, limits and transactions apply.
 *
 * This module loads nothing heavy itself: `--url` needs no database driver, no tfjs and no schema,
 * so the direct mode imports those when it starts.
 */
/**
 * What a command reads from an answer by default: JSON shaped by the query it sent, read field by
 * field (the schema's generated types describe resolvers, not a command's selections).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above: the query, not a type, says what is there
export type ResponseData = Record<string, any>;

export interface Api {
  /**
   * Sends one operation. `idempotent` ones (bulk writes, reads) are sent again after a transport
   * failure, e.g. a keep-alive socket the server closed just as it was reused; others never are.
   */
  request<T = ResponseData>(query: string, variables?: Record<string, unknown>, options?: { idempotent?: boolean }): Promise<T>;
  /**
   * Runs a subscription and yields each event's data until the server ends it: in-process on the
   * schema, or over graphql-ws at the server's /graphql. Errors are thrown as ApiError, a dropped
   * connection as ApiError code CONNECTION_CLOSED.
   */
  subscribe<T = ResponseData>(query: string, variables?: Record<string, unknown>): AsyncIterable<T>;
  /** How often a command following long work should poll: often in-process, gently over HTTP. */
  readonly pollMs: number;
  close(): Promise<void>;
}

/** An error the API returned: message, code, and everything else it said (field, row, …). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The field the error names, when it names one. */
  get field(): string | undefined {
    return typeof this.extensions.field === 'string' ? this.extensions.field : undefined;
  }
}

export function apiError(errors: readonly { message: string; extensions?: Record<string, unknown> }[]): ApiError {
  const first = errors[0]!;
  return new ApiError(first.message, String(first.extensions?.code ?? 'ERROR'), first.extensions ?? {});
}

/** A server's GraphQL endpoint from what a user types: `http://host:4000` or `…/graphql`. */
export function graphqlEndpoint(url: string): string {
  const parsed = new URL(url);
  if (!parsed.pathname.endsWith('/graphql')) parsed.pathname = `${parsed.pathname.replace(/\/+$/, '')}/graphql`;
  return parsed.toString();
}

export function httpApi(url: string, apiKey?: string): Api {
  const endpoint = graphqlEndpoint(url);
  return {
    pollMs: 1000,
    async request(query, variables, options = {}) {
      const body = JSON.stringify({ query, variables });
      const send = () =>
        fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
          body,
        });
      let response: Response;
      try {
        response = await send();
      } catch (error) {
        if (!options.idempotent) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
        response = await send();
      }
      const text = await response.text();
      let result: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
      try {
        result = JSON.parse(text);
      } catch {
        throw new ApiError(`${endpoint} answered ${response.status} with something that is not GraphQL: ${text.slice(0, 200)}`, 'BAD_RESPONSE');
      }
      if (result.errors?.length) throw apiError(result.errors);
      return result.data as never;
    },
    async *subscribe(query, variables) {
      const [{ createClient }, { default: WebSocket }] = await Promise.all([import('graphql-ws'), import('ws')]);
      const ws = new URL(endpoint);
      ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
      const client = createClient({
        url: ws.toString(),
        webSocketImpl: WebSocket,
        connectionParams: apiKey ? { authorization: `Bearer ${apiKey}` } : undefined,
        retryAttempts: 0,
      });
      try {
        for await (const result of client.iterate({ query, variables: variables ?? {} })) {
          if (result.errors?.length) throw apiError(result.errors as never);
          yield result.data as never;
        }
      } catch (error) {
        throw subscriptionError(error, endpoint);
      } finally {
        await client.dispose();
      }
    },
    async close() {},
  };
}

/** What graphql-ws threw, as an ApiError: GraphQL errors as they are, a closed socket by its reason. */
function subscriptionError(error: unknown, endpoint: string): unknown {
  if (error instanceof ApiError) return error;
  if (Array.isArray(error) && error.length > 0) return apiError(error);
  const close = error as { code?: unknown; reason?: unknown };
  if (typeof close?.code === 'number') {
    const reason = typeof close.reason === 'string' && close.reason ? close.reason : '';
    // The server closes with the error code as the reason (e.g. UNAUTHENTICATED).
    return new ApiError(`${endpoint} closed the subscription (${close.code}${reason ? ` ${reason}` : ''})`, /^[A-Z_]+$/.test(reason) ? reason : 'CONNECTION_CLOSED');
  }
  if (error instanceof Error) return new ApiError(`${endpoint}: ${error.message}`, 'CONNECTION_CLOSED');
  return error;
}

export interface DirectApiOptions {
  /** The command's name, for the message when a server holds the embedded database. */
  command: string;
  /** Start a compute runtime (job and training workers) in this process; `work` false: enqueue only. */
  runtime?: { work: boolean };
  /** Log level while the command runs (logs would tear a progress bar apart); default errors only. */
  quietLevel?: 'error' | 'warn';
  /** Settings the command's flags give (e.g. --database-url), over the environment's. */
  env?: EnvOverrides;
}

/** Tangent's schema in this process, on the configured database, migrated. */
export async function directApi(options: DirectApiOptions): Promise<Api & { config: Config; db: Database; log: Logger }> {
  const config = await configOrExit(options.env);
  const [{ randomUUID }, { execute, parse, subscribe }, { createContext }, { openDatabase }, { migrate }, { createLogger }, { PubSub }, { buildSchema }, { ComputeRuntime }] = await Promise.all([
    import('node:crypto'),
    import('graphql'),
    import('../modules/context.js'),
    import('../platform/db/database.js'),
    import('../platform/db/migrate.js'),
    import('../platform/logger.js'),
    import('../platform/pubsub.js'),
    import('../modules/schema.js'),
    import('../modules/jobs/runtime.js'),
  ]);
  const quiet = options.quietLevel ?? 'error';
  const log = createLogger({ logLevel: config.logLevel === 'debug' || config.logLevel === 'trace' ? config.logLevel : quiet }, { toStderr: true });
  let db: Database;
  try {
    db = await openDatabase(config.database, log, { statementTimeoutMs: config.statementTimeoutMs });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/in use by process/.test(message)) {
      throw new ApiError(`${message}\nA server holds it: ${options.command} through it with --url http://${config.host}:${config.port}`, 'LOCKED');
    }
    throw error;
  }
  let pubsub: PubSub | undefined;
  let runtime: ComputeRuntime | undefined;
  try {
    await migrate(db, log);
    pubsub = await PubSub.start(db, log);
    const services = { config, db, pubsub, log };
    if (options.runtime) runtime = await ComputeRuntime.start(services, { worker: options.runtime.work });
    // Operations run with this process's runtime in their context (none unless the command started one).
    const withRuntime = { ...services, runtime };
    const schema = buildSchema();
    const [p, r] = [pubsub, runtime];
    return {
      config,
      db,
      log,
      pollMs: 250,
      async request(query, variables) {
        const result = await execute({ schema, document: parse(query), variableValues: variables ?? {}, contextValue: createContext(withRuntime, randomUUID()) });
        if (result.errors?.length) throw apiError(result.errors.map((e) => ({ message: e.message, extensions: e.extensions })));
        return result.data as never;
      },
      async *subscribe(query, variables) {
        const result = await subscribe({ schema, document: parse(query), variableValues: variables ?? {}, contextValue: createContext(withRuntime, randomUUID()) });
        if (!(Symbol.asyncIterator in result)) {
          throw apiError((result.errors ?? []).map((e) => ({ message: e.message, extensions: e.extensions })));
        }
        for await (const event of result) {
          if (event.errors?.length) throw apiError(event.errors.map((e) => ({ message: e.message, extensions: e.extensions })));
          yield event.data as never;
        }
      },
      async close() {
        await r?.stop(config.shutdownGraceMs).catch(() => undefined);
        await p.close().catch(() => undefined);
        await db.close();
      },
    };
  } catch (error) {
    await runtime?.stop(1000).catch(() => undefined);
    await pubsub?.close().catch(() => undefined);
    await db.close();
    throw error;
  }
}
