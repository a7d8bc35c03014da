#!/usr/bin/env bash
# Makes sure a Docker engine answers; starts a local dockerd in the background only if none does.
#
#   scripts/ensure_dockerd.sh [PIDFILE]
#
# If `docker info` already works (the default socket, or DOCKER_HOST), nothing is started and
# PIDFILE is left untouched: "dockerd: already running". Otherwise (as root, local engine
# only) dockerd is started detached, its log going to $MLTRAIN_DOCKERD_LOG
# (default /var/log/mltrain-dockerd.log); the script waits until the engine answers
# (up to $MLTRAIN_DOCKERD_WAIT seconds, default 60), writes dockerd's pid to PIDFILE
# (default /run/mltrain-dockerd.pid) and prints "dockerd: started (pid N)". Pass the same
# PIDFILE to scripts/stop_dockerd.sh to stop it again: it stops only what this script started.
set -euo pipefail

PIDFILE="${1:-/run/mltrain-dockerd.pid}"
LOG="${MLTRAIN_DOCKERD_LOG:-/var/log/mltrain-dockerd.log}"
WAIT="${MLTRAIN_DOCKERD_WAIT:-60}"

engine_answers() { docker info >/dev/null 2>&1; }

if ! command -v docker >/dev/null 2>&1; then
  echo "dockerd: the docker command is not installed; install it with: apt-get install docker.io" >&2
  exit 1
fi

if engine_answers; then
  echo "dockerd: already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')), not started by this script"
  exit 0
fi

case "${DOCKER_HOST:-}" in
  ""|unix://*) ;;
  *)
    echo "dockerd: DOCKER_HOST=$DOCKER_HOST does not answer; start the engine on that host or unset DOCKER_HOST" >&2
    exit 1 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "dockerd: no Docker engine answers and starting one needs root; run 'sudo systemctl start docker' (or this script as root)" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd: dockerd is not installed; install it with: apt-get install docker.io" >&2
  exit 1
fi

# A stale pid file from a dockerd we started earlier that still runs but does not answer yet.
if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  pid="$(cat "$PIDFILE")"
  echo "dockerd: pid $pid from $PIDFILE is alive; waiting for it to answer"
else
  mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
  # A socket or pid file left by a dockerd that died would make the new one refuse to start.
  if [ -e /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  echo "dockerd: no engine answers; starting dockerd (log: $LOG)"
  setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
  pid=$!
  echo "$pid" > "$PIDFILE"
fi

for _ in $(seq 1 "$((WAIT * 4))"); do
  if engine_answers; then
    echo "dockerd: started (pid $pid, engine $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')); pid file $PIDFILE"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "dockerd: dockerd exited before answering; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  sleep 0.25
done
echo "dockerd: dockerd (pid $pid) did not answer within ${WAIT}s; last lines of $LOG:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
