#!/usr/bin/env bash
# Two cosigner processes over HTTP and the agent on 127.0.0.1, each party with its own SQLite file.
exec bash "$(dirname "$0")/../common/fleet.sh" http-sqlite http sqlite
