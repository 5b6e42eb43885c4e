#!/usr/bin/env bash
# The whole test suite. Builds once; every test and example reuses that build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# One invocation (unit, integration and doc tests) so dependencies are built once.
cargo test --workspace "$@" 2>&1 | tee "$log"
examples=0
for example in examples/*/run.sh; do
  echo "== $example"
  bash "$example"
  examples=$((examples + 1))
done
# One closing line for the whole run: cargo's per-binary counts added up, plus the examples.
awk -v ex="$examples" '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p + ex, f }' "$log"
