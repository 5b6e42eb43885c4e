# The cosigner side of a fleet example, sourced by fleet.sh, pay-receive/run.sh and policy/run.sh
# after they set `name` (the example's name, for messages), `transport` (http | grpc) and `store`
# (sqlite | rocksdb | postgres: what each means is in fleet.sh's header), and optionally
# `cosigner_vars` (an array of VAR=value words every cosigner gets besides its own).
# Builds the binary if missing, makes a temporary directory `dir` (removed on exit with every
# process in `pids`), generates the three parties' keys, starts cosigners 1 and 2 on free
# 127.0.0.1 ports (`endpoints`) and defines `fail MESSAGE`, `store_env I`, `agent_env COMMAND...`
# (COMMAND with exactly the agent's variables) and `agent ARGS...` (the agent binary).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
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

# The test suite's settings (scripts/test.sh), passed on when set: fixture primes, no tables.
test_vars() {
  [ -z "${MPC_INSECURE_TEST_PRIMES:-}" ] || echo "MPC_INSECURE_TEST_PRIMES=$MPC_INSECURE_TEST_PRIMES"
  [ -z "${MPC_MULTIEXP_TABLES:-}" ] || echo "MPC_MULTIEXP_TABLES=$MPC_MULTIEXP_TABLES"
}

endpoints=()
for i in 1 2; do
  # shellcheck disable=SC2046 # store_env yields separate VAR=value words
  env -i PATH="$PATH" HOME="${HOME:-/root}" $(test_vars) MPC_PARTY_INDEX=$i "$listen_var=127.0.0.1:0" \
    $(store_env $i) MPC_SHARE_SECRET="$secret" MPC_JWT_SECRET="$jwt" \
    MPC_PARTY_KEY_FILE="$dir/party-$i.key" MPC_PEER_KEYS="$(peers $i)" \
    ${cosigner_vars[@]+"${cosigner_vars[@]}"} "$bin" cosigner >"$dir/cosigner-$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do grep -qs '^listening: ' "$dir/cosigner-$i.log" && break; sleep 0.1; done
  endpoint="$(sed -n 's/^listening: //p' "$dir/cosigner-$i.log" | head -n1)"
  [ -n "$endpoint" ] || fail "cosigner $i did not start"
  endpoints+=("$endpoint")
  echo "cosigner $i: $endpoint ($store)"
done

# Runs COMMAND (and any VAR=value words before it) with the agent's variables and nothing else.
agent_env() {
  # shellcheck disable=SC2046
  env -i PATH="$PATH" HOME="${HOME:-/root}" $(test_vars) MPC_WALLET_ID=example $(store_env 0) \
    MPC_SHARE_SECRET="$secret" MPC_JWT_SECRET="$jwt" MPC_PARTY_KEY_FILE="$dir/party-0.key" \
    MPC_PEER_KEYS="$(peers 0)" MPC_COSIGNER_ENDPOINTS="${endpoints[0]},${endpoints[1]}" "$@"
}
agent() { agent_env "$bin" "$@"; }
