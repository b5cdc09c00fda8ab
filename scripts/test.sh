#!/usr/bin/env bash
# The test command: installs what the suite needs (as root on Debian), starts a throwaway Docker
# engine and a throwaway PostgreSQL, then runs `cargo test --locked --all-targets "$@"` (every
# store on SQLite), and, without arguments, the integration tests that touch the store a second
# time on PostgreSQL (issue #14). Exits non-zero when either pass fails.
#
#   scripts/test.sh                      # everything, both backends
#   scripts/test.sh sshd -- --nocapture  # extra arguments go to `cargo test` (SQLite pass only)
#
# Environment: FLEETPOLL_TEST_DRY_RUN=1 does everything except cargo (prints its command lines).
# Logs: apt output in ${TMPDIR:-/tmp}/fleetpoll-apt.log; dockerd's in /tmp/fleetpoll-dockerd/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# sshd for the SSH tests; ssh-keygen/ssh-keyscan/ssh; a static busybox for the busybox:local image;
# the Docker engine and CLI; top/free (df is coreutils, always there); rootful podman for the
# podman test, with runc named so that apt does not pick crun (which refuses hybrid cgroups);
# headless Chromium and its chromedriver for the dashboard's browser tests; aiosmtpd as the real
# SMTP server of the email-channel tests (run with Debian's /usr/bin/python3).
# PostgreSQL's server for the second pass (the package's own cluster is never started: see
# policy-rc.d below; the tests run their own with scripts/postgres.sh).
# systemd for systemd-analyze, which checks packaging/fleetpoll.service offline (no systemd
# needs to run).
PACKAGES=(openssh-server openssh-client busybox-static docker.io procps runc podman chromium chromium-driver python3-aiosmtpd postgresql systemd)
APT_LOG=${TMPDIR:-/tmp}/fleetpoll-apt.log

say() { echo "test.sh: $*" >&2; }

is_root() { [[ $(id -u) -eq 0 ]]; }

missing_packages() {
    local p
    if command -v dpkg-query >/dev/null; then
        for p in "${PACKAGES[@]}"; do
            dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
        done
    else
        [[ -x /usr/sbin/sshd ]] || echo openssh-server
        command -v ssh-keygen >/dev/null || echo openssh-client
        command -v busybox >/dev/null || echo busybox-static
        command -v dockerd >/dev/null || echo docker.io
        { command -v top && command -v free; } >/dev/null || echo procps
        [[ -x /usr/bin/chromium ]] || echo chromium
        [[ -x /usr/bin/chromedriver ]] || echo chromium-driver
        /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || echo python3-aiosmtpd
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || echo postgresql
        command -v systemd-analyze >/dev/null || echo systemd
    fi
}

# apt-get, retried while another apt/dpkg holds its locks (up to ~10 min).
apt_retry() {
    local try
    for try in $(seq 1 120); do
        if DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=60 "$@" >>"$APT_LOG" 2>&1; then
            return 0
        fi
        if ! tail -n 5 "$APT_LOG" | grep -qiE 'could not get lock|unable to acquire|unable to lock'; then
            return 1
        fi
        ((try == 1)) && say "waiting for another apt/dpkg to finish..."
        sleep 5
    done
    return 1
}

CREATED_POLICY=0
STARTED_ENGINE=0
PG_DIR=
cleanup() {
    if ((CREATED_POLICY)); then rm -f /usr/sbin/policy-rc.d; fi
    if ((STARTED_ENGINE)); then bash scripts/docker-engine.sh stop || say "warning: could not stop dockerd"; fi
    if [[ -n $PG_DIR ]]; then bash scripts/postgres.sh stop "$PG_DIR"; rm -rf "$PG_DIR"; fi
}
trap cleanup EXIT

install_packages() {
    local missing=("$@")
    if ! is_root || ! command -v apt-get >/dev/null; then
        say "missing packages: ${missing[*]}"
        say "install them, e.g.: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
    : >"$APT_LOG"
    # Without systemd the postinst scripts would start a system sshd on :22 and a dockerd with
    # bridge networking via invoke-rc.d. A policy-rc.d that answers 101 forbids that.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# fleetpoll scripts/test.sh: no service starts during apt-get install\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        CREATED_POLICY=1
    fi
    local t0=$SECONDS
    if ! apt_retry update || ! apt_retry install "${missing[@]}"; then
        say "apt-get failed; last lines of $APT_LOG:"
        tail -n 20 "$APT_LOG" >&2
        exit 1
    fi
    if ((CREATED_POLICY)); then rm -f /usr/sbin/policy-rc.d; CREATED_POLICY=0; fi
    say "installed ${missing[*]} in $((SECONDS - t0)) s (log: $APT_LOG)"
}

mapfile -t MISSING < <(missing_packages)
if ((${#MISSING[@]})); then
    install_packages "${MISSING[@]}"
fi

# A Docker engine for the real-docker tests. Not fatal: those tests report why they cannot run.
if is_root && command -v dockerd >/dev/null; then
    if docker info >/dev/null 2>&1; then
        say "using the Docker engine already running"
    elif bash scripts/docker-engine.sh start; then
        STARTED_ENGINE=1
    else
        say "warning: could not start dockerd; tests needing a real Docker engine will say so"
        # It may have started but not answered in time: stop whatever we launched.
        STARTED_ENGINE=1
    fi
fi

if ! command -v cargo >/dev/null && [[ -f $HOME/.cargo/env ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || { say "cargo not found: install Rust (https://rustup.rs)"; exit 1; }

CMD=(cargo test --locked --all-targets "$@")
# The integration tests whose stores go through tests/it/common.rs: the API, accounts, alerts,
# notifications, history, polls, the dashboard in Chromium and the store itself. (cli:: and
# parse_cli:: drive SQLite files by path, or no store at all.)
PG_MODULES=(store:: history:: api:: auth:: alerts:: notify:: poll:: hostile:: hardening:: sim:: lease:: browser:: mcp::)
PG_CMD=(cargo test --locked --test it -- "${PG_MODULES[@]}")
if [[ ${FLEETPOLL_TEST_DRY_RUN:-0} == 1 ]]; then
    say "dry run: would run: ${CMD[*]}"
    (($#)) || say "dry run: then, on PostgreSQL: ${PG_CMD[*]}"
    exit 0
fi
status=0
"${CMD[@]}" || status=$?
if ((!$#)); then
    PG_DIR=$(mktemp -d /tmp/fleetpoll-pg.XXXXXX)
    if url=$(bash scripts/postgres.sh start "$PG_DIR"); then
        say "second pass on PostgreSQL ($url)"
        FLEETPOLL_TEST_POSTGRES=$url "${PG_CMD[@]}" || status=$?
    else
        say "could not start PostgreSQL for the second pass"
        status=1
    fi
fi
exit "$status"
