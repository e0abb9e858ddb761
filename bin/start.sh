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
# Every process below keeps its Prometheus counters in one folder (config/metrics.py),
# summed by /metrics; counts of an earlier run must not be added to this one's.
PROMETHEUS_MULTIPROC_DIR="$(python -c 'import os; import config.settings; print(os.environ["PROMETHEUS_MULTIPROC_DIR"])')"
export PROMETHEUS_MULTIPROC_DIR
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
python manage.py migrate --no-input
python manage.py collectstatic --no-input --verbosity 0
exec honcho start --port "${PORT:-8080}"
