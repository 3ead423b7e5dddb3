#!/usr/bin/env bash
# Installs what the project needs, idempotently: Node 24 (when the machine's Node is older),
# npm packages exactly as locked, and (with --browser) Debian's chromium for the browser test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamp="node_modules/.package-lock.stamp"
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: installing npm packages (locked versions)" >&2
  # `npm install`, not `npm ci`: the lock names optional platform builds of msgpackr-extract
  # (darwin, win32, linux-arm) that some registry mirrors do not serve, and `npm ci` refuses a
  # lock whose optional entries it cannot resolve. `npm install` installs the locked versions of
  # everything this platform needs and leaves the lock unchanged.
  ./scripts/with-node.sh npm install --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
if [ "${1:-}" = "--browser" ]; then
  bash scripts/install-browser.sh
fi
