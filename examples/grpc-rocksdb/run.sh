#!/usr/bin/env bash
# Two cosigner processes over gRPC and the agent on 127.0.0.1, each party with its own RocksDB
# directory (MPC_STORAGE_URL=rocksdb://...).
exec bash "$(dirname "$0")/../common/fleet.sh" grpc-rocksdb grpc rocksdb
