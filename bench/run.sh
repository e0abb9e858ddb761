#!/usr/bin/env bash
# `make bench`: install what the benchmark needs (the venv, wrk, pgbench), then run
# bench/run.py. bench/run.py stops what it starts; this trap is the backstop if it is
# killed outright: it stops the process groups listed in var/bench/pids and drops the
# benchmark database.
set -euo pipefail
cd "$(dirname "$0")/.."

bin/setup.sh
if ! command -v wrk >/dev/null || ! command -v pgbench >/dev/null; then
  echo "installing wrk and pgbench from the distribution's packages" >&2
  apt-get update -qq
  command -v wrk >/dev/null || apt-get install -y -qq wrk
  command -v pgbench >/dev/null || apt-get install -y -qq postgresql-client
fi

pidfile=var/bench/pids
cleanup() {
  if [ -s "$pidfile" ]; then
    while read -r pid; do kill -TERM -- "-$pid" 2>/dev/null || true; done <"$pidfile"
    sleep 2
    while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$pidfile"
    : >"$pidfile"
    psql "${BENCH_PG:-postgres://postgres@127.0.0.1:5432}/postgres" -qc \
      "DROP DATABASE IF EXISTS \"${BENCH_DB:-bench}\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

.venv/bin/python bench/run.py "$@"
