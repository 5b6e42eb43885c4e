#!/usr/bin/env bash
# Runs two cosigner processes and the agent on free 127.0.0.1 ports: provisions, signs, restarts
# the agent (restore), signs again, checks status, stops and removes everything it started.
# Exits 0 only if every step held. Real prime generation: expect one to two minutes.
#
#   fleet.sh NAME TRANSPORT STORE
#   TRANSPORT: http | grpc
#   STORE:     sqlite   (a file per party)
#              rocksdb  (a directory per party)
#              postgres (both cosigners in one PostgreSQL database, one namespace each; the
#                        server is started by scripts/postgres.sh; the agent keeps SQLite)
set -euo pipefail
name="${1:?usage: fleet.sh NAME http|grpc sqlite|rocksdb|postgres}"
transport="${2:?transport}"
store="${3:?store}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/debug/mpc-wallet"
[ -x "$bin" ] || (cd "$root" && cargo build --quiet -p mpc-wallet)
dir="$(mktemp -d)"
pids=()
pg_url=""
namespace_prefix="example-$name-$RANDOM$RANDOM"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$pg_url" ]; then
    for t in mpc_shares mpc_derivations mpc_primes; do
      psql -q "$pg_url" -c "delete from $t where namespace like '$namespace_prefix-%'" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "$name: FAILED: $1" >&2; for f in "$dir"/*.log; do echo "--- $f" >&2; cat "$f" >&2; done; exit 1; }

# The store variables of party $1 (0 is the agent).
store_env() {
  case "$store" in
    sqlite) echo "MPC_STORAGE_PATH=$dir/party-$1.db" ;;
    rocksdb) echo "MPC_STORAGE_URL=rocksdb://$dir/party-$1.rocksdb" ;;
    postgres)
      if [ "$1" = 0 ]; then echo "MPC_STORAGE_PATH=$dir/party-0.db"; else
        echo "MPC_STORAGE_URL=$pg_url MPC_STORAGE__NAMESPACE=$namespace_prefix-cosigner-$1"; fi ;;
    *) fail "unknown store $store" ;;
  esac
}
[ "$store" = postgres ] && pg_url="$(bash "$root/scripts/postgres.sh")"

jwt="example-jwt-secret-$RANDOM$RANDOM-0123456789abcdef"
secret="example-share-secret-$RANDOM$RANDOM"
pub=()
for i in 0 1 2; do
  pub[i]="$("$bin" keys --out "$dir/party-$i.key" | sed -n 's/^public key: //p')"
done
peers() { local out=() j; for j in 0 1 2; do [ "$j" = "$1" ] || out+=("$j=${pub[j]}"); done; local IFS=,; echo "${out[*]}"; }
listen_var=MPC_HTTP_LISTEN; [ "$transport" = grpc ] && listen_var=MPC_GRPC_LISTEN

endpoints=()
for i in 1 2; do
  # shellcheck disable=SC2046 # store_env yields separate VAR=value words
  env -i PATH="$PATH" HOME="${HOME:-/root}" MPC_PARTY_INDEX=$i "$listen_var=127.0.0.1:0" \
    $(store_env $i) MPC_SHARE_SECRET="$secret" MPC_JWT_SECRET="$jwt" \
    MPC_PARTY_KEY_FILE="$dir/party-$i.key" MPC_PEER_KEYS="$(peers $i)" \
    "$bin" cosigner >"$dir/cosigner-$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do grep -qs '^listening: ' "$dir/cosigner-$i.log" && break; sleep 0.1; done
  endpoint="$(sed -n 's/^listening: //p' "$dir/cosigner-$i.log" | head -n1)"
  [ -n "$endpoint" ] || fail "cosigner $i did not start"
  endpoints+=("$endpoint")
  echo "cosigner $i: $endpoint ($store)"
done

agent() {
  # shellcheck disable=SC2046
  env -i PATH="$PATH" HOME="${HOME:-/root}" MPC_WALLET_ID=example $(store_env 0) \
    MPC_SHARE_SECRET="$secret" MPC_JWT_SECRET="$jwt" MPC_PARTY_KEY_FILE="$dir/party-0.key" \
    MPC_PEER_KEYS="$(peers 0)" MPC_COSIGNER_ENDPOINTS="${endpoints[0]},${endpoints[1]}" "$bin" "$@"
}

first="$(agent sign 2>"$dir/agent-1.log")" || fail "first agent run"
echo "$first"
second="$(agent sign 2>"$dir/agent-2.log")" || fail "second agent run (restart)"
echo "$second"
status="$(agent status 2>"$dir/status.log")" || fail "status reports a problem"
echo "$status"

# shellcheck source=checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
check_restart "$first" "$second"
[ "$(grep -c ": can serve (holds this key's active share)" <<<"$status")" = 2 ] || fail "a cosigner cannot serve the key"
case "$store" in
  rocksdb) for i in 0 1 2; do [ -f "$dir/party-$i.rocksdb/CURRENT" ] || fail "party $i has no RocksDB directory"; done ;;
  postgres)
    rows="$(psql -qAt "$pg_url" -c "select count(*) from mpc_shares where namespace like '$namespace_prefix-cosigner-%' and state = 'active'")"
    [ "$rows" = 2 ] || fail "expected both cosigners' active shares in the one database, found $rows"
    echo "postgres: both cosigners' shares are in one database ($rows active rows)" ;;
esac
echo "$name: all checks passed"
