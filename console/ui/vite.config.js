import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const outDir = fileURLToPath(new URL('../dist', import.meta.url));

// The console is served by capstan at /console/ from console/dist, which
// the Go package embeds; dist/.gitkeep stays so `go build` works unbuilt.
export default defineConfig({
  base: '/console/',
  build: {
    outDir,
    emptyOutDir: true,
    // No inline polyfill script: the CSP allows no inline scripts.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  plugins: [
    {
      name: 'capstan-keep-dist',
      closeBundle() {
        writeFileSync(`${outDir}/.gitkeep`, '');
      },
    },
  ],
});
