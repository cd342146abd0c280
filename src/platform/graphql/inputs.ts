import { z } from 'zod';
import { BadUserInputError } from '../errors.js';

/**
 * Validation at the edge: every mutation's input passes through one of these schemas before any
 * database work, and the first problem comes back as BAD_USER_INPUT naming its field; all of them
 * are listed in `extensions.issues`.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    field: [root, ...issue.path].map(String).join('.'),
    message: issue.message,
  }));
  const first = issues[0]!;
  throw new BadUserInputError(`${first.field}: ${first.message}`, first.field, { issues: issues.slice(0, 20) });
}

const MAX_INT32 = 2_147_483_647;

/** IDs are positive integers in decimal; anything else is refused rather than looked up. */
export function parseId(value: string | number, field = 'id'): number {
  const text = String(value);
  const id = Number(text);
  if (!/^[1-9][0-9]{0,9}$/.test(text) || id > MAX_INT32) {
    throw new BadUserInputError(`${field} must be a positive integer id, got ${JSON.stringify(text.slice(0, 40))}`, field);
  }
  return id;
}

export const optionalId = (value: string | number | null | undefined, field: string) =>
  value === null || value === undefined ? undefined : parseId(value, field);

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const count = (max: number) => z.number().int().min(1).max(max);
const jsonObject = z.record(z.string(), z.unknown());

export const DatasetInput = z
  .object({
    name,
    description: z.string().max(10_000).nullish(),
    length: count(1_000_000),
    channels: count(4096),
    classNames: z
      .array(z.string().trim().min(1, 'class names must not be empty').max(200))
      .min(1, 'a dataset needs at least one class')
      .max(100_000)
      .refine((names) => new Set(names).size === names.length, 'class names must be distinct'),
    /** Recorded, not applied: how the series were brought to `length` (an import's length policy). */
    lengthResample: z.enum(['LINEAR', 'PAD', 'TRUNCATE']).nullish(),
  })
  .refine((d) => d.length * d.channels <= 16_000_000, {
    message: 'length × channels must be at most 16,000,000 values',
    path: ['length'],
  });

export const SampleFields = z.object({
  index: z.number().int().min(0).max(MAX_INT32),
  label: z.number().int().min(0),
  split: z.string().trim().min(1, 'must not be empty').max(64),
  series: z.instanceof(Float32Array),
});

/** Samples in one request; larger sets go in several requests. */
export const MAX_SAMPLES_PER_REQUEST = 100_000;

export const ModelInput = z
  .object({
    name,
    format: z.enum(['TFJS_LAYERS', 'BUILTIN']),
    architecture: z.string().trim().min(1).max(100).nullish(),
    config: jsonObject.nullish(),
    topology: jsonObject.nullish(),
    inputLength: count(1_000_000),
    channels: count(4096),
    numClasses: z.number().int().min(2, 'a classifier needs at least 2 classes').max(100_000),
  })
  .superRefine((m, ctx) => {
    if (m.format === 'BUILTIN' && !m.architecture) {
      ctx.addIssue({ code: 'custom', path: ['architecture'], message: 'a BUILTIN model names its architecture' });
    }
    if (m.format === 'TFJS_LAYERS') {
      const topology = m.topology;
      if (!topology || typeof topology.class_name !== 'string' || typeof topology.config !== 'object') {
        ctx.addIssue({
          code: 'custom',
          path: ['topology'],
          message: 'a TFJS_LAYERS model needs the model.json `modelTopology` ({class_name, config, …})',
        });
      }
    }
  });

const finitePositive = z.number().finite().positive();

export const RunConfigInput = z
  .object({
    learningRate: finitePositive.nullish(),
    optimizer: z.string().trim().min(1).max(100).nullish(),
    epochs: z.number().int().min(0).max(1_000_000).nullish(),
    batchSize: z.number().int().min(1).max(10_000_000).nullish(),
    seed: z.number().int().nullish(),
    extra: jsonObject.nullish(),
  })
  .nullish();

/** A client's key for a create it may send again (createRun, trainRun): see Run.idempotencyKey. */
export const IdempotencyKey = z.string().trim().min(1, 'must not be empty').max(200).nullish();

export const RunInput = z.object({
  name,
  config: RunConfigInput,
  idempotencyKey: IdempotencyKey,
  status: z.enum(['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED']).nullish(),
});

export const UpdateRunInput = z.object({
  name: name.nullish(),
  config: RunConfigInput,
  status: z.enum(['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED']).nullish(),
});

/** tfjs dtypes and their byte widths; quantised weights are not accepted. */
export const DTYPE_BYTES = { float32: 4, int32: 4, bool: 1 } as const;

export const WeightSpec = z.object({
  name: z.string().min(1).max(500),
  shape: z.array(z.number().int().min(0).max(MAX_INT32)).max(8),
  dtype: z.enum(['float32', 'int32', 'bool']),
});
export type WeightSpec = z.infer<typeof WeightSpec>;

export const CheckpointInput = z.object({
  step: z.number().int().min(0).max(MAX_INT32),
  epoch: z.number().finite().min(0).nullish(),
  learningRate: z.number().finite().min(0).nullish(),
  weightSpecs: z.array(WeightSpec).max(100_000).nullish(),
  modelJson: z
    .object({
      weightsManifest: z.array(z.object({ paths: z.array(z.string()).optional(), weights: z.array(WeightSpec) })).min(1),
    })
    .loose()
    .nullish(),
});
