/**
 * Who may do what. Three roles, each including the ones below it:
 *
 * - READER — every query and subscription;
 * - WRITER — logging (datasets, runs, checkpoints, metrics) and computing: every mutation by default;
 * - ADMIN  — API keys and deletes.
 *
 * The decision is made per root field, in one place (`requiredRole`), so that a field added to the
 * schema later is covered without its author doing anything: a new query needs READER, a new
 * mutation WRITER, a new `delete…`/`purge…`/`drop…` mutation ADMIN. Only exceptions are listed, in
 * FIELD_ROLES below; test/auth-policy.test.ts walks the schema and prints every decision.
 */
export type Role = 'READER' | 'WRITER' | 'ADMIN';

export const ROLES: readonly Role[] = ['READER', 'WRITER', 'ADMIN'];

const RANK: Record<Role, number> = { READER: 0, WRITER: 1, ADMIN: 2 };

export function roleAllows(actual: Role, required: Role): boolean {
  return RANK[actual] >= RANK[required];
}

export type RootKind = 'query' | 'mutation' | 'subscription';

/** What each kind of operation needs when its field is not listed below. */
export const DEFAULT_ROLE: Record<RootKind, Role> = {
  query: 'READER',
  mutation: 'WRITER',
  // Subscriptions only listen; one that starts work on the server belongs in FIELD_ROLES.
  subscription: 'READER',
};

/** Mutations whose name says they destroy data are ADMIN-only without being listed. */
export const DESTRUCTIVE_MUTATION = /^(delete|purge|drop|truncate|wipe|destroy)/;

/**
 * The central list of exceptions, `Type.field` → role. Key management is here; deletes are here by
 * name too (they would be ADMIN by DESTRUCTIVE_MUTATION anyway, listing them documents it).
 */
export const FIELD_ROLES: Readonly<Record<string, Role>> = {
  'Query.apiKeys': 'ADMIN',
  'Mutation.createApiKey': 'ADMIN',
  'Mutation.revokeApiKey': 'ADMIN',
  'Mutation.deleteDataset': 'ADMIN',
  'Mutation.deleteModel': 'ADMIN',
  'Mutation.deleteRun': 'ADMIN',
  'Mutation.deleteCheckpoint': 'ADMIN',
};

const ROOT_TYPE: Record<RootKind, string> = { query: 'Query', mutation: 'Mutation', subscription: 'Subscription' };

export interface RoleDecision {
  role: Role;
  /** Why: `listed`, `destructive name`, or `default for <kind>`. */
  reason: string;
}

/** The role a root field needs. Introspection fields (`__schema`, `__type`, `__typename`) need READER. */
export function requiredRole(kind: RootKind, field: string): RoleDecision {
  const listed = FIELD_ROLES[`${ROOT_TYPE[kind]}.${field}`];
  if (listed) return { role: listed, reason: 'listed' };
  if (kind === 'mutation' && DESTRUCTIVE_MUTATION.test(field)) return { role: 'ADMIN', reason: 'destructive name' };
  return { role: DEFAULT_ROLE[kind], reason: `default for ${kind}` };
}

/**
 * Who is calling. `key` is null when the server runs open (loopback, TANGENT_AUTH off) and no key
 * was sent; such a caller has every role, as does the CLI acting on the database directly.
 */
export interface Caller {
  role: Role;
  key: { id: number; name: string } | null;
}

/** The caller of a server that runs open, and of in-process work (CLI, worker). */
export const OPEN_CALLER: Caller = Object.freeze({ role: 'ADMIN', key: null });
