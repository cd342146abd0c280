import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import {
  execute,
  GraphQLError,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isInputObjectType,
  isScalarType,
  isSpecifiedScalarType,
  Kind,
  OperationTypeNode,
  printSchema,
  typeFromAST,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  BREAK,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type VariableDefinitionNode,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';

type GatewayResult = Awaited<ReturnType<GatewayExecutor>>;

/** How one operation of a document runs: compiled, or by graphql-js (see `compilesFaithfully`). */
type Plan =
  | { kind: 'compiled'; query: CompiledQuery; variables: readonly VariableDefinitionNode[] }
  | { kind: 'interpreted' }
  | { kind: 'failed'; result: GatewayResult };

/**
 * GraphQL over HTTP executed by graphql-jit rather than graphql-js: each operation is compiled once
 * into a function that walks its own selection set, so a 1000-row page costs straight-line code per
 * row instead of graphql-js's generic walk (an argument map, a path object and an `isPromise` check
 * for every one of ~5000 fields). Same schema, resolvers, scalars, validation and error codes;
 * subscriptions (graphql-ws) keep graphql-js.
 *
 * Apollo Server 5 has no executor option; its migration guide names the `gateway` interface as the
 * place for a custom executor, so this is a gateway that serves one fixed schema. Apollo still
 * parses, caches each document by its hash and runs every validation rule (depth, cost, ...) before
 * the executor sees it; graphql-jit only compiles.
 */
export function compiledExecution(schema: GraphQLSchema, options: { maxCompiledDocuments?: number } = {}): GatewayInterface {
  const maxDocuments = options.maxCompiledDocuments ?? 1000;
  // Apollo hands back the same DocumentNode for the same query text (its document store), so plans
  // are remembered per document object; the Map bounds how many are held when clients send ever-new
  // documents (the oldest is dropped first).
  const plans = new Map<DocumentNode, Map<string, Plan>>();

  const planOf = (document: DocumentNode, operationName: string | undefined): Plan => {
    let byName = plans.get(document);
    const key = operationName ?? '';
    const known = byName?.get(key);
    if (known) return known;
    let plan: Plan;
    const operation = getOperationAST(document, operationName);
    if (!operation || !compiles(schema, document, operation)) {
      plan = { kind: 'interpreted' };
    } else {
      const compiled = compileQuery(schema, document, operationName);
      plan = isCompiledQuery(compiled)
        ? { kind: 'compiled', query: compiled, variables: operation.variableDefinitions ?? [] }
        : { kind: 'failed', result: compiled as GatewayResult };
    }
    if (!byName) {
      if (plans.size >= maxDocuments) plans.delete(plans.keys().next().value!);
      plans.set(document, (byName = new Map()));
    }
    byName.set(key, plan);
    return plan;
  };

  const executor: GatewayExecutor = async ({ document, request, context }) => {
    const operationName = request.operationName ?? undefined;
    const plan = planOf(document, operationName);
    if (plan.kind === 'failed') return plan.result;
    if (plan.kind === 'compiled') {
      // Variables are checked by graphql-js first: its errors carry the variable's node, which is
      // how Apollo tells a client's bad variable (BAD_USER_INPUT, status 400) from a server fault;
      // graphql-jit's own say neither. Cheap: hot queries take a few scalar variables.
      const variables = request.variables ?? {};
      if (plan.variables.length) {
        const checked = getVariableValues(schema, plan.variables, variables);
        if (checked.errors) return { errors: checked.errors } as GatewayResult;
      }
      // eslint-disable-next-line no-restricted-syntax -- graphql-jit's compiled operation, not SQL
      const result = await plan.query.query(undefined, context, variables);
      return (result.errors ? { ...result, errors: result.errors.map(asGraphQLJsError) } : result) as GatewayResult;
    }
    return (await execute({ schema, document, contextValue: context, variableValues: request.variables, operationName })) as GatewayResult;
  };

  const sdl = printSchema(schema);
  return {
    async load() {
      return { executor };
    },
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: sdl });
      return () => {};
    },
    async stop() {
      plans.clear();
    },
  };
}

/**
 * Whether an operation is compiled: only queries are (reads are where large results are shaped
 * field by field; a mutation's time is its writes, and its inputs — columns, series, weights — are
 * where graphql-jit differs), and only those it runs exactly as graphql-js would.
 */
export function runsCompiled(schema: GraphQLSchema, document: DocumentNode, operationName?: string | null): boolean {
  const operation = getOperationAST(document, operationName);
  return operation != null && compiles(schema, document, operation);
}

function compiles(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode): boolean {
  return operation.operation === OperationTypeNode.QUERY && compilesFaithfully(schema, document, operation.variableDefinitions ?? []);
}

/**
 * graphql-jit's errors are its own GraphQLError look-alikes: `extensions` is left undefined when the
 * resolver's error had none (a database error, a bug), and Apollo reads `extensions.code` of every
 * error. Each is remade as graphql-js makes it, keeping message, path, locations and the original.
 */
function asGraphQLJsError(error: GraphQLError): GraphQLError {
  const remade = new GraphQLError(error.message, { path: error.path, originalError: error.originalError ?? undefined, extensions: error.extensions ?? undefined });
  if (error.locations) (remade as { locations?: unknown }).locations = error.locations;
  return remade;
}

/**
 * Whether graphql-jit runs an operation exactly as graphql-js would; where it would not, the
 * operation runs through graphql-js instead (correct, just not compiled). Two known differences
 * (graphql-jit 0.8.9):
 *
 * - It writes the values of literal arguments into the code it generates as JSON, so a custom
 *   scalar whose parsed value is not plain JSON (FloatArray's Float32Array, Base64's Buffer, the
 *   column scalars' typed arrays) would reach its resolver as a plain object. Values passed as
 *   variables are coerced at run time and are unaffected.
 * - It does not apply the default of a non-null input-object field that a variable's value leaves
 *   out (`channels: Int! = 1`), refusing the value instead; so variables of input-object types go
 *   to graphql-js. The hot read queries take scalar variables (ids, cursors) and are compiled.
 */
export function compilesFaithfully(schema: GraphQLSchema, document: DocumentNode, variables: readonly VariableDefinitionNode[]): boolean {
  for (const definition of variables) {
    const type = typeFromAST(schema, definition.type);
    if (!type || isInputObjectType(getNamedType(type))) return false;
  }
  const typeInfo = new TypeInfo(schema);
  let survives = true;
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      enter(node) {
        if (!VALUE_KINDS.has(node.kind)) return undefined;
        const type = getNamedType(typeInfo.getInputType());
        if (type && isScalarType(type) && !isSpecifiedScalarType(type) && !JSON_VALUED_SCALARS.has(type.name)) {
          survives = false;
          return BREAK;
        }
        return undefined;
      },
    }),
  );
  return survives;
}

const VALUE_KINDS = new Set<string>([Kind.INT, Kind.FLOAT, Kind.STRING, Kind.BOOLEAN, Kind.ENUM, Kind.LIST, Kind.OBJECT]);
/** Custom scalars whose parsed values are plain JSON (safe to write into generated code). */
const JSON_VALUED_SCALARS = new Set(['JSON']);
