import { Router, type Request, type Response } from 'express';
import { createContext, type Services } from '../context.js';
import { ErrorCode, TangentError, BadUserInputError } from '../../platform/errors.js';
import { parseId } from '../../platform/graphql/inputs.js';
import { decodeQueryArgs } from './inputs.js';
import { prepareQuery } from './rank.js';
import { CONTENT_TYPES, EXPORT_BATCH_ROWS, EXPORT_FORMATS, exportSlots, selectionExportSource, writeExport, type ExportFormat, type ExportSource } from './export.js';
import { knownError, sendError } from '../../platform/http/errors.js';
import { requestState } from '../../platform/http/request-id.js';

function formatOf(req: Request): ExportFormat {
  const format = String(req.query.format ?? 'jsonl').toLowerCase();
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new BadUserInputError('format must be jsonl or csv', 'format');
  return format as ExportFormat;
}

/**
 * Resolves once `chunk` may be followed by another: at once while the socket takes data, after
 * 'drain' when its buffer is full (backpressure), never when the client has gone (rejects instead,
 * which ends the database cursor).
 */
export function writer(res: Response, stallMs = EXPORT_STALL_MS): (chunk: string) => Promise<void> {
  return (chunk) =>
    new Promise<void>((resolve, reject) => {
      if (res.destroyed || res.writableEnded) return reject(new Error('the client closed the connection'));
      if (res.write(chunk)) return resolve();
      const done = () => {
        clearTimeout(timer);
        res.off('drain', onDrain);
        res.off('close', onClose);
      };
      const onDrain = () => {
        done();
        resolve();
      };
      const onClose = () => {
        done();
        reject(new Error('the client closed the connection'));
      };
      // A client that stops reading must not hold a database connection (and its snapshot) forever.
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the client read nothing for ${stallMs / 1000} s`));
      }, stallMs);
      res.once('drain', onDrain);
      res.once('close', onClose);
    });
}

/** How long an export waits for a client that has stopped reading before it gives up. */
export const EXPORT_STALL_MS = 60_000;

/**
 * GET /export/selections/:id?format=jsonl|csv[&checkpoint=ID] and
 * GET /export/checkpoints/:id?format=jsonl|csv[&q=…] (q: the filter, order and target of
 * Checkpoint.exportUrl). The rows stream from the database a batch at a time with backpressure, so
 * a million-row export holds one batch in memory. Refusals before the first byte come as JSON in
 * GraphQL's error shape with the status of src/platform/http/status.ts: 400 BAD_USER_INPUT, 404 NOT_FOUND,
 * 409 TERMS_MISSING, 409 TERMS_PENDING (terms a job is computing: `extensions.jobId` names it and
 * Retry-After says when to ask again), 503 DATABASE_UNAVAILABLE (with Retry-After). A failure
 * mid-stream aborts the response (the client sees a truncated transfer, never a silently short file).
 */
export function exportRoutes(services: Services): Router {
  const router = Router();
  const slots = exportSlots(services.config);
  const handle = (resolve: (req: Request, ctx: ReturnType<typeof createContext>) => Promise<{ source: ExportSource; name: string }>) =>
    async (req: Request, res: Response) => {
      const state = requestState(res);
      const ctx = createContext(services, state.requestId, state.caller, state.log);
      let started = false;
      try {
        const format = formatOf(req);
        const { source, name } = await resolve(req, ctx);
        res.status(200);
        res.setHeader('content-type', CONTENT_TYPES[format]);
        res.setHeader('content-disposition', `attachment; filename="${name}.${format}"`);
        res.setHeader('cache-control', 'no-store');
        res.setHeader('x-content-type-options', 'nosniff');
        started = true;
        const rows = await writeExport(ctx, source, format, writer(res), EXPORT_BATCH_ROWS, slots);
        res.end();
        state.log.debug({ rows, format }, 'export done');
      } catch (error) {
        if (started) {
          state.log.warn({ err: error }, 'export aborted');
          res.destroy();
          return;
        }
        const known = knownError(error);
        if (!known) state.log.error({ err: error, path: req.path }, 'unexpected error in an export');
        sendError(res, known ?? new TangentError(ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error'));
      }
    };

  router.get(
    '/selections/:id',
    handle(async (req, ctx) => {
      const id = parseId(String(req.params.id));
      const checkpoint = req.query.checkpoint === undefined ? null : parseId(String(req.query.checkpoint), 'checkpoint');
      return { source: await selectionExportSource(ctx, id, checkpoint), name: `selection-${id}` };
    }),
  );
  router.get(
    '/checkpoints/:id',
    handle(async (req, ctx) => {
      const id = parseId(String(req.params.id));
      const query = decodeQueryArgs(req.query.q === undefined ? undefined : String(req.query.q));
      return { source: { kind: 'query', prepared: await prepareQuery(ctx, id, query) }, name: `checkpoint-${id}-samples` };
    }),
  );
  return router;
}
