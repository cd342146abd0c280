import type { EmbedMessage, EmbedRequest } from './protocol';

/**
 * Runs UMAP over n series in a Web Worker (one worker per caller, ended by `cancel`). Resolves with
 * n × 2 coordinates, row-major.
 */
export function embedSeries(
  data: Float32Array,
  n: number,
  d: number,
  options: { seed?: number; nNeighbors?: number; nEpochs?: number; onProgress?: (done: number, total: number) => void } = {},
): { result: Promise<Float32Array>; cancel: () => void } {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  const id = 1;
  const result = new Promise<Float32Array>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<EmbedMessage>) => {
      const m = event.data;
      if (m.kind === 'progress') options.onProgress?.(m.done, m.total);
      else if (m.kind === 'done') {
        resolve(m.xy);
        worker.terminate();
      } else {
        reject(new Error(m.message));
        worker.terminate();
      }
    };
    worker.onerror = (event) => {
      reject(new Error(event.message || 'the embedding worker failed'));
      worker.terminate();
    };
  });
  const request: EmbedRequest = { id, data, n, d, seed: options.seed ?? 42, nNeighbors: options.nNeighbors ?? 15, nEpochs: options.nEpochs ?? 200 };
  worker.postMessage(request);
  return { result, cancel: () => worker.terminate() };
}
