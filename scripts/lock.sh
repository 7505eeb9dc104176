#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml: exact versions of every dependency, resolved for
# Python 3.12+ on any platform (markers say where a package applies). Run after changing
# dependencies in pyproject.toml (`make lock`), commit the result. `--upgrade` moves everything to
# the newest allowed releases; without it, versions already locked are kept where still allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only uv is needed, not Baton itself: a bare .venv will do (and the lock may not exist yet).
if [ ! -x .venv/bin/python ]; then "$(scripts/find-python.sh)" -m venv .venv; fi
if ! .venv/bin/python -m uv --version >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet "uv>=0.5"
fi
compile() { .venv/bin/python -m uv pip compile pyproject.toml --universal --python-version 3.12 \
  --no-header --quiet "$@"; }
compile -o requirements.lock "${@}"
compile --extra dev -o requirements-dev.lock "${@}"
echo "requirements.lock: $(grep -c '^[A-Za-z0-9]' requirements.lock) packages;" \
  "requirements-dev.lock: $(grep -c '^[A-Za-z0-9]' requirements-dev.lock) packages"
