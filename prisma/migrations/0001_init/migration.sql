-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "model_format" AS ENUM ('TFJS_LAYERS', 'BUILTIN');

-- CreateEnum
CREATE TYPE "run_status" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "producer_kind" AS ENUM ('CLIENT', 'SERVER');

-- CreateTable
CREATE TABLE "dataset" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "length" INTEGER NOT NULL,
    "channels" INTEGER NOT NULL,
    "class_names" TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dataset_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sample" (
    "id" SERIAL NOT NULL,
    "dataset_id" INTEGER NOT NULL,
    "index" INTEGER NOT NULL,
    "label" INTEGER NOT NULL,
    "split" TEXT NOT NULL,
    "series" BYTEA NOT NULL,

    CONSTRAINT "sample_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "model" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "format" "model_format" NOT NULL,
    "architecture" TEXT,
    "config" JSONB NOT NULL DEFAULT '{}',
    "topology" JSONB,
    "input_length" INTEGER NOT NULL,
    "channels" INTEGER NOT NULL,
    "num_classes" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "model_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "run" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "model_id" INTEGER NOT NULL,
    "dataset_id" INTEGER NOT NULL,
    "config" JSONB NOT NULL DEFAULT '{}',
    "status" "run_status" NOT NULL DEFAULT 'PENDING',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "run_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "checkpoint" (
    "id" SERIAL NOT NULL,
    "run_id" INTEGER NOT NULL,
    "step" INTEGER NOT NULL,
    "epoch" DOUBLE PRECISION,
    "learning_rate" DOUBLE PRECISION,
    "weight_bytes" INTEGER NOT NULL,
    "weight_sha256" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "checkpoint_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "checkpoint_weights" (
    "checkpoint_id" INTEGER NOT NULL,
    "specs" JSONB NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "checkpoint_weights_pkey" PRIMARY KEY ("checkpoint_id")
);

-- CreateTable
CREATE TABLE "producer" (
    "id" SERIAL NOT NULL,
    "kind" "producer_kind" NOT NULL,
    "backend" TEXT NOT NULL DEFAULT '',
    "version" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "producer_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sample_metric" (
    "checkpoint_id" INTEGER NOT NULL,
    "sample_id" INTEGER NOT NULL,
    "loss" REAL,
    "loss_src" SMALLINT,
    "correct" BOOLEAN,
    "correct_src" SMALLINT,
    "logits" REAL[],
    "logits_src" SMALLINT,
    "probs" REAL[],
    "probs_src" SMALLINT,
    "a_norm" REAL,
    "a_norm_src" SMALLINT,
    "h_trace" REAL,
    "h_trace_src" SMALLINT,
    "h_min_eig" REAL,
    "h_min_eig_src" SMALLINT,
    "g_norm" REAL,
    "g_norm_src" SMALLINT,
    "k_norm" REAL,
    "k_norm_src" SMALLINT,
    "k_trace" REAL,
    "k_trace_src" SMALLINT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sample_metric_pkey" PRIMARY KEY ("checkpoint_id","sample_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "dataset_name_key" ON "dataset"("name");

-- CreateIndex
CREATE INDEX "sample_dataset_id_split_label_idx" ON "sample"("dataset_id", "split", "label");

-- CreateIndex
CREATE UNIQUE INDEX "sample_dataset_id_index_key" ON "sample"("dataset_id", "index");

-- CreateIndex
CREATE UNIQUE INDEX "model_name_key" ON "model"("name");

-- CreateIndex
CREATE INDEX "run_dataset_id_idx" ON "run"("dataset_id");

-- CreateIndex
CREATE INDEX "run_model_id_idx" ON "run"("model_id");

-- CreateIndex
CREATE UNIQUE INDEX "checkpoint_run_id_step_key" ON "checkpoint"("run_id", "step");

-- CreateIndex
CREATE UNIQUE INDEX "producer_kind_backend_version_key" ON "producer"("kind", "backend", "version");

-- CreateIndex
CREATE INDEX "sample_metric_checkpoint_id_k_norm_idx" ON "sample_metric"("checkpoint_id", "k_norm" DESC);

-- CreateIndex
CREATE INDEX "sample_metric_checkpoint_id_loss_idx" ON "sample_metric"("checkpoint_id", "loss" DESC);

-- CreateIndex
CREATE INDEX "sample_metric_checkpoint_id_g_norm_idx" ON "sample_metric"("checkpoint_id", "g_norm" DESC);

-- CreateIndex
CREATE INDEX "sample_metric_sample_id_idx" ON "sample_metric"("sample_id");

-- AddForeignKey
ALTER TABLE "sample" ADD CONSTRAINT "sample_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "run" ADD CONSTRAINT "run_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "model"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "run" ADD CONSTRAINT "run_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "checkpoint" ADD CONSTRAINT "checkpoint_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "run"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "checkpoint_weights" ADD CONSTRAINT "checkpoint_weights_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sample_metric" ADD CONSTRAINT "sample_metric_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sample_metric" ADD CONSTRAINT "sample_metric_sample_id_fkey" FOREIGN KEY ("sample_id") REFERENCES "sample"("id") ON DELETE CASCADE ON UPDATE CASCADE;

