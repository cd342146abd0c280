import { Command } from 'commander';
import { registerCompute } from './cli/compute.js';
import { registerExport } from './cli/export.js';
import { registerImport } from './cli/import.js';
import { registerKeys } from './cli/keys.js';
import { registerMigrate } from './cli/migrate.js';
import { registerServe } from './cli/serve.js';
import { registerTrain } from './cli/train.js';
import { registerWorker } from './cli/worker.js';
import { VERSION } from './platform/version.js';

/**
 * `tangent <command>`: one file per command in src/cli. A command module declares its options
 * only and imports what it runs on (the database, the schema, tfjs) inside its action, so
 * `tangent --help` and `tangent <command> --help` load commander and little else.
 */
const program = new Command('tangent')
  .description('GraphQL analysis server for the learning dynamics of fine-tuning')
  .version(VERSION);

registerServe(program);
registerMigrate(program);
registerExport(program);
registerKeys(program);
registerImport(program);
registerWorker(program);
registerCompute(program);
registerTrain(program);

await program.parseAsync(process.argv);
