import { useEffect, useMemo, useState, type ReactNode } from 'react';
import { Provider, useQuery } from 'urql';
import { Link, Route, Router, Switch } from 'wouter';
import { createExplorerClient, isUnauthenticated, storedKey, storeKey } from './client';
import { ApiKeyEntry } from './components/api-key';
import { graphql } from './gql';
import { hashHref, useHashPath, useHashSearch } from './hash-location';
import { CheckpointPage } from './pages/checkpoint';
import { HomePage } from './pages/home';
import { JobsPage } from './pages/jobs';
import { RunPage } from './pages/run';
import { SamplePage } from './pages/sample';
import { SelectionsPage } from './pages/selections';
import { SessionContext, type Session } from './session';

/**
 * The Explorer's shell: the header bar (navigation, the server, the API key), the session (who the
 * key makes us), and the hash routes of every page. Pages are one file each under pages/.
 */

const ViewerQuery = graphql(`
  query Viewer {
    viewer {
      role
      authRequired
      canCompute
    }
    serverInfo {
      version
      database
    }
  }
`);


function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>
        No page here. <Link href="/">Home</Link>
      </p>
    </section>
  );
}

function Shell({ children }: { children: ReactNode }) {
  return (
    <>
      <a className="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header className="bar">
        <Link href="/" className="brand">
          Tangent Explorer
        </Link>
        <nav aria-label="Pages">
          <Link href="/">Home</Link>
          <Link href="/selections">Selections</Link>
          <Link href="/jobs">Jobs</Link>
          <a href="/graphql">GraphQL IDE</a>
        </nav>
        <ApiKeyEntry />
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}

function Routes() {
  return (
    <Switch>
      <Route path="/" component={HomePage} />
      <Route path="/runs/:id">{(params) => <RunPage key={params.id} id={params.id} />}</Route>
      <Route path="/checkpoints/:id">{(params) => <CheckpointPage key={params.id} id={params.id} />}</Route>
      <Route path="/samples/:id">{(params) => <SamplePage key={params.id} id={params.id} />}</Route>
      <Route path="/selections" component={SelectionsPage} />
      <Route path="/jobs" component={JobsPage} />
      <Route component={NotFound} />
    </Switch>
  );
}

/** Asks who we are with the current key and provides the session to every page. */
function SessionProvider({ sessionKey, setKey, refused, children }: { sessionKey: string; setKey(key: string): void; refused: boolean; children: ReactNode }) {
  const [{ data, error }] = useQuery({ query: ViewerQuery });
  const session: Session = {
    key: sessionKey,
    setKey,
    role: data?.viewer.role ?? null,
    canCompute: data?.viewer.canCompute ?? false,
    authRequired: data?.viewer.authRequired ?? isUnauthenticated(error),
    needsKey: isUnauthenticated(error) || refused,
  };
  return (
    <SessionContext.Provider value={session}>
      <Shell>
        {session.needsKey ? (
          <section>
            <h1>API key needed</h1>
            <p>This server requires an API key: enter one in the bar above.</p>
          </section>
        ) : (
          children
        )}
      </Shell>
      <footer className="muted">
        {data && (
          <span data-testid="server-info">
            Tangent {data.serverInfo.version} · {data.serverInfo.database}
          </span>
        )}
      </footer>
    </SessionContext.Provider>
  );
}

export function App() {
  const [key, setKeyState] = useState(storedKey);
  // Any request refused for want of a valid key (a key revoked while the page is open, say) asks for one.
  const [refused, setRefused] = useState(false);
  const setKey = (next: string) => {
    storeKey(next);
    setKeyState(next);
    setRefused(false);
  };
  // A new key is a new client: its cache and its WebSocket belong to the old caller.
  const explorer = useMemo(() => createExplorerClient(key, () => setRefused(true)), [key]);
  useEffect(() => () => explorer.dispose(), [explorer]);

  return (
    <Provider value={explorer.client}>
      <Router hook={useHashPath} searchHook={useHashSearch} hrefs={hashHref}>
        <SessionProvider sessionKey={key} setKey={setKey} refused={refused}>
          <Routes />
        </SessionProvider>
      </Router>
    </Provider>
  );
}
