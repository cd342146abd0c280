import { getArgumentValues, getNamedType, isObjectType, Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/**
 * The arguments of a field that the client selected under the field being resolved, so that a
 * resolver can read what its child will need in the same statement as its own row (a run with the
 * first page of its checkpoints: one round trip instead of two). graphql-js has no lookahead of its
 * own, and the libraries that add one (graphql-parse-resolve-info and the like) build the whole
 * subtree per call, which costs more than the round trip it saves on a small request.
 *
 * Returns null unless the child is selected exactly once, plainly: not under @skip/@include, not
 * twice under aliases, with arguments that coerce. Then the child resolves as it would have
 * without the prefetch (it finds nothing primed), so a prefetch can only ever save work.
 */
export function selectedChildArgs(info: GraphQLResolveInfo, child: string): Record<string, unknown> | null {
  const found: FieldNode[] = [];
  const visited = new Set<string>();
  let plain = true;
  const walk = (set: SelectionSetNode | undefined) => {
    for (const selection of set?.selections ?? []) {
      if (selection.directives?.length) {
        // A conditional selection may or may not be executed: no prefetch can know.
        if (selection.kind === Kind.FIELD ? selection.name.value === child : true) plain = false;
        continue;
      }
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value === child) found.push(selection);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet);
      } else if (!visited.has(selection.name.value)) {
        visited.add(selection.name.value);
        walk(info.fragments[selection.name.value]?.selectionSet);
      }
    }
  };
  for (const node of info.fieldNodes) walk(node.selectionSet);
  if (!plain || found.length !== 1) return null;
  const type = getNamedType(info.returnType);
  const definition = isObjectType(type) ? type.getFields()[child] : undefined;
  if (!definition) return null;
  try {
    return getArgumentValues(definition, found[0]!, info.variableValues);
  } catch {
    // Arguments that do not coerce: the child's own resolution reports them.
    return null;
  }
}
