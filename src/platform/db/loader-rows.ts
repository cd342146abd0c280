/**
 * What every module's batch loader does with the rows of one `WHERE key = ANY(...)` statement:
 * DataLoader wants one answer per key, in the order of the keys.
 */

/** Returns `rows` in the order of `keys` (null where absent), as DataLoader requires. */
export function byKey<K, R>(keys: readonly K[], rows: R[], keyOf: (row: R) => K): (R | null)[] {
  const map = new Map<K, R>();
  for (const row of rows) map.set(keyOf(row), row);
  return keys.map((key) => map.get(key) ?? null);
}

/** Counts per foreign key, zero where a key has no rows. */
export function countsByKey<K>(keys: readonly K[], rows: { key: K; count: number }[]): number[] {
  const map = new Map(rows.map((row) => [row.key, row.count]));
  return keys.map((key) => map.get(key) ?? 0);
}
