#!/usr/bin/env bash
# The project-local PostGIS cluster under .var/: its own data directory, socket and port.
# It never touches a system cluster. Usage: scripts/pg.sh start|stop|status|psql
# When DATABASE_URL is set, OneMap uses that server instead and this script does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DATA=$ROOT/.var/pg
RUN=$ROOT/.var/run
LOG=$ROOT/.var/log/postgresql.log
PORT=${ONEMAP_PG_PORT:-54329}

# PostgreSQL refuses to run as root (CI runs as root): then the cluster belongs to `postgres`.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  if [ -n "${DATABASE_URL:-}" ]; then echo "pg: DATABASE_URL is set; not starting a local cluster"; return; fi
  mkdir -p "$ROOT/.var/log" "$RUN"
  if [ "$(id -u)" = 0 ]; then chown postgres "$ROOT/.var/log" "$RUN"; fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    echo "pg: creating the local cluster in .var/pg (port $PORT)"
    mkdir -p "$DATA"
    if [ "$(id -u)" = 0 ]; then chown postgres "$DATA"; fi
    as_owner "$PGBIN/initdb" -D "$DATA" -U onemap --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
shared_buffers = 512MB
work_mem = 32MB
maintenance_work_mem = 256MB
max_connections = 200
fsync = on
synchronous_commit = on
max_wal_size = 2GB
jit = off
CONF
  fi
  if running; then echo "pg: local cluster already running on port $PORT"; else
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null
    echo "pg: local cluster started on port $PORT (socket $RUN)"
  fi
  if ! "$PGBIN/psql" -h "$RUN" -p "$PORT" -U onemap -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='onemap'" | grep -q 1; then
    "$PGBIN/createdb" -h "$RUN" -p "$PORT" -U onemap onemap
  fi
  "$PGBIN/psql" -q -h "$RUN" -p "$PORT" -U onemap -d onemap -c "CREATE EXTENSION IF NOT EXISTS postgis" 2>&1 | grep -v 'already exists' || true
}

case "${1:-start}" in
  start) start ;;
  stop) if running; then as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast stop; fi ;;
  status) if running; then echo running; else echo stopped; exit 1; fi ;;
  psql) shift; exec "$PGBIN/psql" -h "$RUN" -p "$PORT" -U onemap -d onemap "$@" ;;
  *) echo "usage: $0 start|stop|status|psql" >&2; exit 2 ;;
esac
