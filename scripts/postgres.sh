#!/usr/bin/env bash
# Starts a local PostgreSQL server from Debian's packages (installing them when missing) with a
# test role and database on 127.0.0.1, then prints the URL the Postgres tests and examples use.
# Idempotent: a running server and an existing role/database are reused.
set -euo pipefail
# Only the URL goes to stdout (callers capture it); anything the tools print goes to stderr, e.g.
# pg_ctlcluster's "removed stale pid file." after an unclean shutdown.
exec 3>&1 1>&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  echo "postgres: installing postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq postgresql >/dev/null
fi
version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
  $sudo pg_createcluster "$version" main 3>&-
fi
port="$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')"
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  # 3>&-: the server must not hold the caller's stdout open, or $(...) never returns.
  if ! $sudo pg_ctlcluster "$version" main start 3>&-; then
    # After an unclean shutdown the socket lock file names a dead server's PID, which another
    # process may have now; unless that process is a PostgreSQL server, the lock is stale.
    lock="/var/run/postgresql/.s.PGSQL.$port.lock"
    pid="$(head -1 "$lock" 2>/dev/null || true)"
    [ -n "$pid" ] && [ "$(ps -o comm= -p "$pid" 2>/dev/null || true)" != postgres ] || exit 1
    echo "postgres: $lock names PID $pid, which is not a PostgreSQL server; removing it and starting again"
    $sudo rm -f "$lock"
    $sudo pg_ctlcluster "$version" main start 3>&-
  fi
fi
psql_as_postgres() { $sudo runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qAt "$@"; }
for _ in $(seq 1 50); do psql_as_postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
user="${MPC_TEST_PG_USER:-mpc}" password="${MPC_TEST_PG_PASSWORD:-mpc-test}" db="${MPC_TEST_PG_DB:-mpc_test}"
if [ "$(psql_as_postgres -c "select 1 from pg_roles where rolname = '$user'")" != 1 ]; then
  psql_as_postgres -c "create role \"$user\" login password '$password'"
fi
if [ "$(psql_as_postgres -c "select 1 from pg_database where datname = '$db'")" != 1 ]; then
  psql_as_postgres -c "create database \"$db\" owner \"$user\""
fi
echo "postgres://$user:$password@127.0.0.1:$port/$db" >&3
