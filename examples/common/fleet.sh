#!/usr/bin/env bash
# Runs two cosigner processes and the agent on free 127.0.0.1 ports over SCHEME (http or grpc):
# provisions, signs, restarts the agent, signs again, checks status, stops everything it started.
# Exits 0 only if every step held. Real prime generation: expect one to two minutes.
set -euo pipefail
scheme="${1:?usage: fleet.sh http|grpc}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/debug/mpc-wallet"
[ -x "$bin" ] || (cd "$root" && cargo build --quiet -p mpc-wallet)
dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "$scheme-cosigners: FAILED: $1" >&2; for f in "$dir"/*.log; do echo "--- $f" >&2; cat "$f" >&2; done; exit 1; }

jwt="example-jwt-secret-$RANDOM$RANDOM-0123456789abcdef"
secret="example-share-secret-$RANDOM$RANDOM"
pub=()
for i in 0 1 2; do
  pub[i]="$("$bin" keys --out "$dir/party-$i.key" | sed -n 's/^public key: //p')"
done
peers() { local out=() j; for j in 0 1 2; do [ "$j" = "$1" ] || out+=("$j=${pub[j]}"); done; local IFS=,; echo "${out[*]}"; }
listen_var=MPC_HTTP_LISTEN; [ "$scheme" = grpc ] && listen_var=MPC_GRPC_LISTEN

endpoints=()
for i in 1 2; do
  env -i PATH="$PATH" HOME="${HOME:-/root}" MPC_PARTY_INDEX=$i "$listen_var=127.0.0.1:0" \
    MPC_STORAGE_PATH="$dir/cosigner-$i.db" MPC_SHARE_SECRET="$secret" MPC_JWT_SECRET="$jwt" \
    MPC_PARTY_KEY_FILE="$dir/party-$i.key" MPC_PEER_KEYS="$(peers $i)" \
    "$bin" cosigner >"$dir/cosigner-$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do grep -q '^listening: ' "$dir/cosigner-$i.log" && break; sleep 0.1; done
  endpoint="$(sed -n 's/^listening: //p' "$dir/cosigner-$i.log" | head -n1)"
  [ -n "$endpoint" ] || fail "cosigner $i did not start"
  endpoints+=("$endpoint")
  echo "cosigner $i: $endpoint"
done

agent() {
  env -i PATH="$PATH" HOME="${HOME:-/root}" MPC_WALLET_ID=example MPC_STORAGE_PATH="$dir/agent.db" \
    MPC_SHARE_SECRET="$secret" MPC_JWT_SECRET="$jwt" MPC_PARTY_KEY_FILE="$dir/party-0.key" \
    MPC_PEER_KEYS="$(peers 0)" MPC_COSIGNER_ENDPOINTS="${endpoints[0]},${endpoints[1]}" "$bin" "$@"
}

first="$(agent sign 2>"$dir/agent-1.log")" || fail "first agent run"
echo "$first"
second="$(agent sign 2>"$dir/agent-2.log")" || fail "second agent run (restart)"
echo "$second"
status="$(agent status 2>"$dir/status.log")" || fail "status reports a problem"
echo "$status"

grep -qx 'provisioned: created' <<<"$first" || fail "first run did not create the wallet"
grep -qx 'provisioned: restored' <<<"$second" || fail "the restarted agent did not restore"
[ "$(grep '^identity: ' <<<"$first")" = "$(grep '^identity: ' <<<"$second")" ] || fail "identity changed"
for out in "$first" "$second"; do
  grep -qx 'signature verified: true' <<<"$out" || fail "signature not verified"
done
[ "$(grep -c 'agrees on the collective key' <<<"$status")" = 2 ] || fail "a cosigner does not agree"
echo "$scheme-cosigners: all checks passed"
