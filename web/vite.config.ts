import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Builds the browser IDE (web/ide) into dist/web/ide, which src/platform/http/ide.ts serves. Every asset,
 * Monaco's workers included, is a file of the bundle: the IDE works with no network beyond Tangent.
 */
export default defineConfig({
  root: fileURLToPath(new URL('./ide', import.meta.url)),
  // The server serves the bundle under /ide/ and the page itself at /graphql, so asset URLs are absolute.
  base: '/ide/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web/ide', import.meta.url)),
    emptyOutDir: true,
    // Monaco alone is several MB; its size is expected, not a warning.
    chunkSizeWarningLimit: 8000,
    // Source maps would triple what npm ci builds and the server ships, for a vendored IDE.
    sourcemap: false,
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
