# shellcheck shell=bash
# The Prometheus server from Debian's `prometheus` package, pinned to the exact version bookworm
# serves (the same package as promtool.sh); for the test that scrapes real sidecars with
# compose/prometheus/prometheus.yml and evaluates alerts.yml. Sourced by install-tools.sh.
# `apt-get download` + `dpkg-deb -x` unpack the package without installing it (no service, no
# system user); only the prometheus binary is kept (a static Go binary; no web UI assets are
# needed for its HTTP API). Cached at $CACHE_ROOT/prometheus-<version>/prometheus.
PROMETHEUS_DEB_VERSION="${LUCID_PROMETHEUS_DEB_VERSION:-2.42.0+ds-5+deb12u1}"

install_prometheus() {
  deb_install_static prometheus "$PROMETHEUS_DEB_VERSION" prometheus
}
