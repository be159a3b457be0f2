# shellcheck shell=bash
# Consul, built from source fetched through the Go module proxy (no registry ships a
# Consul binary). Sourced by install-tools.sh; same contract as envoy.sh: idempotent,
# pinned, cached under $CACHE_ROOT, prints the binary path on stdout, logs to stderr.
#
# Consul's root go.mod carries `replace` lines for its own submodules, so
# `go install github.com/hashicorp/consul@v…` refuses. A tiny wrapper module that requires
# Consul works, because replace lines of dependencies are ignored. The wrapper is a build
# recipe generated here into the cache, never committed. v1.16.1 is the last MPL-2.0 release.
CONSUL_VERSION="${LUCID_CONSUL_VERSION:-1.16.1}"
# Consul 1.16's dependency set is built with a Go of its time; `go` downloads this toolchain
# through the module proxy (cached in the GOMODCACHE below). Set to `local` to use the
# installed Go instead.
CONSUL_GOTOOLCHAIN="${LUCID_CONSUL_GOTOOLCHAIN:-go1.21.13}"

install_consul() {
  local dir="$CACHE_ROOT/consul-$CONSUL_VERSION"
  local bin="$dir/consul"
  if [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; then
    echo "$bin"
    return
  fi
  need_go consul
  local work="$dir.build"
  log "building consul $CONSUL_VERSION from the Go module proxy into $dir (first build: several minutes)"
  rm -rf "$work" "$dir.tmp" && mkdir -p "$work" "$dir.tmp"
  cat >"$work/go.mod" <<EOF
module local/consulbuild

go 1.21

require github.com/hashicorp/consul v$CONSUL_VERSION

exclude (
	github.com/hashicorp/go-msgpack v1.1.5
	github.com/hashicorp/go-msgpack v1.1.6
)
EOF
  (
    cd "$work" || exit 1
    go_build_env "$CONSUL_GOTOOLCHAIN"
    # Consul's own go.sum (its module is verified against the checksum database) pins the
    # hashes of the dependency versions Consul was released with; seeding the wrapper with it
    # verifies those without a checksum-database lookup each (some mirrors' sumdb lack them).
    local consul_dir
    consul_dir="$(go mod download -json "github.com/hashicorp/consul@v$CONSUL_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -f "$consul_dir/go.sum" ]] || { log "consul: module source not found"; exit 1; }
    cp "$consul_dir/go.sum" go.sum && chmod u+w go.sum
    # Consul's envoyextensions submodule is `replace`d by a local path in Consul's go.mod, so
    # its hash is in no go.sum; it is released from the same repository as the verified
    # Consul module above.
    export GONOSUMDB="github.com/hashicorp/consul/envoyextensions${GONOSUMDB:+,$GONOSUMDB}"
    go get "github.com/hashicorp/consul@v$CONSUL_VERSION" >&2
    go build -trimpath -o "$dir.tmp/consul" github.com/hashicorp/consul >&2
  )
  "$dir.tmp/consul" version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  rm -rf "$work"
  echo "$bin"
}
