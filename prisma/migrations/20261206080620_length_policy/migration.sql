-- CreateEnum
CREATE TYPE "resample_method" AS ENUM ('LINEAR', 'PAD', 'TRUNCATE');

-- AlterTable
ALTER TABLE "dataset" ADD COLUMN     "length_resample" "resample_method";

-- AlterTable
ALTER TABLE "sample" ADD COLUMN     "original_length" INTEGER;

