import { readFileSync } from 'node:fs';

/** Tangent's version, from package.json: recorded with every value it computes. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
