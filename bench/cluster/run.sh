#!/usr/bin/env bash
# `make cluster`: the cluster shape as separate hosts on this machine (bench/cluster/run.py).
# Root only. bench/cluster/run.py stops what it starts and deletes its namespaces; this
# trap is the backstop if it is killed outright.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then
  echo "make cluster must run as root: it creates network namespaces, veth links and tc rules" >&2
  exit 2
fi
bin/setup.sh
missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from the distribution's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# One cluster at a time: they would share names and addresses. Taken before the trap,
# so a refused run leaves the running one alone.
exec 9>/run/msgcl.lock
if ! flock -n 9; then
  echo "another make cluster is running on this machine; try again when it ends" >&2
  exit 1
fi

pidfile=var/cluster/pids
cleanup() {
  if [ -s "$pidfile" ]; then
    while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$pidfile"
    : >"$pidfile"
  fi
  for ns in $(ip netns list | awk '$1 ~ /^msgcl-/ {print $1}'); do
    for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf /tmp/msgcl-* 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

.venv/bin/python bench/cluster/run.py "$@"
