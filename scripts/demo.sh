#!/usr/bin/env bash
# The README's run command: installs what is needed, creates and migrates the database, generates
# the small synthetic dataset, runs the pipeline (data.generate through reports.variance-excel)
# through the BullMQ queues with progress in the terminal, then serves the API and Bull Board.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec ./scripts/with-node.sh npm run demo -- "$@"
