import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { ValidationRule } from 'graphql';
import type { Config } from '../config.js';
import type { RequestContext } from '../request-context.js';
import { ErrorCode, TangentError } from '../errors.js';
import { logIfUnexpected } from '../graphql/format-error.js';
import { JSON_LIMITS } from '../graphql/scalars.js';
import { withHttpStatus } from './errors.js';

export interface QueryLimits {
  /** Apollo plugins: without introspection, no field suggestions. */
  plugins: ApolloServerPlugin<RequestContext>[];
  /** Depth, cost, aliases and directives: graphql-js validation rules, shared with the WebSocket path. */
  validationRules: ValidationRule[];
  /**
   * Most tokens a document may have, given to graphql-js's own `parse({ maxTokens })` on both paths
   * (armor's token plugin answers an over-long document with a 500; graphql-js's limit is a clean
   * GRAPHQL_PARSE_FAILED).
   */
  maxTokens: number;
  /**
   * Deepest nesting of `{`, `[` and `(` a document may have, checked with the token count before
   * anything recursive reads it (src/platform/http/input-guard.ts): selection sets deeper than maxDepth
   * could never run anyway, and a JSON literal may be JSON_LIMITS.maxDepth deep, so this is their
   * sum with room for arguments and input objects. Far below what would overflow the parser's stack.
   */
  maxNesting: number;
}

/**
 * The query limits of graphql-armor, configured from the environment. The same rules run on HTTP
 * (Apollo) and on WebSocket subscriptions (src/platform/http/graphql-ws.ts), so neither is a way around them.
 */
export function queryLimits(config: Pick<Config, 'limits' | 'introspection'>): QueryLimits {
  const { maxDepth, maxCost, maxAliases, maxDirectives, maxTokens } = config.limits;
  const protection = new ApolloArmor({
    maxDepth: { n: maxDepth, ignoreIntrospection: true, flattenFragments: true },
    costLimit: { maxCost, ignoreIntrospection: true, flattenFragments: true },
    maxAliases: { n: maxAliases },
    maxDirectives: { n: maxDirectives },
    maxTokens: { enabled: false },
    // Field suggestions ("Did you mean …") describe the schema: off whenever introspection is.
    blockFieldSuggestion: { enabled: !config.introspection },
  }).protect();
  return {
    // armor is typed against its own copy of @apollo/server's types, which differ nominally under NodeNext.
    plugins: protection.plugins as unknown as ApolloServerPlugin<RequestContext>[],
    validationRules: protection.validationRules,
    maxTokens,
    maxNesting: Math.max(64, maxDepth + JSON_LIMITS.maxDepth + 16),
  };
}

/** Logs, through the request's logger (with its request id), every error the client will see as internal. */
export function errorLogPlugin(): ApolloServerPlugin<RequestContext> {
  // One hooks object for every request (they keep no state): nothing allocated per request.
  const hooks: GraphQLRequestListener<RequestContext> = {
    async didEncounterErrors({ errors, contextValue }) {
      for (const error of errors) logIfUnexpected(contextValue.log, error, error.path);
    },
  };
  return { requestDidStart: async () => hooks };
}

/**
 * Subscriptions are served over WebSocket only. Over HTTP, Apollo would run the subscription field
 * as if it were a query and fail with an internal error; refuse it up front with BAD_REQUEST.
 */
export function subscriptionsOverWebSocketOnly(): ApolloServerPlugin<RequestContext> {
  const hooks: GraphQLRequestListener<RequestContext> = {
    async didResolveOperation({ operation }) {
      if (operation?.operation === 'subscription') {
        throw withHttpStatus(new TangentError(ErrorCode.BAD_REQUEST, 'Subscriptions are served over WebSocket (graphql-ws) on this same path, not over HTTP'));
      }
    },
  };
  return { requestDidStart: async () => hooks };
}
