-- CreateEnum
CREATE TYPE "selection_method" AS ENUM ('TOP_K', 'TOP_FRACTION', 'THRESHOLD', 'BALANCED_TOP_K', 'STRATIFIED');

-- CreateTable
CREATE TABLE "sample_cross_metric" (
    "checkpoint_id" INTEGER NOT NULL,
    "target_key" TEXT NOT NULL,
    "sample_id" INTEGER NOT NULL,
    "k_cross" REAL NOT NULL,
    "k_cross_src" SMALLINT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sample_cross_metric_pkey" PRIMARY KEY ("checkpoint_id","target_key","sample_id")
);

-- CreateTable
CREATE TABLE "metric_coverage" (
    "checkpoint_id" INTEGER NOT NULL,
    "term" TEXT NOT NULL,
    "present" BIGINT NOT NULL,

    CONSTRAINT "metric_coverage_pkey" PRIMARY KEY ("checkpoint_id","term")
);

-- CreateTable
CREATE TABLE "dataset_size" (
    "dataset_id" INTEGER NOT NULL,
    "samples" BIGINT NOT NULL,

    CONSTRAINT "dataset_size_pkey" PRIMARY KEY ("dataset_id")
);

-- CreateTable
CREATE TABLE "selection" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "dataset_id" INTEGER NOT NULL,
    "run_id" INTEGER NOT NULL,
    "method" "selection_method" NOT NULL,
    "term" TEXT NOT NULL,
    "direction" TEXT NOT NULL,
    "target_key" TEXT,
    "checkpoint_ids" INTEGER[],
    "weights" DOUBLE PRECISION[],
    "strategy" JSONB NOT NULL,
    "provenance" JSONB NOT NULL,
    "class_counts" JSONB NOT NULL,
    "pool_size" INTEGER NOT NULL,
    "sample_count" INTEGER NOT NULL,
    "software_version" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "selection_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "selection_sample" (
    "selection_id" INTEGER NOT NULL,
    "rank" INTEGER NOT NULL,
    "sample_id" INTEGER NOT NULL,
    "score" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "selection_sample_pkey" PRIMARY KEY ("selection_id","rank")
);

-- CreateIndex
CREATE INDEX "sample_cross_metric_checkpoint_id_target_key_k_cross_idx" ON "sample_cross_metric"("checkpoint_id", "target_key", "k_cross" DESC);

-- CreateIndex
CREATE INDEX "sample_cross_metric_sample_id_idx" ON "sample_cross_metric"("sample_id");

-- CreateIndex
CREATE INDEX "selection_run_id_idx" ON "selection"("run_id");

-- CreateIndex
CREATE UNIQUE INDEX "selection_dataset_id_name_key" ON "selection"("dataset_id", "name");

-- CreateIndex
CREATE INDEX "selection_sample_sample_id_idx" ON "selection_sample"("sample_id");

-- CreateIndex
CREATE UNIQUE INDEX "selection_sample_selection_id_sample_id_key" ON "selection_sample"("selection_id", "sample_id");

-- AddForeignKey
ALTER TABLE "sample_cross_metric" ADD CONSTRAINT "sample_cross_metric_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sample_cross_metric" ADD CONSTRAINT "sample_cross_metric_sample_id_fkey" FOREIGN KEY ("sample_id") REFERENCES "sample"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "metric_coverage" ADD CONSTRAINT "metric_coverage_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dataset_size" ADD CONSTRAINT "dataset_size_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "selection" ADD CONSTRAINT "selection_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "selection_sample" ADD CONSTRAINT "selection_sample_selection_id_fkey" FOREIGN KEY ("selection_id") REFERENCES "selection"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "selection_sample" ADD CONSTRAINT "selection_sample_sample_id_fkey" FOREIGN KEY ("sample_id") REFERENCES "sample"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- ---------------------------------------------------------------------------------------------
-- Written by hand (Prisma does not model triggers).
--
-- Coverage counters: metric_coverage holds, per (checkpoint, term), how many samples have a value;
-- dataset_size holds the samples of each dataset. Statement-level triggers with transition tables
-- keep both exact inside the writing transaction (one aggregate per statement, not per row), so
-- "does any sample lack kNorm at checkpoint C?" is answered from two rows instead of a scan.
-- Counter rows are locked in (checkpoint_id, term) order, so writers of one checkpoint cannot
-- deadlock. A negative delta only updates an existing row: it must not resurrect the counter of a
-- checkpoint or dataset that is being deleted.

CREATE FUNCTION tangent_apply_coverage(deltas jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_coverage (checkpoint_id, term, present)
  SELECT (d->>'c')::int, d->>'t', (d->>'n')::bigint FROM jsonb_array_elements(deltas) d
  WHERE (d->>'n')::bigint > 0 ORDER BY 1, 2
  ON CONFLICT (checkpoint_id, term) DO UPDATE SET present = metric_coverage.present + EXCLUDED.present;
  UPDATE metric_coverage m SET present = m.present + (d->>'n')::bigint
  FROM jsonb_array_elements(deltas) d
  WHERE (d->>'n')::bigint < 0 AND m.checkpoint_id = (d->>'c')::int AND m.term = d->>'t';
END $$;

-- The rows a statement touched, signed: +1 for after-images, -1 for before-images. Transition
-- tables exist only for the trigger's own event, hence the text chosen by TG_OP.
CREATE FUNCTION tangent_signed_rows(op text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE op
    WHEN 'INSERT' THEN 'SELECT 1 AS sign, * FROM tangent_new_rows'
    WHEN 'DELETE' THEN 'SELECT -1 AS sign, * FROM tangent_old_rows'
    ELSE 'SELECT 1 AS sign, * FROM tangent_new_rows UNION ALL SELECT -1, * FROM tangent_old_rows'
  END
$$;

CREATE FUNCTION tangent_sample_metric_coverage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  deltas jsonb;
BEGIN
  EXECUTE format($q$
    WITH r AS (%s), counted AS (
      SELECT checkpoint_id,
        sum(sign * (loss IS NOT NULL)::int) loss, sum(sign * (correct IS NOT NULL)::int) correct,
        sum(sign * (logits IS NOT NULL)::int) logits, sum(sign * (probs IS NOT NULL)::int) probs,
        sum(sign * (a_norm IS NOT NULL)::int) a_norm, sum(sign * (h_trace IS NOT NULL)::int) h_trace,
        sum(sign * (h_min_eig IS NOT NULL)::int) h_min_eig, sum(sign * (g_norm IS NOT NULL)::int) g_norm,
        sum(sign * (k_norm IS NOT NULL)::int) k_norm, sum(sign * (k_trace IS NOT NULL)::int) k_trace
      FROM r GROUP BY checkpoint_id
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('c', c.checkpoint_id, 't', x.term, 'n', x.n)), '[]')
    FROM counted c CROSS JOIN LATERAL (VALUES
      ('loss', c.loss), ('correct', c.correct), ('logits', c.logits), ('probs', c.probs), ('a_norm', c.a_norm),
      ('h_trace', c.h_trace), ('h_min_eig', c.h_min_eig), ('g_norm', c.g_norm), ('k_norm', c.k_norm), ('k_trace', c.k_trace)
    ) x(term, n)
    WHERE x.n <> 0$q$, tangent_signed_rows(TG_OP)) INTO deltas;
  PERFORM tangent_apply_coverage(deltas);
  RETURN NULL;
END $$;

CREATE FUNCTION tangent_sample_cross_metric_coverage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  deltas jsonb;
BEGIN
  EXECUTE format($q$
    WITH r AS (%s), counted AS (
      SELECT checkpoint_id, 'k_cross:' || target_key AS term, sum(sign) AS n FROM r GROUP BY 1, 2
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('c', checkpoint_id, 't', term, 'n', n)), '[]')
    FROM counted WHERE n <> 0$q$, tangent_signed_rows(TG_OP)) INTO deltas;
  PERFORM tangent_apply_coverage(deltas);
  RETURN NULL;
END $$;

CREATE FUNCTION tangent_dataset_size() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  deltas jsonb;
BEGIN
  EXECUTE format($q$
    WITH r AS (%s), counted AS (SELECT dataset_id, sum(sign) AS n FROM r GROUP BY dataset_id)
    SELECT coalesce(jsonb_agg(jsonb_build_object('d', dataset_id, 'n', n)), '[]') FROM counted WHERE n <> 0$q$,
    tangent_signed_rows(TG_OP)) INTO deltas;
  INSERT INTO dataset_size (dataset_id, samples)
  SELECT (d->>'d')::int, (d->>'n')::bigint FROM jsonb_array_elements(deltas) d WHERE (d->>'n')::bigint > 0 ORDER BY 1
  ON CONFLICT (dataset_id) DO UPDATE SET samples = dataset_size.samples + EXCLUDED.samples;
  UPDATE dataset_size s SET samples = s.samples + (d->>'n')::bigint
  FROM jsonb_array_elements(deltas) d WHERE (d->>'n')::bigint < 0 AND s.dataset_id = (d->>'d')::int;
  RETURN NULL;
END $$;

CREATE TRIGGER sample_metric_coverage_insert AFTER INSERT ON sample_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_metric_coverage();
CREATE TRIGGER sample_metric_coverage_update AFTER UPDATE ON sample_metric
  REFERENCING OLD TABLE AS tangent_old_rows NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_metric_coverage();
CREATE TRIGGER sample_metric_coverage_delete AFTER DELETE ON sample_metric
  REFERENCING OLD TABLE AS tangent_old_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_metric_coverage();

CREATE TRIGGER sample_cross_metric_coverage_insert AFTER INSERT ON sample_cross_metric
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_cross_metric_coverage();
CREATE TRIGGER sample_cross_metric_coverage_update AFTER UPDATE ON sample_cross_metric
  REFERENCING OLD TABLE AS tangent_old_rows NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_cross_metric_coverage();
CREATE TRIGGER sample_cross_metric_coverage_delete AFTER DELETE ON sample_cross_metric
  REFERENCING OLD TABLE AS tangent_old_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_sample_cross_metric_coverage();

CREATE TRIGGER sample_dataset_size_insert AFTER INSERT ON sample
  REFERENCING NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_dataset_size();
CREATE TRIGGER sample_dataset_size_update AFTER UPDATE ON sample
  REFERENCING OLD TABLE AS tangent_old_rows NEW TABLE AS tangent_new_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_dataset_size();
CREATE TRIGGER sample_dataset_size_delete AFTER DELETE ON sample
  REFERENCING OLD TABLE AS tangent_old_rows FOR EACH STATEMENT EXECUTE FUNCTION tangent_dataset_size();

-- The counters of data stored before this migration.
INSERT INTO dataset_size (dataset_id, samples) SELECT dataset_id, count(*) FROM sample GROUP BY dataset_id;
INSERT INTO metric_coverage (checkpoint_id, term, present)
SELECT m.checkpoint_id, x.term, x.n FROM (
  SELECT checkpoint_id, count(loss) loss, count(correct) correct, count(logits) logits, count(probs) probs, count(a_norm) a_norm,
         count(h_trace) h_trace, count(h_min_eig) h_min_eig, count(g_norm) g_norm, count(k_norm) k_norm, count(k_trace) k_trace
  FROM sample_metric GROUP BY checkpoint_id
) m CROSS JOIN LATERAL (VALUES
  ('loss', m.loss), ('correct', m.correct), ('logits', m.logits), ('probs', m.probs), ('a_norm', m.a_norm),
  ('h_trace', m.h_trace), ('h_min_eig', m.h_min_eig), ('g_norm', m.g_norm), ('k_norm', m.k_norm), ('k_trace', m.k_trace)
) x(term, n) WHERE x.n > 0;

-- Selections are immutable: a saved selection names exactly the samples it named when it was made.
CREATE FUNCTION tangent_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;
CREATE TRIGGER selection_immutable BEFORE UPDATE ON selection FOR EACH ROW EXECUTE FUNCTION tangent_refuse_update();
CREATE TRIGGER selection_sample_immutable BEFORE UPDATE ON selection_sample FOR EACH ROW EXECUTE FUNCTION tangent_refuse_update();
