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
// Pinned (crate version, the .crate's sha256 and each file's sha256), cached under
// ~/.cache/lucid-mesh/protos (LUCID_PROTOS_CACHE), idempotent: a cache whose files match their
// checksums is used as is. The crate is a gzipped tar downloaded from crates.io's static host
// (LUCID_CRATES_URL overrides it, for a mirror); only the two files are taken out of it with tar,
// so no Rust toolchain is needed. The cache is filled by an atomic rename, so parallel builds
// never see half a directory.
//
// Usage: node scripts/fetch-envoy-protos.mjs   → prints the overlay directory
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ENVOY_TYPES_VERSION = '0.7.7';
/** sha256 of envoy-types-0.7.7.crate (the same as crates.io's index records for it). */
export const CRATE_SHA256 = 'e1fdd3fa7e8347872dd5d6e8626441589f0fd87d7fcf3003a4cca2103ecc39c0';
const CRATES_URL = process.env.LUCID_CRATES_URL ?? 'https://static.crates.io/crates';

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

/** Downloads the pinned crate (a .tar.gz) into `file`; checks its sha256. */
async function download(file) {
  const url = `${CRATES_URL}/envoy-types/envoy-types-${ENVOY_TYPES_VERSION}.crate`;
  let body;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    fail(
      `could not fetch the crate envoy-types ${ENVOY_TYPES_VERSION} from ${url} ` +
        `(${err.cause?.message ?? err.message}; is the registry reachable?)`,
    );
  }
  const sum = createHash('sha256').update(body).digest('hex');
  if (sum !== CRATE_SHA256) {
    fail(`checksum mismatch for ${url}: expected ${CRATE_SHA256}, got ${sum}`);
  }
  writeFileSync(file, body);
}

/** Fetches the crate and takes the pinned files out of it into `into`; checks them. */
async function fetchInto(into, work) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const crate = join(work, 'envoy-types.crate');
  await download(crate);
  const top = `envoy-types-${ENVOY_TYPES_VERSION}`;
  const members = Object.values(OVERLAY_FILES).map(([inCrate]) => `${top}/${inCrate}`);
  const tar = spawnSync('tar', ['-xzf', crate, '-C', work, ...members], { encoding: 'utf8' });
  if (tar.error || tar.status !== 0) {
    fail(`tar could not unpack ${members.join(', ')}: ${tar.error?.message ?? tar.stderr.trim()}`);
  }
  for (const [path, [inCrate]] of Object.entries(OVERLAY_FILES)) {
    mkdirSync(dirname(join(into, path)), { recursive: true });
    renameSync(join(work, top, inCrate), join(into, path));
  }
  const bad = badFiles(into);
  if (bad.length > 0) {
    fail(`checksum mismatch in envoy-types ${ENVOY_TYPES_VERSION}: ${bad.join(', ')}`);
  }
}

/** The overlay directory, fetched if the cache does not hold it (intact) yet. */
export async function envoyProtoOverlay() {
  const root = cacheRoot();
  const dir = join(root, `envoy-types-${ENVOY_TYPES_VERSION}`);
  if (existsSync(dir) && badFiles(dir).length === 0) return dir;
  mkdirSync(root, { recursive: true });
  const tag = `${process.pid}-${Date.now()}`;
  const tmp = `${dir}.tmp-${tag}`;
  const work = `${dir}.work-${tag}`;
  try {
    console.error(
      `[fetch-envoy-protos] fetching envoy-types ${ENVOY_TYPES_VERSION} from crates.io`,
    );
    await fetchInto(tmp, work);
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
    console.log(await envoyProtoOverlay());
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
