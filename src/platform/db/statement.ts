import { Prisma } from './generated/client.js';

/**
 * Statements assembled from fragments, with Prisma's SQL template tag (`Prisma.sql`, `join`, `raw`,
 * `empty`: sql-template-tag, re-exported by the generated client, so no other dependency). A
 * `Statement` carries its text with `$n` placeholders (`.text`) and its values in the same order
 * (`.values`); storage files run it as plain SQL (`sql.query(statement.text, statement.values)`),
 * never through Prisma's query engine. User values only enter through `param`, as bound parameters;
 * `raw` is for fixed text (table and column names from fixed lists, keywords, aliases).
 */
export type Statement = Prisma.Sql;

export const { sql, join, raw, empty } = Prisma;

/** The types a parameter is cast to. */
export type ParamType = 'int' | 'int[]' | 'real' | 'float8' | 'float8[]' | 'text' | 'text[]' | 'boolean';

/** A bound parameter with its type cast (`$3::real`): the only way a value enters a statement. */
export function param(value: unknown, type: ParamType): Statement {
  return new Prisma.Sql(['', `::${type}`], [value]);
}

/** `a AND b AND …` (at least one condition). */
export function and(conditions: readonly Statement[]): Statement {
  return join(conditions, ' AND ');
}

/**
 * Text to match literally inside a LIKE or ILIKE pattern: PostgreSQL's default escape character,
 * the backslash, before each `%`, `_` and backslash (a name search for "a_b" must not find "axb").
 * Prisma's `contains` does not escape them (prisma/prisma#19506), so its callers escape too.
 */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
