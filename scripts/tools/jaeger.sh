# shellcheck shell=bash
# Jaeger v2 (an OpenTelemetry Collector distribution that speaks OTLP and serves the query
# API), built from source fetched through the Go module proxy. Sourced by install-tools.sh;
# same contract as consul.sh: idempotent, pinned, cached under $CACHE_ROOT, prints the
# binary path on stdout, logs to stderr, one install at a time (flock).
#
# In the v1.x tags, cmd/jaeger is the v2 binary. A tiny wrapper module that requires Jaeger
# is built instead of `go install …@v…`, because Jaeger's go.mod may carry `replace` lines
# (ignored for a dependency). The wrapper is generated into the cache, never committed.
JAEGER_VERSION="${LUCID_JAEGER_VERSION:-1.76.0}"
# `local` uses the installed Go; set a goX.Y.Z to have `go` fetch that toolchain instead.
JAEGER_GOTOOLCHAIN="${LUCID_JAEGER_GOTOOLCHAIN:-auto}"

jaeger_ok() { [[ -x "$1" ]] && "$1" version >/dev/null 2>&1; }

install_jaeger() {
  local dir="$CACHE_ROOT/jaeger-$JAEGER_VERSION"
  local bin="$dir/jaeger"
  if jaeger_ok "$bin"; then
    echo "$bin"
    return
  fi
  # Test files in parallel workers may ask at the same time: one builds, the others wait.
  local lock_fd
  exec {lock_fd}>"$CACHE_ROOT/.jaeger-$JAEGER_VERSION.lock"
  flock "$lock_fd"
  if jaeger_ok "$bin"; then
    exec {lock_fd}>&-
    echo "$bin"
    return
  fi
  if ! command -v go >/dev/null 2>&1; then
    log "jaeger: building needs Go (https://go.dev/dl or the distro's golang package)"
    return 1
  fi
  # Shared Go caches under the tool cache (with consul.sh): modules and compiled packages.
  local gohome="$CACHE_ROOT/go"
  local work="$dir.build"
  log "building jaeger $JAEGER_VERSION from the Go module proxy into $dir (first build: several minutes)"
  rm -rf "$work" "$dir.tmp" && mkdir -p "$work" "$dir.tmp"
  cat >"$work/go.mod" <<EOF
module local/jaegerbuild

go 1.24

require github.com/jaegertracing/jaeger v$JAEGER_VERSION
EOF
  (
    cd "$work" || exit 1
    export GOPATH="$gohome" GOMODCACHE="$gohome/pkg/mod" GOCACHE="$gohome/build-cache"
    export GOTOOLCHAIN="$JAEGER_GOTOOLCHAIN" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
    go get "github.com/jaegertracing/jaeger/cmd/jaeger@v$JAEGER_VERSION" >&2
    go build -trimpath -o "$dir.tmp/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger >&2
  ) || {
    exec {lock_fd}>&-
    return 1
  }
  "$dir.tmp/jaeger" version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  rm -rf "$work"
  exec {lock_fd}>&-
  echo "$bin"
}
