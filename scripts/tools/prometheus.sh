# shellcheck shell=bash
# The Prometheus server from Debian's `prometheus` package, pinned to the exact version bookworm
# serves (the same package as promtool.sh); for the test that scrapes real sidecars with
# compose/prometheus/prometheus.yml and evaluates alerts.yml. Sourced by install-tools.sh.
# `apt-get download` + `dpkg-deb -x` unpack the package without installing it (no service, no
# system user); only the prometheus binary is kept (a static Go binary; no web UI assets are
# needed for its HTTP API). Cached at $CACHE_ROOT/prometheus-<version>/prometheus.
PROMETHEUS_DEB_VERSION="${LUCID_PROMETHEUS_DEB_VERSION:-2.42.0+ds-5+deb12u1}"

install_prometheus() {
  local dir="$CACHE_ROOT/prometheus-$PROMETHEUS_DEB_VERSION"
  local bin="$dir/prometheus"
  if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
    echo "$bin"
    return
  fi
  # Test files in parallel workers may ask at the same time: one installs, the others wait.
  local lock_fd
  exec {lock_fd}>"$CACHE_ROOT/.prometheus-$PROMETHEUS_DEB_VERSION.lock"
  flock "$lock_fd"
  if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
    exec {lock_fd}>&-
    echo "$bin"
    return
  fi
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    log "prometheus: needs apt-get and dpkg-deb (a Debian-based machine)"
    return 1
  fi
  log "installing prometheus $PROMETHEUS_DEB_VERSION from Debian into $dir"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/debs" "$dir.tmp/root"
  local pkg="prometheus=$PROMETHEUS_DEB_VERSION"
  # apt-get download writes into the current directory. With stale or missing package lists
  # the pinned version is unknown: refresh them once and retry.
  if ! (cd "$dir.tmp/debs" && apt-get download -qq "$pkg" >/dev/null 2>&1); then
    log "prometheus: $PROMETHEUS_DEB_VERSION not in the package lists; running apt-get update"
    apt-get update -qq >/dev/null
    (cd "$dir.tmp/debs" && apt-get download -qq "$pkg" >/dev/null)
  fi
  dpkg-deb -x "$dir.tmp/debs"/prometheus_*.deb "$dir.tmp/root"
  cp "$dir.tmp/root/usr/bin/prometheus" "$dir.tmp/prometheus"
  chmod +x "$dir.tmp/prometheus"
  rm -rf "$dir.tmp/debs" "$dir.tmp/root"
  "$dir.tmp/prometheus" --version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  exec {lock_fd}>&-
  echo "$bin"
}
