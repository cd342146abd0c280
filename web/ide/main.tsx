/**
 * Tangent's GraphQL IDE: GraphiQL 5 with the explorer plugin, query history and the headers editor
 * (where a user sets `authorization: Bearer …`), talking to the server that served the page:
 * queries and mutations over HTTP POST, subscriptions over graphql-ws on the same /graphql.
 */
import './workers.js';
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';

const endpoint = new URL('/graphql', window.location.href);
const subscriptionUrl = new URL(endpoint);
subscriptionUrl.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';

// Headers typed in the headers editor go with every HTTP request, and as connectionParams when the
// WebSocket for subscriptions opens (the server reads `authorization` from either).
const fetcher = createGraphiQLFetcher({ url: endpoint.href, subscriptionUrl: subscriptionUrl.href });
const plugins = [explorerPlugin()];

const defaultQuery = `# Tangent's GraphQL API. Ctrl-Enter runs the query; the explorer (left) builds one by clicking.
# With API keys on, set {"authorization": "Bearer <key>"} in Headers below.
{
  serverInfo {
    version
  }
}
`;

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} plugins={plugins} defaultQuery={defaultQuery} isHeadersEditorEnabled />
  </StrictMode>,
);
