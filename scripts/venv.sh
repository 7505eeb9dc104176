#!/usr/bin/env bash
# Create .venv with a suitable Python and install Baton with its dev tools from the lock file
# (exact versions, so a new release of a dependency cannot break a fresh clone); skip when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
  python=$(scripts/find-python.sh)
  echo "Creating .venv with $python"
  rm -rf .venv
  "$python" -m venv .venv
fi
stamp=.venv/.baton-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements-dev.lock -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.lock
  # The project itself, its dependencies being exactly the locked ones above.
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi
