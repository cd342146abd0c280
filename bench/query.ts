/**
 * `npm run bench:query -- --json` (the benchmark itself is bench/query-run.ts). graphql-js and
 * Express decide at load time whether they run in development mode (graphql-js then checks every
 * `instanceof` for duplicate module realms, which costs a large part of a 1000-row response), so
 * NODE_ENV is set before anything loads, to measure what production runs: the Docker images set
 * NODE_ENV=production too. An explicit NODE_ENV is respected.
 */
process.env.NODE_ENV ??= 'production';
await import('./query-run.js');
