# shellcheck shell=bash
# promtool from Debian's `prometheus` package, pinned to the exact version bookworm serves; for
# `promtool check rules` / `promtool test rules` on compose/prometheus/alerts.yml. Sourced by
# install-tools.sh. `apt-get download` + `dpkg-deb -x` unpack the package without installing
# it (no service, no system user); only the promtool binary is kept (a static Go binary).
# Cached at $CACHE_ROOT/promtool-<version>/promtool; prints its path.
PROMTOOL_DEB_VERSION="${LUCID_PROMTOOL_DEB_VERSION:-2.42.0+ds-5+deb12u1}"

install_promtool() {
  deb_install_static promtool "$PROMTOOL_DEB_VERSION" prometheus " (prometheus)"
}
