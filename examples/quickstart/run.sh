#!/usr/bin/env bash
# Quickstart: local cosigners + SQLite (the embedded default). Provisions, restores, signs and
# verifies in a temporary directory; exits 0 only if every step held.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/debug/mpc-wallet"
[ -x "$bin" ] || (cd "$root" && cargo build --quiet -p mpc-wallet)
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
export MPC_WALLET_ID=quickstart MPC_SHARE_SECRET="quickstart-secret-$RANDOM$RANDOM"
unset MPC_STORAGE_PATH MPC_STORAGE_URL MPC_COSIGNER_ENDPOINTS

first="$("$bin" demo --data-dir "$dir")"
echo "$first"
second="$("$bin" demo --data-dir "$dir")"
echo "$second"

fail() { echo "quickstart: FAILED: $1" >&2; exit 1; }
source "$root/examples/common/checks.sh"
check_restart "$first" "$second"
if MPC_SHARE_SECRET=wrong "$bin" demo --data-dir "$dir" >/dev/null 2>"$dir/err"; then fail "a wrong secret was accepted"; fi
grep -q MPC_SHARE_SECRET "$dir/err" || fail "wrong-secret message does not name MPC_SHARE_SECRET"
echo "quickstart: all checks passed"
