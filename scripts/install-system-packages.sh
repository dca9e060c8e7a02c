#!/usr/bin/env bash
# Installs the system libraries the package links (OpenBLAS, zstd, SQLite, zlib) when pkg-config cannot find them.
#   scripts/install-system-packages.sh [test]   # `test` also installs what the tests use: Chromium (report page test)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
updated=0
install() {
  echo "installing $* (apt-get)" >&2
  if [ "$updated" = 0 ]; then $SUDO apt-get update -qq; updated=1; fi
  $SUDO apt-get install -y -qq "$@" >/dev/null
}
if ! pkg-config --exists openblas libzstd sqlite3 zlib 2>/dev/null; then
  install pkg-config libopenblas-dev libzstd-dev libsqlite3-dev zlib1g-dev
fi
if [ "${1:-}" = test ] && ! command -v chromium >/dev/null; then
  install chromium
fi
