import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as urlParse } from 'node:url';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';

/**
 * Middleware as express, cors and body-parser write it, over node's own request and response: the
 * form of every layer of the GraphQL chain (request id, CORS, authentication, body, limits, Apollo),
 * so that one list of layers serves both express (GET and OPTIONS /graphql) and the POST path that
 * bypasses express (`graphqlPostPath`).
 */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => unknown;

/** What an error middleware does with a failure of the chain: express's `(error, req, res, next)`. */
export type ErrorMiddleware = (error: unknown, req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => unknown;

/**
 * Whether a request is a POST to exactly /graphql: nearly every request a server answers. Anything
 * else, including spellings express would also route there (`/graphql/`, `/GraphQL`), goes to
 * express, so no request is answered differently for being off this path.
 */
export function isGraphQLPost(req: IncomingMessage): boolean {
  if (req.method !== 'POST') return false;
  const url = req.url ?? '';
  return url === '/graphql' || url.startsWith('/graphql?');
}

/**
 * Runs `layers` in order on one request, as express's router runs a route's handlers: each layer
 * goes on by calling `next()`; `next(error)`, a throw or a rejected promise goes to `onError` (the
 * app's last error handler, as in express, where no other error middleware sits between). A
 * request that fails after its response started is cut off, as express's final handler does.
 *
 * Why by hand: express's per-request work (its request and response prototypes swapped in, the
 * router's layer walk and path matching, `res.send`'s extras) was a fifth of a small request's CPU
 * time in bench:load's profiles, for a path whose layers are all plain node middleware anyway. This
 * is what Apollo's own standalone server does (`@apollo/server/standalone`: cors and body-parser
 * called in turn on node's request), which exports no handler to reuse.
 */
export function graphqlPostPath(layers: readonly Middleware[], onError: ErrorMiddleware): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    let at = 0;
    const fail = (error: unknown) => {
      try {
        onError(error, req, res, () => res.destroy());
      } catch {
        res.destroy();
      }
    };
    const next = (error?: unknown): void => {
      if (error !== undefined && error !== null) return fail(error);
      const layer = layers[at++];
      if (!layer) return;
      try {
        const result = layer(req, res, next);
        if (result instanceof Promise) result.catch((rejection: unknown) => next(rejection ?? new Error('Rejected promise')));
      } catch (thrown) {
        fail(thrown);
      }
    };
    next();
  };
}

/**
 * Apollo Server on node's request and response: the request as `@as-integrations/express5` builds
 * it (headers, method, query string, the parsed body), the answer written as express's `res.send`
 * writes a string (the same headers, with a Content-Length), incremental delivery chunk by chunk.
 * The body must have been read (body-parser) before.
 */
export function apolloHandler<C extends BaseContext>(apollo: ApolloServer<C>, context: (req: IncomingMessage, res: ServerResponse) => Promise<C>): Middleware {
  apollo.assertStarted('apolloHandler()');
  return async (req, res) => {
    const headers = new HeaderMap();
    for (const key in req.headers) {
      const value = req.headers[key];
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const url = req.url ?? '';
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: {
        method: req.method!.toUpperCase(),
        headers,
        search: url.includes('?') ? (urlParse(url).search ?? '') : '',
        body: (req as { body?: unknown }).body,
      },
      context: () => context(req, res),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status || 200;
    if (response.body.kind === 'complete') {
      const text = response.body.string;
      // What express's res.send does with a string: a Content-Type (Apollo's, else HTML), a Content-Length.
      const type = res.getHeader('content-type');
      res.setHeader('Content-Type', typeof type === 'string' ? type : 'text/html; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(text));
      res.end(text);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };
}
