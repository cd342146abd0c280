import { getArgumentValues, getNamedType, isObjectType, Kind, type FieldNode, type GraphQLResolveInfo } from 'graphql';

/**
 * Lookahead: what the client selected under the field being resolved, so that a resolver can start
 * what a child field will read beside its own read, or read both in one statement (a run with the
 * first page of its checkpoints; a checkpoint with its curation context and ranked page). A child
 * resolver runs only once its parent's value is there, so without this every level of a query
 * costs a round trip after the one before it.
 *
 * graphql-js has no lookahead of its own, and the libraries that add one (graphql-parse-resolve-info
 * and the like) build the whole subtree per call, which costs more than the round trip it saves on a
 * small request; this reads only the selections directly under the field.
 *
 * Whatever is read ahead must be used only where the child would have read exactly the same thing:
 * a child resolves as it always did when it finds nothing ready, so a lookahead can only save work.
 */

/** A field selected directly under the one being resolved. */
export interface ChildField {
  name: string;
  node: FieldNode;
  /** Under @skip or @include: it may not run, so nothing should be read for it. */
  conditional: boolean;
}

/** The fields selected directly under the field being resolved, in the order written (not those inside fragments). */
export function childFields(info: GraphQLResolveInfo): ChildField[] {
  const out: ChildField[] = [];
  for (const fieldNode of info.fieldNodes) {
    for (const selection of fieldNode.selectionSet?.selections ?? []) {
      if (selection.kind === Kind.FIELD) out.push({ name: selection.name.value, node: selection, conditional: Boolean(selection.directives?.length) });
    }
  }
  return out;
}

/** A child field's arguments, coerced as the executor will coerce them; null when it would refuse them (it then reports them itself). */
export function childArguments(info: GraphQLResolveInfo, child: ChildField): Record<string, unknown> | null {
  const type = getNamedType(info.returnType);
  const definition = isObjectType(type) ? type.getFields()[child.name] : undefined;
  if (!definition) return null;
  try {
    return getArgumentValues(definition, child.node, info.variableValues);
  } catch {
    return null;
  }
}

/** The arguments of `name` when it is selected exactly once, directly and unconditionally; else null. */
export function selectedChildArgs(info: GraphQLResolveInfo, name: string): Record<string, unknown> | null {
  const found = childFields(info).filter((child) => child.name === name);
  if (found.length !== 1 || found[0]!.conditional) return null;
  return childArguments(info, found[0]!);
}
