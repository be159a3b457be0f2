#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts) into dist/cli/main.js, over tsc's output of that file, with
// its command and chunk files in dist/cli/bundle/: one minified module graph instead of ~850
// files. V8 keeps every loaded module's source text for the life of the process, and a file
// serve loaded 4.6 MiB of it (our comments, zod's 64 locales, unused exports); bundled and
// minified, an idle control plane is ~3 MiB smaller (issue 16, bench --workload idle). Run by
// `npm run build` / `prepare` after tsc; the other dist/ files stay what tsc wrote (the bench
// and tests import them one by one).
//
// Kept outside the bundle, loaded from node_modules as before: packages required on first use
// (etcd3, consul, amqplib, @grpc/grpc-js: src/xds/grpc-decoder-release.ts patches grpc-js's own
// files), pino (its transports run files by path in worker threads) and OpenTelemetry.
// Names are not kept (no `keepNames`): its __name wrappers gave ~2,300 closures a property
// array, ~1.3 MiB of an idle serve's heap. Error classes name themselves instead
// (test/runtime/error-names.test.ts) and the logs take err.type from err.name.
//
//   node scripts/bundle-cli.mjs [OUT_DIR]    (default dist/cli; OUT_DIR/main.js is the bin)
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = process.argv[2] ?? join(root, 'dist', 'cli');

const EXTERNAL = [
  '@grpc/grpc-js',
  'etcd3',
  'consul',
  'amqplib',
  'pino',
  'pino-*',
  'thread-stream',
  '@opentelemetry/*',
];

/**
 * zod exports all its 50-odd message locales as `z.locales` (~260 KiB of the bundle, loaded and
 * run at start); lucid-mesh words its own messages (src/catalog/zod-wording.ts) on zod's
 * default, English. The bundle's `z.locales` has `en` only.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)
        ? { path: join(dirname(args.importer), args.path), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(args.path),
    }));
  },
};

rmSync(join(outdir, 'bundle'), { recursive: true, force: true });
await build({
  entryPoints: { main: join(root, 'src', 'cli', 'main.ts') },
  outdir,
  chunkNames: 'bundle/[name]-[hash]',
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  tsconfig: join(root, 'tsconfig.build.json'),
  external: EXTERNAL,
  minify: true,
  sourcemap: true,
  // Stack traces map back with --enable-source-maps; the sources themselves stay out (size).
  sourcesContent: false,
  legalComments: 'external',
  logLevel: 'warning',
  plugins: [zodEnglishOnly],
  // CommonJS packages in the bundle call require(): give the ES module one.
  banner: {
    js: "import { createRequire as __lucidCreateRequire } from 'node:module'; const require = __lucidCreateRequire(import.meta.url);",
  },
});
