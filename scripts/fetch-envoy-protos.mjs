#!/usr/bin/env node
// Newer Envoy .proto files that @grpc/grpc-js-xds's set (Envoy API ≈ 1.32) lacks, fetched from
// crates.io at setup time and never committed: the crate envoy-types ships Envoy's
// data-plane-api and its imports (opentelemetry-proto among them) as .proto sources.
// scripts/gen-protos.mjs lays the files below over the grpc-js-xds set.
//
// - OpenTelemetryAccessLogConfig: 1.32's only way to name the collector, `common_config`, makes
//   Envoy 1.40 warn that it is deprecated; the newer file has `grpc_service` and `log_name`.
// - opentelemetry/proto/common/v1/common.proto: imported by it, absent from grpc-js-xds.
//
// Pinned (crate version + each file's sha256), cached under ~/.cache/lucid-mesh/protos
// (LUCID_PROTOS_CACHE), idempotent: a cache whose files match their checksums is used as is.
// Fetched with cargo, crates.io's own client (cargo verifies the crate against the index's
// checksum): a throwaway package depending on the pinned crate, `cargo fetch`, then `cargo
// metadata` says where the crate's sources are. The cache is filled by an atomic rename, so
// parallel builds never see half a directory.
//
// Usage: node scripts/fetch-envoy-protos.mjs   → prints the overlay directory
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ENVOY_TYPES_VERSION = '0.7.7';

/** Path in the overlay (= import path) → [path inside the crate, sha256]. */
export const OVERLAY_FILES = {
  'envoy/extensions/access_loggers/open_telemetry/v3/logs_service.proto': [
    'proto/data-plane-api/envoy/extensions/access_loggers/open_telemetry/v3/logs_service.proto',
    '2b7a060e9d857eca5ba4be170e158aca3148a6e5c54a31155c5e52388d3cd071',
  ],
  'opentelemetry/proto/common/v1/common.proto': [
    'proto/opentelemetry-proto/opentelemetry/proto/common/v1/common.proto',
    '0429795169e29089cc53490b541a0ae89fa7c80492ac58ed2b3c4171cce4ecee',
  ],
};

export const OVERLAY_SOURCE = `crates.io envoy-types@${ENVOY_TYPES_VERSION}`;

function cacheRoot() {
  if (process.env.LUCID_PROTOS_CACHE) return process.env.LUCID_PROTOS_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'lucid-mesh', 'protos');
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The files of `dir` that are missing or do not match their pinned checksum. */
function badFiles(dir) {
  return Object.entries(OVERLAY_FILES)
    .filter(([path, [, sum]]) => !existsSync(join(dir, path)) || sha256(join(dir, path)) !== sum)
    .map(([path]) => path);
}

function fail(message) {
  throw new Error(`[fetch-envoy-protos] ${message}`);
}

function cargo(args, cwd) {
  const res = spawnSync('cargo', args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (res.error?.code === 'ENOENT') {
    fail(
      `cargo is not installed: it fetches the crate envoy-types ${ENVOY_TYPES_VERSION} (Envoy's ` +
        '.proto files) from crates.io. Install Rust (rustup, or the distro\'s "cargo" package).',
    );
  }
  if (res.error) fail(`cargo ${args[0]}: ${res.error.message}`);
  if (res.status !== 0) {
    const tail = res.stderr.trim().split('\n').slice(-8).join('\n');
    fail(
      `could not fetch the crate envoy-types ${ENVOY_TYPES_VERSION} from crates.io ` +
        `(cargo ${args.join(' ')} exited ${res.status}; is the registry reachable?):\n${tail}`,
    );
  }
  return res.stdout;
}

/** Fetches the crate and copies the pinned files into `into`; checks them. */
function fetchInto(into, work) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'src'), { recursive: true });
  writeFileSync(
    join(work, 'Cargo.toml'),
    [
      '[package]',
      'name = "lucid-mesh-proto-fetch"',
      'version = "0.0.0"',
      'edition = "2021"',
      'publish = false',
      '[lib]',
      'path = "src/lib.rs"',
      '[dependencies]',
      `envoy-types = "=${ENVOY_TYPES_VERSION}"`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(work, 'src', 'lib.rs'), '');
  const host = /^host: (.+)$/m.exec(spawnSync('rustc', ['-vV'], { encoding: 'utf8' }).stdout ?? '');
  const target = host ? ['--target', host[1]] : [];
  cargo(['fetch', '--quiet', ...target], work);
  const platform = host ? ['--filter-platform', host[1]] : [];
  const meta = JSON.parse(
    cargo(['metadata', '--offline', '--format-version', '1', ...platform], work),
  );
  const pkg = meta.packages.find(
    (p) => p.name === 'envoy-types' && p.version === ENVOY_TYPES_VERSION,
  );
  if (!pkg) fail(`cargo metadata does not list envoy-types ${ENVOY_TYPES_VERSION}`);
  const crateDir = dirname(pkg.manifest_path);
  for (const [path, [inCrate]] of Object.entries(OVERLAY_FILES)) {
    const from = join(crateDir, inCrate);
    if (!existsSync(from)) fail(`envoy-types ${ENVOY_TYPES_VERSION} has no ${inCrate}`);
    mkdirSync(dirname(join(into, path)), { recursive: true });
    copyFileSync(from, join(into, path));
  }
  const bad = badFiles(into);
  if (bad.length > 0) {
    fail(`checksum mismatch in envoy-types ${ENVOY_TYPES_VERSION}: ${bad.join(', ')}`);
  }
}

/** The overlay directory, fetched if the cache does not hold it (intact) yet. */
export function envoyProtoOverlay() {
  const root = cacheRoot();
  const dir = join(root, `envoy-types-${ENVOY_TYPES_VERSION}`);
  if (existsSync(dir) && badFiles(dir).length === 0) return dir;
  mkdirSync(root, { recursive: true });
  const tag = `${process.pid}-${Date.now()}`;
  const tmp = `${dir}.tmp-${tag}`;
  const work = `${dir}.cargo-${tag}`;
  try {
    console.error(
      `[fetch-envoy-protos] fetching envoy-types ${ENVOY_TYPES_VERSION} from crates.io`,
    );
    fetchInto(tmp, work);
    // Another build may have renamed its copy in meanwhile: keep an intact one.
    if (!existsSync(dir) || badFiles(dir).length > 0) {
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    console.log(envoyProtoOverlay());
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
