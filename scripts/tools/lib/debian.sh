# shellcheck shell=bash
# Pinned Debian packages unpacked without installing them (no postinst, no service, no system
# user): `apt-get download` + `dpkg-deb -x`. Sourced by install-tools.sh before any recipe.

# deb_require TOOL: fails with a hint off Debian.
deb_require() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null && return
  log "$1: needs apt-get and dpkg-deb (a Debian-based machine)"
  return 1
}

# deb_fetch TOOL WHAT DIR PKG=VERSION…: downloads the packages and unpacks them all into
# DIR.tmp/root (DIR.tmp made afresh). apt-get download writes into the current directory. With
# stale or missing package lists the pinned versions are unknown (WHAT names them in the log):
# refresh the lists once and retry.
deb_fetch() {
  local tool="$1" what="$2" dir="$3"
  shift 3
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/debs" "$dir.tmp/root"
  if ! (cd "$dir.tmp/debs" && apt-get download -qq "$@" >/dev/null 2>&1); then
    log "$tool: $what not in the package lists; running apt-get update"
    apt-get update -qq >/dev/null
    (cd "$dir.tmp/debs" && apt-get download -qq "$@" >/dev/null)
  fi
  deb_unpack "$dir"
}

# deb_unpack DIR: unpacks every DIR.tmp/debs/*.deb into DIR.tmp/root, then drops the .debs.
deb_unpack() {
  local deb
  for deb in "$1.tmp/debs"/*.deb; do
    dpkg-deb -x "$deb" "$1.tmp/root"
  done
  rm -rf "$1.tmp/debs"
}

# deb_served_version TOOL PKG PINNED: prints PINNED when Debian's package lists have it (refreshing
# them once if not), else the version they offer now, with a log line naming both.
# bookworm-security keeps only the latest build of a package it patched: when it ships the next
# chromium or bind9, the pinned one is gone from every mirror, and a hard pin would fail every
# fresh install until someone bumped it. The pin is still what a machine that has it gets.
deb_served_version() {
  local tool="$1" pkg="$2" pinned="$3"
  _deb_serves() { apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | grep -qxF "$pinned"; }
  if ! _deb_serves; then
    log "$tool: $pinned not in the package lists; running apt-get update"
    apt-get update -qq >/dev/null
  fi
  if _deb_serves; then
    echo "$pinned"
    return
  fi
  local now
  now="$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')"
  if [[ -z "$now" || "$now" == "(none)" ]]; then
    log "$tool: Debian's package lists have no $pkg (pinned $pinned)"
    return 1
  fi
  log "$tool: Debian no longer serves the pinned $pkg $pinned (a security update replaced it); using $now"
  echo "$now"
}

# deb_keep_bins DIR BIN…: keeps only the unpacked /usr/bin/BIN… (static binaries) in DIR.tmp.
deb_keep_bins() {
  local dir="$1" b
  shift
  for b in "$@"; do
    cp "$dir.tmp/root/usr/bin/$b" "$dir.tmp/$b"
    chmod +x "$dir.tmp/$b"
  done
  rm -rf "$dir.tmp/root"
}

# deb_install_static TOOL VERSION PKG [NOTE]: prints $CACHE_ROOT/TOOL-VERSION/TOOL, installing it
# first if needed: /usr/bin/TOOL (a static binary answering --version) from the pinned Debian
# package PKG=VERSION. NOTE goes into the log line (e.g. " (prometheus)").
deb_install_static() {
  local tool="$1" version="$2" pkg="$3" note="${4:-}"
  local dir="$CACHE_ROOT/$tool-$version"
  install_locked "$tool-$version" _deb_static_ok "$dir/$tool" _deb_static_unpack
}

_deb_static_ok() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

# Runs inside install_locked, with deb_install_static's locals.
_deb_static_unpack() {
  deb_require "$tool"
  log "installing $tool $version from Debian$note into $dir"
  deb_fetch "$tool" "$version" "$dir" "$pkg=$version"
  deb_keep_bins "$dir" "$tool"
  "$dir.tmp/$tool" --version >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
