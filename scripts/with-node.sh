#!/usr/bin/env bash
# Runs a command with Node >= 22.18 first on PATH. Where the machine's Node is older (or
# missing), Node 24 LTS is installed once from the npm registry's `node` package into
# .tools/ (no other download source is needed), then reused.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
want_major=22
want_minor=18

node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  local v major minor
  v="$(node -p 'process.versions.node' 2>/dev/null)" || return 1
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  [ "$major" -gt "$want_major" ] || { [ "$major" -eq "$want_major" ] && [ "$minor" -ge "$want_minor" ]; }
}

if ! node_ok; then
  if [ ! -x "$tools/node_modules/node/bin/node" ]; then
    command -v npm >/dev/null 2>&1 || { echo "with-node: npm is needed to fetch Node 24 from the npm registry" >&2; exit 1; }
    echo "with-node: installing Node 24 LTS into $tools (one time)" >&2
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-audit --no-fund --loglevel=error node@24 >&2
  fi
  export PATH="$tools/node_modules/node/bin:$PATH"
  node_ok || { echo "with-node: $(command -v node) is $(node --version); need >= $want_major.$want_minor" >&2; exit 1; }
fi
# Native addons (talib, the dev-only indicator oracle; msgpackr-extract) must build against the
# headers of the Node that runs them, not whatever `nodedir` a user npmrc names (on some machines
# /usr, an older Node's). The running Node's install prefix has them; for the npm registry's
# `node` package, its platform package beside it does.
prefix="$(node -p 'require("path").dirname(require("path").dirname(process.execPath))')"
major="$(node -p 'process.versions.node.split(".")[0]')"
for dir in "$prefix" "$prefix"/node_modules/node-*; do
  if grep -qs "define NODE_MAJOR_VERSION $major\$" "$dir/include/node/node_version.h"; then
    export npm_config_nodedir="$dir"
    break
  fi
done
exec "$@"
