#!/bin/sh
# A private PostgreSQL cluster for tests: initdb in a temporary directory, listening only on
# 127.0.0.1 on a free port (its unix socket in that directory), trust authentication for the
# role `hearth` (CREATEDB and pg_signal_backend: each test makes its own databases and drops them
# WITH (FORCE), whoever is still on them).
#   pg-test-cluster.sh start             prints DIR and the DSN (two lines); leaves it running
#   pg-test-cluster.sh stop DIR          stops it and removes DIR
#   pg-test-cluster.sh pause|resume DIR  stops / starts the server, keeping DIR (fault tests)
#   pg-test-cluster.sh run CMD [ARG...]  start; CMD with HEARTH_TEST_PG_DSN and HEARTH_TEST_PG_DIR
#                                        set; stop; CMD's exit status (77: no PostgreSQL here)
# PG_DURABLE=1 keeps fsync and synchronous commit on (benchmarks); tests turn them off.
# initdb and pg_ctl refuse to run as root: as root they run as the `postgres` user.
set -eu

pg_bin() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
    done
    echo ""
}

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    bin=$(pg_bin)
    if [ -z "$bin" ]; then
        echo "pg-test-cluster: no PostgreSQL server here (Debian: postgresql)" >&2
        return 77
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "pg-test-cluster: running as root and there is no postgres user" >&2
        return 77
    fi
    dir=$(mktemp -d /tmp/hearth-pg-XXXXXX)
    chmod 700 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if ! as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        return 1
    fi
    # Throwaway data: no fsync. Few connections are needed (a server per test, a few each).
    # PG_DURABLE=1 (benchmarks) keeps PostgreSQL's durable defaults: fsync, synchronous commit.
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
CONF
    if [ "${PG_DURABLE:-0}" != 1 ]; then
        cat >>"$dir/data/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
CONF
    fi
    tries=0
    while :; do
        port=$(free_port)
        echo "port = $port" >>"$dir/data/postgresql.conf"
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
            break
        fi
        tries=$((tries + 1))
        if [ $tries -ge 3 ]; then
            cat "$dir/server.log" >&2
            rm -rf "$dir"
            return 1
        fi
    done
    echo "$port" >"$dir/port"
    as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE hearth LOGIN CREATEDB" -c "GRANT pg_signal_backend TO hearth" >/dev/null
    echo "$dir"
    echo "postgresql://hearth@127.0.0.1:$port/postgres"
}

stop() {
    dir=$1
    bin=$(pg_bin)
    [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
start)
    start
    ;;
stop)
    stop "$2"
    ;;
pause)
    as_owner "$(pg_bin)/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null
    ;;
resume)
    as_owner "$(pg_bin)/pg_ctl" -D "$2/data" -l "$2/server.log" -w -t 60 start >/dev/null
    ;;
run)
    shift
    rc=0
    out=$(start) || rc=$?
    if [ $rc -ne 0 ]; then exit $rc; fi
    dir=$(echo "$out" | sed -n 1p)
    HEARTH_TEST_PG_DIR=$dir
    HEARTH_TEST_PG_DSN=$(echo "$out" | sed -n 2p)
    export HEARTH_TEST_PG_DIR HEARTH_TEST_PG_DSN
    trap 'stop "$dir"' EXIT INT TERM
    "$@" || rc=$?
    exit $rc
    ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
