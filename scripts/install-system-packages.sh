#!/usr/bin/env bash
# Installs the system libraries the package links (OpenBLAS, zstd, SQLite, zlib) when pkg-config cannot find them.
set -euo pipefail
if pkg-config --exists openblas libzstd sqlite3 zlib 2>/dev/null; then
  exit 0
fi
echo "installing libopenblas-dev libzstd-dev libsqlite3-dev zlib1g-dev (apt-get)" >&2
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq pkg-config libopenblas-dev libzstd-dev libsqlite3-dev zlib1g-dev >/dev/null
