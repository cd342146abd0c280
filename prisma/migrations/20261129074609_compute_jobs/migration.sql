-- CreateEnum
CREATE TYPE "compute_job_status" AS ENUM ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');

-- CreateTable
CREATE TABLE "compute_job" (
    "id" SERIAL NOT NULL,
    "checkpoint_id" INTEGER NOT NULL,
    "terms" TEXT[],
    "target_key" TEXT,
    "scope" JSONB NOT NULL DEFAULT '{}',
    "work_key" TEXT NOT NULL,
    "chunk_size" INTEGER NOT NULL,
    "chunk_starts" INTEGER[],
    "last_sample_id" INTEGER NOT NULL,
    "total_chunks" INTEGER NOT NULL,
    "total_samples" INTEGER NOT NULL,
    "done_chunks" INTEGER NOT NULL DEFAULT 0,
    "done_samples" INTEGER NOT NULL DEFAULT 0,
    "computed_samples" INTEGER NOT NULL DEFAULT 0,
    "status" "compute_job_status" NOT NULL DEFAULT 'QUEUED',
    "error" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "compute_job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "compute_job_chunk" (
    "job_id" INTEGER NOT NULL,
    "chunk" INTEGER NOT NULL,
    "samples" INTEGER NOT NULL,
    "computed" INTEGER NOT NULL,
    "committed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "compute_job_chunk_pkey" PRIMARY KEY ("job_id","chunk")
);

-- CreateIndex
CREATE INDEX "compute_job_checkpoint_id_work_key_status_idx" ON "compute_job"("checkpoint_id", "work_key", "status");

-- CreateIndex
CREATE INDEX "compute_job_status_idx" ON "compute_job"("status");

-- AddForeignKey
ALTER TABLE "compute_job" ADD CONSTRAINT "compute_job_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "compute_job_chunk" ADD CONSTRAINT "compute_job_chunk_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "compute_job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

