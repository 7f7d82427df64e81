#!/usr/bin/env bash
# Stops what scripts/slurm/start-local-slurm.sh DIR started: cancels the cluster's jobs, then
# slurmd, slurmctld and munged, each by the pid file under DIR (and only if that pid is still
# that daemon). Idempotent: stopping a stopped or half-started cluster is fine. Leaves DIR.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ -d "$1" ] || exit 0
dir=$(cd "$1" && pwd)
PATH="$PATH:/usr/sbin:/sbin"

# pid_of PIDFILE NAME -> the pid, if the file names a live process whose command is NAME.
pid_of() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  echo "$pid"
}
# stop PIDFILE NAME: SIGTERM, up to 10 s, then SIGKILL.
stop() {
  local pid
  pid=$(pid_of "$1" "$2") || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "stop-local-slurm: $2 ($pid) ignored SIGTERM, killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

if [ -f "$dir/slurm.conf" ] && pid_of "$dir/slurmctld.pid" slurmctld >/dev/null; then
  export SLURM_CONF="$dir/slurm.conf"
  # The cluster is private: every job on it is ours. Give their steps a moment to end.
  scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
  for _ in $(seq 1 50); do
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
    sleep 0.2
  done
fi
stop "$dir/slurmd.pid" slurmd
stop "$dir/slurmctld.pid" slurmctld
stop "$dir/munge/munged.pid" munged
exit 0
