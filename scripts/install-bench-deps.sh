#!/bin/sh
# Installs what the benchmark's peer comparison needs (bench/fabric.ts): Fabric 2 for the system
# Python (/usr/bin/python3), from Debian, not pip: the version the distribution ships, no virtualenv.
# Idempotent: does nothing when /usr/bin/python3 can already import fabric.
set -eu
if /usr/bin/python3 -c 'import fabric' 2>/dev/null; then
  echo "python3-fabric: already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-fabric
