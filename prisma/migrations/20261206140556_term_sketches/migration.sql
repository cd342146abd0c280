-- CreateTable
CREATE TABLE "term_sketch" (
    "checkpoint_id" INTEGER NOT NULL,
    "term" TEXT NOT NULL,
    "subset" TEXT NOT NULL,
    "target_key" TEXT NOT NULL DEFAULT '',
    "label" INTEGER NOT NULL,
    "epoch" BIGINT NOT NULL,
    "count" INTEGER NOT NULL,
    "mean" DOUBLE PRECISION,
    "stddev" DOUBLE PRECISION,
    "min" REAL,
    "max" REAL,
    "lo" DOUBLE PRECISION,
    "hi" DOUBLE PRECISION,
    "grid" DOUBLE PRECISION[],
    "built_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "term_sketch_pkey" PRIMARY KEY ("checkpoint_id","term","subset","target_key","label")
);

-- CreateTable
CREATE TABLE "term_sketch_epoch" (
    "checkpoint_id" INTEGER NOT NULL,
    "epoch" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "term_sketch_epoch_pkey" PRIMARY KEY ("checkpoint_id")
);

-- AddForeignKey
ALTER TABLE "term_sketch" ADD CONSTRAINT "term_sketch_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Sketch epochs: every statement that writes, updates or deletes term values bumps the epoch of each
-- checkpoint it touched, in the writing transaction, so a sketch built from an older snapshot is
-- stale the moment the write commits (src/modules/curation/stats-storage.ts compares epochs). One
-- aggregate per statement, not per row; rows locked in checkpoint order, after the coverage
-- counters (triggers of one event fire in name order), like every writer of these tables.
CREATE FUNCTION tangent_term_sketch_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format($q$
    INSERT INTO term_sketch_epoch (checkpoint_id, epoch)
    SELECT DISTINCT checkpoint_id, 1 FROM (%s) r ORDER BY checkpoint_id
    ON CONFLICT (checkpoint_id) DO UPDATE SET epoch = term_sketch_epoch.epoch + 1$q$,
    CASE TG_OP WHEN 'DELETE' THEN 'SELECT checkpoint_id FROM tangent_old_rows' ELSE 'SELECT checkpoint_id FROM tangent_new_rows' END);
  RETURN NULL;
END $$;

CREATE TRIGGER sample_metric_sketch_insert AFTER INSERT ON sample_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();
CREATE TRIGGER sample_metric_sketch_update AFTER UPDATE ON sample_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();
CREATE TRIGGER sample_metric_sketch_delete AFTER DELETE ON sample_metric
  REFERENCING OLD TABLE AS tangent_old_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();

CREATE TRIGGER sample_subset_metric_sketch_insert AFTER INSERT ON sample_subset_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();
CREATE TRIGGER sample_subset_metric_sketch_update AFTER UPDATE ON sample_subset_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();
CREATE TRIGGER sample_subset_metric_sketch_delete AFTER DELETE ON sample_subset_metric
  REFERENCING OLD TABLE AS tangent_old_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();

CREATE TRIGGER sample_cross_metric_sketch_insert AFTER INSERT ON sample_cross_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();
CREATE TRIGGER sample_cross_metric_sketch_update AFTER UPDATE ON sample_cross_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();
CREATE TRIGGER sample_cross_metric_sketch_delete AFTER DELETE ON sample_cross_metric
  REFERENCING OLD TABLE AS tangent_old_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_term_sketch_epoch();
