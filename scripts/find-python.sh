#!/usr/bin/env bash
# Print the path of a Python >= 3.12 (Django 6 needs it), or explain what to install and fail.
set -euo pipefail
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
candidates+=(python3.13 python3.12 python3.14 python3)
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for dir in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -rV); do candidates+=("$dir/bin/python"); done
fi
for candidate in "${candidates[@]}"; do
  path=$(command -v "$candidate" 2>/dev/null || true)
  if [ -n "$path" ] && ok "$path"; then echo "$path"; exit 0; fi
done
echo "Baton needs Python 3.12 or newer (Django 6). None was found on PATH or in pyenv." >&2
echo "Install one (e.g. 'pyenv install 3.13' or your OS's python3.13 package), or set PYTHON=/path/to/python3.12+." >&2
exit 1
