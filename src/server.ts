import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Config } from './config.js';
import { createContext, type Context, type Services } from './context.js';
import { openDatabase, type Database } from './db/database.js';
import { migrate } from './db/migrate.js';
import { createLogger, type Logger } from './logger.js';
import { PubSub } from './pubsub.js';
import { buildSchema } from './schema/index.js';
import { formatError } from './schema/format-error.js';

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
  try {
    await migrate(db, log);
    const pubsub = await PubSub.start(db, log);
    const services: Services = { config, db, pubsub, log };

    const app = express();
    app.disable('x-powered-by');
    const httpServer = createHttpServer(app);
    const schema = buildSchema();

    const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: 1024 * 1024 });
    const wsCleanup = useServer<Record<string, unknown>, { context?: Context }>(
      {
        schema,
        context: (ctx) => createContext(services, randomUUID()),
      },
      wsServer,
    );

    const apollo = new ApolloServer<Context>({
      schema,
      introspection: config.introspection,
      includeStacktraceInErrorResponses: false,
      // The CLI owns SIGINT/SIGTERM and calls close(); Apollo's own handlers would race it.
      stopOnTerminationSignals: false,
      formatError: formatError(log),
      plugins: [
        ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownGraceMs }),
        {
          async serverWillStart() {
            return {
              async drainServer() {
                await wsCleanup.dispose();
              },
            };
          },
        },
      ],
    });
    await apollo.start();

    app.get('/healthz', async (_req, res) => {
      try {
        await db.ping();
        res.json({ status: 'ok', database: db.kind });
      } catch {
        res.status(503).json({ status: 'unavailable', database: db.kind });
      }
    });

    app.use(
      '/graphql',
      express.json({ limit: config.maxBodyBytes }),
      expressMiddleware(apollo, {
        context: async ({ req, res }) => {
          const header = req.headers['x-request-id'];
          const requestId = typeof header === 'string' && /^[\w.-]{1,100}$/.test(header) ? header : randomUUID();
          res.setHeader('x-request-id', requestId);
          return createContext(services, requestId);
        },
      }),
    );

    // Body-parser errors (oversize, malformed JSON) arrive here; answer in GraphQL's error shape.
    app.use((error: { status?: number; type?: string }, _req: express.Request, res: express.Response, next: express.NextFunction) => {
      if (!error || typeof error.status !== 'number') return next(error);
      const code = error.type === 'entity.too.large' ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
      const message = error.type === 'entity.too.large' ? `The request body is larger than ${config.maxBodyBytes} bytes` : 'The request body is not valid JSON';
      res.status(error.status).json({ errors: [{ message, extensions: { code } }] });
    });

    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
    const { port } = httpServer.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}/graphql`;
    log.info({ url, database: db.kind }, 'Tangent is serving GraphQL');

    let closing: Promise<void> | null = null;
    return {
      url,
      port,
      db,
      log,
      close() {
        closing ??= (async () => {
          await apollo.stop();
          await pubsub.close();
          if (ownsDb) await db.close();
          log.info('Tangent stopped');
        })();
        return closing;
      },
    };
  } catch (error) {
    if (ownsDb) await db.close().catch(() => undefined);
    throw error;
  }
}

export type { HttpServer };
