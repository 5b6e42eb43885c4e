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
# shellcheck source=cosigners.sh
source "$(dirname "${BASH_SOURCE[0]}")/cosigners.sh"

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
