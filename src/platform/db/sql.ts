/**
 * The narrow SQL surface Tangent's hand-written queries use, implemented for a real PostgreSQL
 * (node-postgres) and for the embedded PGlite alike, so that bulk paths and named queries run the
 * same text on both. Only storage files use it (and Prisma); statements assembled from fragments
 * are composed with the SQL template tag of src/platform/db/statement.ts.
 */
export interface Sql {
  /** Runs one parameterised statement and returns its rows. */
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
  /**
   * The same, each row an array in the order of the SELECT list, with the column names: the driver
   * builds no object per row (large pages, exports). With `text: true` the values are not parsed:
   * each is PostgreSQL's own text for it (null stays null), for callers that write text anyway.
   */
  queryArrays(text: string, params?: readonly unknown[], options?: { text?: boolean }): Promise<ArrayRows>;
}

/** Rows as arrays, in the order of `columns`. */
export interface ArrayRows {
  columns: string[];
  rows: unknown[][];
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
