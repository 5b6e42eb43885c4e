#!/usr/bin/env bash
# Spending rules a hijacked agent cannot pass: two cosigner processes over HTTP, each enforcing the
# same policy file (MPC_POLICY_FILE: at most 30,000 satoshis per transaction, 60,000 per day, one
# approver key pinned) and counting it in its own SQLite file. run.mjs drives the agent's commands
# against stand-in ARC and WhatsOnChain servers on 127.0.0.1: a payment under the limits goes
# through, one over them is refused saying which rule and how to get it approved, a person approves
# it with `mpc-wallet approve`, it goes through, and each cosigner's audit chain holds. Needs
# Node.js (18 or later); installs interop/'s packages when they are missing. First run: DKG.
set -euo pipefail
name=policy transport=http store=sqlite
here="$(cd "$(dirname "$0")" && pwd)"
command -v node >/dev/null || { echo "$name: FAILED: node is not installed (Node.js 18 or later)" >&2; exit 1; }
interop="$here/../../interop"
[ -d "$interop/node_modules/@bsv/sdk" ] || (cd "$interop" && npm ci --no-audit --no-fund --silent)

# The approver key lives with a person, not with the agent; its public key goes in the policy.
root="$(cd "$here/../.." && pwd)"
[ -x "$root/target/debug/mpc-wallet" ] || (cd "$root" && cargo build --quiet -p mpc-wallet)
keys="$(mktemp -d)"
trap 'rm -rf "$keys"' EXIT
approver="$("$root/target/debug/mpc-wallet" keys --approver --out "$keys/approver.key" | sed -n 's/^approver public key: //p')"
cat >"$keys/policy.toml" <<TOML
max_sats_per_tx = 30000
window_secs = 86400
max_sats_per_window = 60000
approver_keys = ["$approver"]
TOML
echo "policy file:"; sed 's/^/    /' "$keys/policy.toml"
cosigner_vars=("MPC_POLICY_FILE=$keys/policy.toml")

# shellcheck source=../common/cosigners.sh
source "$here/../common/cosigners.sh"
trap 'cleanup; rm -rf "$keys"' EXIT
# run.mjs gets the agent's variables and, to show a person's side, the approver key and the
# cosigners' stores (for `mpc-wallet audit`).
agent_env MPC_WALLET_BIN="$bin" APPROVER_KEY="$keys/approver.key" COSIGNER_STORES="$dir/party-1.db,$dir/party-2.db" \
  node "$here/run.mjs" || fail "a step above did not hold (the cosigners' logs follow)"
echo "$name: all checks passed"
