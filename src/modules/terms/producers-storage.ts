import type { Database } from '../../platform/db/database.js';

export type ProducerKind = 'CLIENT' | 'SERVER';
export interface ProducerKey {
  kind: ProducerKind;
  backend: string;
  version: string;
}

/** The client producer: every value a training script recorded. */
export const CLIENT_PRODUCER: ProducerKey = { kind: 'CLIENT', backend: '', version: '' };

const cache = new WeakMap<Database, Map<string, number>>();

/**
 * The id of the producer row for (kind, backend, version), created on first use in its own
 * statement, outside any caller's transaction (so a rolled-back batch cannot leave a cached id that
 * does not exist). Producers are never deleted, so ids are cached per database.
 */
export async function producerId(db: Database, producer: ProducerKey): Promise<number> {
  let ids = cache.get(db);
  if (!ids) cache.set(db, (ids = new Map()));
  const key = `${producer.kind}/${producer.backend}/${producer.version}`;
  const cached = ids.get(key);
  if (cached !== undefined) return cached;
  // named: producer.upsert
  const rows = await db.sql.query<{ id: number }>(
    `INSERT INTO producer (kind, backend, version) VALUES ($1::producer_kind, $2, $3)
     ON CONFLICT (kind, backend, version) DO UPDATE SET kind = EXCLUDED.kind
     RETURNING id`,
    [producer.kind, producer.backend, producer.version],
  );
  const id = Number(rows[0]!.id);
  ids.set(key, id);
  return id;
}
