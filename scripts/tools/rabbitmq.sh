# shellcheck shell=bash
# RabbitMQ from Debian (`rabbitmq-server` 3.10.x and the Erlang/OTP 25 packages it needs),
# pinned to the exact versions bookworm serves. Sourced by install-tools.sh. `apt-get download`
# + `dpkg-deb -x` unpack the packages without installing them (no system user, no service, no
# root). Debian's `erl` has ROOTDIR=/usr/lib/erlang baked in: the unpacked copies are
# rewritten to the cache. Cached at $CACHE_ROOT/rabbitmq-<version>/; prints the path of
# `rabbitmq`, a wrapper that runs any RabbitMQ script against the unpacked Erlang:
#   rabbitmq server | diagnostics ARGS | ctl ARGS | plugins ARGS
# The caller gives each broker its own RABBITMQ_NODENAME, RABBITMQ_NODE_PORT,
# RABBITMQ_DIST_PORT, RABBITMQ_MNESIA_BASE, RABBITMQ_LOG_BASE, RABBITMQ_CONFIG_FILE, HOME and
# ERL_EPMD_PORT (so brokers of parallel tests share no epmd). Nothing is read from /etc.
RABBITMQ_DEB_VERSION="${LUCID_RABBITMQ_DEB_VERSION:-3.10.8-1.1+deb12u1}"
RABBITMQ_ERLANG_DEB_VERSION="${LUCID_RABBITMQ_ERLANG_DEB_VERSION:-1:25.2.3+dfsg-1+deb12u4}"
# rabbitmq-server's Erlang dependency closure (everything else it needs is in a base system).
RABBITMQ_ERLANG_PACKAGES=(erlang-base erlang-asn1 erlang-crypto erlang-eldap erlang-inets
  erlang-mnesia erlang-os-mon erlang-parsetools erlang-public-key erlang-runtime-tools
  erlang-ssl erlang-syntax-tools erlang-tools erlang-xmerl)

rabbitmq_installed() {
  local dir
  dir="$(dirname "$1")"
  [[ -x "$1" ]] && "$dir/root/usr/lib/erlang/bin/erl" -noshell -eval 'halt().' >/dev/null 2>&1
}

install_rabbitmq() {
  local version_tag="${RABBITMQ_DEB_VERSION}-otp${RABBITMQ_ERLANG_DEB_VERSION#*:}"
  local dir="$CACHE_ROOT/rabbitmq-$version_tag"
  install_locked "rabbitmq-$version_tag" rabbitmq_installed "$dir/rabbitmq" _rabbitmq_unpack
}

_rabbitmq_unpack() {
  deb_require rabbitmq
  log "installing rabbitmq-server $RABBITMQ_DEB_VERSION (Erlang $RABBITMQ_ERLANG_DEB_VERSION) from Debian into $dir"
  local pkgs=("rabbitmq-server=$RABBITMQ_DEB_VERSION") p
  for p in "${RABBITMQ_ERLANG_PACKAGES[@]}"; do pkgs+=("$p=$RABBITMQ_ERLANG_DEB_VERSION"); done
  deb_fetch rabbitmq "pinned versions" "$dir" "${pkgs[@]}"
  # Point Erlang's launch scripts at the unpacked root (final location, after the mv below).
  local erlroot="$dir/root/usr/lib/erlang" f
  for f in "$dir.tmp"/root/usr/lib/erlang/bin/{erl,start} "$dir.tmp"/root/usr/lib/erlang/erts-*/bin/{erl,start}; do
    sed -i "s|ROOTDIR=/usr/lib/erlang|ROOTDIR=$erlroot|g" "$f"
  done
  # An empty environment file, so a host's /etc/rabbitmq/rabbitmq-env.conf is never read.
  : >"$dir.tmp/rabbitmq-env.conf"
  cat >"$dir.tmp/rabbitmq" <<EOF
#!/bin/sh
# Runs a RabbitMQ script from the unpacked Debian packages: rabbitmq server|diagnostics|ctl|plugins ARGS
set -e
here="$dir"
export PATH="\$here/root/usr/lib/erlang/bin:\$PATH"
export RABBITMQ_CONF_ENV_FILE="\${RABBITMQ_CONF_ENV_FILE:-\$here/rabbitmq-env.conf}"
# No plugins (management included) unless the caller names a file.
export RABBITMQ_ENABLED_PLUGINS_FILE="\${RABBITMQ_ENABLED_PLUGINS_FILE:-\${RABBITMQ_MNESIA_BASE:-/nonexistent}/enabled_plugins}"
cmd="\${1:?usage: rabbitmq server|diagnostics|ctl|plugins ARGS}"
shift
case "\$cmd" in
  # detached: the script execs the Erlang VM in place of the shell (as under systemd), so the
  # caller's pid is the broker's and a SIGTERM to it stops the broker cleanly.
  server) script=rabbitmq-server; export detached=1 ;;
  ctl) script=rabbitmqctl ;;
  *) script="rabbitmq-\$cmd" ;;
esac
exec "\$here/root/usr/lib/rabbitmq/bin/\$script" "\$@"
EOF
  chmod +x "$dir.tmp/rabbitmq"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  if ! rabbitmq_installed "$dir/rabbitmq"; then
    log "rabbitmq: the unpacked Erlang does not start"
    return 1
  fi
}
