import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import cors from 'cors';
import express from 'express';
import { Authenticator } from './platform/auth/authenticate.js';
import { authorizationPlugin } from './platform/auth/authorize.js';
import { clientAddressOf } from './platform/auth/client-address.js';
import { authenticateRequests } from './platform/auth/http.js';
import type { Config } from './platform/config.js';
import { createContext, type Context, type Services } from './modules/context.js';
import { openDatabase, type Database } from './platform/db/database.js';
import { migrate } from './platform/db/migrate.js';
import { createLogger, type Logger } from './platform/logger.js';
import { PubSub } from './platform/pubsub.js';
import { keyLookup } from './modules/api-keys/service.js';
import { ComputeRuntime } from './modules/jobs/runtime.js';
import { buildSchema } from './modules/schema.js';
import { formatError } from './platform/graphql/format-error.js';
import { compiledExecution } from './platform/http/compiled-execution.js';
import { errorHandler } from './platform/http/errors.js';
import { apolloHandler, graphqlPostPath, isGraphQLPost, type Middleware } from './platform/http/graphql-http.js';
import { exportRoutes } from './modules/curation/export-route.js';
import { serveWebSocket } from './platform/http/graphql-ws.js';
import { explorerRoutes } from './platform/http/explorer.js';
import { ideRoutes } from './platform/http/ide.js';
import { guardExportParameters, guardGraphQLRequests, inputGuardPlugin } from './platform/http/input-guard.js';
import { errorLogPlugin, queryLimits, subscriptionsOverWebSocketOnly } from './platform/http/limits.js';
import { RateLimits } from './platform/http/rate-limit.js';
import { HTTP_STATUS, statusPlugin, UNAVAILABLE_RETRY_AFTER_S } from './platform/http/status.js';
import { requestId, requestState } from './platform/http/request-id.js';

export interface RunningServer {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  url: string;
  port: number;
  db: Database;
  log: Logger;
  /** Stops accepting work, lets in-flight requests finish (up to the grace period), then closes. */
  close(): Promise<void>;
}

export interface ServerOptions {
  /** An already-open database (tests); otherwise one is opened from the config and closed with the server. */
  db?: Database;
  log?: Logger;
}

/** Starts Tangent: database (migrated), GraphQL over HTTP and WebSocket on /graphql, and /healthz. */
export async function createServer(config: Config, options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config);
  const db = options.db ?? (await openDatabase(config.database, log, { statementTimeoutMs: config.statementTimeoutMs }));
  const ownsDb = !options.db;
  let compute: ComputeRuntime | undefined;
  try {
    await migrate(db, log);
    const pubsub = await PubSub.start(db, log);
    // On-demand terms: the job queue, and (TANGENT_WORKER=on) a worker whose tensor work runs in compute threads.
    compute = await ComputeRuntime.start({ db, config, log, pubsub }, { worker: config.compute.worker });
    const runtime = compute;
    const services: Services = { config, db, pubsub, log, runtime };

    const app = express();
    app.disable('x-powered-by');
    // No ETag on responses: every GraphQL response is a POST's (or an uncached GET's) and differs per
    // request, so express would hash each body (SHA-1) for a validator no client can use.
    app.set('etag', false);
    // POST /graphql, nearly every request, is answered by the same layers without express (set below).
    let graphqlPost: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
    const httpServer = createHttpServer((req, res) => (graphqlPost && isGraphQLPost(req) ? graphqlPost(req, res) : app(req, res)));
    // Idle keep-alive sockets outlive the clients' own idle timeouts (undici: 4 s), so a client never
    // reuses a socket at the instant the server closes it — which, with the embedded database blocking
    // the event loop during large statements, otherwise surfaces as ECONNRESET on a healthy server.
    httpServer.keepAliveTimeout = 65_000;
    httpServer.headersTimeout = 66_000;
    const schema = buildSchema();
    // Trust (src/auth, src/http): who is calling, how much they may ask, the same on HTTP and WebSocket.
    // Verified keys cached for seconds, dropped on every replica when one is revoked (pubsub: LISTEN/NOTIFY).
    const authenticator = new Authenticator(keyLookup(db), config, log, pubsub);
    // Counted in PostgreSQL, so every replica on the database enforces one limit (in memory on PGlite).
    const rateLimits = new RateLimits(db, { requestsPerMin: config.rateLimitPerMin, authFailuresPerMin: config.authFailuresPerMin });
    // TANGENT_TRUST_PROXY: whose X-Forwarded-For names the client, for per-address limits.
    const clientAddress = clientAddressOf(config.trustProxy);
    const limits = queryLimits(config);
    const ws = serveWebSocket({
      httpServer,
      schema,
      services,
      createContext: (id, caller, requestLog) => createContext(services, id, caller, requestLog),
      authenticator,
      rateLimits,
      clientAddress,
      limits,
      formatError: formatError(log),
    });

    const apollo = new ApolloServer<Context>({
      // The schema, executed by compiled operations (graphql-jit) rather than graphql-js: see there.
      gateway: compiledExecution(schema),
      introspection: config.introspection,
      includeStacktraceInErrorResponses: false,
      allowBatchedHttpRequests: false,
      validationRules: limits.validationRules,
      parseOptions: { maxTokens: limits.maxTokens },
      // Automatic persisted queries stay on (dashboards re-send the same large queries by hash). A
      // query is registered only once it has passed the token and nesting limits, validation and the
      // input guard, into Apollo's bounded in-memory LRU (30 MiB per process), for a day at most; a
      // hash that is not the query's is PERSISTED_QUERY_HASH_MISMATCH (src/platform/http/input-guard.ts).
      persistedQueries: { ttl: 24 * 3600 },
      // The CLI owns SIGINT/SIGTERM and calls close(); Apollo's own handlers would race it.
      stopOnTerminationSignals: false,
      formatError: formatError(log),
      plugins: [
        ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownGraceMs }),
        // Tangent sets no cache hints; Apollo's default cache-control plugin would still wrap every
        // field resolver to compute a policy (a 1000-row page resolves ~6000 fields).
        ApolloServerPluginCacheControlDisabled(),
        // Apollo's landing page loads Apollo Sandbox from a CDN; browsers get Tangent's own IDE (src/platform/http/ide.ts).
        ApolloServerPluginLandingPageDisabled(),
        {
          async serverWillStart() {
            return {
              async drainServer() {
                await ws.dispose();
              },
            };
          },
        },
        ...limits.plugins,
        subscriptionsOverWebSocketOnly(),
        authorizationPlugin(),
        errorLogPlugin(),
        // NUL, unpaired surrogates and oversized JSON in any argument: BAD_USER_INPUT before resolvers run.
        inputGuardPlugin(schema),
        // 503/504 for an operation that produced no data because the database failed it (src/platform/http/status.ts).
        statusPlugin(),
      ],
    });
    await apollo.start();

    const tagRequests = requestId(log);
    app.use(tagRequests);

    // The GraphQL chain: CORS, authentication, body, limits, Apollo. Every layer is plain node
    // middleware (src/platform/http/graphql-http.ts), so express runs it for GET and OPTIONS /graphql
    // and POST /graphql runs it without express, with express's own error handler last.
    const graphql: Middleware[] = [
      // No CORS headers unless origins are configured: browsers on other origins are refused.
      ...(config.corsOrigins.length ? [cors({ origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins, maxAge: 600 }) as Middleware] : []),
      authenticateRequests(authenticator, rateLimits, clientAddress),
      express.json({ limit: config.maxBodyBytes }) as unknown as Middleware,
      // Token and nesting limits before Apollo parses; a persisted query's hash checked against its query.
      guardGraphQLRequests(limits),
      apolloHandler(apollo, async (_req, res) => {
        const state = requestState(res);
        return createContext(services, state.requestId, state.caller, () => state.log);
      }),
    ];
    const lastResort = errorHandler(config.maxBodyBytes, log);
    graphqlPost = graphqlPostPath([tagRequests, ...graphql], lastResort);

    app.get('/healthz', async (_req, res) => {
      try {
        await db.ping();
        res.json({ status: 'ok', database: db.kind });
      } catch {
        res.status(HTTP_STATUS.DATABASE_UNAVAILABLE).setHeader('retry-after', String(UNAVAILABLE_RETRY_AFTER_S));
        res.json({ status: 'unavailable', database: db.kind });
      }
    });

    // The Explorer (GET / and its /explorer/ assets): public, before authentication; only reads enter its router.
    app.use(explorerRoutes());
    // The GraphQL IDE for browsers (GET /graphql accepting HTML, /ide/ assets): public, before
    // authentication. Only reads enter its router.
    const ide = ideRoutes(config);
    app.use((req, res, next) => (req.method === 'GET' || req.method === 'HEAD' ? ide(req, res, next) : next()));

    app.use('/graphql', ...graphql);

    // Streamed exports of selections and curation queries (JSONL/CSV); the URLs come from GraphQL's exportUrl.
    app.use(
      '/export',
      ...(config.corsOrigins.length ? [cors({ origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins, maxAge: 600 })] : []),
      authenticateRequests(authenticator, rateLimits, clientAddress),
      guardExportParameters(),
      exportRoutes(services),
    );

    // Body-parser refusals (oversize, malformed JSON) and middleware failures, in GraphQL's error shape.
    app.use(lastResort);

    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
    const { port } = httpServer.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}/graphql`;
    log.info({ url, database: db.kind, auth: config.authRequired }, 'Tangent is serving GraphQL');
    if (!config.authRequired) {
      log.warn({ host: config.host }, 'running OPEN: no API key is needed (loopback only); set TANGENT_AUTH=on to require keys');
    }

    let closing: Promise<void> | null = null;
    return {
      url,
      port,
      db,
      log,
      close() {
        closing ??= (async () => {
          await apollo.stop();
          await runtime.stop(config.shutdownGraceMs);
          authenticator.close();
          await pubsub.close();
          if (ownsDb) await db.close();
          log.info('Tangent stopped');
        })();
        return closing;
      },
    };
  } catch (error) {
    await compute?.stop(1000).catch(() => undefined);
    if (ownsDb) await db.close().catch(() => undefined);
    throw error;
  }
}

export type { HttpServer };
