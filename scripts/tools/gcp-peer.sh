# shellcheck shell=bash
# The bench's go-control-plane reference peer (bench/peers/go-control-plane: our own module,
# go.sum committed), built with go-control-plane v0.14.0 and its envoy module v1.40.0 from the
# Go module proxy. Sourced by install-tools.sh; same contract as consul.sh: idempotent, cached
# under $CACHE_ROOT, prints the binary path on stdout, logs to stderr, one build at a time
# (flock). The cache directory is named by a hash of the peer's sources, so an edit to the peer
# builds a new binary and a cache hit costs one sha256sum (`npm test` runs every recipe).
# `local` uses the installed Go; the default `auto` lets `go` fetch the toolchain go.mod asks
# for when the installed one is older.
GCP_PEER_GOTOOLCHAIN="${LUCID_GCP_PEER_GOTOOLCHAIN:-auto}"

gcp_peer_ok() { [[ -x "$1" ]] && "$1" -help >/dev/null 2>&1; }

install_gcp-peer() {
  local src
  src="$(cd "$here/../bench/peers/go-control-plane" && pwd)"
  local hash
  hash="$(cd "$src" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)"
  local dir="$CACHE_ROOT/gcp-peer-$hash"
  local bin="$dir/gcp-peer"
  if gcp_peer_ok "$bin"; then
    echo "$bin"
    return
  fi
  # Test files in parallel workers may ask at the same time: one builds, the others wait.
  local lock_fd
  exec {lock_fd}>"$CACHE_ROOT/.gcp-peer-$hash.lock"
  flock "$lock_fd"
  if gcp_peer_ok "$bin"; then
    exec {lock_fd}>&-
    echo "$bin"
    return
  fi
  if ! command -v go >/dev/null 2>&1; then
    log "gcp-peer: building needs Go (https://go.dev/dl or the distro's golang package)"
    exec {lock_fd}>&-
    return 1
  fi
  # Shared Go caches under the tool cache (with consul.sh and jaeger.sh).
  local gohome="$CACHE_ROOT/go"
  log "building the go-control-plane peer ($src) into $dir (first build: a minute or two)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  (
    cd "$src" || exit 1
    export GOPATH="$gohome" GOMODCACHE="$gohome/pkg/mod" GOCACHE="$gohome/build-cache"
    export GOTOOLCHAIN="$GCP_PEER_GOTOOLCHAIN" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
    go build -trimpath -o "$dir.tmp/gcp-peer" . >&2
  ) || {
    exec {lock_fd}>&-
    return 1
  }
  gcp_peer_ok "$dir.tmp/gcp-peer" || {
    log "gcp-peer: the built binary does not run"
    exec {lock_fd}>&-
    return 1
  }
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  exec {lock_fd}>&-
  echo "$bin"
}
