// Builds the web console (src/console/) into dist/console/: app.js and app.css bundled by
// esbuild (Preact, uPlot and our code; nothing loaded from a CDN), and the HTML shell. Run by
// `npm run build` / `prepare`; the admin server serves the result at /ui.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = process.argv[2] ?? join(root, 'dist', 'console');

mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: { app: join(root, 'src', 'console', 'main.tsx') },
  outdir,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: join(root, 'src', 'console', 'tsconfig.json'),
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(root, 'src', 'console', 'index.html'), join(outdir, 'index.html'));
