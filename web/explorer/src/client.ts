import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange, type CombinedError } from 'urql';

/**
 * The Explorer's GraphQL client: urql over HTTP POST for queries and mutations, graphql-ws on the same
 * /graphql for subscriptions (src/platform/http/graphql-ws.ts), both carrying the API key when one
 * is set: `Authorization: Bearer <key>` on HTTP, `authorization` in the WebSocket's connectionParams.
 * urql's document cache refetches the queries that hold a type a mutation returns (a queued job
 * refreshes the job list).
 */

const KEY_STORAGE = 'tangent.apiKey';

export function storedKey(): string {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

export function storeKey(key: string): void {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage refused (private mode): the key lasts as long as the page.
  }
}

export interface ExplorerClient {
  client: Client;
  /** Closes the WebSocket (when the key changes, a new client is made). */
  dispose(): void;
}

/** The server refused the request for want of a valid key (HTTP 401, UNAUTHENTICATED). */
export function isUnauthenticated(error: CombinedError | undefined): boolean {
  if (!error) return false;
  return error.response?.status === 401 || error.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED');
}

/**
 * `onUnauthenticated` is called when any operation is refused for want of a valid key (none given, or
 * one revoked since the page loaded), so the header bar can ask for one whichever page made the request.
 */
export function createExplorerClient(key: string, onUnauthenticated: () => void = () => undefined): ExplorerClient {
  const endpoint = new URL('/graphql', window.location.href);
  const wsUrl = new URL(endpoint);
  wsUrl.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
  const authorization = key ? `Bearer ${key}` : undefined;

  let ws: WsClient | undefined;
  const websocket = () =>
    (ws ??= createWsClient({
      url: wsUrl.href,
      lazy: true,
      connectionParams: authorization ? { authorization } : {},
      retryAttempts: 5,
    }));

  const client = new Client({
    url: endpoint.href,
    // POST always: Apollo's CSRF prevention refuses a simple GET, and GET /graphql from a browser is the IDE.
    preferGetMethod: false,
    fetchOptions: (): RequestInit => ({ headers: authorization ? { authorization } : {} }),
    exchanges: [
      mapExchange({
        onError(error) {
          if (isUnauthenticated(error)) onUnauthenticated();
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const unsubscribe = websocket().subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, dispose: () => void ws?.dispose() };
}
