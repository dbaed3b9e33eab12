#!/usr/bin/env bash
# Installs the system packages the test suite needs, from Debian's packages,
# when they are missing: redis-server (Redis and multi-instance tests),
# chromium (the dashboard test, driven by playwright-core; never a downloaded
# browser), and python3 with python3-tqdm (the Python client's suite; the
# Python package index is not used). Needs root (or sudo). Does nothing when
# all are present.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# scripts/test-python.sh runs the Python suite with python3 or /usr/bin/python3, whichever has tqdm
if ! { command -v python3 >/dev/null 2>&1 && python3 -c 'import tqdm' >/dev/null 2>&1; } &&
   ! { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import tqdm' >/dev/null 2>&1; }; then
  [ -x /usr/bin/python3 ] || need+=(python3)
  need+=(python3-tqdm)
fi
if [ ${#need[@]} -eq 0 ]; then
  echo "system deps: redis-server, chromium, python3 and python3-tqdm are installed"
  exit 0
fi
echo "system deps: installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
