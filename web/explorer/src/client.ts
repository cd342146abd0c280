import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from 'urql';

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

export function createExplorerClient(key: string): ExplorerClient {
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
