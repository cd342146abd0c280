/**
 * The narrow SQL surface Tangent's hand-written queries use, implemented for a real PostgreSQL
 * (node-postgres) and for the embedded PGlite alike, so that bulk paths and named queries run the
 * same text on both. Everything else goes through Prisma.
 */
export interface Sql {
  /** Runs one parameterised statement and returns its rows. */
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
}

/** A single connection: what migrations and advisory locks need. */
export interface Session extends Sql {
  /** Runs a script of several statements without parameters. */
  exec(script: string): Promise<void>;
}

/** `COPY table (columns) FROM STDIN` with rows already encoded as PostgreSQL text format. */
export interface CopyTarget {
  copyFrom(table: string, columns: readonly string[], lines: AsyncIterable<string> | Iterable<string>): Promise<number>;
}

export interface Tx extends Sql, CopyTarget {}

/**
 * Collects parameters and hands out typed placeholders (`$3::real`), for statements assembled as
 * text from fixed fragments: user values only ever travel as parameters. (Curation composes its
 * statements with Prisma's SQL template tag instead: src/modules/curation/query-sql.ts.)
 */
export class SqlParams {
  readonly values: unknown[] = [];

  add(value: unknown, type: 'int' | 'int[]' | 'real' | 'float8' | 'float8[]' | 'text' | 'text[]' | 'boolean'): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}
