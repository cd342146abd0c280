/**
 * `npm run schema`: writes schema.graphql, the public contract, from the modules' SDL parts
 * (src/modules/sdl-parts.ts lists them, in order). `npm run schema -- --check` writes nothing and
 * fails when the committed file differs from what the parts make; both fail when the parts do not
 * build a valid schema. CI runs the check before regenerating the resolver types from schema.graphql.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { assembleSchema } from '../src/modules/sdl-parts.js';

const target = new URL('../schema.graphql', import.meta.url);
const assembled = assembleSchema();

// A part that does not parse, or a field whose type no part defines, fails here, not at start-up.
buildSchema(assembled);

if (process.argv.includes('--check')) {
  if (readFileSync(target, 'utf8') !== assembled) {
    console.error('schema.graphql differs from its parts (src/**/*.graphql): run `npm run schema` and commit the result.');
    process.exit(1);
  }
} else {
  writeFileSync(target, assembled);
}
