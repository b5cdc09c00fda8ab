#!/usr/bin/env bash
# Fleet benchmarks of issue #5 (BENCHMARKS.md `## Fleet`).
#
#   scripts/bench-fleet.sh [SIZES...]        simulated fleets (default: 100 1000 10000)
#   scripts/bench-fleet.sh --sshd [N]        N real OpenSSH sshd on loopback (default 50; root)
#   scripts/bench-fleet.sh --target-cost [R] what one poll costs the monitored host (R runs, 20)
#
# Simulated fleet, for each size N: a client key, `fleetpoll sim-fleet` in its own process
# (10% dead, 5% silent), a fresh database, `fleetpoll serve --interval 60`; one warm-up cycle
# (first connections and probes), then one measured steady-state window (60 s; 120 s from
# 5,000 hosts on) between two scrapes of /metrics. Then the floor client
# (examples/ssh_floor.rs) runs the same script on the same hosts over the same window.
# --sshd does the same against N sshd (one per port, 127.0.0.1) with a 10 s interval.
# --target-cost runs the poll script through one sshd R times and times each section of it.
#
# Each mode prints a table and writes it into BENCHMARKS.md between the markers
# `<!-- bench-fleet:begin KEY -->` and `<!-- bench-fleet:end -->` inside `## Fleet` (the
# rest of the file is kept).
#
# Environment: INTERVAL (60; --sshd 10), WARMUP (75; --sshd 15: seconds after serve starts),
# MEASURE (60, 120 from 5,000 hosts), DEAD (10), SILENT (5), SIM_DELAY_MS (50), CONCURRENCY (256), BASE
# (127.20.0.1), SIM_PORT (2322), SSHD_PORT (23000), HTTP_PORT (18590), NO_WRITE=1 to leave
# BENCHMARKS.md alone, KEEP=1 to keep the work directory, CARGO_TARGET_DIR as for cargo,
# BENCH_MD (BENCHMARKS.md of this checkout), BENCH_REV (git describe of the measured tree). Needs python3, sqlite3, curl, ssh-keygen;
# --sshd and --target-cost need openssh-server and root. Stays within `ulimit -n` 20000.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=sim
case "${1:-}" in
    --sshd) MODE=sshd; shift; SSHD_N=${1:-50} ;;
    --target-cost) MODE=target; shift; RUNS=${1:-20} ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 1000 10000)
if [ "$MODE" = sshd ]; then INTERVAL=${INTERVAL:-10}; WARMUP=${WARMUP:-15}; fi
INTERVAL=${INTERVAL:-60}
WARMUP=${WARMUP:-75}
MEASURE_SECS=${MEASURE:-}
DEAD=${DEAD:-10}
SILENT=${SILENT:-5}
# Slots for in-flight polls. In steady state a live poll holds one for ~0.1 s (sim delay 50 ms),
# so 10,000 hosts / 60 s need ~17. But a silent host holds its slot for the whole connect
# deadline (10 s) on every retry: 5% of 10,000 = 500 hosts x 10 s spread over the first
# 60 s is ~83 slots. 256 leaves 3x headroom over both together while bounding the extra fds
# (256 on top of the persistent sessions) well inside the limit of 20,000. Handshakes keep
# their defaults (200/s fleet-wide: 10,000 first contacts in 60 s need 167/s; 8 at once per /24).
CONCURRENCY=${CONCURRENCY:-256}
BASE=${BASE:-127.20.0.1}
SIM_PORT=${SIM_PORT:-2322}
# The simulator answers each command after this delay. 50 ms is sim-fleet's default; a real
# host takes ~1.2 s for fleetpoll's script (`top -d 1` waits one second), so 1200 shows how
# many polls are in flight against real hosts.
SIM_DELAY_MS=${SIM_DELAY_MS:-50}
SSHD_PORT=${SSHD_PORT:-23000}
HTTP_PORT=${HTTP_PORT:-18590}
BENCH_MD=${BENCH_MD:-$ROOT/BENCHMARKS.md}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/fleetpoll
FLOOR=$TARGET/release/examples/ssh_floor
SSHOPT=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)

ulimit -n 20000 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
echo "building (release)..." >&2
if ! cargo build --release --quiet --bin fleetpoll --example ssh_floor; then
    [ -x "$BIN" ] && [ -x "$FLOOR" ] || exit 1
    echo "build failed: measuring the binaries already in $TARGET/release" >&2
fi
REV=${BENCH_REV:-"$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' with uncommitted changes in src/')"}

W=$(mktemp -d /tmp/bench-fleet.XXXXXX)
# Private copies: others may rebuild target/ during a run. Run from $W so that no
# config/fleetpoll.toml is read: every setting is its default unless set below.
cp "$BIN" "$FLOOR" "$W/"
BIN=$W/fleetpoll FLOOR=$W/ssh_floor
cd "$W"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ -n "${CM_SOCKET:-}" ] && [ -S "$CM_SOCKET" ]; then ssh -o ControlPath="$CM_SOCKET" -O exit x 2>/dev/null || true; fi
    if [ -n "${CREATED_USER:-}" ]; then userdel "$CREATED_USER" 2>/dev/null || true; fi
    if [ -n "${KEEP:-}" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() { local keep=() p; for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }
stop() { # PID: SIGTERM, wait, forget
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget "$1"
}
TOKEN=""
scrape() { curl -sf ${TOKEN:+-H "Authorization: Bearer $TOKEN"} "http://127.0.0.1:$HTTP_PORT/metrics"; }
mk_token() { # DB: a viewer token for /metrics (empty on revisions without `token`)
    TOKEN=$("$BIN" --db "$1" token create --name bench-fleet --role viewer 2>/dev/null) || TOKEN=""
}
wait_http() {
    for _ in $(seq 100); do scrape >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "serve did not answer on :$HTTP_PORT" >&2; return 1
}
proc_cpu() { # PID -> utime+stime seconds
    awk '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / 100 }' "/proc/$1/stat"
}
busy_cpu() { # seconds of CPU busy on all cores since boot (/proc/stat: all but idle and iowait)
    awk '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / 100; exit }' /proc/stat
}
proc_rss() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }
tree_cpu() { # PIDS... -> CPU seconds of these processes and all their descendants, reaped ones included
    python3 - "$@" <<'EOF'
import os, sys
roots, kids, cpu = set(map(int, sys.argv[1:])), {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit(): continue
    try: f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    except OSError: continue
    kids.setdefault(int(f[1]), []).append(int(p))
    cpu[int(p)] = sum(int(x) for x in f[11:15]) / 100   # utime stime cutime cstime
todo, total = list(roots), 0.0
while todo:
    p = todo.pop(); total += cpu.get(p, 0.0); todo += kids.get(p, [])
print(f"{total:.2f}")
EOF
}
serve_bg() { # DB LOG
    FLEETPOLL_CONCURRENCY=$CONCURRENCY RUST_LOG=${RUST_LOG:-warn} \
        "$BIN" --db "$1" serve --listen "127.0.0.1:$HTTP_PORT" --interval "$INTERVAL" >"$2" 2>&1 &
    SERVE=$!; PIDS+=("$SERVE")
}
write_block() { # KEY FILE: put FILE between the markers of KEY in BENCH_MD's `## Fleet`
    [ -z "${NO_WRITE:-}" ] || return 0
    python3 - "$BENCH_MD" "$2" "$1" <<'EOF'
import sys, os
path, table, key = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
begin, end = f"<!-- bench-fleet:begin {key} -->", "<!-- bench-fleet:end -->"
block = f"{begin}\n{table}{end}\n"
if begin in text:
    i = text.index(begin); j = text.index(end, i) + len(end) + 1
    text = text[:i] + block + text[j:]
elif "\n## Fleet" in text:
    i = text.index("\n## Fleet"); nxt = text.find("\n## ", i + 1)
    k = len(text) if nxt < 0 else nxt + 1
    text = text[:k].rstrip("\n") + "\n\n" + block + ("\n" + text[k:] if k < len(text) else "")
else:
    text = text.rstrip("\n") + "\n\n## Fleet\n\n" + block
open(path, "w").write(text)
print(f"table written to {path} (## Fleet, {key})", file=sys.stderr)
EOF
}

# Empty-inventory RSS of `serve`, 10 s after start (subtracted from the fleet's RSS).
empty_rss() {
    mkdir -p "$W/empty"
    mk_token "$W/empty/db"
    serve_bg "$W/empty/db" "$W/empty/serve.log"
    wait_http; sleep 10; scrape >/dev/null
    EMPTY_RSS=$(proc_rss "$SERVE")
    stop "$SERVE"
    echo "empty serve: RSS $((EMPTY_RSS / 1024)) KiB" >&2
}

# measure_fleet DIR N LIVE TARGET_CPU_CMD TARGET_RSS_CMD: serve then floor against DIR/hosts.csv,
# appends one row to $ROWS. TARGET_*_CMD are evaluated to read the target side's CPU and RSS.
measure_fleet() {
    local D=$1 N=$2 LIVE=$3 TCPU=$4 TRSS=$5 MEASURE S0 S1 T0 T1 TR0 FRESH F FS0 FS1 FT0 FT1 B0 B1
    MEASURE=${MEASURE_SECS:-$([ "$N" -ge 5000 ] && echo 120 || echo 60)}
    "$BIN" --db "$D/db" server import "$D/hosts.csv" >"$D/import.log" 2>&1 || { cat "$D/import.log" >&2; exit 1; }
    mk_token "$D/db"
    echo "   serve: warm-up ${WARMUP}s, measure ${MEASURE}s" >&2
    serve_bg "$D/db" "$D/serve.log"
    wait_http
    sleep "$WARMUP"
    scrape >"$D/m0.txt"; S0=$(eval "$TCPU"); T0=$(date +%s.%N); B0=$(busy_cpu)
    sleep "$MEASURE"
    scrape >"$D/m1.txt"; S1=$(eval "$TCPU"); T1=$(date +%s.%N); B1=$(busy_cpu)
    TR0=$(eval "$TRSS")
    # Live hosts with a sample younger than one interval (+5 s) at the end of the window.
    FRESH=$(sqlite3 "file:$D/db?mode=ro" "select count(*) from servers where last_sample_at >= $(date +%s%3N) - ($INTERVAL + 5) * 1000" 2>/dev/null || echo "?")
    "$BIN" --db "$D/db" remote-script --server "$(sed -n '2s/,.*//p' "$D/hosts.csv")" >"$D/script.sh" 2>/dev/null
    stop "$SERVE"
    grep -E 'ERROR|WARN' "$D/serve.log" | sed -E 's/^[^ ]+ +//; s/server="?[a-z0-9-]+"?//g; s/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+/ADDR/g; s/(sim|ossh)-[0-9]+/HOST/g' \
        | cut -c1-200 | sort | uniq -c | sort -rn | head -8 >"$D/serve-warnings.txt" || true
    sed 's/^/      serve log: /' "$D/serve-warnings.txt" >&2

    if [ -n "${NO_FLOOR:-}" ]; then echo "polls_ok=?" >"$D/floor.txt"; FS0=?; FS1=?; FT0=?; FT1=?; else
    echo "   floor: same script, same window" >&2
    "$FLOOR" --hosts-file "$D/hosts.csv" --script "$D/script.sh" --interval "$INTERVAL" \
        --warmup "$WARMUP" --measure "$MEASURE" >"$D/floor.txt" 2>"$D/floor.log" &
    F=$!; PIDS+=("$F")
    sleep "$WARMUP"; FS0=$(eval "$TCPU"); FT0=$(date +%s.%N)
    wait "$F" || true
    FS1=$(eval "$TCPU"); FT1=$(date +%s.%N)
    forget "$F"
    fi

    python3 - "$N" "$LIVE" "$INTERVAL" "$EMPTY_RSS" "$S0" "$S1" "$T0" "$T1" "$TR0" "$FRESH" \
        "$D/m0.txt" "$D/m1.txt" "$D/floor.txt" "$FS0" "$FS1" "$FT0" "$FT1" "$B0" "$B1" >>"$ROWS" <<'EOF'
import sys, re
a_ = sys.argv
n, live, interval = int(a_[1]), int(a_[2]), float(a_[3])
num = lambda x: float(x) if x not in ("?", "") else float("nan")
empty_rss, s0, s1, t0, t1, t_rss, fresh = map(num, a_[4:11])
fs0, fs1, ft0, ft1, b0, b1 = map(num, a_[14:20])
def load(p):
    m = {}
    for line in open(p):
        if line.startswith("#") or not line.strip(): continue
        k, v = line.rsplit(" ", 1)
        m[k] = float(v)
    return m
a, b = load(a_[11]), load(a_[12])
d = lambda k: b.get(k, 0.0) - a.get(k, 0.0)
try: floor = dict(kv.split("=", 1) for kv in open(a_[13]).read().split())
except Exception: floor = {}
window = t1 - t0
ok = d('fleetpoll_polls_total{outcome="ok"}')
other = {k[len('fleetpoll_polls_total{outcome="'):-2]: d(k) for k in b if k.startswith('fleetpoll_polls_total{') and 'ok"' not in k and d(k)}
cpu = d("process_cpu_seconds_total")
conns = b.get("fleetpoll_ssh_open_connections", 0)
rss = b.get("process_resident_memory_bytes", 0)
# p99 of cycle lag from bucket deltas, linear inside the bucket (as histogram_quantile).
bk = sorted(((float(re.search(r'le="([^"]+)"', k).group(1).replace("+Inf", "inf")), d(k))
             for k in b if k.startswith("fleetpoll_cycle_lag_seconds_bucket")))
total = bk[-1][1] if bk else 0
p99, prev_le, prev_c = float("nan"), 0.0, 0.0
for le, c in bk:
    if total and c >= 0.99 * total:
        p99 = le if le == float("inf") else prev_le + (le - prev_le) * ((0.99 * total - prev_c) / max(c - prev_c, 1e-9))
        break
    prev_le, prev_c = le, c
lag_sum, lag_cnt = d("fleetpoll_cycle_lag_seconds_sum"), d("fleetpoll_cycle_lag_seconds_count")
fcpu = num(floor.get("cpu_ms_per_poll", "?"))
fok = num(floor.get("polls_ok", "?"))
mine = cpu * 1000 / ok if ok else float("nan")
r = lambda x, k=2: round(x, k) if x == x else "?"
row = dict(
    hosts=n, live=live, window_s=round(window), polls_ok=int(ok),
    ok_per_cycle=round(ok / (window / interval)), fresh=int(fresh) if fresh == fresh else "?",
    other=" ".join(f"{k}={int(v)}" for k, v in sorted(other.items())) or "-",
    skipped=int(d("fleetpoll_skipped_polls_total")),
    handshakes=int(d("fleetpoll_ssh_handshakes_total")),
    cpu_s=r(cpu), cpu_ms_per_poll=r(mine, 3), floor_ms_per_poll=r(fcpu, 3),
    ratio=r(mine / fcpu) if fcpu == fcpu and fcpu else "?",
    floor_polls_ok=int(fok) if fok == fok else "?",
    lag_p99_s=r(p99, 3), lag_mean_s=r(lag_sum / lag_cnt, 3) if lag_cnt else "?",
    conns=int(conns), rss_mib=r(rss / 2**20, 1),
    kib_per_conn=r((rss - empty_rss) / 1024 / conns, 1) if conns else "?",
    fds=int(b.get("process_open_fds", 0)),
    floor_rss_mib=r(num(floor.get("rss_bytes", "?")) / 2**20, 1),
    target_cpu_pct=r((s1 - s0) / window * 100, 1),
    target_ms_per_poll=r((s1 - s0) * 1000 / ok, 2) if ok else "?",
    target_ms_per_floor_poll=r((fs1 - fs0) * 1000 / fok, 2) if fok == fok and fok else "?",
    target_rss_mib=r(t_rss / 2**20, 1),
    # Everything else on the machine during fleetpoll's window, in % of one core.
    others_cpu_pct=r(((b1 - b0) - cpu - (s1 - s0)) / window * 100, 0),
)
print("\t".join(f"{k}={v}" for k, v in row.items()))
EOF
    tail -1 "$ROWS" | tr '\t' ' ' >&2
}

# table COLS... (key:header pairs) from $ROWS, then a note line
table() {
    python3 - "$ROWS" "$@" <<'EOF'
import sys
rows = [dict(kv.split("=", 1) for kv in l.rstrip("\n").split("\t")) for l in open(sys.argv[1]) if l.strip()]
cols = [c.split(":", 1) for c in sys.argv[2:]]
print("| " + " | ".join(h for _, h in cols) + " |")
print("|" + "|".join("---:" for _ in cols) + "|")
for r in rows:
    print("| " + " | ".join(str(r.get(k, "?")) for k, _ in cols) + " |")
print()
EOF
}
COMMON_COLS=("hosts:hosts" "live:live" "window_s:window s" "ok_per_cycle:ok polls / cycle"
    "fresh:hosts sampled in last cycle" "skipped:skipped" "other:failed polls in window"
    "lag_p99_s:cycle lag p99 s" "lag_mean_s:lag mean s" "cpu_ms_per_poll:fleetpoll CPU ms / poll"
    "floor_ms_per_poll:floor CPU ms / poll" "ratio:ratio" "conns:open conns" "rss_mib:RSS MiB"
    "kib_per_conn:KiB / conn" "fds:fds" "floor_rss_mib:floor RSS MiB" "others_cpu_pct:other load %")
ROWS=$W/rows.tsv
: >"$ROWS"
STAMP=$(date -u '+%Y-%m-%d %H:%M UTC')

if [ "$MODE" = sim ]; then
    empty_rss
    for N in "${SIZES[@]}"; do
        D=$W/n$N; mkdir -p "$D"
        ssh-keygen -q -t ed25519 -N '' -f "$D/key"
        echo "== $N simulated hosts (dead $DEAD%, silent $SILENT%)" >&2
        RUST_LOG=warn "$BIN" sim-fleet --hosts "$N" --client-key "$D/key" --hosts-file "$D/hosts.csv" \
            --dead "$DEAD" --silent "$SILENT" --base "$BASE" --port "$SIM_PORT" --delay-ms "$SIM_DELAY_MS" >"$D/sim.log" 2>&1 &
        SIM=$!; PIDS+=("$SIM")
        for _ in $(seq 600); do [ -s "$D/hosts.csv" ] && break; kill -0 "$SIM" || { cat "$D/sim.log" >&2; exit 1; }; sleep 0.1; done
        sleep 1
        LIVE=$(python3 -c "n,d,s=$N,$DEAD,$SILENT; r=lambda p: int(n*p/100+0.5); print(n-r(d)-r(s))")
        measure_fleet "$D" "$N" "$LIVE" 'proc_cpu $SIM' 'proc_rss $SIM'
        stop "$SIM"
    done
    TABLE=$W/table.md
    { table "${COMMON_COLS[@]}" "target_cpu_pct:sim CPU %" "target_rss_mib:sim RSS MiB"
      echo "\`scripts/bench-fleet.sh ${SIZES[*]}\`: interval $INTERVAL s, $DEAD% dead, $SILENT% silent," \
           "sim command delay $SIM_DELAY_MS ms, \`FLEETPOLL_CONCURRENCY=$CONCURRENCY\`$(env | grep -E '^FLEETPOLL_' | grep -v CONCURRENCY | sed 's/^/, `/; s/$/`/' | tr -d '\n'), other settings default; empty-inventory RSS" \
           "$((EMPTY_RSS / 1024)) KiB; fleetpoll $REV; $STAMP. The simulator runs on the same 2 cores" \
           "(sim CPU % is of one core, during fleetpoll's window)."
    } >"$TABLE"
    echo >&2; cat "$TABLE"
    write_block "sim ${SIZES[*]} delay $SIM_DELAY_MS concurrency $CONCURRENCY$(env | grep -E '^FLEETPOLL_' | sort | sed 's/^/ /' | tr -d '\n')" "$TABLE"
fi

# The monitored account: a plain user with an empty home, so that no shell start-up file
# (root's ~/.bashrc here runs `pyenv init`, ~80 ms per session: Debian's bash reads ~/.bashrc
# for every command sshd runs) is counted as the poll's cost. SSH_USER=root to measure as root.
SSH_USER=${SSH_USER:-fleetbench}
ensure_user() {
    [ "$SSH_USER" = "$(id -un)" ] && return 0
    if ! id "$SSH_USER" >/dev/null 2>&1; then
        useradd -M -d /nonexistent -s /bin/bash "$SSH_USER"
        CREATED_USER=$SSH_USER
    fi
    usermod -p '*' "$SSH_USER"   # unlocked for key login (UsePAM no)
    chmod 755 "$W"               # sshd reads the keys file as that user
}
start_sshds() { # N DIR: N sshd on 127.0.0.1:SSHD_PORT.., one client key; writes DIR/hosts.csv
    local n=$1 S=$2 i
    ensure_user
    mkdir -p "$S" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"; ssh-keygen -q -t ed25519 -N '' -f "$S/key"
    cp "$S/key.pub" "$S/authorized_keys"
    cat >"$S/sshd_config" <<EOF
ListenAddress 127.0.0.1
HostKey $S/host_key
AuthorizedKeysFile $S/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
EOF
    echo "name,host,port,user,key_path,tags" >"$S/hosts.csv"
    SSHD_PIDS=()
    for ((i = 0; i < n; i++)); do
        /usr/sbin/sshd -f "$S/sshd_config" -o "Port=$((SSHD_PORT + i))" -o "PidFile=$S/sshd.$i.pid" -E "$S/sshd.$i.log"
        for _ in $(seq 50); do [ -s "$S/sshd.$i.pid" ] && break; sleep 0.05; done
        SSHD_PIDS+=("$(cat "$S/sshd.$i.pid")"); PIDS+=("${SSHD_PIDS[-1]}")
        printf 'ossh-%02d,127.0.0.1,%d,%s,%s,sshd\n' $((i + 1)) $((SSHD_PORT + i)) "$SSH_USER" "$S/key" >>"$S/hosts.csv"
    done
}

if [ "$MODE" = sshd ]; then
    empty_rss
    D=$W/sshd
    echo "== $SSHD_N sshd on 127.0.0.1:$SSHD_PORT-$((SSHD_PORT + SSHD_N - 1))" >&2
    start_sshds "$SSHD_N" "$D"
    measure_fleet "$D" "$SSHD_N" "$SSHD_N" 'tree_cpu ${SSHD_PIDS[@]}' 'echo 0'
    TABLE=$W/table.md
    { table "${COMMON_COLS[@]}" "target_ms_per_poll:sshd side CPU ms / fleetpoll poll" \
            "target_ms_per_floor_poll:sshd side CPU ms / floor poll"
      echo "\`scripts/bench-fleet.sh --sshd $SSHD_N\`: $(ssh -V 2>&1 | cut -d, -f1), one sshd per port, user $SSH_USER," \
           "interval $INTERVAL s, \`FLEETPOLL_CONCURRENCY=$CONCURRENCY\`; sshd side = CPU of the sshd" \
           "process trees (sessions, shells, top, free, df, docker client) over the window, divided by" \
           "that client's polls; fleetpoll $REV; $STAMP."
    } >"$TABLE"
    echo >&2; cat "$TABLE"
    write_block "sshd $SSHD_N" "$TABLE"
fi

if [ "$MODE" = target ]; then
    D=$W/target
    start_sshds 1 "$D"
    # The script fleetpoll sends to this host: register it, poll once (probe), print it.
    "$BIN" --db "$D/db" server import "$D/hosts.csv" >/dev/null
    "$BIN" --db "$D/db" poll --once --server ossh-01 >"$D/poll.txt" 2>&1 || true
    "$BIN" --db "$D/db" remote-script --server ossh-01 >"$D/script.sh"
    sed 's/^/   script: /' "$D/script.sh" >&2
    H=(-i "$D/key" -p "$SSHD_PORT" "${SSHOPT[@]}" "$SSH_USER@127.0.0.1")
    CM_SOCKET=$D/cm; CM=(-o ControlPath="$CM_SOCKET")
    # per_run LABEL CMD...: R runs of CMD; CPU = sshd tree (listener + sessions, reaped children
    # included) delta / R; wall = median of the runs.
    RES=$W/target.tsv; : >"$RES"
    per_run() {
        local label=$1 c0 c1 i t0 walls=(); shift
        c0=$(tree_cpu "${SSHD_PIDS[@]}")
        for ((i = 0; i < RUNS; i++)); do
            t0=$(date +%s%N); "$@" </dev/null >/dev/null 2>&1 || true; walls+=($(( ($(date +%s%N) - t0) / 1000000 )))
        done
        sleep 0.3
        c1=$(tree_cpu "${SSHD_PIDS[@]}")
        printf '%s\t%s\t%s\n' "$label" "$(python3 -c "print(round(($c1 - $c0) * 1000 / $RUNS, 1))")" \
            "$(printf '%s\n' "${walls[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')" >>"$RES"
        tail -1 "$RES" >&2
    }
    # local_run LABEL SHELL-CODE: R runs on this host (the target) under `sh -c`, CPU from
    # /usr/bin/time (user+sys of the shell and its children) / R, wall median.
    local_run() {
        local label=$1 code=$2 i t0 walls=() out
        out=$( { /usr/bin/time -f '%U %S' $ASUSER sh -c "for i in \$(seq $RUNS); do $code >/dev/null 2>&1; done; true" ; } 2>&1 >/dev/null | tail -1)
        for ((i = 0; i < 3; i++)); do
            t0=$(date +%s%N); $ASUSER sh -c "$code" >/dev/null 2>&1 || true; walls+=($(( ($(date +%s%N) - t0) / 1000000 )))
        done
        printf '%s\t%s\t%s\n' "$label" "$(echo "$out" | awk -v r="$RUNS" '{ printf "%.1f", ($1 + $2) * 1000 / r }')" \
            "$(printf '%s\n' "${walls[@]}" | sort -n | sed -n 2p)" >>"$RES"
        tail -1 "$RES" >&2
    }
    # Sections run locally as the monitored account too (setpriv: no PAM, no shell rc).
    ASUSER=""; [ "$SSH_USER" = "$(id -un)" ] || ASUSER="setpriv --reuid=$(id -u "$SSH_USER") --regid=$(id -g "$SSH_USER") --init-groups"
    TOPAWK='awk '"'"'/^@@fleetpoll-/ { print; next } /^ *PID / { skip = 1; next } /^top - / || /^Mem: / { skip = 0 } !skip { print }'"'"
    sections() { # EXTRA: the per-section costs with EXTRA more sleeping processes
        local x=$1 p
        echo "   sections with $x extra processes ($(ls -d /proc/[0-9]* 2>/dev/null | wc -l) in all)" >&2
        local_run "[$x] top -b -n 2 -d 1, piped to awk (fleetpoll's)" "top -b -n 2 -d 1 | $TOPAWK"
        local_run "[$x] top -b -n 1" "top -b -n 1"
        local_run "[$x] top -b -n 2 -d 1 -w 512" "top -b -n 2 -d 1 -w 512"
        local_run "[$x] /proc/stat twice, 1 s apart (no process list)" "cat /proc/stat /proc/loadavg /proc/uptime; sleep 1; cat /proc/stat"
        if [ "$x" = 0 ]; then
            local_run "free -b" "free -b"
            local_run "df -kP" "df -kP"
            command -v docker >/dev/null && local_run "docker ps -a (client; daemon $(docker version >/dev/null 2>&1 && echo running || echo absent))" "docker ps -a --format '{{json .}}'"
            command -v podman >/dev/null && local_run "podman ps -a --format json" "podman ps -a --format json"
            command -v podman >/dev/null && local_run "podman stats --no-stream --all --format json" "podman stats --no-stream --all --format json"
            local_run "sh -c true" "true"
        fi
    }
    echo "== target cost: $RUNS runs each" >&2
    per_run "ssh host true (new connection each time)" ssh "${H[@]}" true
    per_run "ssh host sh -s < poll script (new connection each time)" sh -c 'ssh "$@" sh -s <"$0"' "$D/script.sh" "${H[@]}"
    ssh "${CM[@]}" -o ControlMaster=yes -o ControlPersist=600 -fN "${H[@]}"
    per_run "poll script over one persistent connection (as fleetpoll)" sh -c 'ssh "$@" sh -s <"$0"' "$D/script.sh" "${CM[@]}" "${H[@]}"
    per_run "true over one persistent connection" ssh "${CM[@]}" "${H[@]}" true
    ssh "${CM[@]}" -O exit "${H[@]}" 2>/dev/null || true
    sections 0
    for extra in 100 1000; do
        SLEEPERS=()
        for ((i = 0; i < extra; i++)); do sleep 100000 & SLEEPERS+=($!); done
        PIDS+=("${SLEEPERS[@]}")
        sections "$extra"
        for p in "${SLEEPERS[@]}"; do kill "$p" 2>/dev/null || true; done
        wait "${SLEEPERS[@]}" 2>/dev/null || true
        for p in "${SLEEPERS[@]}"; do forget "$p"; done
    done
    TABLE=$W/table.md
    { echo "| what (R = $RUNS runs) | CPU ms per run | wall ms (median) |"
      echo "|---|---:|---:|"
      awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }' "$RES"
      echo
      echo "\`scripts/bench-fleet.sh --target-cost $RUNS\`: $(ls -d /proc/[0-9]* 2>/dev/null | wc -l) processes at rest;" \
           "[N] = with N extra sleeping processes; as user $SSH_USER. Rows with ssh: CPU of the sshd process tree; the others" \
           "run locally under /usr/bin/time. $(ssh -V 2>&1 | cut -d, -f1), $(top -V 2>/dev/null | head -1 || echo procps);" \
           "script: $(grep -Eo '(docker|podman) (ps|stats)[^;]*' "$D/script.sh" | head -2 | paste -sd '|' | sed 's/|/, /'); $STAMP."
    } >"$TABLE"
    echo >&2; cat "$TABLE"
    write_block "target-cost" "$TABLE"
fi
