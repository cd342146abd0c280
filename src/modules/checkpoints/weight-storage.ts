import type { Database } from '../../platform/db/database.js';
import type { Sql, Tx } from '../../platform/db/sql.js';
import { layerOfWeight, weightByteLength } from './layer-hashes.js';

/**
 * Checkpoint weights stored by layer, each distinct layer once (tables weight_layer and
 * checkpoint_layer). A fine-tuning that freezes the trunk of an 8M-parameter model changes a few
 * kilobytes per checkpoint; storing every checkpoint whole wrote (and read back) 32 MB per analysis
 * point. A checkpoint's bytes are its layers' bytes put back in spec order; checkpoints stored
 * before layers were shared keep their buffer inline in checkpoint_weights.data and read as before.
 */

/** A weight spec as stored ({name, shape, dtype}); its bytes follow the previous spec's. */
export interface WeightSpec {
  name: string;
  shape: readonly number[];
  dtype: string;
}

/** A checkpoint's weights: specs, the whole buffer, and the hash of each layer (null for a legacy row not hashed yet). */
export interface CheckpointWeightsRow {
  specs: WeightSpec[];
  data: Uint8Array;
  layerHashes: Record<string, string> | null;
}

function byteLength(spec: WeightSpec): number {
  const bytes = weightByteLength(spec);
  if (!Number.isInteger(bytes)) throw new Error(`weight ${spec.name}: unknown dtype ${spec.dtype}`);
  return bytes;
}

/** How many bytes each layer's weights hold, by layer name. */
export function layerSizesOf(specs: readonly WeightSpec[]): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const spec of specs) {
    const layer = layerOfWeight(spec.name);
    sizes.set(layer, (sizes.get(layer) ?? 0) + byteLength(spec));
  }
  return sizes;
}

/** Each layer's bytes (its weights in spec order, concatenated), by layer name. */
export function layerBytesOf(specs: readonly WeightSpec[], data: Uint8Array): Map<string, Uint8Array> {
  const parts = new Map<string, Uint8Array[]>();
  let offset = 0;
  for (const spec of specs) {
    const bytes = byteLength(spec);
    const layer = layerOfWeight(spec.name);
    if (!parts.has(layer)) parts.set(layer, []);
    parts.get(layer)!.push(data.subarray(offset, offset + bytes));
    offset += bytes;
  }
  if (offset !== data.byteLength) throw new Error(`the specs describe ${offset} bytes but the checkpoint holds ${data.byteLength}`);
  return new Map([...parts].map(([layer, p]) => [layer, p.length === 1 ? p[0]! : Buffer.concat(p)]));
}

/** The checkpoint's buffer put back together from its layers' bytes, in spec order. */
export function assembleWeights(specs: readonly WeightSpec[], layers: ReadonlyMap<string, Uint8Array>): Buffer {
  const total = specs.reduce((sum, s) => sum + byteLength(s), 0);
  const out = Buffer.allocUnsafe(total);
  const cursor = new Map<string, number>();
  let offset = 0;
  for (const spec of specs) {
    const layer = layerOfWeight(spec.name);
    const bytes = layers.get(layer);
    if (!bytes) throw new Error(`layer ${layer} of weight ${spec.name} is not stored`);
    const at = cursor.get(layer) ?? 0;
    const n = byteLength(spec);
    if (at + n > bytes.byteLength) throw new Error(`layer ${layer} holds fewer bytes than its weights need`);
    out.set(bytes.subarray(at, at + n), offset);
    cursor.set(layer, at + n);
    offset += n;
  }
  for (const [layer, at] of cursor) if (at !== layers.get(layer)!.byteLength) throw new Error(`layer ${layer} holds more bytes than its weights need`);
  return out;
}

/**
 * Stores a checkpoint's weights inside the caller's transaction: its specs and layer hashes, and
 * the bytes of each layer no checkpoint stored before. Returns how many layers and bytes were new.
 * The checkpoint row must exist. Raw SQL: the embedded adapter's Prisma cannot bind bytea.
 */
export async function storeWeights(
  tx: Tx,
  checkpointId: number,
  weights: { specs: readonly WeightSpec[]; data: Uint8Array; layerHashes: Record<string, string> },
): Promise<{ layers: number; bytes: number }> {
  const layers = layerBytesOf(weights.specs, weights.data);
  const names = [...layers.keys()];
  const hashes = names.map((layer) => {
    const hash = weights.layerHashes[layer];
    if (!hash) throw new Error(`layer ${layer} has no hash`);
    return hash;
  });
  // ROW EXCLUSIVE for the whole transaction: purgeUnusedLayers (SHARE ROW EXCLUSIVE) cannot delete a
  // layer between the read below that finds it stored and the commit that names it.
  // named: weightLayer.lockForWrite
  await tx.query('LOCK TABLE weight_layer IN ROW EXCLUSIVE MODE');
  // named: weightLayer.present
  const present = new Set(
    (await tx.query<{ hash: string }>('SELECT hash FROM weight_layer WHERE hash = ANY($1::text[])', [hashes])).map((r) => r.hash),
  );
  let newBytes = 0;
  let newLayers = 0;
  for (let i = 0; i < names.length; i++) {
    if (present.has(hashes[i]!)) continue;
    const bytes = layers.get(names[i]!)!;
    // One statement per new layer: the first checkpoint of a model writes them all, later ones a few.
    // ON CONFLICT: another transaction may be storing the same layer right now.
    // named: weightLayer.insert
    await tx.query('INSERT INTO weight_layer (hash, data) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING', [hashes[i], Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
    present.add(hashes[i]!);
    newBytes += bytes.byteLength;
    newLayers++;
  }
  // named: checkpointWeights.insert
  await tx.query('INSERT INTO checkpoint_weights (checkpoint_id, specs, data, layer_hashes) VALUES ($1, $2::jsonb, NULL, $3::jsonb)', [
    checkpointId,
    JSON.stringify(weights.specs),
    JSON.stringify(weights.layerHashes),
  ]);
  // named: checkpointLayer.insert
  await tx.query('INSERT INTO checkpoint_layer (checkpoint_id, layer, hash) SELECT $1, * FROM unnest($2::text[], $3::text[])', [checkpointId, names, hashes]);
  return { layers: newLayers, bytes: newBytes };
}

/** A checkpoint's specs and layer hashes, without its bytes; null when it has no weights. */
export async function readWeightIndex(sql: Sql, checkpointId: number): Promise<{ specs: WeightSpec[]; layerHashes: Record<string, string> | null; inline: boolean } | null> {
  // named: checkpointWeights.index
  const [row] = await sql.query<{ specs: WeightSpec[]; layer_hashes: Record<string, string> | null; inline: boolean }>(
    'SELECT specs, layer_hashes, data IS NOT NULL AS inline FROM checkpoint_weights WHERE checkpoint_id = $1',
    [checkpointId],
  );
  return row ? { specs: row.specs, layerHashes: row.layer_hashes, inline: row.inline } : null;
}

/** The stored bytes of these layers, by hash (missing hashes are absent). */
export async function readLayers(sql: Sql, hashes: readonly string[]): Promise<Map<string, Uint8Array>> {
  if (hashes.length === 0) return new Map();
  // named: weightLayer.read
  const rows = await sql.query<{ hash: string; data: Uint8Array }>('SELECT hash, data FROM weight_layer WHERE hash = ANY($1::text[])', [[...new Set(hashes)]]);
  return new Map(rows.map((r) => [r.hash, r.data]));
}

/** A checkpoint's whole weights, or null when it has none. */
export async function readWeights(sql: Sql, checkpointId: number): Promise<CheckpointWeightsRow | null> {
  const index = await readWeightIndex(sql, checkpointId);
  if (!index) return null;
  if (index.inline) {
    // named: checkpointWeights.inline
    const [row] = await sql.query<{ data: Uint8Array }>('SELECT data FROM checkpoint_weights WHERE checkpoint_id = $1', [checkpointId]);
    if (row) return { specs: index.specs, data: row.data, layerHashes: index.layerHashes };
    return null;
  }
  const hashes = index.layerHashes;
  if (!hashes) throw new Error(`checkpoint ${checkpointId} has neither inline weights nor layer hashes`);
  const byHash = await readLayers(sql, Object.values(hashes));
  const layers = new Map<string, Uint8Array>();
  for (const [layer, hash] of Object.entries(hashes)) {
    const data = byHash.get(hash);
    if (!data) throw new Error(`checkpoint ${checkpointId}: layer ${layer} (${hash.slice(0, 12)}) is not stored`);
    layers.set(layer, data);
  }
  return { specs: index.specs, data: assembleWeights(index.specs, layers), layerHashes: hashes };
}

/**
 * Deletes the stored layers no checkpoint names any more; how many. Called after the deletes that
 * can free layers (a checkpoint, a run's, a model's or a dataset's), in a transaction of its own:
 * SHARE ROW EXCLUSIVE waits for the transactions storing weights now (storeWeights) and keeps new
 * ones out until it commits, so no layer is deleted that a checkpoint is about to name.
 */
export async function purgeUnusedLayers(db: Database): Promise<number> {
  return db.transaction(async (tx) => {
    // named: weightLayer.lockForPurge
    await tx.query('LOCK TABLE weight_layer IN SHARE ROW EXCLUSIVE MODE');
    // named: weightLayer.purge
    const rows = await tx.query('DELETE FROM weight_layer w WHERE NOT EXISTS (SELECT 1 FROM checkpoint_layer c WHERE c.hash = w.hash) RETURNING 1');
    return rows.length;
  });
}
