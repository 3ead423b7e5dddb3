#!/usr/bin/env bash
# The README's test command: installs what is needed, then runs the whole suite (npm test)
# against the local PostgreSQL and Redis. Tests create and drop their own databases and queue
# prefixes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh --browser
exec ./scripts/with-node.sh npm test "$@"
