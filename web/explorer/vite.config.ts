import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Builds the Explorer (web/explorer) into dist/web/explorer, which src/platform/http/explorer.ts
 * serves: the page at `/`, the bundle under /explorer/. Every asset (scripts, styles, workers) is a
 * file of the bundle, so the Explorer works with no network beyond Tangent.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // The page is served at `/` and its assets under /explorer/, apart from the IDE's /ide/.
  base: '/explorer/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../dist/web/explorer', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    // One bundle of about 0.5 MB (React, urql, uPlot, the pages), served from the same machine: its size is expected.
    chunkSizeWarningLimit: 1000,
    rolldownOptions: {
      onwarn(warning, warn) {
        // React libraries mark their modules "use client", which means nothing outside a server-components bundler.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  worker: { format: 'es' },
});
