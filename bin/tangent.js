#!/usr/bin/env node
// The `tangent` CLI. It runs the compiled build (dist/main.js, from `npm run build`, which `npm ci`
// runs through `prepare`) when there is one: nothing to compile at start-up. It runs the TypeScript
// sources through tsx instead when there is no build, with TANGENT_FROM_SOURCE=1, and under
// `node --test` (the test runner sets NODE_TEST_CONTEXT, which the CLI processes that tests spawn
// inherit), so tests always exercise src/ and never a stale dist/. It does not compare dates: after
// editing src/, rebuild or set TANGENT_FROM_SOURCE=1.
import { existsSync } from 'node:fs';

const built = new URL('../dist/main.js', import.meta.url);
const fromSource = process.env.TANGENT_FROM_SOURCE === '1' || process.env.NODE_TEST_CONTEXT !== undefined;

if (!fromSource && existsSync(built)) {
  await import(built.href);
} else {
  // A hint for a person at a terminal only: piped output (serve's JSON logs) stays JSON.
  if (!fromSource && process.stderr.isTTY) process.stderr.write('(running from source; npm run build for a fast start)\n');
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
