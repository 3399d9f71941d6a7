#!/usr/bin/env bash
# Installs what the tests need beyond Go: Debian's chromium (the status page
# is tested in a real headless browser) and libssl-dev (the OpenSSL RSA
# backend, build tag "openssl"). Installs only what is missing; safe to rerun.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
if [ ${#need[@]} -eq 0 ]; then
  echo "test set-up: nothing to install"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "test set-up: installing ${need[*]} (Debian packages)..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
echo "test set-up: done"
