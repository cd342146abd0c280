import { randomUUID } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import {
  getOperationAST,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Authenticator } from '../auth/authenticate.js';
import type { ClientAddress } from '../auth/client-address.js';
import { admit } from '../auth/http.js';
import { authorizeOperation } from '../auth/authorize.js';
import type { Caller } from '../auth/roles.js';
import { ErrorCode, TangentError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RequestContext } from '../request-context.js';
import { logIfUnexpected } from '../graphql/format-error.js';
import { knownError } from './errors.js';
import { checkDocumentSource, checkOperationInputs, variableErrors } from './input-guard.js';
import type { QueryLimits } from './limits.js';
import type { RateLimits } from './rate-limit.js';

type FormatError = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

/** What a connection keeps between its messages. */
type ConnectionState = {
  caller?: Caller;
  /** The credentials it connected with, checked again at every subscribe (a revoked key stops there). */
  authorization?: string;
};

export interface WebSocketEndpoint {
  dispose(): Promise<void>;
}

/**
 * GraphQL over WebSocket (graphql-ws) on the HTTP server's /graphql, with the same protections as
 * HTTP: the key (connectionParams `authorization`, or the upgrade request's header) is checked at
 * connect and again at each subscribe; each subscribe counts against the rate limit; documents are
 * parsed with the token limit, validated with armor's depth/cost/alias/directive rules, and
 * authorized by role before they run; errors are formatted exactly as on HTTP. When a key is
 * revoked (on any server: the event comes over pubsub), its open connections are closed at once.
 */
export function serveWebSocket(options: {
  httpServer: HttpServer;
  schema: GraphQLSchema;
  /** The server's config, pubsub (key revocations) and log. */
  services: Pick<RequestContext, 'config' | 'pubsub' | 'log'>;
  /** Makes an operation's context (the modules' whole Context: the server knows how). */
  createContext: (requestId: string, caller: Caller, log: Logger) => RequestContext;
  authenticator: Authenticator;
  rateLimits: RateLimits;
  clientAddress: ClientAddress;
  limits: QueryLimits;
  formatError: FormatError;
}): WebSocketEndpoint {
  const { schema, services, createContext, authenticator, rateLimits, clientAddress, limits, formatError } = options;
  const rules = [...specifiedRules, ...limits.validationRules, ...(services.config.introspection ? [] : [NoSchemaIntrospectionCustomRule])];
  const socketsByKey = new Map<number, Set<WebSocket>>();
  const wsServer = new WebSocketServer({ server: options.httpServer, path: '/graphql', maxPayload: 1024 * 1024 });

  const format = (errors: readonly GraphQLError[]) => errors.map((error) => formatError(error.toJSON(), error));

  const cleanup = useServer<Record<string, unknown>, ConnectionState>(
    {
      isProd: true,
      async onConnect(ctx) {
        const params = ctx.connectionParams ?? {};
        const fromParams = params.authorization ?? params.Authorization;
        const authorization = typeof fromParams === 'string' ? fromParams : ctx.extra.request.headers.authorization;
        try {
          ctx.extra.caller = await admit(authenticator, rateLimits, authorization, clientAddress(ctx.extra.request), { count: false });
        } catch (error) {
          const known = knownError(error);
          if (!known) services.log.error({ err: error }, 'unexpected error authenticating a WebSocket');
          const throttled = known?.extensions.code === ErrorCode.RATE_LIMITED || known?.extensions.code === ErrorCode.AUTH_THROTTLED;
          const code = known?.extensions.code === ErrorCode.UNAUTHENTICATED ? CloseCode.Unauthorized : throttled ? 4429 : CloseCode.InternalServerError;
          ctx.extra.socket.close(code, String(known?.extensions.code ?? ErrorCode.INTERNAL_SERVER_ERROR));
          return false;
        }
        ctx.extra.authorization = authorization;
        const keyId = ctx.extra.caller.key?.id;
        if (keyId !== undefined) {
          const set = socketsByKey.get(keyId) ?? new Set();
          set.add(ctx.extra.socket);
          socketsByKey.set(keyId, set);
        }
        return true;
      },
      onClose(ctx) {
        const keyId = ctx.extra.caller?.key?.id;
        if (keyId !== undefined) socketsByKey.get(keyId)?.delete(ctx.extra.socket);
      },
      async onSubscribe(ctx, _id, payload) {
        const requestId = randomUUID();
        const log = services.log.child({ requestId, transport: 'ws' });
        let caller: Caller;
        try {
          caller = await admit(authenticator, rateLimits, ctx.extra.authorization, clientAddress(ctx.extra.request));
        } catch (error) {
          const known = knownError(error);
          if (!known) throw error;
          if (known.extensions.code === ErrorCode.UNAUTHENTICATED) ctx.extra.socket.close(CloseCode.Unauthorized, ErrorCode.UNAUTHENTICATED);
          return [known];
        }
        const tooLarge = checkDocumentSource(payload.query, limits);
        if (tooLarge) return [tooLarge];
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: limits.maxTokens });
        } catch (error) {
          return [new TangentError(ErrorCode.GRAPHQL_PARSE_FAILED, error instanceof GraphQLError ? error.message : 'The document does not parse')];
        }
        const invalid = validate(schema, document, rules);
        if (invalid.length) {
          return invalid.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { ...e.extensions, code: ErrorCode.GRAPHQL_VALIDATION_FAILED } }));
        }
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) return [new TangentError(ErrorCode.OPERATION_RESOLUTION_FAILURE, 'The document has no operation of that name, or several and none was chosen')];
        try {
          authorizeOperation(document, operation, caller);
          checkOperationInputs(schema, document, operation, payload.variables);
        } catch (error) {
          if (error instanceof TangentError) return [error];
          throw error;
        }
        const badVariables = variableErrors(schema, operation, payload.variables);
        if (badVariables) return badVariables;
        const contextValue = createContext(requestId, caller, log);
        return { schema, document, operationName: payload.operationName, variableValues: payload.variables, contextValue };
      },
      onNext(_ctx, _id, _payload, args, result) {
        if (!result.errors?.length) return;
        const log = (args.contextValue as RequestContext | undefined)?.log ?? services.log;
        for (const error of result.errors) logIfUnexpected(log, error, error.path);
        return { ...result, errors: format(result.errors) };
      },
      onError(_ctx, _id, _payload, errors) {
        for (const error of errors) logIfUnexpected(services.log, error, error.path);
        return format(errors);
      },
    },
    wsServer,
  );

  const revocations = new AbortController();
  void (async () => {
    for await (const { keyId } of services.pubsub.subscribe('apiKeyRevoked', revocations.signal)) {
      for (const socket of socketsByKey.get(keyId) ?? []) socket.close(CloseCode.Unauthorized, 'API key revoked');
      socketsByKey.delete(keyId);
    }
  })().catch(() => undefined); // ends with an AbortError at dispose

  return {
    async dispose() {
      revocations.abort();
      await cleanup.dispose();
    },
  };
}
