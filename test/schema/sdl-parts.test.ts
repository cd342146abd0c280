import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { buildSchema, parse, Kind } from 'graphql';
import { assembleSchema, SDL_PARTS } from '../../src/modules/sdl-parts.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function graphqlFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? graphqlFiles(join(dir, entry.name)) : entry.name.endsWith('.graphql') ? [join(dir, entry.name)] : [],
  );
}

test('the committed schema.graphql is exactly what the modules\u2019 parts assemble to (npm run schema)', () => {
  assert.equal(readFileSync(join(ROOT, 'schema.graphql'), 'utf8'), assembleSchema());
});

test('every SDL file under src/ is a listed part, and each part builds into one valid schema', () => {
  assert.deepEqual(graphqlFiles('src').map((file) => relative(ROOT, join(ROOT, file))).sort(), [...SDL_PARTS].sort());
  const schema = buildSchema(assembleSchema());
  assert.ok(schema.getQueryType()?.getFields().serverInfo);
  assert.ok(schema.getMutationType()?.getFields().createDataset);
  assert.ok(schema.getSubscriptionType()?.getFields().runUpdated);
});

test('a module part defines its own types and only extends the roots and other modules\u2019 types', () => {
  const definedBy = new Map<string, string>();
  for (const part of SDL_PARTS) {
    for (const node of parse(readFileSync(join(ROOT, part), 'utf8')).definitions) {
      if (!('name' in node) || !node.name || node.kind === Kind.DIRECTIVE_DEFINITION) continue;
      if (node.kind.endsWith('Extension')) continue;
      assert.equal(definedBy.get(node.name.value), undefined, `${node.name.value} is defined in ${definedBy.get(node.name.value)} and again in ${part}`);
      definedBy.set(node.name.value, part);
    }
  }
  // The platform's part holds the roots and what every module shares; the roots' fields are the modules'.
  for (const root of ['Query', 'Mutation', 'Subscription', 'PageInfo', 'DeletePayload']) {
    assert.equal(definedBy.get(root), 'src/platform/graphql/base.graphql');
  }
  assert.equal(definedBy.get('Dataset'), 'src/modules/datasets/datasets.graphql');
  assert.equal(definedBy.get('Selection'), 'src/modules/curation/curation.graphql');
});
