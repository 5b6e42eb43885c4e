#!/usr/bin/env bash
# Receive and pay from the command line: two cosigner processes over HTTP, each party with its own
# SQLite file, and the agent's everyday commands (receive, balance, pay, history) driven by run.mjs
# against stand-in ARC and WhatsOnChain servers on 127.0.0.1 that it starts. A sender's BRC-29
# payment is made with @bsv/sdk; the payment out is verified with @bsv/sdk. Needs Node.js (18 or
# later); installs interop/'s packages when they are missing. First run: DKG, one to two minutes.
set -euo pipefail
name=pay-receive transport=http store=sqlite
here="$(cd "$(dirname "$0")" && pwd)"
command -v node >/dev/null || { echo "$name: FAILED: node is not installed (Node.js 18 or later)" >&2; exit 1; }
interop="$here/../../interop"
[ -d "$interop/node_modules/@bsv/sdk" ] || (cd "$interop" && npm ci --no-audit --no-fund --silent)

# shellcheck source=../common/cosigners.sh
source "$here/../common/cosigners.sh"
# run.mjs gets the agent's variables (and the binary) and nothing else; it adds the stand-ins'.
agent_env MPC_WALLET_BIN="$bin" node "$here/run.mjs" || fail "a step above did not hold (the cosigners' logs follow)"
echo "$name: all checks passed"
