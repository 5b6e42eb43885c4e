#!/usr/bin/env bash
# Migrate: a wallet made by the release before cggmp24 (testdata/cggmp21-wallet, the embedded
# default's data directory, cggmp21 shares) restores and signs as it is, saying once that it should
# migrate; `mpc-wallet migrate --data-dir` moves it to cggmp24 with every party; after it the same
# identity signs with cggmp24. Works on a copy; exits 0 only if every step held.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/debug/mpc-wallet"
[ -x "$bin" ] || (cd "$root" && cargo build --quiet -p mpc-wallet)
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cp "$root"/testdata/cggmp21-wallet/*.db "$dir/"
# The fixture's wallet id and secret (testdata/cggmp21-wallet/README.md).
export MPC_WALLET_ID=demo-wallet MPC_SHARE_SECRET=cggmp21-fixture-secret
# The migration makes each share's multiexponentiation tables and seals them with it (the default).
export MPC_MULTIEXP_TABLES=true
unset MPC_STORAGE_PATH MPC_STORAGE_URL MPC_COSIGNER_ENDPOINTS
fail() { echo "migrate: FAILED: $1" >&2; exit 1; }
identity=031e03af5025262c30fcb2017fa756eb9e327f88d9d5539b72b5ce2772c3809e63

before="$("$bin" demo --data-dir "$dir" 2>"$dir/before.err")"
echo "$before"
grep -qx 'provisioned: restored' <<<"$before" || fail "the old wallet did not restore"
grep -qx 'protocol: cggmp21/0.6.3' <<<"$before" || fail "the old wallet does not say it is cggmp21"
[ "$(grep -c 'mpc-wallet migrate' "$dir/before.err")" = 1 ] || fail "the old wallet did not say once that it should migrate"

migrated="$("$bin" migrate --data-dir "$dir")"
echo "$migrated"
grep -qx 'provisioned: migrated' <<<"$migrated" || fail "migrate did not migrate"
grep -qx "migrated: cggmp24/0.7.0-alpha.3 (identity unchanged: $identity)" <<<"$migrated" || fail "migrated key differs"

after="$("$bin" demo --data-dir "$dir" 2>"$dir/after.err")"
echo "$after"
grep -qx 'provisioned: restored' <<<"$after" || fail "the migrated wallet did not restore"
grep -qx 'protocol: cggmp24/0.7.0-alpha.3' <<<"$after" || fail "the migrated wallet is not cggmp24"
if grep -q 'mpc-wallet migrate' "$dir/after.err"; then fail "the migrated wallet still asks to migrate"; fi
for out in "$before" "$after"; do
  grep -qx "identity: $identity" <<<"$out" || fail "identity changed"
  grep -qx 'signature verified: true' <<<"$out" || fail "signature not verified"
  grep -qx 'tweaked signature verified: true' <<<"$out" || fail "tweaked (child key) signature not verified"
done
# Migrating again changes nothing.
again="$("$bin" migrate --data-dir "$dir")"
grep -qx 'provisioned: restored' <<<"$again" || fail "a second migrate did not just restore"
echo "migrate: all checks passed"
