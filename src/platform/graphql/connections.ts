import type { ConnectionRow } from './rows.js';

/** The fields every connection type resolves the same way. */
export const connectionFields = {
  nodes: <T>(c: ConnectionRow<T>) => c.nodes ?? c.edges.map((e) => e.node),
  totalCount: <T>(c: ConnectionRow<T>) => c.count(),
};
