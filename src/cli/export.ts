import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { Command, Option } from 'commander';
import type { SampleTermFilter, SampleTermOrder, TargetSetInput } from '../modules/generated/types.js';
import type { ExportFormat, ExportSource } from '../modules/curation/export.js';
import { configOrExit, envOverrides, reportError, withEnvironment, type EnvOverrides } from './shared.js';

interface ExportOptions {
  selection?: string;
  checkpoint?: string;
  filter?: string;
  orderBy?: string;
  target?: string;
  subset?: string;
  format: ExportFormat;
  output?: string;
  url?: string;
  apiKey?: string;
  progress?: boolean;
}

/** The GraphQL-shaped arguments of a query export, from the command line. */
function queryArgs(opts: ExportOptions): { filter: SampleTermFilter | null; orderBy: SampleTermOrder | null; target: TargetSetInput | null; subset: string | null } {
  let filter: SampleTermFilter | null = null;
  if (opts.filter) {
    try {
      filter = JSON.parse(opts.filter) as SampleTermFilter;
    } catch {
      throw new Error('--filter must be JSON, e.g. \'{"splits":["train"],"terms":[{"term":"K_NORM","min":1}]}\'');
    }
  }
  let orderBy: SampleTermOrder | null = null;
  if (opts.orderBy) {
    const [term, direction] = opts.orderBy.toUpperCase().split(':');
    orderBy = { term: term as SampleTermOrder['term'], direction: (direction ?? 'DESC') as 'ASC' | 'DESC' };
  }
  let target: TargetSetInput | null = null;
  if (opts.target) {
    const [kind, ...rest] = opts.target.split(':');
    const value = rest.join(':');
    if (kind === 'split' && value) target = { split: value };
    else if (kind === 'selection' && value) target = { selectionId: value };
    else throw new Error('--target must be split:<name> or selection:<id>');
  }
  return { filter, orderBy, target, subset: opts.subset ?? null };
}

/** Where the rows go: a file, or stdout. Resolves each write once the stream can take more. */
function sinkOf(opts: ExportOptions): { stream: Writable; done: () => Promise<void> } {
  const stream = opts.output ? createWriteStream(opts.output) : process.stdout;
  return {
    stream,
    async done() {
      if (stream !== process.stdout) {
        stream.end();
        await once(stream, 'finish');
      }
    },
  };
}

async function rowsBar(opts: ExportOptions, total: number | null) {
  const { progressBar } = await import('./progress.js');
  const bar = progressBar(total === null ? '{value} rows' : '[{bar}] {value}/{total} rows | eta {eta_formatted}', opts.progress === false ? false : undefined);
  bar?.start(total ?? 0, 0);
  return bar;
}

/** Export through a running server's /export route (the embedded database admits one process). */
async function exportViaUrl(opts: ExportOptions, out: Writable): Promise<void> {
  const [{ Readable }, { pipeline }, { encodeQueryArgs }, { parseId }] = await Promise.all([
    import('node:stream'),
    import('node:stream/promises'),
    import('../modules/curation/inputs.js'),
    import('../platform/graphql/inputs.js'),
  ]);
  const origin = new URL(opts.url!).origin;
  let path: string;
  if (opts.selection) {
    path = `/export/selections/${parseId(opts.selection, '--selection')}?format=${opts.format}${opts.checkpoint ? `&checkpoint=${parseId(opts.checkpoint, '--checkpoint')}` : ''}`;
  } else {
    path = `/export/checkpoints/${parseId(opts.checkpoint!, '--checkpoint')}?format=${opts.format}&q=${encodeQueryArgs(queryArgs(opts))}`;
  }
  const response = await fetch(`${origin}${path}`, { headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {} });
  if (!response.ok || !response.body) {
    const text = await response.text();
    let message = `${origin} answered ${response.status}`;
    let code: string | undefined;
    try {
      const first = (JSON.parse(text) as { errors: { message: string; extensions?: { code?: string } }[] }).errors[0]!;
      message = first.message;
      code = first.extensions?.code;
    } catch {
      // not our JSON error: keep the status
    }
    throw Object.assign(new Error(message), { code });
  }
  await pipeline(Readable.fromWeb(response.body as never), out, { end: out !== process.stdout });
}

/** Export straight from the database (DATABASE_URL, or the embedded data folder when no server holds it). */
async function exportDirect(opts: ExportOptions, out: Writable, env: EnvOverrides): Promise<number> {
  const config = await configOrExit(env);
  const [{ randomUUID }, { createContext }, { openDatabase }, { migrate }, { createLogger }, { PubSub }, { parseQuery }, { parseId }, { selectionExportSource, writeExport }, { prepareQuery }] = await Promise.all([
    import('node:crypto'),
    import('../modules/context.js'),
    import('../platform/db/database.js'),
    import('../platform/db/migrate.js'),
    import('../platform/logger.js'),
    import('../platform/pubsub.js'),
    import('../modules/curation/inputs.js'),
    import('../platform/graphql/inputs.js'),
    import('../modules/curation/export.js'),
    import('../modules/curation/rank.js'),
  ]);
  const log = createLogger({ logLevel: config.logLevel === 'debug' || config.logLevel === 'trace' ? config.logLevel : 'error' }, { toStderr: true });
  let db;
  try {
    db = await openDatabase(config.database, log, { statementTimeoutMs: 0 });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/in use by process/.test(message)) throw new Error(`${message}\nA server holds it: export through it with --url http://${config.host}:${config.port}`);
    throw error;
  }
  try {
    await migrate(db, log);
    const pubsub = await PubSub.start(db, log);
    try {
      const ctx = createContext({ config, db, pubsub, log }, randomUUID());
      let source: ExportSource;
      let total: number | null = null;
      if (opts.selection) {
        source = await selectionExportSource(ctx, parseId(opts.selection, '--selection'), opts.checkpoint ? parseId(opts.checkpoint, '--checkpoint') : null);
        total = source.kind === 'selection' ? source.selection.sampleCount : null;
      } else {
        source = { kind: 'query', prepared: await prepareQuery(ctx, parseId(opts.checkpoint!, '--checkpoint'), parseQuery(queryArgs(opts))) };
      }
      const bar = await rowsBar(opts, total);
      let rows = 0;
      const write = async (chunk: string) => {
        if (!out.write(chunk)) await once(out, 'drain');
        const lines = chunk.split('\n').length - 1;
        rows += lines;
        bar?.update(Math.max(0, rows - (opts.format === 'csv' ? 1 : 0)));
      };
      const n = await writeExport(ctx, source, opts.format, write);
      bar?.stop();
      return n;
    } finally {
      await pubsub.close();
    }
  } finally {
    await db.close();
  }
}

/**
 * `tangent export`: a saved selection (`--selection`) or a curation query at a checkpoint
 * (`--checkpoint` with `--filter`, `--order-by`, `--target`) as JSONL or CSV, streamed to stdout or
 * `--output`. Directly against the database by default; `--url` goes through a running server.
 */
export function registerExport(program: Command): void {
  const command = program
    .command('export')
    .description('stream a selection, or the samples of a checkpoint filtered and ranked by their terms, as JSONL or CSV')
    .option('--selection <id>', 'a saved selection (with its terms at --checkpoint, default its last checkpoint)')
    .option('--checkpoint <id>', 'the checkpoint to query (without --selection)')
    .option('--filter <json>', 'a SampleTermFilter as JSON, e.g. \'{"splits":["train"],"terms":[{"term":"LOSS","max":1}]}\'')
    .option('--order-by <term[:dir]>', 'e.g. K_NORM:DESC (default) or LOSS:ASC')
    .option('--target <set>', 'the target set of kCross: split:<name> or selection:<id>')
    .option('--subset <name>', 'the parameter subset of kNorm, kTrace and kCross (default all; e.g. head)')
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--url <url>', 'export through a running server (e.g. http://127.0.0.1:4000) instead of the database')
    .option('--api-key <key>', 'API key for --url, when the server requires one')
    .option('--no-progress', 'no progress bar on stderr');
  withEnvironment(command, ['database']).action(async (opts: ExportOptions & Record<string, unknown>) => {
      const sink = sinkOf(opts);
      try {
        if (!opts.selection && !opts.checkpoint) throw new Error('give --selection <id> or --checkpoint <id>');
        if (opts.selection && (opts.filter || opts.orderBy || opts.target || opts.subset)) {
          throw new Error('--filter, --order-by, --target and --subset go with --checkpoint, not --selection');
        }
        if (opts.url) await exportViaUrl(opts, sink.stream);
        else await exportDirect(opts, sink.stream, envOverrides(opts));
        await sink.done();
      } catch (error) {
        reportError('export', error);
        process.exitCode = 1;
      }
    });
}
