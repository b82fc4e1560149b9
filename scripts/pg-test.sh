#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite.
#
#   scripts/pg-test.sh start   # initdb (if needed) + start on 127.0.0.1:55432, create database caresync_test
#   scripts/pg-test.sh url     # print the SQLAlchemy URL of that database
#   scripts/pg-test.sh stop    # stop the server and delete its data directory
#   scripts/pg-test.sh status  # exit 0 if it is running
#
# Uses the server binaries of Debian's `postgresql` package (/usr/lib/postgresql/<major>/bin), or
# initdb/pg_ctl on PATH elsewhere. initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` system user (created by the Debian package). Trust authentication, loopback only: never point
# this at anything but a scratch cluster. Idempotent: `start` on a running cluster and `stop` on a stopped
# one do nothing.
#
# Environment: CARESYNC_PGTEST_PORT (55432), CARESYNC_PGTEST_DIR (/tmp/caresync-pgtest-<port>),
#              CARESYNC_PGTEST_TIMEOUT (seconds to wait for readiness, 60).
set -euo pipefail

PORT="${CARESYNC_PGTEST_PORT:-55432}"
HOST="127.0.0.1"
DB="caresync_test"
SUPERUSER="postgres"
BASE="${CARESYNC_PGTEST_DIR:-${TMPDIR:-/tmp}/caresync-pgtest-${PORT}}"
DATA="${BASE}/data"
LOG="${BASE}/server.log"
TIMEOUT="${CARESYNC_PGTEST_TIMEOUT:-60}"

die() { echo "pg-test: error: $*" >&2; exit 1; }
say() { echo "pg-test: $*" >&2; }

url() { echo "postgresql+psycopg://${SUPERUSER}@${HOST}:${PORT}/${DB}"; }

find_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
    echo "$dir"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
  else
    die "PostgreSQL server binaries not found (install Debian's 'postgresql' package: make system-deps)"
  fi
}

# Run a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [[ "$(id -u)" -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to own the cluster"
    if command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

is_running() {
  [[ -f "$DATA/postmaster.pid" ]] || return 1
  as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

port_in_use() {
  # bash's /dev/tcp: a successful connect means something already listens there.
  (exec 3<>"/dev/tcp/${HOST}/${PORT}") 2>/dev/null
}

psql_cmd() {
  # psql over TCP as the superuser; trust auth, so no password.
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U "$SUPERUSER" "$@"
}

start() {
  if is_running; then
    say "already running on ${HOST}:${PORT} (${DATA})"
  else
    if port_in_use; then
      die "port ${PORT} on ${HOST} is taken by another server; set CARESYNC_PGTEST_PORT to a free port"
    fi
    mkdir -p "$BASE"
    if [[ "$(id -u)" -eq 0 ]]; then
      chown postgres: "$BASE"
      chmod 0700 "$BASE"
    fi
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
      rm -rf "$DATA"
      say "initdb in ${DATA}"
      as_owner "$BIN/initdb" -D "$DATA" -U "$SUPERUSER" -A trust -E UTF8 --locale=C.UTF-8 --no-instructions \
        >"$BASE/initdb.log" 2>&1 || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
    fi
    # Scratch settings: loopback TCP only, socket inside the data dir, no durability (tests only).
    local opts="-c listen_addresses=${HOST} -c port=${PORT} -c unix_socket_directories='${DATA}'"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    say "starting on ${HOST}:${PORT}"
    if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "$opts" -w -t "$TIMEOUT" start >/dev/null; then
      tail -n 30 "$LOG" >&2 || true
      die "server did not start within ${TIMEOUT}s"
    fi
  fi
  # pg_ctl -w waits for the server; still check a real TCP connection before creating the database.
  local deadline=$((SECONDS + TIMEOUT))
  until "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" -U "$SUPERUSER" -d postgres; do
    ((SECONDS < deadline)) || die "server not accepting connections after ${TIMEOUT}s (log: ${LOG})"
    sleep 0.5
  done
  if [[ "$(psql_cmd -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB}'")" != "1" ]]; then
    psql_cmd -d postgres -c "CREATE DATABASE ${DB}"
    say "created database ${DB}"
  fi
  say "ready: $(url)"
}

stop() {
  if is_running; then
    say "stopping ${HOST}:${PORT}"
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t "$TIMEOUT" stop >/dev/null \
      || as_owner "$BIN/pg_ctl" -D "$DATA" -m immediate -w -t "$TIMEOUT" stop >/dev/null \
      || die "could not stop the server (data dir ${DATA})"
  fi
  if [[ -d "$BASE" ]]; then
    rm -rf "$BASE"
    say "removed ${BASE}"
  fi
}

BIN=""
case "${1:-}" in
  start) BIN="$(find_bindir)"; start ;;
  stop) BIN="$(find_bindir)"; stop ;;
  status) BIN="$(find_bindir)"; is_running ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
