-- AlterTable
ALTER TABLE "checkpoint_weights" ALTER COLUMN "data" DROP NOT NULL;

-- CreateTable
CREATE TABLE "weight_layer" (
    "hash" TEXT NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "weight_layer_pkey" PRIMARY KEY ("hash")
);

-- CreateTable
CREATE TABLE "checkpoint_layer" (
    "checkpoint_id" INTEGER NOT NULL,
    "layer" TEXT NOT NULL,
    "hash" TEXT NOT NULL,

    CONSTRAINT "checkpoint_layer_pkey" PRIMARY KEY ("checkpoint_id","layer")
);

-- CreateIndex
CREATE INDEX "checkpoint_layer_hash_idx" ON "checkpoint_layer"("hash");

-- AddForeignKey
ALTER TABLE "checkpoint_layer" ADD CONSTRAINT "checkpoint_layer_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoint_weights"("checkpoint_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "checkpoint_layer" ADD CONSTRAINT "checkpoint_layer_hash_fkey" FOREIGN KEY ("hash") REFERENCES "weight_layer"("hash") ON DELETE RESTRICT ON UPDATE CASCADE;

