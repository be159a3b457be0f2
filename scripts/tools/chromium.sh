# shellcheck shell=bash
# Chromium from Debian, for the web console's browser tests (puppeteer-core drives it; no
# library ever downloads a browser). Pinned to the exact version bookworm-security serves; when
# a security update has replaced it there, the version served now (deb_served_version).
# Sourced by install-tools.sh. `apt-get install --simulate` names the packages this machine
# lacks (chromium, chromium-common and the libraries not already installed); `apt-get download`
# + `dpkg-deb -x` unpack them without installing anything (no postinst, no alternatives).
# Cached at $CACHE_ROOT/chromium-<version>/ with a wrapper `chromium` that puts the unpacked
# libraries on LD_LIBRARY_PATH; prints the wrapper's path.
CHROMIUM_DEB_VERSION="${LUCID_CHROMIUM_DEB_VERSION:-156.0.8078.114-1~deb12u1}"

_chromium_ok() {
  local bin="$1"
  [[ -x "$bin" ]] && "$bin" --headless --no-sandbox --version >/dev/null 2>&1
}

install_chromium() {
  local dir="$CACHE_ROOT/chromium-$CHROMIUM_DEB_VERSION"
  if ! _chromium_ok "$dir/chromium"; then
    deb_require chromium
    CHROMIUM_DEB_VERSION="$(deb_served_version chromium chromium "$CHROMIUM_DEB_VERSION")"
    dir="$CACHE_ROOT/chromium-$CHROMIUM_DEB_VERSION"
  fi
  install_locked "chromium-$CHROMIUM_DEB_VERSION" _chromium_ok "$dir/chromium" _chromium_unpack
}

_chromium_unpack() {
  deb_require chromium
  log "installing chromium $CHROMIUM_DEB_VERSION from Debian (unpacked) into $dir"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/debs" "$dir.tmp/root"
  # What apt would install here: chromium plus the dependencies this machine does not have.
  # (deb_served_version has made sure the package lists have this version.)
  local sim
  sim="$(apt-get install -s --no-install-recommends "chromium=$CHROMIUM_DEB_VERSION")"
  local pkgs
  mapfile -t pkgs < <(awk '/^Inst /{print $2 "=" substr($3, 2)}' <<<"$sim")
  # (as root apt warns that its _apt user cannot write the cache dir: harmless, not shown)
  (cd "$dir.tmp/debs" && apt-get download -qq "${pkgs[@]}" 2>&1 >/dev/null | grep -v 'unsandboxed as root' >&2 || true)
  [[ -n "$(ls "$dir.tmp/debs")" ]] || { log "chromium: apt-get download fetched nothing"; return 1; }
  deb_unpack "$dir"
  # Debian's /usr/bin/chromium is a launcher reading /etc/chromium.d; call the binary itself.
  cat >"$dir.tmp/chromium" <<WRAPPER
#!/usr/bin/env bash
root="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)/root"
export LD_LIBRARY_PATH="\$root/usr/lib/x86_64-linux-gnu:\$root/usr/lib/x86_64-linux-gnu/pulseaudio:\$root/lib/x86_64-linux-gnu:\$root/usr/lib/chromium\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "\$root/usr/lib/chromium/chromium" "\$@"
WRAPPER
  chmod +x "$dir.tmp/chromium"
  if ! _chromium_ok "$dir.tmp/chromium"; then
    log "chromium: the unpacked browser does not start:"
    "$dir.tmp/chromium" --headless --no-sandbox --version >&2 || true
    return 1
  fi
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
