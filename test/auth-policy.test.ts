import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DESTRUCTIVE_MUTATION, FIELD_ROLES, requiredRole, type RootKind } from '../src/platform/auth/roles.js';
import { buildSchema } from '../src/modules/schema.js';

/**
 * The role policy against the schema as it is now, whoever added the fields: every root field has
 * a decision, every mutation needs at least WRITER, anything destructive or about keys needs ADMIN,
 * and the central list names no field that does not exist (a rename would silently drop a rule).
 */
describe('role policy covers the whole schema', () => {
  const schema = buildSchema();
  const roots: [RootKind, ReturnType<typeof schema.getQueryType>][] = [
    ['query', schema.getQueryType()],
    ['mutation', schema.getMutationType()],
    ['subscription', schema.getSubscriptionType()],
  ];

  test('every Query, Mutation and Subscription field has a role decision', (t) => {
    const table: string[] = [];
    for (const [kind, type] of roots) {
      for (const field of Object.keys(type?.getFields() ?? {})) {
        const decision = requiredRole(kind, field);
        assert.ok(['READER', 'WRITER', 'ADMIN'].includes(decision.role), `${type!.name}.${field}`);
        if (kind === 'mutation') assert.notEqual(decision.role, 'READER', `Mutation.${field} writes, so needs WRITER at least`);
        table.push(`${type!.name}.${field}: ${decision.role} (${decision.reason})`);
      }
    }
    for (const line of table) t.diagnostic(line);
    assert.ok(table.length > 10);
  });

  test('deletes and key management are ADMIN-only', () => {
    for (const field of Object.keys(schema.getMutationType()!.getFields())) {
      if (DESTRUCTIVE_MUTATION.test(field) || /ApiKey/.test(field)) assert.equal(requiredRole('mutation', field).role, 'ADMIN', `Mutation.${field}`);
    }
    for (const field of Object.keys(schema.getQueryType()!.getFields())) {
      if (/apiKey/i.test(field)) assert.equal(requiredRole('query', field).role, 'ADMIN', `Query.${field}`);
    }
    // A mutation added later with a destructive name is covered without being listed.
    assert.equal(requiredRole('mutation', 'deleteSelection').role, 'ADMIN');
    assert.equal(requiredRole('mutation', 'purgeJobs').role, 'ADMIN');
    assert.equal(requiredRole('mutation', 'computeTerms').role, 'WRITER');
    assert.equal(requiredRole('query', 'topSamples').role, 'READER');
  });

  test('FIELD_ROLES names only fields that exist', () => {
    for (const name of Object.keys(FIELD_ROLES)) {
      const [typeName, field] = name.split('.') as [string, string];
      const type = schema.getType(typeName) as { getFields?: () => Record<string, unknown> } | undefined;
      assert.ok(type?.getFields?.()[field], `${name} is in FIELD_ROLES but not in the schema`);
    }
  });
});
