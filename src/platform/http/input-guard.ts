import { createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import {
  getNamedType,
  getVariableValues,
  GraphQLError,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  Kind,
  Lexer,
  Source,
  TokenKind,
  typeFromAST,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLInputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValueNode,
} from 'graphql';
import type { RequestContext } from '../request-context.js';
import { BadUserInputError, ErrorCode, TangentError } from '../errors.js';
import { checkJsonValue, unstorableString } from '../graphql/scalars.js';
import { sendError, sendJson } from './errors.js';

/**
 * What enters through GraphQL is checked here, once, at the edge, on HTTP and WebSocket alike:
 *
 * - the document's source, before anything recursive reads it (checkDocumentSource): graphql-js
 *   parses by recursive descent and counts tokens as it goes, so a deeply nested document could
 *   overflow the stack before the token limit was reached;
 * - an automatic persisted query's hash against its query (guardGraphQLRequests);
 * - every String, ID and JSON value the operation passes to a resolver, literal or variable
 *   (checkOperationInputs): text that the database cannot store (NUL, unpaired surrogates) and
 *   JSON beyond JSON_LIMITS are refused as BAD_USER_INPUT naming the argument, before any resolver
 *   runs, so nothing is half-written and no database error reaches a client.
 */

export interface DocumentLimits {
  /** Most tokens a document may have (TANGENT_MAX_TOKENS). */
  maxTokens: number;
  /** Deepest nesting of `{`, `[` and `(` in a document: selection sets, lists and input objects together. */
  maxNesting: number;
}

/**
 * Refuses a document with more tokens or deeper nesting than the limits allow, or returns null.
 * One pass of graphql-js's own lexer (so strings, block strings and comments are read exactly as
 * the parser reads them), iterative and stopping at the first limit passed: its cost is bounded by
 * the limits, not by the document. A syntax error is left to the parser, which locates it.
 */
export function checkDocumentSource(source: string, limits: DocumentLimits): TangentError | null {
  const lexer = new Lexer(new Source(source));
  let tokens = 0;
  let depth = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (++tokens > limits.maxTokens) {
        return new TangentError(ErrorCode.GRAPHQL_PARSE_FAILED, `The document has more than ${limits.maxTokens} tokens, the most this server parses (TANGENT_MAX_TOKENS)`, {
          limit: 'maxTokens',
          max: limits.maxTokens,
        });
      }
      if (token.kind === TokenKind.BRACE_L || token.kind === TokenKind.BRACKET_L || token.kind === TokenKind.PAREN_L) {
        if (++depth > limits.maxNesting) {
          return new TangentError(
            ErrorCode.GRAPHQL_VALIDATION_FAILED,
            `The document nests braces, brackets and parentheses more than ${limits.maxNesting} deep, the most this server reads`,
            { limit: 'maxNesting', max: limits.maxNesting },
          );
        }
      } else if (token.kind === TokenKind.BRACE_R || token.kind === TokenKind.BRACKET_R || token.kind === TokenKind.PAREN_R) {
        if (depth > 0) depth--;
      }
    }
  } catch {
    return null;
  }
  return null;
}

/** The hex SHA-256 of a query, as automatic persisted queries name it. */
function sha256(query: string): string {
  return createHash('sha256').update(query).digest('hex');
}

function extensionsOf(value: unknown): Record<string, unknown> | null {
  if (typeof value === 'string') {
    try {
      return extensionsOf(JSON.parse(value));
    } catch {
      return null;
    }
  }
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/**
 * Middleware in front of Apollo on /graphql (POST bodies and GET query strings), over node's
 * request and response (express's GET and OPTIONS, and the POST path that bypasses express):
 *
 * - a persisted query whose `sha256Hash` is not the hash of the query sent with it is refused
 *   with PERSISTED_QUERY_HASH_MISMATCH (Apollo's own refusal carries no code);
 * - a document past the token or nesting limit is refused (checkDocumentSource) before Apollo
 *   parses it. A query Apollo takes from its persisted-query cache passed this check when it was
 *   registered.
 */
export function guardGraphQLRequests(limits: DocumentLimits) {
  return (req: IncomingMessage & { body?: unknown; query?: unknown }, res: ServerResponse, next: (error?: unknown) => void): void => {
    // GET only reaches this through express, which parses the query string into `req.query`.
    const params = ((req.method === 'GET' ? req.query : req.body && typeof req.body === 'object' ? req.body : null) ?? {}) as Record<string, unknown>;
    const query = params.query;
    if (typeof query !== 'string') return next();
    const hash = extensionsOf(extensionsOf(params.extensions)?.persistedQuery)?.sha256Hash;
    let refusal: TangentError | null = null;
    if (typeof hash === 'string' && hash !== sha256(query)) {
      refusal = new TangentError(ErrorCode.PERSISTED_QUERY_HASH_MISMATCH, 'extensions.persistedQuery.sha256Hash is not the SHA-256 of the query sent with it');
    } else {
      refusal = checkDocumentSource(query, limits);
    }
    if (!refusal) return next();
    const { http: _http, ...extensions } = refusal.extensions;
    sendJson(res, 400, { errors: [{ message: refusal.message, extensions }] });
  };
}

/**
 * Express middleware in front of the /export routes: the same text rule for their query
 * parameters, including the strings inside `q` (base64url JSON of the curation query, whose
 * split, subset and selection strings reach SQL). A `q` that does not decode is left to the
 * route, which refuses it with its own message.
 */
export function guardExportParameters() {
  return (req: Request, res: Response, next: NextFunction): void => {
    try {
      // The router decodes path parameters itself and fails on bad percent-encoding (%ED%A0%80 is a
      // lone surrogate, %E0%A4%A is cut short) with an error of its own: refuse those here, coded.
      for (const segment of req.path.split('/')) {
        let decoded: string;
        try {
          decoded = decodeURIComponent(segment);
        } catch {
          throw new BadUserInputError('The export path is not valid percent-encoded UTF-8', 'path');
        }
        const problem = unstorableString(decoded);
        if (problem) refuse('path', undefined, problem);
      }
      for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
        for (const text of Array.isArray(value) ? value : [value]) {
          if (typeof text !== 'string') continue;
          const problem = unstorableString(text);
          if (problem) refuse(name, undefined, problem);
        }
      }
      const q = req.query.q;
      if (typeof q === 'string' && /^[A-Za-z0-9_-]+$/.test(q)) {
        let decoded: unknown;
        try {
          decoded = JSON.parse(Buffer.from(q, 'base64url').toString('utf8'));
        } catch {
          return next();
        }
        checkJsonValue(decoded, 'q');
      }
    } catch (error) {
      if (error instanceof TangentError) return sendError(res, error);
      throw error;
    }
    next();
  };
}

/** Scalars whose parsers accept only their own alphabet (digits, base64), which cannot hold bad text. */
const OPAQUE_SCALARS = new Set(['Int', 'Float', 'Boolean', 'FloatArray', 'Base64', 'FloatColumn', 'IntColumn']);

type Pending = { type: GraphQLInputType; path: string } & ({ node: ValueNode } | { value: unknown });

function refuse(path: string, owner: string | undefined, problem: string): never {
  const where = owner ? `\`${path}\` (an argument of \`${owner}\`)` : `\`${path}\``;
  throw new BadUserInputError(`${where} holds ${problem}; text may not contain NUL characters or unpaired surrogates`, path);
}

/**
 * Walks one argument's value (a literal, the variables it uses, a variable's default) along its
 * input type, iteratively, checking every String/ID (and other text-bearing scalar) value and every
 * JSON value. Throws BadUserInputError naming the first bad value by its path (`input.name`,
 * `filter.nameContains`, `input.splits[3]`, `input.config.layers[0]`).
 */
function checkArgument(start: Pending, variables: Readonly<Record<string, unknown>>, owner: string | undefined): void {
  const stack: Pending[] = [start];
  while (stack.length) {
    const item = stack.pop()!;
    let type = item.type;
    if (isNonNullType(type)) type = type.ofType;
    const named = getNamedType(type);
    if ('node' in item) {
      const node = item.node;
      if (node.kind === Kind.VARIABLE) {
        stack.push({ type, path: item.path, value: variables[node.name.value] });
        continue;
      }
      if (isScalarType(named) && named.name === 'JSON') {
        // A JSON literal: the scalar's parseLiteral (run at validation) bounded its depth; its strings are checked here.
        if (node.kind === Kind.STRING) {
          const problem = unstorableString(node.value);
          if (problem) refuse(item.path, owner, problem);
        } else if (node.kind === Kind.LIST) {
          node.values.forEach((v, i) => stack.push({ type: named, path: `${item.path}[${i}]`, node: v }));
        } else if (node.kind === Kind.OBJECT) {
          for (const field of node.fields) stack.push({ type: named, path: `${item.path}.${field.name.value}`, node: field.value });
        }
        continue;
      }
      if (node.kind === Kind.LIST) {
        const element = isListType(type) ? type.ofType : type;
        node.values.forEach((v, i) => stack.push({ type: element, path: `${item.path}[${i}]`, node: v }));
      } else if (node.kind === Kind.OBJECT && isInputObjectType(named)) {
        const fields = named.getFields();
        for (const field of node.fields) {
          const def = fields[field.name.value];
          if (def) stack.push({ type: def.type, path: `${item.path}.${field.name.value}`, node: field.value });
        }
      } else if (node.kind === Kind.STRING && isScalarType(named) && !OPAQUE_SCALARS.has(named.name)) {
        const problem = unstorableString(node.value);
        if (problem) refuse(item.path, owner, problem);
      }
      continue;
    }
    const value = item.value;
    if (value === null || value === undefined) continue;
    if (isListType(type)) {
      if (Array.isArray(value)) {
        const element = isNonNullType(type.ofType) ? type.ofType.ofType : type.ofType;
        if (isScalarType(element) && element.name !== 'JSON') {
          // A column of text (addSamplesBulk's splits): checked in place, a path made only for the culprit.
          if (OPAQUE_SCALARS.has(element.name)) continue;
          for (let i = 0; i < value.length; i++) {
            const v: unknown = value[i];
            const problem = typeof v === 'string' ? unstorableString(v) : null;
            if (problem) refuse(`${item.path}[${i}]`, owner, problem);
          }
          continue;
        }
        for (let i = value.length - 1; i >= 0; i--) stack.push({ type: type.ofType, path: `${item.path}[${i}]`, value: value[i] });
      } else {
        stack.push({ type: type.ofType, path: item.path, value });
      }
    } else if (isInputObjectType(named)) {
      if (typeof value !== 'object' || Array.isArray(value)) continue;
      const fields = named.getFields();
      for (const [key, v] of Object.entries(value)) {
        const def = fields[key];
        if (def) stack.push({ type: def.type, path: `${item.path}.${key}`, value: v });
      }
    } else if (isScalarType(named)) {
      if (named.name === 'JSON') {
        checkJsonValue(value, item.path);
      } else if (typeof value === 'string' && !OPAQUE_SCALARS.has(named.name)) {
        const problem = unstorableString(value);
        if (problem) refuse(item.path, owner, problem);
      }
    }
  }
}

/**
 * Checks every argument value of the operation that will run (its fields' and directives'
 * arguments, in the operation and in the fragments it may spread, and its variables' defaults)
 * with the variables as the client sent them. Runs after validation and before variables are
 * coerced or any resolver runs; the walk is iterative and skips binary columns, so it costs one
 * pass over the text the request carries.
 */
export function checkOperationInputs(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | null | undefined,
): void {
  const values = variables ?? {};
  for (const site of argumentSites(schema, document, operation)) checkArgument(site.start, values, site.owner);
}

/** One argument value an operation passes (or a variable's default), with its input type. */
interface ArgumentSite {
  start: Pending;
  owner: string | undefined;
}

/**
 * The argument sites of an operation depend only on the schema and the document, and Apollo hands
 * the same parsed document to every request that sends the same query: found once per operation
 * node (a WeakMap, so a document Apollo evicts takes its entry with it), in the order the walk
 * meets them, so the first bad value named is the one it always was.
 */
const sitesOf = new WeakMap<OperationDefinitionNode, { schema: GraphQLSchema; sites: ArgumentSite[] }>();

function argumentSites(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode): ArgumentSite[] {
  const known = sitesOf.get(operation);
  if (known && known.schema === schema) return known.sites;
  const sites: ArgumentSite[] = [];
  const typeInfo = new TypeInfo(schema);
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION && definition !== operation) continue;
    if (definition.kind !== Kind.OPERATION_DEFINITION && definition.kind !== Kind.FRAGMENT_DEFINITION) continue;
    visit(
      definition,
      visitWithTypeInfo(typeInfo, {
        VariableDefinition(node) {
          const type = typeFromAST(schema, node.type) as GraphQLInputType | undefined;
          if (type && node.defaultValue) sites.push({ start: { type, path: `$${node.variable.name.value}`, node: node.defaultValue }, owner: undefined });
          return false;
        },
        Argument(node) {
          const argument = typeInfo.getArgument();
          if (!argument) return false;
          const owner = typeInfo.getDirective()?.name ?? typeInfo.getFieldDef()?.name;
          sites.push({ start: { type: argument.type, path: node.name.value, node: node.value }, owner });
          return false;
        },
      }),
    );
  }
  sitesOf.set(operation, { schema, sites });
  return sites;
}

/**
 * Apollo plugin: checkOperationInputs on every HTTP operation, whether graphql-js or graphql-jit
 * (src/platform/http/compiled-execution.ts) then runs it; a refusal answers 400 with BAD_USER_INPUT, as a
 * variable of the wrong type does.
 */
export function inputGuardPlugin(schema: GraphQLSchema): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, request }) {
          if (!operation) return;
          try {
            checkOperationInputs(schema, document, operation, request.variables);
          } catch (error) {
            if (error instanceof TangentError) (error.extensions as Record<string, unknown>).http = { status: 400 };
            throw error;
          }
        },
      };
    },
  };
}

/**
 * The variables of an operation coerced as execution will coerce them, or their errors coded
 * BAD_USER_INPUT (as Apollo codes them on HTTP); null when they are fine. graphql-js words these
 * errors without a code, so on the WebSocket path they would otherwise read as internal errors.
 * A scalar's own error (a TangentError) stays below as originalError, and keeps its code.
 */
export function variableErrors(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | null | undefined,
): GraphQLError[] | null {
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}, { maxErrors: 10 });
  if (!coerced.errors) return null;
  return coerced.errors.map(
    (error) => new GraphQLError(error.message, { nodes: error.nodes, originalError: error.originalError, extensions: { ...error.extensions, code: ErrorCode.BAD_USER_INPUT } }),
  );
}
