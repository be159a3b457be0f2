# shellcheck shell=bash
# The cache-and-lock part every recipe shares. Sourced by install-tools.sh before any recipe
# (lib/ is not a tool: `install-tools.sh all` only runs scripts/tools/*.sh).

# install_locked KEY OK_FN BIN INSTALL_FN: prints BIN if `OK_FN BIN` holds; otherwise runs
# INSTALL_FN under an flock on $CACHE_ROOT/.KEY.lock and prints BIN. Test files in parallel
# workers may ask at the same time: one installs, the others wait and then find it cached.
# INSTALL_FN runs in this function's scope, so it sees the caller's locals (dir, …); it runs
# outside any `if`/`||`, so `set -e` still aborts on its first failing command.
install_locked() {
  local key="$1" ok="$2" bin="$3" install="$4"
  if "$ok" "$bin"; then
    echo "$bin"
    return
  fi
  local lock_fd
  exec {lock_fd}>"$CACHE_ROOT/.$key.lock"
  flock "$lock_fd"
  if "$ok" "$bin"; then
    exec {lock_fd}>&-
    echo "$bin"
    return
  fi
  "$install"
  exec {lock_fd}>&-
  echo "$bin"
}

# go_build_env TOOLCHAIN: in a build's subshell, Go caches shared under the tool cache (modules,
# toolchains, compiled packages reused by every Go-built tool and by rebuilds) and a static build.
go_build_env() {
  local gohome="$CACHE_ROOT/go"
  export GOPATH="$gohome" GOMODCACHE="$gohome/pkg/mod" GOCACHE="$gohome/build-cache"
  export GOTOOLCHAIN="$1" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
}

# need_go TOOL: fails with a hint when Go is not installed.
need_go() {
  command -v go >/dev/null 2>&1 && return
  log "$1: building needs Go (https://go.dev/dl or the distro's golang package)"
  return 1
}
