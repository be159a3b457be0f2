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
  install_locked "gcp-peer-$hash" gcp_peer_ok "$dir/gcp-peer" _gcp_peer_build
}

_gcp_peer_build() {
  need_go gcp-peer
  log "building the go-control-plane peer ($src) into $dir (first build: a minute or two)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  (
    cd "$src" || exit 1
    go_build_env "$GCP_PEER_GOTOOLCHAIN"
    go build -trimpath -o "$dir.tmp/gcp-peer" . >&2
  )
  gcp_peer_ok "$dir.tmp/gcp-peer" || {
    log "gcp-peer: the built binary does not run"
    return 1
  }
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
