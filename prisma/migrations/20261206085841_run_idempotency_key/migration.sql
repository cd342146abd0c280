-- AlterTable
ALTER TABLE "run" ADD COLUMN     "idempotency_key" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "run_idempotency_key_key" ON "run"("idempotency_key");

