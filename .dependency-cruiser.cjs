// Layering of src/: imports go one way down the pipeline
//   sources → catalog ┐, traffic, policy → mesh (IR) → translate → snapshot → xds → observe
// and nothing imports "up" the list. `npm run lint` runs this (npm run deps).
/** A folder of src/ as a path regex. */
const dir = (...names) => `^src/(${names.join('|')})/`;

// The logger is a leaf every layer may use (it imports nothing of ours).
const LEAVES = '^src/telemetry/logger\\.ts$';
// Loaders of the inputs (a watched policy or traffic file, a policy in Consul KV) are source
// adapters: they sit with the sources, next to the schema they load.
const LOADERS = '^src/(policy|traffic)/(.*-file|consul-policy)\\.ts$';

// Stages in pipeline order; each may import only stages before it (and the leaf libraries).
const inputs = ['catalog', 'traffic', 'policy'];
const later = {
  inputs: [
    'sources',
    'mesh',
    'translate',
    'snapshot',
    'xds',
    'admin',
    'telemetry',
    'cli',
    'demo',
    'security',
    'bootstrap',
    'dns',
  ],
  mesh: [
    'sources',
    'translate',
    'snapshot',
    'xds',
    'admin',
    'telemetry',
    'cli',
    'demo',
    'security',
    'bootstrap',
    'dns',
  ],
  translate: [
    'sources',
    'snapshot',
    'xds',
    'admin',
    'telemetry',
    'cli',
    'demo',
    'security',
    'bootstrap',
    'dns',
  ],
  // dns/ (the control plane's DNS server) reads the mesh model, as admin/ does.
  snapshot: ['sources', 'xds', 'admin', 'cli', 'demo', 'dns'],
  xds: ['sources', 'admin', 'cli', 'demo', 'dns'],
};

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A cycle means two modules are one; split out what both need (a leaf module).',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'inputs-import-no-later-stage',
      severity: 'error',
      comment: 'catalog, traffic and policy are inputs: they know nothing of the mesh or Envoy.',
      from: { path: dir(...inputs), pathNot: LOADERS },
      to: { path: dir(...later.inputs), pathNot: LEAVES },
    },
    {
      name: 'mesh-imports-only-inputs',
      severity: 'error',
      comment: 'The mesh model is built from the inputs only; it knows nothing of Envoy.',
      from: { path: dir('mesh') },
      to: { path: dir(...later.mesh), pathNot: LEAVES },
    },
    {
      name: 'translate-reads-only-the-mesh',
      severity: 'error',
      comment: 'Translators are pure functions of the mesh model.',
      from: { path: dir('translate') },
      to: { path: dir(...later.translate), pathNot: LEAVES },
    },
    {
      name: 'snapshot-knows-no-protocol',
      severity: 'error',
      comment: 'The cache holds state; streams, nonces and ACKs are the xds layer’s.',
      from: { path: dir('snapshot') },
      to: { path: dir(...later.snapshot) },
    },
    {
      name: 'xds-is-protocol-only',
      severity: 'error',
      from: { path: dir('xds') },
      to: { path: dir(...later.xds) },
    },
    {
      name: 'loaders-stay-out-of-the-pipeline',
      severity: 'error',
      comment: 'Input loaders may use sources, never the mesh, Envoy or the protocol.',
      from: { path: LOADERS },
      to: { path: dir('mesh', 'translate', 'snapshot', 'xds', 'admin', 'cli', 'demo') },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      comment: 'The CLI is the top: commands import the product, never the reverse.',
      from: { path: '^src/', pathNot: '^src/(cli|demo)/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'server-does-not-import-the-console',
      severity: 'error',
      comment: 'src/console is browser code bundled by esbuild; the server only serves its files.',
      from: { path: '^src/', pathNot: '^src/console/' },
      to: { path: '^src/console/' },
    },
    {
      name: 'console-imports-only-server-types',
      severity: 'error',
      comment: 'The console shares the API types (type-only imports); no server code is bundled.',
      from: { path: '^src/console/' },
      to: { path: '^src/', pathNot: '^src/console/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(gen|dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js'] },
  },
};
