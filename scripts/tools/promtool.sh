# shellcheck shell=bash
# promtool from Debian's `prometheus` package, pinned to the exact version bookworm serves; for
# `promtool check rules` / `promtool test rules` on compose/prometheus/alerts.yml. Sourced by
# install-tools.sh. `apt-get download` + `dpkg-deb -x` unpack the package without installing
# it (no service, no system user); only the promtool binary is kept (a static Go binary).
# Cached at $CACHE_ROOT/promtool-<version>/promtool; prints its path.
PROMTOOL_DEB_VERSION="${LUCID_PROMTOOL_DEB_VERSION:-2.42.0+ds-5+deb12u1}"

_promtool_ok() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

install_promtool() {
  local dir="$CACHE_ROOT/promtool-$PROMTOOL_DEB_VERSION"
  install_locked "promtool-$PROMTOOL_DEB_VERSION" _promtool_ok "$dir/promtool" _promtool_unpack
}

_promtool_unpack() {
  deb_require promtool
  log "installing promtool $PROMTOOL_DEB_VERSION from Debian (prometheus) into $dir"
  deb_fetch promtool "$PROMTOOL_DEB_VERSION" "$dir" "prometheus=$PROMTOOL_DEB_VERSION"
  deb_keep_bins "$dir" promtool
  "$dir.tmp/promtool" --version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
