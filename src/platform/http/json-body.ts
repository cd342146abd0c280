import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';

/**
 * The JSON body of a GraphQL request, read without body-parser for the common case: a JSON body,
 * no content encoding, UTF-8 (or no charset). Per request, body-parser parses the content type
 * twice (type-is, content-type), wraps the stream in raw-body with an iconv decoder and checks
 * options; in the CPU profile of a `{ __typename }` request, Express's routing and body parsing
 * were about a fifth of the time. Anything else (gzip or deflate bodies, other charsets) goes to
 * `express.json` itself, so nothing it accepted is refused here, and it refuses what it refused.
 *
 * Same outcome as `express.json({ limit })` (strict): `req.body` is the parsed object or array; an
 * empty body is `{}`; a body that is not JSON content is left alone (`req.body` undefined). A body
 * over the limit (by its Content-Length up front, or as it arrives) is an error with status 413 and
 * type `entity.too.large`, malformed JSON or a top-level value other than an object or array 400
 * `entity.parse.failed`, a body shorter or longer than its Content-Length 400
 * `request.size.invalid`: errors.ts's errorHandler turns them into GraphQL-shaped answers as it did
 * body-parser's.
 */
export function jsonBody(limit: number): RequestHandler {
  const fallback = express.json({ limit });
  return (req: Request, res: Response, next: NextFunction) => {
    // `body` is there, if undefined, for every request that passed (Apollo's integration checks it).
    const carrier = req as { body?: unknown };
    if (!('body' in carrier)) carrier.body = undefined;
    const contentType = req.headers['content-type'];
    // Already read, or nothing to read: what body-parser does too.
    if ((req as { _body?: boolean })._body || !hasBody(req) || typeof contentType !== 'string' || !isJson(contentType)) return next();
    const encoding = req.headers['content-encoding'];
    if ((encoding !== undefined && encoding.toLowerCase() !== 'identity') || !utf8(contentType)) return fallback(req, res, next);
    const declared = req.headers['content-length'] === undefined ? null : Number(req.headers['content-length']);
    if (declared !== null && declared > limit) return refuse(req, next, 413, 'entity.too.large', 'request entity too large');
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const finish = (error: Error | null) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (error) return next(error);
      let text = received === 0 ? '' : chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, received).toString('utf8');
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      (req as { _body?: boolean })._body = true;
      if (text.length === 0) {
        req.body = {};
        return next();
      }
      // strict: only an object or an array at the top (the first character that is not whitespace).
      const first = /\S/.exec(text)?.[0];
      if (first !== '{' && first !== '[') return next(httpError(400, 'entity.parse.failed', `Unexpected token ${first ?? 'end'} in JSON`));
      try {
        req.body = JSON.parse(text);
      } catch (error) {
        return next(httpError(400, 'entity.parse.failed', (error as Error).message));
      }
      next();
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        // Stop keeping it, read the rest to nowhere (the answer goes out on the same connection).
        finish(httpError(413, 'entity.too.large', 'request entity too large'));
        req.resume();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(declared !== null && declared !== received ? httpError(400, 'request.size.invalid', 'request size did not match content length') : null);
    const onError = (error: Error) => finish(httpError(400, 'request.aborted', error.message));
    const onAborted = () => finish(httpError(400, 'request.aborted', 'request aborted'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  };
}

/** A body is there when it is chunked or has a length (type-is's hasBody). */
function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && !Number.isNaN(Number(req.headers['content-length'])));
}

/** `application/json`, with parameters or not, in any letter case (what express.json's default type admits). */
function isJson(contentType: string): boolean {
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

/** No charset, or UTF-8: the fast path decodes only that. */
function utf8(contentType: string): boolean {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  return !match || match[1]!.toLowerCase() === 'utf-8' || match[1]!.toLowerCase() === 'utf8';
}

function httpError(status: number, type: string, message: string): Error {
  return Object.assign(new Error(message), { status, statusCode: status, type, expose: true });
}

function refuse(req: Request, next: NextFunction, status: number, type: string, message: string): void {
  // The body is not read: discard it so the connection can carry the answer.
  req.resume();
  next(httpError(status, type, message));
}
