# shellcheck shell=bash
# The Prometheus server from Debian's `prometheus` package, pinned to the exact version bookworm
# serves (the same package as promtool.sh); for the test that scrapes real sidecars with
# compose/prometheus/prometheus.yml and evaluates alerts.yml. Sourced by install-tools.sh.
# `apt-get download` + `dpkg-deb -x` unpack the package without installing it (no service, no
# system user); only the prometheus binary is kept (a static Go binary; no web UI assets are
# needed for its HTTP API). Cached at $CACHE_ROOT/prometheus-<version>/prometheus.
PROMETHEUS_DEB_VERSION="${LUCID_PROMETHEUS_DEB_VERSION:-2.42.0+ds-5+deb12u1}"

_prometheus_ok() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

install_prometheus() {
  local dir="$CACHE_ROOT/prometheus-$PROMETHEUS_DEB_VERSION"
  install_locked "prometheus-$PROMETHEUS_DEB_VERSION" _prometheus_ok "$dir/prometheus" _prometheus_unpack
}

_prometheus_unpack() {
  deb_require prometheus
  log "installing prometheus $PROMETHEUS_DEB_VERSION from Debian into $dir"
  deb_fetch prometheus "$PROMETHEUS_DEB_VERSION" "$dir" "prometheus=$PROMETHEUS_DEB_VERSION"
  deb_keep_bins "$dir" prometheus
  "$dir.tmp/prometheus" --version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
