#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, on this machine only.
#
#   scripts/postgres.sh [start] [DIR]   start it (or find it running); prints the admin URL last
#   scripts/postgres.sh stop [DIR]      stop it
#   scripts/postgres.sh restart [DIR]   restart it (tests that check recovery after a restart)
#
# DIR is the data directory (default /tmp/fresco-pg); PGPORT the port (default 54329). It listens
# on 127.0.0.1 only with trust authentication and fsync off: for tests, never for real data.
# The admin URL it prints: postgres://postgres@127.0.0.1:PORT/postgres
set -euo pipefail

cmd=start
case "${1:-}" in
    start | stop | restart | status)
        cmd=$1
        shift
        ;;
esac
dir=${1:-/tmp/fresco-pg}
port=${PGPORT:-54329}
bin=/usr/lib/postgresql/15/bin
url="postgres://postgres@127.0.0.1:${port}/postgres"

log() { echo "postgres.sh: $*" >&2; }

# PostgreSQL refuses to run as root: run its programs as the postgres user when we are root.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_if_missing() {
    if [ -x "$bin/pg_ctl" ]; then
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        log "PostgreSQL 15 is not installed in $bin and installing it needs root"
        exit 1
    fi
    log "installing PostgreSQL (Debian package postgresql)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
    # The package starts a cluster of its own on 5432; ours is separate and that one is not needed.
    if command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
    fi
    if [ ! -x "$bin/pg_ctl" ]; then
        log "installed the postgresql package but $bin/pg_ctl is still missing"
        exit 1
    fi
}

is_running() {
    [ -f "$dir/PG_VERSION" ] && as_postgres "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1
}

init_cluster() {
    if [ -f "$dir/PG_VERSION" ]; then
        return
    fi
    log "creating a test cluster in $dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    as_postgres "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<EOF

# fresco test server (scripts/postgres.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start() {
    install_if_missing
    if is_running; then
        echo "$url"
        return
    fi
    init_cluster
    # The port is pinned in postgresql.conf at init; -o -p lets PGPORT change between starts.
    as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 -o "-p $port" start >/dev/null
    echo "$url"
}

stop() {
    if is_running; then
        as_postgres "$bin/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null
        log "stopped the server in $dir"
    else
        log "no server running in $dir"
    fi
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    restart)
        stop
        start
        ;;
    status)
        if is_running; then echo "$url"; else
            log "no server running in $dir"
            exit 1
        fi
        ;;
esac
