#!/usr/bin/env bash
# Installs what the integration and end-to-end tests need, when it is missing:
# real OpenSSH daemons, git, acl, and a real Laravel stack (php-fpm + nginx).
set -euo pipefail

packages=(openssh-server openssh-client git acl procps tar time php-cli php-sqlite3 php-laravel-framework composer nginx php8.2-fpm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # No daemon may start at install time (there is no init system here); the tests start their own.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
