# shellcheck shell=bash
# dig (BIND 9) from Debian's `bind9-dnsutils`, pinned to the version bookworm-security serves (or, once a security update has
# replaced it, the one served now: deb_served_version), for the
# DNS tests (docs/dns.md). Sourced by install-tools.sh; same contract as etcd.sh: idempotent,
# cached under $CACHE_ROOT, prints the path on stdout, logs to stderr. `apt-get download` +
# `dpkg-deb -x` unpack without installing. dig needs BIND's own libraries (bind9-libs) and a
# few others a slim image may lack, unpacked next to it; `dig` in the cache is a wrapper that
# points LD_LIBRARY_PATH at them.
DIG_DEB_VERSION="${LUCID_DIG_DEB_VERSION:-1:9.18.49-1~deb12u3}"
# Libraries of bind9-libs / bind9-dnsutils that are not in every Debian base image (their
# versions are whatever the package lists hold: only BIND's own are pinned).
DIG_EXTRA_LIBS=(libuv1 libfstrm0 libjemalloc2 libjson-c5 liblmdb0 libmaxminddb0 libnghttp2-14 libprotobuf-c1)

_dig_ok() { [[ -x "$1" ]] && "$1" -v >/dev/null 2>&1; }

install_dig() {
  local version_dir="${DIG_DEB_VERSION//[:~]/_}"
  if ! _dig_ok "$CACHE_ROOT/dig-$version_dir/dig"; then
    deb_require dig
    DIG_DEB_VERSION="$(deb_served_version dig bind9-dnsutils "$DIG_DEB_VERSION")"
    version_dir="${DIG_DEB_VERSION//[:~]/_}"
  fi
  local dir="$CACHE_ROOT/dig-$version_dir"
  install_locked "dig-$version_dir" _dig_ok "$dir/dig" _dig_unpack
}

_dig_unpack() {
  deb_require dig
  log "installing dig $DIG_DEB_VERSION from Debian (bind9-dnsutils, bind9-libs) into $dir"
  deb_fetch dig "$DIG_DEB_VERSION" "$dir" \
    "bind9-dnsutils=$DIG_DEB_VERSION" "bind9-libs=$DIG_DEB_VERSION" "${DIG_EXTRA_LIBS[@]}"
  mkdir -p "$dir.tmp/lib"
  cp -a "$dir.tmp/root/usr/bin/dig" "$dir.tmp/dig.bin"
  cp -a "$dir.tmp/root/usr/lib/x86_64-linux-gnu/." "$dir.tmp/lib/" 2>/dev/null ||
    cp -a "$dir.tmp/root/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || uname -m)-linux-gnu/." "$dir.tmp/lib/"
  rm -rf "$dir.tmp/root"
  # The wrapper finds its libraries relative to itself, so the cache may move.
  cat >"$dir.tmp/dig" <<'WRAPPER'
#!/bin/sh
here="$(dirname "$(readlink -f "$0")")"
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/dig.bin" "$@"
WRAPPER
  chmod +x "$dir.tmp/dig" "$dir.tmp/dig.bin"
  local missing
  missing="$(LD_LIBRARY_PATH="$dir.tmp/lib" ldd "$dir.tmp/dig.bin" | grep 'not found' || true)"
  if [[ -n "$missing" ]]; then
    log "dig: libraries missing on this machine: $missing"
    return 1
  fi
  "$dir.tmp/dig" -v >/dev/null 2>&1
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
