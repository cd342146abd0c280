#!/usr/bin/env node
// The `tangent` CLI. Tangent runs its TypeScript sources through tsx, so there is no build step
// between a checkout and a running server.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
