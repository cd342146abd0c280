-- AlterTable
ALTER TABLE "checkpoint_weights" ADD COLUMN     "layer_hashes" JSONB;

-- AlterTable
ALTER TABLE "compute_job" ADD COLUMN     "trunk_hits" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "trunk_feature" (
    "model_id" INTEGER NOT NULL,
    "trunk" TEXT NOT NULL,
    "sample_id" INTEGER NOT NULL,
    "features" BYTEA NOT NULL,
    "bytes" INTEGER NOT NULL,
    "used_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "trunk_feature_pkey" PRIMARY KEY ("model_id","trunk","sample_id")
);

-- CreateIndex
CREATE INDEX "trunk_feature_used_at_idx" ON "trunk_feature"("used_at");

-- CreateIndex
CREATE INDEX "trunk_feature_sample_id_idx" ON "trunk_feature"("sample_id");

-- AddForeignKey
ALTER TABLE "trunk_feature" ADD CONSTRAINT "trunk_feature_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trunk_feature" ADD CONSTRAINT "trunk_feature_sample_id_fkey" FOREIGN KEY ("sample_id") REFERENCES "sample"("id") ON DELETE CASCADE ON UPDATE CASCADE;

