#!/usr/bin/env bash
# Stops the dockerd that scripts/ensure_dockerd.sh started, and nothing else.
#
#   scripts/stop_dockerd.sh [PIDFILE]
#
# Without PIDFILE (default /run/mltrain-dockerd.pid), or when the pid in it is not a running
# dockerd, an engine that was already running is left alone. Otherwise dockerd gets TERM
# (it stops its containers and its containerd), up to 30 s, then KILL.
set -euo pipefail

PIDFILE="${1:-/run/mltrain-dockerd.pid}"

if [ ! -s "$PIDFILE" ]; then
  echo "dockerd: not started by ensure_dockerd.sh (no $PIDFILE); leaving the engine running"
  exit 0
fi
pid="$(cat "$PIDFILE")"
if ! kill -0 "$pid" 2>/dev/null; then
  echo "dockerd: pid $pid from $PIDFILE is no longer running"
  rm -f "$PIDFILE"
  exit 0
fi
comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
if [ "$comm" != "dockerd" ]; then
  echo "dockerd: pid $pid is '$comm', not dockerd; leaving it alone" >&2
  rm -f "$PIDFILE"
  exit 0
fi

echo "dockerd: stopping pid $pid (started by ensure_dockerd.sh)"
kill -TERM "$pid"
for _ in $(seq 1 120); do
  kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; echo "dockerd: stopped"; exit 0; }
  sleep 0.25
done
echo "dockerd: pid $pid did not stop within 30 s; killing it" >&2
kill -KILL "$pid" 2>/dev/null || true
rm -f "$PIDFILE"
