#!/usr/bin/env bash
# Several pollers on one PostgreSQL (issue #14, BENCHMARKS.md `## Pollers on PostgreSQL`).
#
#   scripts/bench-pollers.sh [HOSTS] [POLLERS]     default 1000 hosts, 3 pollers
#
# A throwaway PostgreSQL (scripts/postgres.sh), `fleetpoll sim-fleet` with HOSTS live hosts,
# imported once, then POLLERS `fleetpoll serve --role poller` processes at INTERVAL (60 s).
# After WARMUP (90 s) one window of MEASURE (120 s) between two scrapes of each poller's
# /metrics: polls per host per interval (fleet-wide; 1.00 means each host once), the p99 of the
# cycle lag per poller, the pollers' and PostgreSQL's CPU per host-poll, and the database's
# growth per host-day (pg_database_size, whole, indexes and free space included). Prints a
# Markdown table; nothing is written to BENCHMARKS.md. Needs python3, curl, ssh-keygen and the
# release binary (cargo build --release). Env: INTERVAL, WARMUP, MEASURE, SIM_DELAY_MS (50),
# BASE (127.30.0.1), SIM_PORT (2422).
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-1000}
POLLERS=${2:-3}
INTERVAL=${INTERVAL:-60}
WARMUP=${WARMUP:-90}
MEASURE=${MEASURE:-120}
SIM_DELAY_MS=${SIM_DELAY_MS:-50}
BASE=${BASE:-127.30.0.1}
SIM_PORT=${SIM_PORT:-2422}
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/fleetpoll
[[ -x $BIN ]] || { echo "build first: cargo build --release" >&2; exit 1; }

W=$(mktemp -d /tmp/fleetpoll-bench-pollers.XXXXXX)
# Its own directory: as root the cluster runs as `postgres`, which must reach it.
PG=$(mktemp -d /tmp/fleetpoll-bench-pg.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 2
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    bash scripts/postgres.sh stop "$PG" || true
    rm -rf "$W" "$PG"
}
trap cleanup EXIT

URL=$(bash scripts/postgres.sh start "$PG")
ssh-keygen -q -t ed25519 -N '' -f "$W/key"
RUST_LOG=warn "$BIN" sim-fleet --hosts "$HOSTS" --client-key "$W/key" --hosts-file "$W/hosts.csv" \
    --dead 0 --silent 0 --base "$BASE" --port "$SIM_PORT" --delay-ms "$SIM_DELAY_MS" >"$W/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do [[ -s $W/hosts.csv ]] && break; sleep 0.1; done
sleep 1
export FLEETPOLL_STATE_DIR=$W
"$BIN" --db "$URL" server import "$W/hosts.csv" >/dev/null
TOKEN=$("$BIN" --db "$URL" token create --name bench --role viewer)
PORTS=()
for i in $(seq 1 "$POLLERS"); do
    port=$((18690 + i))
    RUST_LOG=warn "$BIN" --db "$URL" serve --role poller --listen "127.0.0.1:$port" --interval "$INTERVAL" \
        >"$W/poller$i.log" 2>&1 &
    PIDS+=($!)
    PORTS+=("$port")
done
POLLER_PIDS=("${PIDS[@]:1}")
scrape_all() { # DIR: each poller's /metrics into DIR/m<port>.txt
    mkdir -p "$1"
    for port in "${PORTS[@]}"; do
        curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/metrics" >"$1/m$port.txt"
    done
}
cpu_of() { # PIDS... -> utime+stime seconds summed
    local t=0 p
    for p in "$@"; do
        t=$(awk -v t="$t" '{ sub(/.*\) /, ""); printf "%.2f", t + ($12 + $13) / 100 }' "/proc/$p/stat")
    done
    echo "$t"
}
pg_cpu() { cpu_of $(pgrep -u postgres -f "postgres" || pgrep -f "postgres:"); }
db_size() { psql_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)/psql
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$psql_bin" -tA "$URL" -c 'select pg_database_size(current_database())'
    else "$psql_bin" -tA "$URL" -c 'select pg_database_size(current_database())'; fi; }

sleep "$WARMUP"
scrape_all "$W/a"; P0=$(cpu_of "${POLLER_PIDS[@]}"); G0=$(pg_cpu); S0=$(db_size); T0=$(date +%s.%N)
sleep "$MEASURE"
scrape_all "$W/b"; P1=$(cpu_of "${POLLER_PIDS[@]}"); G1=$(pg_cpu); S1=$(db_size); T1=$(date +%s.%N)

python3 - "$W" "$HOSTS" "$POLLERS" "$INTERVAL" "$T0" "$T1" "$P0" "$P1" "$G0" "$G1" "$S0" "$S1" "${PORTS[@]}" <<'EOF'
import sys
w, hosts, pollers, interval, t0, t1, p0, p1, g0, g1, s0, s1 = sys.argv[1:13]
ports = sys.argv[13:]
hosts, pollers, interval = int(hosts), int(pollers), float(interval)
secs = float(t1) - float(t0)
def metrics(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or " " not in line: continue
        k, v = line.rsplit(" ", 1)
        try: out[k] = float(v)
        except ValueError: pass
    return out
polls, p99s, leased = 0.0, [], []
for port in ports:
    a, b = metrics(f"{w}/a/m{port}.txt"), metrics(f"{w}/b/m{port}.txt")
    polls += sum(b[k] - a.get(k, 0) for k in b if k.startswith("fleetpoll_polls_total"))
    buckets = sorted(((float(k.split('le="')[1].split('"')[0]), b[k] - a.get(k, 0))
                      for k in b if k.startswith("fleetpoll_cycle_lag_seconds_bucket")))
    total = buckets[-1][1] if buckets else 0
    p99, prev_le, prev_c = float("nan"), 0.0, 0.0
    for le, c in buckets:
        if c >= 0.99 * total and total > 0:
            p99 = le if le == float("inf") else prev_le + (le - prev_le) * ((0.99 * total - prev_c) / max(c - prev_c, 1e-9))
            break
        prev_le, prev_c = le, c
    p99s.append(p99)
    leased.append(int(b.get("fleetpoll_leased_hosts", 0)))
per_interval = polls / hosts / (secs / interval)
poller_ms = (float(p1) - float(p0)) * 1000 / max(polls, 1)
pg_ms = (float(g1) - float(g0)) * 1000 / max(polls, 1)
growth = (int(s1) - int(s0)) / hosts * (86400 / secs) / 1e6
print("| hosts | pollers | leased per poller | polls per host per interval | cycle lag p99 per poller (s) | pollers CPU ms / poll | PostgreSQL CPU ms / poll | database growth MB / host-day |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {hosts} | {pollers} | {' / '.join(map(str, leased))} | {per_interval:.2f} | {' / '.join(f'{p:.2f}' for p in p99s)} | {poller_ms:.2f} | {pg_ms:.2f} | {growth:.2f} |")
EOF
