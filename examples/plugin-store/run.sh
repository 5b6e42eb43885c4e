#!/usr/bin/env bash
# A third-party store plugin: the example `jsonfile://` store (plugins/example-store, which
# depends only on wallet-traits and registers itself through inventory) holds the agent's share.
# The CLI includes it with the cargo feature `plugin-example`; nothing in the engine changes.
# Provisions, restores, signs and verifies with the embedded cosigners; exits 0 only if all held.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# MPC_EXAMPLE_FEATURES: extra features of the build (the test suite passes its own, so this
# build reuses the suite's instead of compiling the engine again).
(cd "$root" && cargo build --quiet -p mpc-wallet --features "plugin-example${MPC_EXAMPLE_FEATURES:+,$MPC_EXAMPLE_FEATURES}")
bin="$root/target/debug/mpc-wallet"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$dir" # the embedded cosigners keep their SQLite files in ./mpc-data
export MPC_WALLET_ID=plugin-example MPC_SHARE_SECRET="plugin-secret-$RANDOM$RANDOM"
export MPC_STORAGE_URL="jsonfile://$dir/agent.json"
unset MPC_STORAGE_PATH MPC_COSIGNER_ENDPOINTS

fail() { echo "plugin-store: FAILED: $1" >&2; exit 1; }
"$bin" config check >"$dir/check.out" || fail "config check refused jsonfile://: $(cat "$dir/check.out")"
first="$("$bin" sign)" || fail "first run"
echo "$first"
second="$("$bin" sign)" || fail "second run (restore)"
echo "$second"
source "$root/examples/common/checks.sh"
check_restart "$first" "$second"
[ -s "$dir/agent.json" ] || fail "the plugin store's file was not written"
grep -q '"sealed"' "$dir/agent.json" || fail "the plugin store's file holds no sealed record"
echo "plugin-store: the agent's share is in $dir/agent.json ($(wc -c <"$dir/agent.json") bytes)"
echo "plugin-store: all checks passed"
