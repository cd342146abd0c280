import { createContext, useContext } from 'react';
import type { Role } from './gql/graphql';

/** Who the Explorer is talking to the server as: from `viewer`, refreshed when the key changes. */
export interface Session {
  key: string;
  setKey(key: string): void;
  /** null while unknown (loading, or refused for want of a key). */
  role: Role | null;
  canCompute: boolean;
  authRequired: boolean;
  /** The server refused the request for want of a (valid) key. */
  needsKey: boolean;
}

export const SessionContext = createContext<Session>({
  key: '',
  setKey: () => undefined,
  role: null,
  canCompute: false,
  authRequired: false,
  needsKey: false,
});

export const useSession = (): Session => useContext(SessionContext);

/** Whether write controls (forms that start jobs, save selections) are shown: a READER sees none. */
export function useCanWrite(): boolean {
  const { role } = useSession();
  return role === 'WRITER' || role === 'ADMIN';
}
