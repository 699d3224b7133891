#!/usr/bin/env bash
# A PostgreSQL server on this machine for the cluster deployment (deploy/cluster/): the
# Dagster instance's run, event-log and schedule storage, and the MLflow store, that every
# SLURM node reaches. From Debian's PostgreSQL (scripts/install-system-deps.sh installs it
# when missing; this script installs nothing).
#
#   scripts/postgres-local.sh up     [STATE_DIR]   start (prints the lines to export)
#   scripts/postgres-local.sh down   [STATE_DIR]   stop the server by its pid
#   scripts/postgres-local.sh status [STATE_DIR]   pid and whether it accepts connections
#   scripts/postgres-local.sh env    [STATE_DIR]   print the lines to export
#
# STATE_DIR defaults to $FVC_PG_DIR, else /tmp/fvc-postgres-local. Every file lives there
# (data folder, Unix socket, log, the password); nothing is written to /etc, /run or /var.
# The server listens on 127.0.0.1 only, on the first free port from 5432 up (or
# $FVC_PG_PORT), and on a Unix socket in STATE_DIR. It runs as the `postgres` system user
# (PostgreSQL refuses root), started with pg_ctl and stopped by the pid it records.
#
# On first start it creates the role `fvc` with a random password (STATE_DIR/env, mode
# 0600) and two databases owned by it: `dagster` (instance storage) and `mlflow`.
# `env` prints DAGSTER_PG_{HOST,PORT,USERNAME,PASSWORD,DB} (which deploy/cluster/dagster.yaml
# reads) and MLFLOW_TRACKING_URI. A later `up` on the same STATE_DIR keeps the data.
set -euo pipefail

cmd="${1:-status}"
STATE="$(realpath -m "${2:-${FVC_PG_DIR:-/tmp/fvc-postgres-local}}")"
DATA="$STATE/data"
SOCKET_DIR="$STATE/socket"
LOG="$STATE/postgres.log"
ENV_FILE="$STATE/env"
ROLE=fvc
RUN_AS=postgres

die() { echo "postgres-local: $*" >&2; exit 1; }

pg_bin() {  # the newest installed server's bin folder
  local dir
  dir="$(compgen -G "/usr/lib/postgresql/*/bin" | sort -V | tail -1 || true)"
  [ -n "$dir" ] && [ -x "$dir/initdb" ] || die "PostgreSQL server not found: install postgresql (scripts/install-system-deps.sh)"
  echo "$dir"
}

as_postgres() { runuser -u "$RUN_AS" -- "$@"; }

pid_of() {  # the server's pid (first line of postmaster.pid), if that process is alive
  [ -s "$DATA/postmaster.pid" ] || return 1
  local pid; pid="$(head -1 "$DATA/postmaster.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

port_of() { sed -n 4p "$DATA/postmaster.pid"; }  # postmaster.pid line 4: the port

# port_free, free_port_from
# shellcheck source=scripts/loopback-ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/loopback-ports.sh"

psql_admin() {  # psql as the superuser over the Unix socket (peer authentication)
  as_postgres "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$(port_of)" -d postgres "$@"
}

write_env() {
  local password="$1" port="$2"
  (umask 077; cat >"$ENV_FILE" <<EOF
export DAGSTER_PG_HOST=127.0.0.1
export DAGSTER_PG_PORT=$port
export DAGSTER_PG_USERNAME=$ROLE
export DAGSTER_PG_PASSWORD=$password
export DAGSTER_PG_DB=dagster
export MLFLOW_TRACKING_URI=postgresql+psycopg2://$ROLE:$password@127.0.0.1:$port/mlflow
EOF
  )
}

first_start_setup() {  # the role, its password and the two databases
  local password
  password="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$password'"
  psql_admin -c "CREATE DATABASE dagster OWNER $ROLE"
  psql_admin -c "CREATE DATABASE mlflow OWNER $ROLE"
  write_env "$password" "$(port_of)"
}

up() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (the server runs as user $RUN_AS)"
  id "$RUN_AS" >/dev/null 2>&1 || die "no '$RUN_AS' user: install postgresql (scripts/install-system-deps.sh)"
  if pid_of >/dev/null; then die "already running in $STATE (scripts/postgres-local.sh down $STATE first)"; fi
  local bin port fresh=0
  bin="$(pg_bin)"
  mkdir -p "$STATE" "$SOCKET_DIR"
  chmod 0755 "$STATE"  # the postgres user must reach its data folder and socket
  chown "$RUN_AS" "$SOCKET_DIR"
  if [ ! -s "$DATA/PG_VERSION" ]; then
    fresh=1
    rm -rf "$DATA"
    mkdir -p "$DATA" && chown "$RUN_AS" "$DATA" && chmod 0700 "$DATA"
    # Local (socket) connections: the OS user; TCP: password (scram-sha-256) only.
    as_postgres "$bin/initdb" -D "$DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      --encoding=UTF8 --no-locale >"$STATE/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$STATE/initdb.log")"
  fi
  port="$(free_port_from "${FVC_PG_PORT:-5432}")"
  touch "$LOG" && chown "$RUN_AS" "$LOG"
  as_postgres "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $SOCKET_DIR" start >/dev/null \
    || die "the server did not start: $(tail -5 "$LOG")"
  if [ "$fresh" = 1 ]; then
    first_start_setup || { down >/dev/null; die "could not create the role and databases"; }
  else  # same password, maybe a new port
    # shellcheck disable=SC1090
    write_env "$(. "$ENV_FILE" && echo "$DAGSTER_PG_PASSWORD")" "$port"
  fi
  cat "$ENV_FILE"
}

down() {
  local pid i
  if pid="$(pid_of)"; then
    kill -INT "$pid" 2>/dev/null || true  # "fast" shutdown: roll back open transactions, then stop
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  echo "postgres-local: stopped ($STATE)"
}

status() {
  local pid
  if pid="$(pid_of)"; then
    echo "postgres: running (pid $pid, 127.0.0.1:$(port_of), socket in $SOCKET_DIR)"
    "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$(port_of)" && echo "accepting connections"
    return 0
  fi
  echo "postgres: stopped"
  return 3
}

case "$cmd" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) [ -s "$ENV_FILE" ] || die "no $ENV_FILE: run up first"; cat "$ENV_FILE" ;;
  *) die "usage: $0 up|down|status|env [STATE_DIR]" ;;
esac
