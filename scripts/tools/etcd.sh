# shellcheck shell=bash
# etcd from Debian (`etcd-server` for etcd, `etcd-client` for etcdctl), pinned to the exact
# version bookworm serves. Sourced by install-tools.sh. `apt-get download` + `dpkg-deb -x`
# unpack the packages without installing them (no init scripts, no system user, no service).
# Cached at $CACHE_ROOT/etcd-<version>/ as `etcd` and `etcdctl`; prints the etcd path.
ETCD_DEB_VERSION="${LUCID_ETCD_DEB_VERSION:-3.4.23-4+b4}"

install_etcd() {
  local dir="$CACHE_ROOT/etcd-$ETCD_DEB_VERSION"
  local bin="$dir/etcd"
  if [[ -x "$bin" && -x "$dir/etcdctl" ]] && "$bin" --version >/dev/null 2>&1; then
    echo "$bin"
    return
  fi
  # Test files in parallel workers may ask at the same time: one installs, the others wait.
  local lock_fd
  exec {lock_fd}>"$CACHE_ROOT/.etcd-$ETCD_DEB_VERSION.lock"
  flock "$lock_fd"
  if [[ -x "$bin" && -x "$dir/etcdctl" ]] && "$bin" --version >/dev/null 2>&1; then
    exec {lock_fd}>&-
    echo "$bin"
    return
  fi
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    log "etcd: needs apt-get and dpkg-deb (a Debian-based machine)"
    return 1
  fi
  log "installing etcd $ETCD_DEB_VERSION from Debian (etcd-server, etcd-client) into $dir"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/debs" "$dir.tmp/root"
  local pkgs=("etcd-server=$ETCD_DEB_VERSION" "etcd-client=$ETCD_DEB_VERSION")
  # apt-get download writes into the current directory. With stale or missing package lists
  # the pinned version is unknown: refresh them once and retry.
  if ! (cd "$dir.tmp/debs" && apt-get download -qq "${pkgs[@]}" >/dev/null 2>&1); then
    log "etcd: $ETCD_DEB_VERSION not in the package lists; running apt-get update"
    apt-get update -qq >/dev/null
    (cd "$dir.tmp/debs" && apt-get download -qq "${pkgs[@]}" >/dev/null)
  fi
  local deb
  for deb in "$dir.tmp/debs"/*.deb; do
    dpkg-deb -x "$deb" "$dir.tmp/root"
  done
  cp "$dir.tmp/root/usr/bin/etcd" "$dir.tmp/etcd"
  cp "$dir.tmp/root/usr/bin/etcdctl" "$dir.tmp/etcdctl"
  chmod +x "$dir.tmp/etcd" "$dir.tmp/etcdctl"
  rm -rf "$dir.tmp/debs" "$dir.tmp/root"
  "$dir.tmp/etcd" --version >/dev/null
  "$dir.tmp/etcdctl" version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  exec {lock_fd}>&-
  echo "$bin"
}
