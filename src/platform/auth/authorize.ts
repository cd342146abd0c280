import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { Kind, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { RequestContext } from '../request-context.js';
import { ForbiddenError } from '../errors.js';
import { withHttpStatus } from '../http/errors.js';
import { requiredRole, roleAllows, type Caller, type Role } from './roles.js';

/**
 * The root fields an operation selects, through fragments and inline fragments. `@skip`/`@include`
 * are ignored on purpose: a field the operation names needs its role even if a variable skips it.
 */
export function rootFields(document: DocumentNode, operation: OperationDefinitionNode): Set<string> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const fields = new Set<string>();
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) fields.add(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return fields;
}

/** The highest role any root field of the operation needs, with the field that needs it. */
export function operationRole(document: DocumentNode, operation: OperationDefinitionNode): { role: Role; field: string | null } {
  let needed: { role: Role; field: string | null } = { role: 'READER', field: null };
  for (const field of rootFields(document, operation)) {
    if (field === '__typename') continue;
    const { role } = requiredRole(operation.operation, field);
    if (!roleAllows(needed.role, role)) needed = { role, field };
  }
  return needed;
}

/**
 * The role an operation needs depends on its document alone, and Apollo reuses one parsed document
 * per query: found once per operation node (a WeakMap: evicted documents take their entry along).
 */
const neededRoles = new WeakMap<OperationDefinitionNode, { role: Role; field: string | null }>();

/**
 * Refuses, before anything executes, an operation that selects a root field the caller's role does
 * not allow: none of a mutation's fields run when one of them is forbidden.
 */
export function authorizeOperation(document: DocumentNode, operation: OperationDefinitionNode, caller: Caller): void {
  let needed = neededRoles.get(operation);
  if (!needed) neededRoles.set(operation, (needed = operationRole(document, operation)));
  const { role, field } = needed;
  if (!roleAllows(caller.role, role)) throw withHttpStatus(new ForbiddenError(role, caller.role, field ?? undefined));
}

/** Apollo plugin: the one place where HTTP operations are authorized (WebSocket: src/platform/http/graphql-ws.ts). */
export function authorizationPlugin(): ApolloServerPlugin<RequestContext> {
  // One hooks object for every request (it keeps no state): nothing allocated per request.
  const hooks: GraphQLRequestListener<RequestContext> = {
    async didResolveOperation({ document, operation, contextValue }) {
      if (operation) authorizeOperation(document, operation, contextValue.caller);
    },
  };
  return { requestDidStart: async () => hooks };
}
