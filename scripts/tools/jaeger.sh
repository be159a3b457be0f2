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
  install_locked "jaeger-$JAEGER_VERSION" jaeger_ok "$dir/jaeger" _jaeger_build
}

_jaeger_build() {
  need_go jaeger
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
    go_build_env "$JAEGER_GOTOOLCHAIN"
    go get "github.com/jaegertracing/jaeger/cmd/jaeger@v$JAEGER_VERSION" >&2
    go build -trimpath -o "$dir.tmp/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger >&2
  )
  "$dir.tmp/jaeger" version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  rm -rf "$work"
}
