import { z } from 'zod';
import { BadUserInputError } from '../errors.js';
import type { ConnectionRow } from './rows.js';

/** A keyset position: the sort key values of the last row seen, ending with its id. */
export type Keyset = readonly (number | string | null)[];

const CursorPayload = z.object({
  /** Which list (and order) the cursor belongs to, so one list's cursor is refused by another. */
  l: z.string(),
  k: z.array(z.union([z.number().finite(), z.string(), z.null()])).min(1).max(8),
});

/** Cursors are opaque to clients: base64url of a small JSON document. */
export function encodeCursor(list: string, key: Keyset): string {
  return Buffer.from(JSON.stringify({ l: list, k: key })).toString('base64url');
}

/** Decodes `after` for `list`, or throws BAD_USER_INPUT when it was not issued for that list. */
export function decodeCursor(list: string, cursor: string | null | undefined, field = 'after'): Keyset | null {
  if (cursor === null || cursor === undefined) return null;
  let payload: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw new Error('not base64url');
    payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadUserInputError('The cursor is not one this server issued', field);
  }
  const parsed = CursorPayload.safeParse(payload);
  if (!parsed.success || parsed.data.l !== list) {
    throw new BadUserInputError('The cursor is not one this server issued for this list', field);
  }
  return parsed.data.k;
}

export const DEFAULT_PAGE_SIZE = 50;

/** `first` as asked, defaulted, and clamped to the server's maximum page size. */
export function pageSize(first: number | null | undefined, max: number): number {
  if (first === null || first === undefined) return Math.min(DEFAULT_PAGE_SIZE, max);
  if (!Number.isInteger(first) || first < 0) throw new BadUserInputError('`first` must be a non-negative integer', 'first');
  return Math.min(first, max);
}

/**
 * Builds a connection from `limit + 1` rows fetched after the cursor: the extra row, if present,
 * only says that another page exists.
 */
export function toConnection<T>(
  list: string,
  rows: T[],
  limit: number,
  keyOf: (row: T) => Keyset,
  count: () => Promise<number>,
): ConnectionRow<T> {
  const page = rows.slice(0, limit);
  const cursorOf = (node: T) => encodeCursor(list, keyOf(node));
  // Cursors are encoded only when a client reads them: a page read as `nodes` makes none but the end cursor, and that only if asked.
  let edges: ConnectionRow<T>['edges'] | null = null;
  return {
    nodes: page,
    get edges() {
      return (edges ??= page.map((node) => ({ cursor: cursorOf(node), node })));
    },
    pageInfo: {
      hasNextPage: rows.length > limit,
      get endCursor() {
        return page.length ? cursorOf(page[page.length - 1]!) : null;
      },
    },
    count,
  };
}

/** Reads the single-id keyset most lists use (ascending id). */
export function afterId(list: string, after: string | null | undefined): number | null {
  const key = decodeCursor(list, after);
  if (key === null) return null;
  const [id] = key;
  if (key.length !== 1 || typeof id !== 'number' || !Number.isInteger(id)) {
    throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  }
  return id;
}

/** `first` and `after` as every connection field takes them. */
export interface PageArgs {
  first?: number | null;
  after?: string | null;
}

/**
 * A keyset page in ascending id order: `fetch` reads up to `take` rows with ids above `after`
 * (all rows when null); `count` runs only when a client asks for totalCount.
 */
export async function pageById<T extends { id: number }>(
  maxPageSize: number,
  list: string,
  args: PageArgs,
  fetch: (after: number | null, take: number) => Promise<T[]>,
  count: () => Promise<number>,
): Promise<ConnectionRow<T>> {
  const limit = pageSize(args.first, maxPageSize);
  const after = afterId(list, args.after);
  const rows = limit === 0 ? [] : await fetch(after, limit + 1);
  return toConnection(list, rows, limit, (row) => [row.id], count);
}

/** Reads a single-number keyset (a sample's index, a checkpoint's step, a metric's sample id), or null. */
export function afterNumber(list: string, after: string | null | undefined): number | null {
  const key = decodeCursor(list, after);
  const first = key?.[0];
  if (key && (key.length !== 1 || typeof first !== 'number')) throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  return typeof first === 'number' ? first : null;
}
