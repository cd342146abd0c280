import type { Database } from '../../platform/db/database.js';

export type ProducerKind = 'CLIENT' | 'SERVER';
export interface ProducerKey {
  kind: ProducerKind;
  backend: string;
  version: string;
}

/** A producer row as the writers take it: its id (the `*_src` columns) and its kind (how a write merges). */
export interface ProducerRef {
  id: number;
  kind: ProducerKind;
}

/** The id of the producer row for (kind, backend, version), if it exists (a read: no row is written or locked). */
export async function findProducer(db: Database, producer: ProducerKey): Promise<number | null> {
  // named: producer.find
  const rows = await db.sql.query<{ id: number }>('SELECT id FROM producer WHERE kind = $1::producer_kind AND backend = $2 AND version = $3', [
    producer.kind,
    producer.backend,
    producer.version,
  ]);
  return rows[0] ? Number(rows[0].id) : null;
}

/**
 * The id of the producer row for (kind, backend, version), created when it does not exist yet, in
 * its own statement: never inside a caller's transaction (so a rolled-back batch cannot leave an id
 * that does not exist, and on PGlite a statement outside an open transaction would wait for it forever).
 */
export async function upsertProducer(db: Database, producer: ProducerKey): Promise<number> {
  // named: producer.upsert
  const rows = await db.sql.query<{ id: number }>(
    `INSERT INTO producer (kind, backend, version) VALUES ($1::producer_kind, $2, $3)
     ON CONFLICT (kind, backend, version) DO UPDATE SET kind = EXCLUDED.kind
     RETURNING id`,
    [producer.kind, producer.backend, producer.version],
  );
  return Number(rows[0]!.id);
}
