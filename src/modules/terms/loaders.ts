import type DataLoader from 'dataloader';

/**
 * What the terms module keeps per request, beside the request's other loaders: the inline compute
 * allowance already used (TANGENT_INLINE_MAX_SAMPLES bounds the whole request, src/modules/terms/compute-policy.ts)
 * and the loader that batches the request's missing per-sample terms (src/modules/terms/compute-terms.ts),
 * made on first use.
 */
export class TermsLoaders {
  /** Samples this request has computed inline so far. */
  inlineUsed = 0;
  private fill: DataLoader<string, void> | null = null;

  /** The request's loader of missing per-sample terms, made by `make` on first use. */
  fillLoader(make: () => DataLoader<string, void>): DataLoader<string, void> {
    return (this.fill ??= make());
  }
}

/** The terms module's per-request loaders (cheap: nothing is made until used). */
export function createTermsLoaders(): TermsLoaders {
  return new TermsLoaders();
}
