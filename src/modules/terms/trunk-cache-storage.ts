import type { Database } from '../../platform/db/database.js';

/** Every statement of the frozen-trunk cache (table trunk_feature; src/modules/terms/trunk-cache.ts). */

/**
 * The stored features of these samples under one trunk, marking them used now (the bound evicts the
 * least recently used first). Samples without a row are left out.
 */
export async function takeTrunkFeatures(db: Database, modelId: number, trunk: string, sampleIds: readonly number[]): Promise<Map<number, Uint8Array>> {
  if (sampleIds.length === 0) return new Map();
  // named: trunkFeature.take
  const rows = await db.sql.query<{ sample_id: number; features: Uint8Array }>(
    'UPDATE trunk_feature SET used_at = now() WHERE model_id = $1 AND trunk = $2 AND sample_id = ANY($3::int[]) RETURNING sample_id, features',
    [modelId, trunk, sampleIds],
  );
  return new Map(rows.map((r) => [Number(r.sample_id), r.features]));
}

/**
 * Stores the features of these samples (`features` holds one row of `rowBytes` bytes per sample, in
 * the order of `sampleIds`); a row another process stored first is kept.
 */
export async function putTrunkFeatures(db: Database, modelId: number, trunk: string, sampleIds: readonly number[], features: Uint8Array, rowBytes: number): Promise<void> {
  if (sampleIds.length === 0) return;
  // One bytea split by offset rather than a bytea[] parameter: both drivers bind a plain bytea alike.
  // named: trunkFeature.put
  await db.sql.query(
    `INSERT INTO trunk_feature (model_id, trunk, sample_id, features, bytes)
     SELECT $1::int, $2::text, t.id, substring($4::bytea FROM ((t.i - 1) * $5::int + 1)::int FOR $5::int), $5::int
     FROM unnest($3::int[]) WITH ORDINALITY AS t(id, i)
     ON CONFLICT (model_id, trunk, sample_id) DO NOTHING`,
    [modelId, trunk, sampleIds, Buffer.from(features.buffer, features.byteOffset, features.byteLength), rowBytes],
  );
}

/** Deletes the least recently used rows until the table holds at most `capacityBytes` of features; how many went. */
export async function evictTrunkFeatures(db: Database, capacityBytes: number): Promise<number> {
  // named: trunkFeature.evict
  const rows = await db.sql.query<{ n: number }>(
    `WITH ranked AS (
       SELECT model_id, trunk, sample_id, sum(bytes) OVER (ORDER BY used_at DESC, model_id, trunk, sample_id) AS kept FROM trunk_feature
     ), gone AS (
       DELETE FROM trunk_feature f USING ranked r
       WHERE r.kept > $1 AND f.model_id = r.model_id AND f.trunk = r.trunk AND f.sample_id = r.sample_id
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM gone`,
    [capacityBytes],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Rows and bytes of features held now. */
export async function trunkFeatureTotals(db: Database): Promise<{ entries: number; bytes: number }> {
  // named: trunkFeature.totals
  const [row] = await db.sql.query<{ entries: number; bytes: number }>('SELECT count(*)::int AS entries, coalesce(sum(bytes), 0)::float8 AS bytes FROM trunk_feature');
  return { entries: Number(row?.entries ?? 0), bytes: Number(row?.bytes ?? 0) };
}

/** Empties the cache; the rows deleted. */
export async function purgeTrunkFeatures(db: Database): Promise<number> {
  // named: trunkFeature.purge
  const rows = await db.sql.query<{ n: number }>('WITH gone AS (DELETE FROM trunk_feature RETURNING 1) SELECT count(*)::int AS n FROM gone');
  return Number(rows[0]?.n ?? 0);
}
