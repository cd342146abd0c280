-- AlterTable
ALTER TABLE "compute_job" ADD COLUMN     "requested_by_key_id" INTEGER;

-- CreateTable
CREATE TABLE "rate_limit" (
    "key" VARCHAR(255) NOT NULL,
    "points" INTEGER NOT NULL DEFAULT 0,
    "expire" BIGINT,

    CONSTRAINT "rate_limit_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE INDEX "compute_job_requested_by_key_id_status_idx" ON "compute_job"("requested_by_key_id", "status");

-- AddForeignKey
ALTER TABLE "compute_job" ADD CONSTRAINT "compute_job_requested_by_key_id_fkey" FOREIGN KEY ("requested_by_key_id") REFERENCES "api_key"("id") ON DELETE SET NULL ON UPDATE CASCADE;

