#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the pinned dependencies into it, once.
# `bin/setup.sh dev` adds the test and lint tools.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
requirements=requirements.txt
[ "${1:-}" = "dev" ] && requirements=requirements-dev.txt

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || { echo "Python 3.11+ is required: set PYTHON=/path/to/python3.11" >&2; exit 1; }
  "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(basename "$requirements" .txt)"
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ "$requirements" -nt "$stamp" ]; then
  .venv/bin/pip install --quiet -r "$requirements"
  touch "$stamp"
fi
