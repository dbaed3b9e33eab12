#!/usr/bin/env bash
# Runs the Python client's test suite (clients/python/tests, standard-library unittest) with an
# interpreter that can import tqdm (the drop-in's tests need it): `python3` first on PATH, then
# Debian's /usr/bin/python3. Fails, saying what to install, when none can. Extra arguments go to
# unittest (e.g. `bash scripts/test-python.sh -k outage`).
set -euo pipefail
cd "$(dirname "$0")/.."

python=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys, tqdm; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
if [ -z "$python" ]; then
  echo "test-python: no Python ≥ 3.9 with tqdm found (tried python3, /usr/bin/python3):" >&2
  echo "test-python: install python3-tqdm (apt-get install -y python3-tqdm, or bash scripts/install-system-deps.sh)" >&2
  exit 1
fi
echo "test-python: $("$python" -c 'import sys, tqdm; print(sys.executable, sys.version.split()[0], "tqdm", tqdm.__version__)')"
export PYTHONPATH="$PWD/clients/python/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$python" -m unittest discover -s clients/python/tests -t clients/python/tests "$@"
