import { UMAP } from 'umap-js';
import { mulberry32, zNormalise, type EmbedRequest, type EmbedMessage } from './protocol';

/**
 * Embeds series in 2-D with UMAP off the main thread, so the page stays responsive while it runs.
 * umap-js (Google PAIR's port of McInnes et al.'s UMAP) rather than t-SNE: it is maintained, takes a
 * seeded random source (the same map for the same samples every time), runs in O(n log n) with
 * NN-descent where a plain t-SNE is O(n²), and exposes its epochs one step at a time, so progress is
 * reported. One worker embeds one request; the page cancels by terminating it.
 */

self.onmessage = (event: MessageEvent<EmbedRequest>) => run(event.data);

function post(message: EmbedMessage, transfer: Transferable[] = []) {
  (self as unknown as Worker).postMessage(message, transfer);
}

function run({ id, data, n, d, seed, nNeighbors, nEpochs }: EmbedRequest) {
  try {
    const rows: number[][] = [];
    for (let i = 0; i < n; i++) rows.push(zNormalise(data.subarray(i * d, (i + 1) * d)));
    const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(nNeighbors, Math.max(2, n - 1)), nEpochs, minDist: 0.1, random: mulberry32(seed) });
    const epochs = umap.initializeFit(rows);
    for (let e = 0; e < epochs; e++) {
      umap.step();
      if (e % 20 === 0) post({ id, kind: 'progress', done: e, total: epochs });
    }
    const embedding = umap.getEmbedding();
    const xy = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      xy[2 * i] = embedding[i]![0]!;
      xy[2 * i + 1] = embedding[i]![1]!;
    }
    post({ id, kind: 'done', xy }, [xy.buffer]);
  } catch (error) {
    post({ id, kind: 'error', message: error instanceof Error ? error.message : String(error) });
  }
}
