#!/usr/bin/env bash
# Installs what the project needs, idempotently: Node 24 (when the machine's Node is older),
# npm packages exactly as locked, and (with --browser) Debian's chromium for the browser test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamp="node_modules/.package-lock.stamp"
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: installing npm packages (locked versions)" >&2
  # `npm ci`: exactly the committed lock (which lists every platform's optional builds, so a
  # fresh clone's tree stays clean), and a lock out of step with package.json is an error.
  ./scripts/with-node.sh npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
if [ "${1:-}" = "--browser" ]; then
  bash scripts/install-browser.sh
  # The report tests' independent workbook reader (Debian's python3-openpyxl).
  bash scripts/install-report-readers.sh
fi
