#!/usr/bin/env bash
# Lints and generates lucid-mesh's own APIs (proto/, see buf.yaml) into gen/lucidmesh/ with buf and
# protoc-gen-es, both from node_modules (pinned devDependencies; no network needed).
# Idempotent: gen/lucidmesh is replaced only when the generated output differs, so running this
# while something reads gen/ is harmless. Exits non-zero with a message naming the failed step.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fail() {
  printf 'gen-own-protos: %s\n' "$*" >&2
  exit 1
}

bin="$root/node_modules/.bin"
[[ -x "$bin/buf" ]] || fail "buf not found at $bin/buf: run \`npm ci\` first (devDependency @bufbuild/buf)"
[[ -x "$bin/protoc-gen-es" ]] ||
  fail "protoc-gen-es not found at $bin/protoc-gen-es: run \`npm ci\` first (devDependency @bufbuild/protoc-gen-es)"
export PATH="$bin:$PATH"

buf lint || fail "buf lint failed for proto/ (see the messages above)"

mkdir -p gen
tmp="$(mktemp -d "$root/gen/.own-protos.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

buf generate --output "$tmp" || fail "buf generate failed (see the messages above)"
[[ -d "$tmp/gen/lucidmesh" ]] || fail "buf generate produced no gen/lucidmesh/ (check buf.gen.yaml)"

if [[ -d gen/lucidmesh ]] && diff -r -q "$tmp/gen/lucidmesh" gen/lucidmesh >/dev/null 2>&1; then
  exit 0
fi
rm -rf gen/lucidmesh.old
[[ -d gen/lucidmesh ]] && mv gen/lucidmesh gen/lucidmesh.old
mv "$tmp/gen/lucidmesh" gen/lucidmesh
rm -rf gen/lucidmesh.old
echo "gen-own-protos: generated gen/lucidmesh/" >&2
