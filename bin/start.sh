#!/usr/bin/env bash
# Set up (venv, dependencies, migrations, static files) and run web + worker + beat in
# the foreground. With no environment it needs no server: SQLite and a file-system
# broker under var/. DATABASE_URL, REDIS_URL, CELERY_BROKER_URL switch to real ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# honcho gives each process its own PORT; the worker and the sandbox must still know
# where the web process listens (status callbacks go there).
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:${PORT:-8080}}"
python manage.py migrate --no-input
python manage.py collectstatic --no-input --verbosity 0
exec honcho start --port "${PORT:-8080}"
