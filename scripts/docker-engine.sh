#!/usr/bin/env bash
# Start or stop a throwaway Docker engine for the test suite (RECIPES.md §1). Root only.
#
#   scripts/docker-engine.sh start   # start dockerd unless `docker info` already works; wait <= 30 s
#   scripts/docker-engine.sh stop    # stop the dockerd *this script* started, and clean up after it
#   scripts/docker-engine.sh status
#
# State (pid, log, markers) lives in $FLEETPOLL_DOCKERD_DIR (default /tmp/fleetpoll-dockerd).
# No bridge or iptables: test containers run with `--network none`.
set -euo pipefail

STATE=${FLEETPOLL_DOCKERD_DIR:-/tmp/fleetpoll-dockerd}
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log
LABEL=fleetpoll.test=1   # tests/it/harness/docker.rs labels its containers with this

say() { echo "docker-engine: $*" >&2; }

engine_up() { docker info >/dev/null 2>&1; }

our_pid() {
    # Prints the pid of the dockerd we started, if it is still alive.
    [[ -f $PIDFILE ]] || return 1
    local pid
    pid=$(cat "$PIDFILE")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
    if engine_up; then
        say "already running"
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || { say "not root: cannot start dockerd"; return 1; }
    command -v dockerd >/dev/null || { say "dockerd not found: apt-get install docker.io"; return 1; }
    mkdir -p "$STATE"
    local pid
    if ! pid=$(our_pid); then
        # Remember what existed before, so `stop` removes only what this engine created.
        [[ -e /var/lib/docker ]] && touch "$STATE/keep-var-lib-docker" || rm -f "$STATE/keep-var-lib-docker"
        [[ -e /etc/docker/key.json ]] && touch "$STATE/keep-key-json" || rm -f "$STATE/keep-key-json"
        # setsid: not in our process group, so Ctrl-C on a test run does not kill it half-way.
        setsid dockerd --bridge=none --iptables=false --ip6tables=false >"$LOG" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$PIDFILE"
    fi
    local deadline=$((SECONDS + 30))
    until engine_up; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "dockerd exited; last lines of $LOG:"
            tail -n 20 "$LOG" >&2 || true
            rm -f "$PIDFILE"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            say "dockerd (pid $pid) not ready after 30 s; last lines of $LOG:"
            tail -n 20 "$LOG" >&2 || true
            return 1
        fi
        sleep 0.2
    done
    say "started dockerd (pid $pid, log $LOG)"
}

stop() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "$PIDFILE"
        say "no dockerd started by this script is running; nothing to stop"
        return 0
    fi
    # Running containers make SIGTERM take ~12 s (PID-1 `sleep` ignores SIGTERM): remove ours first.
    local ids
    ids=$(docker ps -aq --filter "label=$LABEL" 2>/dev/null || true)
    [[ -z $ids ]] || docker rm -f $ids >/dev/null 2>&1 || true
    docker rmi busybox:local >/dev/null 2>&1 || true
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "dockerd (pid $pid) ignored SIGTERM for 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.2
    done
    rm -rf /var/run/docker
    [[ -e $STATE/keep-var-lib-docker ]] || rm -rf /var/lib/docker
    [[ -e $STATE/keep-key-json ]] || rm -f /etc/docker/key.json
    rm -f "$PIDFILE" "$STATE/keep-var-lib-docker" "$STATE/keep-key-json"
    say "stopped dockerd (pid $pid)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if engine_up; then echo "running (ours: pid $(our_pid || echo none))"; else echo "not running"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
