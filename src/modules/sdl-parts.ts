import { readFileSync } from 'node:fs';

/**
 * The parts schema.graphql is assembled from, in order (`npm run schema`): the platform's roots,
 * scalars and shared types first, then each module's own types and its `extend type Query`,
 * `Mutation` and `Subscription` fields. Each module owns its part; schema.graphql stays the one
 * public contract, committed, and CI fails when it differs from what these parts make
 * (`npm run schema -- --check`). Paths are relative to the repository root.
 */
export const SDL_PARTS = [
  'src/platform/graphql/base.graphql',
  'src/modules/api-keys/api-keys.graphql',
  'src/modules/datasets/datasets.graphql',
  'src/modules/models/models.graphql',
  'src/modules/runs/runs.graphql',
  'src/modules/checkpoints/checkpoints.graphql',
  'src/modules/terms/metrics.graphql',
  'src/modules/ingest/ingest.graphql',
  'src/modules/curation/curation.graphql',
  'src/modules/jobs/jobs.graphql',
  'src/modules/terms/compute.graphql',
  'src/modules/training/training.graphql',
  'src/modules/checkpoints/torch-import.graphql',
] as const;

const HEADER =
  "# The public GraphQL contract of Tangent, assembled by `npm run schema` from the modules' parts\n" +
  '# (src/modules/sdl-parts.ts lists them). Edit a part, then run `npm run schema`; never edit this file.\n\n';

/**
 * schema.graphql's text as the parts make it. The parts are concatenated verbatim, not merged and
 * reprinted, so every description and section comment reads in schema.graphql as its author wrote it.
 */
export function assembleSchema(root: URL = new URL('../../', import.meta.url)): string {
  return HEADER + SDL_PARTS.map((part) => readFileSync(new URL(part, root), 'utf8').trim()).join('\n\n') + '\n';
}
