#!/usr/bin/env bash
# The whole test suite. Builds once; every test and example reuses that build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Postgres store's tests and the postgres-fleet example need a real server on 127.0.0.1.
MPC_TEST_POSTGRES_URL="${MPC_TEST_POSTGRES_URL:-$(bash scripts/postgres.sh)}"
export MPC_TEST_POSTGRES_URL
case "$MPC_TEST_POSTGRES_URL" in
  postgres://* | postgresql://*) ;;
  *) echo "MPC_TEST_POSTGRES_URL is not a postgres:// URL: check the output of scripts/postgres.sh" >&2; exit 1 ;;
esac
# Test wallets skip the multiexponentiation tables (seconds of CPU per share at every DKG, minutes
# over the suite on two cores); the engine's migration test and examples/migrate make them on
# purpose. Run by hand, every example makes them, as the default says.
export MPC_MULTIEXP_TABLES="${MPC_MULTIEXP_TABLES:-false}"
log="$(mktemp)"
trap 'rm -f "$log" "$log.build"' EXIT
# One invocation (unit, integration and doc tests) so dependencies are built once.
# --no-fail-fast: one failing test binary does not hide the results of the others.
# The test-only feature `fault-injection` lets the crash test pause the agent binary mid-commit.
features=(--features mpc-wallet/fault-injection)
cargo test --workspace "${features[@]}" --no-fail-fast "$@" 2>&1 | tee "$log"
# The build is free of compiler warnings (cargo replays a cached crate's warnings, so a rebuild
# that compiled nothing still shows them).
if grep -E '^warning: .*generated [0-9]+ warnings?' "$log"; then
  echo "the build has compiler warnings (listed above): fix them" >&2
  exit 1
fi
# The conformance cases per store (modules `<store>_conformance`) and per transport (modules
# `<scheme>_transport`), counted from the run above: each case is its own test.
echo "== conformance cases per store and transport"
{ grep -oE '^test [a-z_]+_(conformance|transport)::[a-z_]+ \.\.\. [a-zA-Z]+' "$log" || true; } \
  | awk '{ split($2, m, "::"); n[m[1]]++; if ($4 == "ok") ok[m[1]]++ }
    END { for (s in n) printf "conformance: %s: %d of %d cases passed\n", s, ok[s], n[s] }' | sort | tee -a "$log"
# Live interop with the reference TypeScript SDK (@bsv/sdk from npm) against `mpc-wallet serve`,
# before the examples: it needs the binary `cargo test` built (with the test feature
# fault-injection), and the plugin-store example rebuilds it with one more.
# From here on the binary `cargo test` built (feature fault-injection) gives every party the
# engine's INSECURE fixture primes: each DKG of the interop runs and examples would otherwise
# generate two pairs of 1536-bit safe primes per party (minutes on two cores). `cargo test` above
# generates real ones where that is the point (tests/demo.rs). Run by hand, the examples generate
# real primes (the variable means nothing to a build without the test feature).
export MPC_INSECURE_TEST_PRIMES=1
# examples/plugin-store builds the CLI with its plugin: with the suite's features too, it
# recompiles the CLI alone, not the engine, and the demo it runs takes fixture primes.
export MPC_EXAMPLE_FEATURES=fault-injection
echo "== interop (node, @bsv/sdk)"
(cd interop && npm ci --no-audit --no-fund --silent && node --test) 2>&1 | tee -a "$log"
examples=0
# plugin-store last: it rebuilds the binary with its plugin.
for example in $(ls examples/*/run.sh | grep -v plugin-store) examples/plugin-store/run.sh; do
  echo "== $example"
  bash "$example"
  examples=$((examples + 1))
done
# Every feature set a user builds is free of compiler warnings too: the default binary (RocksDB
# and Postgres stores), without the optional stores, and with the example plugin. Last, because
# each replaces the test-featured binary the interop runs and examples use.
for set in "" "--no-default-features" "--features plugin-example"; do
  echo "== build mpc-wallet ${set:-(default features)}"
  # shellcheck disable=SC2086 # the set is words
  cargo build -p mpc-wallet --bins $set 2>&1 | tee "$log.build"
  if grep -E '^warning: .*generated [0-9]+ warnings?' "$log.build"; then
    echo "mpc-wallet ${set:-(default features)} builds with compiler warnings (listed above): fix them" >&2
    exit 1
  fi
done

# One closing line for the whole run: cargo's and node's counts added up, plus the examples.
awk -v ex="$examples" '/^test result:/ { p += $4; f += $6 } /^# pass / { p += $3 } /^# fail / { f += $3 }
  END { printf "%d passed, %d failed\n", p + ex, f }' "$log"
