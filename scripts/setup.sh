#!/usr/bin/env bash
# Installs the system packages the build needs on a fresh Debian machine, once.
# GMP (built from source by gmp-mpfr-sys, under cggmp21) needs m4.
set -euo pipefail
need=()
command -v m4 >/dev/null 2>&1 || need+=(m4)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
# The RocksDB backend links the system's RocksDB (ROCKSDB_LIB_DIR in .cargo/config.toml) and
# generates its bindings with bindgen, which loads libclang.
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
dpkg -s librocksdb-dev >/dev/null 2>&1 || need+=(librocksdb-dev)
# The interop test runs the reference TypeScript SDK.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is missing; install Rust with rustup" >&2; exit 1; }
