#!/usr/bin/env bash
# A cosigner fleet on one PostgreSQL server: two cosigner processes over HTTP store their shares
# in the same database, each under its own namespace (MPC_STORAGE__NAMESPACE). Starts a local
# server from Debian's packages when none runs (scripts/postgres.sh).
exec bash "$(dirname "$0")/../common/fleet.sh" postgres-fleet http postgres
