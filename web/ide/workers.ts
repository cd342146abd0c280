/**
 * Monaco (the editor inside GraphiQL 5) runs its language services in web workers. Imported with
 * Vite's `?worker` suffix, each worker is bundled into its own file next to the page, so the IDE
 * loads them from the server's origin and never from a CDN (graphiql's own `setup-workers/vite`
 * does the same, but logs every worker it starts).
 */
import EditorWorker from 'monaco-editor/esm/vs/editor/editor.worker.js?worker';
import JsonWorker from 'monaco-editor/esm/vs/language/json/json.worker.js?worker';
import GraphQLWorker from 'monaco-graphql/esm/graphql.worker.js?worker';

// Monaco looks this global up the first time it needs a worker; set it before any editor mounts.
(globalThis as { MonacoEnvironment?: unknown }).MonacoEnvironment = {
  getWorker(_workerId: string, label: string): Worker {
    if (label === 'json') return new JsonWorker();
    if (label === 'graphql') return new GraphQLWorker();
    return new EditorWorker();
  },
};
