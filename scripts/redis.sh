#!/usr/bin/env bash
# A project-local Redis under .var/ (Unix socket only, no TCP port) for several server processes
# to share WebSocket subscribers and the tile cache. Usage: scripts/redis.sh start|stop|url
# With REDIS_URL set, OneMap uses that server instead and this script is not called.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SOCK=$ROOT/.var/run/redis.sock
PIDFILE=$ROOT/.var/run/redis.pid

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "${1:-start}" in
  start)
    mkdir -p "$ROOT/.var/run" "$ROOT/.var/redis" "$ROOT/.var/log"
    if ! running; then
      redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --daemonize yes \
        --pidfile "$PIDFILE" --dir "$ROOT/.var/redis" --save '' --appendonly no \
        --logfile "$ROOT/.var/log/redis.log" >/dev/null
      # Wait until it answers (no fixed sleep): up to 10 s.
      for _ in $(seq 100); do redis-cli -s "$SOCK" ping >/dev/null 2>&1 && break; sleep 0.1; done
      redis-cli -s "$SOCK" ping >/dev/null || { echo "redis: did not start (see .var/log/redis.log)" >&2; exit 1; }
    fi
    ;;
  stop) if running; then kill "$(cat "$PIDFILE")"; fi ;;
  url) echo "unix://$SOCK" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
