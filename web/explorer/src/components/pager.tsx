import { useState } from 'react';

/**
 * Relay paging (`first`/`after`) with a way back: a connection's cursors only go forward, so the
 * cursors that led to each page are kept, and "previous" returns to the one before.
 */
export function useCursorPages(): {
  after: string | null;
  page: number;
  next(endCursor: string | null | undefined): void;
  previous(): void;
  reset(): void;
} {
  const [stack, setStack] = useState<(string | null)[]>([null]);
  return {
    after: stack[stack.length - 1] ?? null,
    page: stack.length,
    next: (endCursor) => endCursor && setStack((s) => [...s, endCursor]),
    previous: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
    reset: () => setStack([null]),
  };
}

export function Pager({
  label,
  pages,
  pageInfo,
  totalCount,
  shown,
  pageSize,
}: {
  label: string;
  pages: ReturnType<typeof useCursorPages>;
  pageInfo: { hasNextPage: boolean; endCursor?: string | null } | undefined;
  totalCount: number | undefined;
  shown: number;
  pageSize: number;
}) {
  const from = (pages.page - 1) * pageSize + (shown ? 1 : 0);
  const to = (pages.page - 1) * pageSize + shown;
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={pages.previous} disabled={pages.page <= 1}>
        Previous
      </button>
      <span data-testid={`${label}-range`}>
        {from}–{to} of <span data-testid={`${label}-total`}>{totalCount ?? '…'}</span>
      </span>
      <button type="button" onClick={() => pages.next(pageInfo?.endCursor)} disabled={!pageInfo?.hasNextPage}>
        Next
      </button>
    </nav>
  );
}
