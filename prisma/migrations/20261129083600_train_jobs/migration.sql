-- CreateTable
CREATE TABLE "train_job" (
    "run_id" INTEGER NOT NULL,
    "spec" JSONB NOT NULL,
    "sample_ids" INTEGER[],
    "tracked_ids" INTEGER[],
    "steps_per_epoch" INTEGER NOT NULL,
    "total_steps" INTEGER NOT NULL,
    "total_points" INTEGER NOT NULL,
    "epochs_done" INTEGER NOT NULL DEFAULT 0,
    "steps_done" INTEGER NOT NULL DEFAULT 0,
    "points_done" INTEGER NOT NULL DEFAULT 0,
    "epoch_loss" DOUBLE PRECISION,
    "epoch_accuracy" DOUBLE PRECISION,
    "backend" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "train_job_pkey" PRIMARY KEY ("run_id")
);

-- AddForeignKey
ALTER TABLE "train_job" ADD CONSTRAINT "train_job_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "run"("id") ON DELETE CASCADE ON UPDATE CASCADE;

