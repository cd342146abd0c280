-- DropIndex
DROP INDEX "sample_cross_metric_checkpoint_id_target_key_k_cross_idx";

-- AlterTable
ALTER TABLE "sample_cross_metric" DROP CONSTRAINT "sample_cross_metric_pkey",
ADD COLUMN     "subset" TEXT NOT NULL DEFAULT 'all',
ADD CONSTRAINT "sample_cross_metric_pkey" PRIMARY KEY ("checkpoint_id", "target_key", "subset", "sample_id");

-- AlterTable
ALTER TABLE "compute_job" ADD COLUMN     "subset" TEXT NOT NULL DEFAULT 'all';

-- CreateTable
CREATE TABLE "sample_subset_metric" (
    "checkpoint_id" INTEGER NOT NULL,
    "subset" TEXT NOT NULL,
    "sample_id" INTEGER NOT NULL,
    "k_norm" REAL,
    "k_norm_src" SMALLINT,
    "k_trace" REAL,
    "k_trace_src" SMALLINT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sample_subset_metric_pkey" PRIMARY KEY ("checkpoint_id","subset","sample_id")
);

-- CreateIndex
CREATE INDEX "sample_subset_metric_checkpoint_id_subset_k_norm_idx" ON "sample_subset_metric"("checkpoint_id", "subset", "k_norm" DESC);

-- CreateIndex
CREATE INDEX "sample_subset_metric_sample_id_idx" ON "sample_subset_metric"("sample_id");

-- CreateIndex
CREATE INDEX "sample_cross_metric_checkpoint_id_target_key_subset_k_cross_idx" ON "sample_cross_metric"("checkpoint_id", "target_key", "subset", "k_cross" DESC);

-- AddForeignKey
ALTER TABLE "sample_subset_metric" ADD CONSTRAINT "sample_subset_metric_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sample_subset_metric" ADD CONSTRAINT "sample_subset_metric_sample_id_fkey" FOREIGN KEY ("sample_id") REFERENCES "sample"("id") ON DELETE CASCADE ON UPDATE CASCADE;



-- ---------------------------------------------------------------------------------------------
-- Written by hand (Prisma does not model triggers): coverage counters for the kernel terms over a
-- named parameter subset, as the curation migration keeps them for sample_metric and
-- sample_cross_metric. sample_subset_metric counts as `k_norm@<subset>` and `k_trace@<subset>`;
-- kCross over a subset as `k_cross@<subset>:<targetKey>`, over all parameters as before
-- (`k_cross:<targetKey>`), so the counters of data stored before this migration stay right.

CREATE FUNCTION tangent_sample_subset_metric_coverage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  deltas jsonb;
BEGIN
  EXECUTE format($q$
    WITH r AS (%s), counted AS (
      SELECT checkpoint_id, subset, sum(sign * (k_norm IS NOT NULL)::int) k_norm, sum(sign * (k_trace IS NOT NULL)::int) k_trace
      FROM r GROUP BY checkpoint_id, subset
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('c', c.checkpoint_id, 't', x.term, 'n', x.n)), '[]')
    FROM counted c CROSS JOIN LATERAL (VALUES ('k_norm@' || c.subset, c.k_norm), ('k_trace@' || c.subset, c.k_trace)) x(term, n)
    WHERE x.n <> 0$q$, tangent_signed_rows(TG_OP)) INTO deltas;
  PERFORM tangent_apply_coverage(deltas);
  RETURN NULL;
END $$;

CREATE TRIGGER sample_subset_metric_coverage_insert AFTER INSERT ON sample_subset_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_subset_metric_coverage();
CREATE TRIGGER sample_subset_metric_coverage_update AFTER UPDATE ON sample_subset_metric
  REFERENCING OLD TABLE AS tangent_old_rows NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_subset_metric_coverage();
CREATE TRIGGER sample_subset_metric_coverage_delete AFTER DELETE ON sample_subset_metric
  REFERENCING OLD TABLE AS tangent_old_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_subset_metric_coverage();

CREATE OR REPLACE FUNCTION tangent_sample_cross_metric_coverage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  deltas jsonb;
BEGIN
  EXECUTE format($q$
    WITH r AS (%s), counted AS (
      SELECT checkpoint_id, 'k_cross' || CASE WHEN subset = 'all' THEN '' ELSE '@' || subset END || ':' || target_key AS term, sum(sign) AS n
      FROM r GROUP BY 1, 2
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('c', checkpoint_id, 't', term, 'n', n)), '[]')
    FROM counted WHERE n <> 0$q$, tangent_signed_rows(TG_OP)) INTO deltas;
  PERFORM tangent_apply_coverage(deltas);
  RETURN NULL;
END $$;
