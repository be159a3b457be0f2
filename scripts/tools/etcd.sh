# shellcheck shell=bash
# etcd from Debian (`etcd-server` for etcd, `etcd-client` for etcdctl), pinned to the exact
# version bookworm serves. Sourced by install-tools.sh. `apt-get download` + `dpkg-deb -x`
# unpack the packages without installing them (no init scripts, no system user, no service).
# Cached at $CACHE_ROOT/etcd-<version>/ as `etcd` and `etcdctl`; prints the etcd path.
ETCD_DEB_VERSION="${LUCID_ETCD_DEB_VERSION:-3.4.23-4+b4}"

_etcd_ok() {
  [[ -x "$1" && -x "$(dirname "$1")/etcdctl" ]] && "$1" --version >/dev/null 2>&1
}

install_etcd() {
  local dir="$CACHE_ROOT/etcd-$ETCD_DEB_VERSION"
  install_locked "etcd-$ETCD_DEB_VERSION" _etcd_ok "$dir/etcd" _etcd_unpack
}

_etcd_unpack() {
  deb_require etcd
  log "installing etcd $ETCD_DEB_VERSION from Debian (etcd-server, etcd-client) into $dir"
  deb_fetch etcd "$ETCD_DEB_VERSION" "$dir" "etcd-server=$ETCD_DEB_VERSION" "etcd-client=$ETCD_DEB_VERSION"
  deb_keep_bins "$dir" etcd etcdctl
  "$dir.tmp/etcd" --version >/dev/null
  "$dir.tmp/etcdctl" version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
