#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks (issue #14): Debian's server
# binaries in a temporary directory, on loopback and a free port, trust authentication.
#
#   scripts/postgres.sh start DIR   # prints the URL of a database `fleetpoll` on stdout
#   scripts/postgres.sh stop DIR
#   scripts/postgres.sh resume DIR  # start a stopped cluster again on its port (outage tests)
#
# initdb refuses to run as root: as root the cluster runs as the `postgres` system user
# (the package creates it), in a directory that user owns.
set -euo pipefail

say() { echo "postgres.sh: $*" >&2; }

bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $d && -x $d/initdb ]] || { say "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)"; exit 1; }
    echo "$d"
}

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || { say "usage: $0 start|stop|resume DIR"; exit 2; }

case $cmd in
start)
    bin=$(bindir)
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U fleetpoll -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { say "initdb failed:"; cat "$dir/initdb.log" >&2; exit 1; }
    port=$(free_port)
    # Many test databases at once, each with a small pool: room for a few hundred connections.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { say "pg_ctl start failed:"; tail -n 20 "$dir/log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    as_owner "$bin/psql" -q -h 127.0.0.1 -p "$port" -U fleetpoll -d postgres -c 'create database fleetpoll' >/dev/null
    echo "postgres://fleetpoll@127.0.0.1:$port/fleetpoll"
    ;;
resume)
    bin=$(bindir)
    port=$(cat "$dir/port")
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { say "pg_ctl start failed:"; tail -n 20 "$dir/log" >&2; exit 1; }
    ;;
stop)
    bin=$(bindir)
    [[ -d $dir/data ]] || exit 0
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || say "warning: pg_ctl stop failed"
    ;;
*)
    say "unknown command $cmd"; exit 2
    ;;
esac
