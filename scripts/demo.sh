#!/usr/bin/env bash
# The embedded default: agent + two in-process cosigners, each with its own SQLite file.
# First run: DKG; later runs: restore. Extra arguments go to `mpc-wallet demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo run --quiet -p mpc-wallet -- demo "$@"
