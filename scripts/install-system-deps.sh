#!/usr/bin/env bash
# Installs the system packages the test suite needs, from Debian's packages,
# when they are missing: redis-server (Redis and multi-instance tests) and
# chromium (the dashboard test, driven by playwright-core; never a downloaded
# browser). Needs root (or sudo). Does nothing when both are present.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "system deps: redis-server and chromium are installed"
  exit 0
fi
echo "system deps: installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
