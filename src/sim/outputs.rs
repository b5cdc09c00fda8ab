//! What a simulated host prints: the probe's `key=value` lines and the poll script's framed
//! sections, built from real captures in `fixtures/` (embedded at compile time). Pure: no I/O,
//! no async; the host module decides when to send it.
//!
//! Every simulated host answers in the exact formats of one machine's captures (Debian 12,
//! procps-ng 4.0.2, coreutils 9.1, docker 28.2 reachable directly): the captured text with
//! its figures put back in their own columns. The figures are the host's own: a size and a
//! level for CPU, memory and its root filesystem (see [`Profile`]), drifting slowly with
//! the clock, so a demo fleet differs from host to host and its badges change in minutes,
//! not at every poll.

use std::sync::LazyLock;

/// A real `top -b -n 2 -d 1` capture (procps-ng 4.0.2, `LC_ALL=C`, default toprc): the
/// layout every host's answer to the poll's own `top` command is written in. Two frames, as
/// the poller asks for: a first frame's CPU figure is since boot, which the poller never reads.
const TOP: &str = include_str!("../../fixtures/top/procps-ng-4.0.2-two-frames.txt");

/// Real `free -b` captures: without swap and with it.
const FREE: &str = include_str!("../../fixtures/free/procps-ng-4.0.2-b.txt");
const FREE_SWAP: &str = include_str!("../../fixtures/free/procps-ng-4.0.2-b-with-swap.txt");

/// A real `df -kP` capture: the root filesystem, tmpfs, and two small loop mounts.
const DF: &str = include_str!("../../fixtures/df/coreutils-9.1-kP.txt");

/// `docker ps -a --format '{{json .}}'` and `docker stats --no-stream --all --format
/// '{{json .}}'` of the same containers, captured one after the other.
const DOCKER_PS: &str = include_str!("../../fixtures/docker_ps/docker-28.2-json-all.txt");
const DOCKER_STATS: &str = include_str!("../../fixtures/docker_stats/docker-28.2-json-all.txt");

/// What the probe prints on the capture machine, with docker usable directly (the capture
/// machine's own probe said `denied` only because its daemon was stopped at the time).
pub const PROBE_OUTPUT: &str =
    "os=Debian GNU/Linux 12 (bookworm)\nkernel=Linux 6.18.44\narch=x86_64\ncpus=2\n\
top=top from procps-ng 4.0.2\nfree=free from procps-ng 4.0.2\ndf=df (GNU coreutils) 9.1\n\
docker_client=Docker version 28.2.2, build e6534b4\ndocker_access=direct\ndocker_server=28.2.2\n";

/// The `top` capture as the poll script's awk filter leaves it: process rows dropped.
static TOP_FILTERED: LazyLock<String> = LazyLock::new(|| drop_process_rows(TOP));

/// A level that drifts: `base` plus a slow wave, in percent.
#[derive(Debug, Clone, Copy)]
struct Drift {
    base: f64,
    swing: f64,
    period_secs: f64,
    phase: f64,
}

impl Drift {
    fn at(self, t: f64) -> f64 {
        let wave = (std::f64::consts::TAU * t / self.period_secs + self.phase).sin();
        // A second, faster ripple so that no two polls in a row print the same figure.
        let ripple = (std::f64::consts::TAU * t / 97.0 + self.phase * 3.0).sin() * 0.15;
        (self.base + self.swing * (wave + ripple)).clamp(0.0, 100.0)
    }
}

/// A simulated host's character, fixed by its index (the same on every run): its memory and
/// root filesystem sizes, and the levels its CPU, memory and disk use drift around. Most
/// hosts are quiet; one in sixteen runs hot (CPU around the warning line), and host 2's disk
/// fills past the critical line for a while in every hour.
#[derive(Debug, Clone)]
pub struct Profile {
    cpu: Drift,
    memory: Drift,
    disk: Drift,
    mem_total: u64,
    swap_total: u64,
    disk_kib: u64,
    /// Runs the captured unhealthy and failed containers (one host in eight).
    troubled: bool,
}

/// A well-mixed 64-bit value from `x` (SplitMix64): per-host figures without a random source.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Profile {
    /// The host's memory, as its `free -b` prints it.
    pub fn mem_total_bytes(&self) -> u64 {
        self.mem_total
    }

    /// The size of its root filesystem, as its `df -kP` prints it (in bytes).
    pub fn root_bytes(&self) -> u64 {
        self.disk_kib * 1024
    }

    /// How many containers its `docker ps -a` lists.
    pub fn containers(&self) -> usize {
        let all = DOCKER_PS.lines().count();
        if self.troubled {
            all
        } else {
            all - TROUBLE.len()
        }
    }

    pub fn of(index: usize) -> Self {
        let seed = mix(index as u64);
        // The k-th uniform draw in [0, 1) of this host.
        let draw = |k: u64| {
            (mix(seed ^ k.wrapping_mul(0xA24B_AED4_963E_E407)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let between = |k: u64, lo: f64, hi: f64| lo + (hi - lo) * draw(k);
        const GIB: u64 = 1 << 30;
        let mem_total = [2, 4, 8, 16, 32, 64][(draw(1) * 6.0) as usize % 6] * GIB;
        let mut cpu = Drift {
            base: between(2, 3.0, 35.0),
            swing: between(3, 2.0, 10.0),
            period_secs: between(4, 600.0, 2400.0),
            phase: between(5, 0.0, std::f64::consts::TAU),
        };
        if index % 16 == 7 {
            cpu.base = between(6, 78.0, 84.0);
            cpu.swing = 4.0;
        }
        let mut disk = Drift {
            base: between(7, 18.0, 72.0),
            swing: between(8, 0.5, 3.0),
            period_secs: between(9, 3600.0, 14400.0),
            phase: between(10, 0.0, std::f64::consts::TAU),
        };
        if index == 2 {
            // Over 90% for about a third of each hour: one host critical for a while.
            disk = Drift {
                base: 88.0,
                swing: 4.0,
                period_secs: 3600.0,
                phase: 0.0,
            };
        }
        Self {
            cpu,
            memory: Drift {
                base: between(11, 20.0, 70.0),
                swing: between(12, 1.0, 6.0),
                period_secs: between(13, 900.0, 5400.0),
                phase: between(14, 0.0, std::f64::consts::TAU),
            },
            disk,
            mem_total,
            swap_total: if draw(15) < 0.3 { 2 * GIB } else { 0 },
            disk_kib: [20, 40, 80, 160, 500][(draw(16) * 5.0) as usize % 5] * GIB / 1024,
            troubled: index % 8 == 3,
        }
    }
}

/// What was sent: the probe, a poll script, or something this host does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Probe,
    Poll,
    Other,
}

impl Script {
    /// Recognises fleetpoll's scripts by text only they contain.
    pub fn recognise(script: &str) -> Self {
        if script.contains("@@fleetpoll-begin") {
            Self::Poll
        } else if script.contains("kv os") {
            Self::Probe
        } else {
            Self::Other
        }
    }
}

/// What a command answers: stdout, stderr, exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub stdout: String,
    pub stderr: String,
    pub exit_status: u32,
}

/// The answer to `sh -s` fed `script` by a host of `profile`, `t` seconds into the epoch.
pub fn answer(script: &str, profile: &Profile, t: f64) -> Answer {
    match Script::recognise(script) {
        Script::Probe => Answer {
            stdout: PROBE_OUTPUT.to_string(),
            stderr: String::new(),
            exit_status: 0,
        },
        Script::Poll => poll_answer(script, profile, t),
        Script::Other => Answer {
            stdout: String::new(),
            stderr: "fleetpoll sim-fleet: this simulated host only runs fleetpoll's probe and poll scripts\n".into(),
            exit_status: 127,
        },
    }
}

/// The answer to any command other than `sh -s`, as `sh -c` would give for a missing program.
pub fn not_found(command: &str) -> Answer {
    let program = command.split_whitespace().next().unwrap_or("");
    Answer {
        stdout: String::new(),
        stderr: format!("sh: 1: {program}: not found\n"),
        exit_status: 127,
    }
}

fn poll_answer(script: &str, profile: &Profile, t: f64) -> Answer {
    let mut out = String::with_capacity(4096);
    let mut err = String::with_capacity(128);
    let mut section = |name: &str, content: &str, stderr: &str, rc: u32| {
        out.push_str("@@fleetpoll-begin ");
        out.push_str(name);
        out.push('\n');
        out.push_str(content);
        if !content.is_empty() && !content.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("@@fleetpoll-end {name} {rc}\n"));
        err.push_str("@@fleetpoll-begin ");
        err.push_str(name);
        err.push('\n');
        err.push_str(stderr);
    };
    // Sections in the script's order; a script that does not ask for one does not get it.
    let now = Figures::of(profile, t);
    if script.contains("begin top") {
        section("top", &top(&now), "", 0);
    }
    if script.contains("begin free") {
        section("free", &free(&now), "", 0);
    }
    if script.contains("begin df") {
        section("df", &df(&now), "", 0);
    }
    if script.contains("docker ps") || script.contains("docker stats") {
        if profile.troubled {
            section("docker_ps", DOCKER_PS, "", 0);
            section("docker_stats", DOCKER_STATS, "", 0);
        } else {
            section("docker_ps", &without_trouble(DOCKER_PS, "Names"), "", 0);
            section(
                "docker_stats",
                &without_trouble(DOCKER_STATS, "Name"),
                "",
                0,
            );
        }
    } else if script.contains("begin docker_ps") {
        // A script for a host without an engine reports that itself; echo its verdict.
        section("docker_ps", "", "docker: command not found\n", 127);
    }
    Answer {
        stdout: out,
        stderr: err,
        exit_status: 0,
    }
}

/// One moment's figures of a host.
struct Figures {
    /// us, sy, wa in percent, to 0.1; idle is what is left of 100.
    us: f64,
    sy: f64,
    wa: f64,
    load: [f64; 3],
    mem_total: u64,
    mem_used: u64,
    buff_cache: u64,
    shared: u64,
    swap_total: u64,
    swap_used: u64,
    disk_kib: u64,
    disk_used_kib: u64,
}

impl Figures {
    fn of(p: &Profile, t: f64) -> Self {
        let tenth = |x: f64| (x * 10.0).round() / 10.0;
        let busy = p.cpu.at(t);
        let sy = tenth(busy * 0.22);
        let wa = tenth((busy * 0.02).min(1.5));
        let us = tenth((busy - sy - wa).max(0.0));
        // Load follows CPU on the capture machine's 2 cores, the older averages lagging.
        let cores = busy / 100.0 * 2.0;
        let load = [
            cores,
            p.cpu.at(t - 300.0) / 100.0 * 2.0,
            p.cpu.at(t - 900.0) / 100.0 * 2.0,
        ];
        let frac = |pct: f64, of: u64| (of as f64 * pct / 100.0) as u64;
        let mem_used = frac(p.memory.at(t), p.mem_total);
        let buff_cache = (p.mem_total - mem_used) / 3;
        Self {
            us,
            sy,
            wa,
            load,
            mem_total: p.mem_total,
            mem_used,
            buff_cache,
            shared: p.mem_total / 400,
            swap_total: p.swap_total,
            swap_used: p.swap_total / 50,
            disk_kib: p.disk_kib,
            disk_used_kib: frac(p.disk.at(t), p.disk_kib - p.disk_kib / 20),
        }
    }

    fn mem_free(&self) -> u64 {
        self.mem_total - self.mem_used - self.buff_cache
    }

    fn mem_available(&self) -> u64 {
        self.mem_free() + self.buff_cache * 9 / 10
    }
}

/// `line` with the figures at the token indexes `new` gives put in their place, each ending
/// in the column the old one ended in (procps and coreutils right-align their columns); a
/// longer figure takes spaces from before it, keeping one. A token is a number that starts
/// the line or follows a space or a comma (so `loop0` and `05:17:55`'s minutes are not).
fn refill(line: &str, new: impl Fn(usize) -> Option<String>) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len() + 8);
    let (mut from, mut i, mut k) = (0, 0, 0);
    while i < b.len() {
        if !token_at(b, i) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'.') {
            end += 1;
        }
        if let Some(v) = new(k) {
            let gap = &line[from..i];
            let kept = gap.trim_end_matches(' ');
            let had_space = kept.len() < gap.len();
            let width = end - from;
            let spaces = width
                .saturating_sub(kept.len() + v.len())
                .max(usize::from(had_space));
            out.push_str(kept);
            out.extend(std::iter::repeat_n(' ', spaces));
            out.push_str(&v);
        } else {
            out.push_str(&line[from..end]);
        }
        from = end;
        i = end;
        k += 1;
    }
    out.push_str(&line[from..]);
    out
}

/// Whether a [`refill`] token starts at byte `i`.
fn token_at(b: &[u8], i: usize) -> bool {
    b[i].is_ascii_digit() && (i == 0 || matches!(b[i - 1], b' ' | b','))
}

/// How many tokens [`refill`] sees in `line`.
fn tokens(line: &str) -> usize {
    let b = line.as_bytes();
    (0..b.len()).filter(|&i| token_at(b, i)).count()
}

fn lines_refilled(text: &str, each: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        out.push_str(&each(line));
        out.push('\n');
    }
    out
}

fn top(f: &Figures) -> String {
    let mib = |b: u64| format!("{:.1}", b as f64 / 1_048_576.0);
    lines_refilled(&TOP_FILTERED, |line| {
        if line.starts_with("top - ") {
            // The load averages are the last three tokens, whatever the uptime's shape.
            let n = tokens(line);
            refill(line, |k| {
                (k + 3 >= n).then(|| format!("{:.2}", f.load[k + 3 - n]))
            })
        } else if line.starts_with("%Cpu(s):") {
            let id = ((100.0 - f.us - f.sy - f.wa) * 10.0).round() / 10.0;
            let v = [f.us, f.sy, 0.0, id, f.wa, 0.0, 0.0, 0.0];
            refill(line, |k| v.get(k).map(|x| format!("{x:.1}")))
        } else if line.starts_with("MiB Mem :") {
            let v = [f.mem_total, f.mem_free(), f.mem_used, f.buff_cache];
            refill(line, |k| v.get(k).map(|x| mib(*x)))
        } else if line.starts_with("MiB Swap:") {
            let v = [
                f.swap_total,
                f.swap_total - f.swap_used,
                f.swap_used,
                f.mem_available(),
            ];
            refill(line, |k| v.get(k).map(|x| mib(*x)))
        } else {
            line.to_string()
        }
    })
}

fn free(f: &Figures) -> String {
    let text = if f.swap_total > 0 { FREE_SWAP } else { FREE };
    lines_refilled(text, |line| {
        if line.starts_with("Mem:") {
            let v = [
                f.mem_total,
                f.mem_used,
                f.mem_free(),
                f.shared,
                f.buff_cache,
                f.mem_available(),
            ];
            refill(line, |k| v.get(k).map(u64::to_string))
        } else if line.starts_with("Swap:") {
            let v = [f.swap_total, f.swap_used, f.swap_total - f.swap_used];
            refill(line, |k| v.get(k).map(u64::to_string))
        } else {
            line.to_string()
        }
    })
}

fn df(f: &Figures) -> String {
    lines_refilled(DF, |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mount = fields.last().copied().unwrap_or("");
        // ext4 keeps 5% for root: what df shows as neither used nor available.
        let (size, used, reserved) = if mount == "/" {
            (f.disk_kib, f.disk_used_kib, f.disk_kib / 20)
        } else if fields.first().is_some_and(|d| d.ends_with("tmpfs")) {
            // tmpfs and devtmpfs are sized from memory, as the kernel does.
            (f.mem_total / 2048, 0, 0)
        } else {
            return line.to_string();
        };
        let avail = (size - reserved).saturating_sub(used);
        let pct = (used * 100).div_ceil((used + avail).max(1));
        let v = [
            size.to_string(),
            used.to_string(),
            avail.to_string(),
            pct.to_string(),
        ];
        refill(line, |k| v.get(k).cloned())
    })
}

/// The captured containers that raise alerts (one unhealthy, one exited with 3) left out:
/// most hosts of a fleet have no broken container.
const TROUBLE: [&str; 2] = ["sick", "gone"];

fn without_trouble(lines: &str, key: &str) -> String {
    lines
        .lines()
        .filter(|l| {
            !TROUBLE
                .iter()
                .any(|n| l.contains(&format!("\"{key}\":\"{n}\"")))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The poll script's awk filter: `/^ *PID / { skip = 1 } /^top - / || /^Mem: / { skip = 0 }`.
fn drop_process_rows(top: &str) -> String {
    let mut skip = false;
    let mut kept = String::with_capacity(top.len() / 4);
    for line in top.lines() {
        if line.trim_start().starts_with("PID ") {
            skip = true;
            continue;
        }
        if line.starts_with("top - ") || line.starts_with("Mem: ") {
            skip = false;
        }
        if !skip {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::assemble;
    use crate::probe::{poll_script, Platform, PROBE_SCRIPT};
    use crate::ssh::CommandOutput;

    fn run(script: &str, profile: &Profile, t: f64) -> CommandOutput {
        let a = answer(script, profile, t);
        CommandOutput {
            stdout: a.stdout.into_bytes(),
            stderr: a.stderr.into_bytes(),
            exit_status: Some(a.exit_status),
            truncated: false,
        }
    }

    #[test]
    fn probe_answer_reads_as_procps_with_direct_docker() {
        let out = run(PROBE_SCRIPT, &Profile::of(0), 0.0);
        let p = Platform::read(&String::from_utf8_lossy(&out.stdout));
        assert!(p.free_in_bytes());
        let e = p.engine.expect("engine");
        assert_eq!((e.kind.as_str(), e.access.as_str()), ("docker", "direct"));
        assert_eq!(p.cpus, Some(2));
    }

    /// A moment of the demo's first hour, in seconds of the epoch.
    const T0: f64 = 1_796_000_000.0;

    #[test]
    fn every_host_assembles_without_problems_at_any_moment() {
        let platform = Platform::read(PROBE_OUTPUT);
        let script = poll_script(Some(&platform));
        for index in 0..40 {
            let p = Profile::of(index);
            for step in 0..12 {
                let t = T0 + f64::from(step) * 317.0;
                let snap = assemble(&run(&script, &p, t), true).expect("snapshot");
                assert!(
                    snap.problems.is_empty(),
                    "host {index} at {t}: {:?}",
                    snap.problems
                );
                // free -b wins over top: exactly the profile's memory.
                assert_eq!(snap.server.mem_total_bytes, Some(p.mem_total));
                assert_eq!(snap.containers.len(), p.containers());
                let root = snap.disks.iter().find(|d| d.mount == "/").expect("root");
                assert_eq!(root.total_bytes, Some(p.disk_kib * 1024));
                let cpu = snap.server.cpu_busy_percent.expect("cpu");
                assert!((0.0..=100.0).contains(&cpu), "{cpu}");
            }
        }
    }

    #[test]
    fn hosts_differ_and_drift_smoothly() {
        let script = poll_script(Some(&Platform::read(PROBE_OUTPUT)));
        let cpu = |index: usize, t: f64| {
            assemble(&run(&script, &Profile::of(index), t), true)
                .expect("snapshot")
                .server
                .cpu_busy_percent
                .expect("cpu")
        };
        let fleet: std::collections::HashSet<String> =
            (0..20).map(|i| format!("{:.1}", cpu(i, T0))).collect();
        assert!(fleet.len() >= 15, "hosts differ: {fleet:?}");
        // Ten seconds apart (a demo interval) a quiet host moves a little, not across a band.
        for i in [0, 1, 3, 4] {
            let (a, b) = (cpu(i, T0), cpu(i, T0 + 10.0));
            assert!((a - b).abs() < 5.0, "host {i}: {a} then {b}");
        }
        // Over half an hour it does move.
        let over: std::collections::HashSet<String> = (0..6)
            .map(|k| format!("{:.1}", cpu(0, T0 + f64::from(k) * 300.0)))
            .collect();
        assert!(over.len() >= 4, "{over:?}");
    }

    #[test]
    fn a_few_hosts_run_hot_and_one_disk_fills_past_critical_for_a_while() {
        let t = crate::model::Thresholds::default();
        let script = poll_script(Some(&Platform::read(PROBE_OUTPUT)));
        let snap = |index: usize, at: f64| {
            assemble(&run(&script, &Profile::of(index), at), true).expect("snapshot")
        };
        let hot = (0..50)
            .filter(|&i| snap(i, T0).server.cpu_busy_percent >= Some(t.cpu_warning_percent - 5.0))
            .count();
        assert!(
            (2..=6).contains(&hot),
            "{hot} of 50 hosts near the CPU warning line"
        );
        let root = |at: f64| {
            snap(2, at)
                .disks
                .iter()
                .find(|d| d.mount == "/")
                .and_then(|d| d.use_percent)
                .expect("root use")
        };
        let hour: Vec<f64> = (0..12).map(|k| root(T0 + f64::from(k) * 300.0)).collect();
        assert!(
            hour.iter().any(|&u| u >= t.disk_critical_percent),
            "{hour:?}"
        );
        assert!(
            hour.iter().any(|&u| u < t.disk_critical_percent),
            "{hour:?}"
        );
    }

    #[test]
    fn figures_keep_the_captures_columns() {
        let f = Figures::of(&Profile::of(5), T0);
        let made = free(&f);
        let captured: Vec<usize> = FREE.lines().map(str::len).collect();
        let widths: Vec<usize> = made.lines().map(str::len).collect();
        assert_eq!(widths, captured, "{made}");
        let made = df(&f);
        for (a, b) in DF.lines().zip(made.lines()) {
            assert_eq!(a.len(), b.len(), "{a}\n{b}");
        }
        let made = top(&f);
        let line = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("%Cpu(s):"))
                .map(str::len)
                .expect("cpu line")
        };
        assert_eq!(line(&made), line(TOP), "{made}");
        assert_eq!(
            refill("Mem:   10 200", |k| (k == 0).then(|| "12345".into())),
            "Mem: 12345 200"
        );
    }

    #[test]
    fn the_default_script_gets_docker_sections_too() {
        let snap =
            assemble(&run(&poll_script(None), &Profile::of(3), 0.0), true).expect("snapshot");
        assert!(snap.problems.is_empty(), "{:?}", snap.problems);
        assert_eq!(
            snap.containers.len(),
            8,
            "host 3 runs the troubled containers too"
        );
        let snap =
            assemble(&run(&poll_script(None), &Profile::of(4), 0.0), true).expect("snapshot");
        assert_eq!(snap.containers.len(), 6);
        assert!(snap
            .containers
            .iter()
            .all(|c| c.name != "sick" && c.name != "gone"));
    }

    #[test]
    fn process_rows_are_dropped_like_the_awk_filter_does() {
        let top = &*TOP_FILTERED;
        assert!(!top.contains(" PID "));
        assert!(!top.contains("rustc"));
        assert_eq!(top.matches("top - ").count(), 2);
    }

    #[test]
    fn other_scripts_and_commands_exit_127() {
        assert_eq!(answer("echo hi\n", &Profile::of(0), 0.0).exit_status, 127);
        let a = not_found("uptime -p");
        assert_eq!(a.exit_status, 127);
        assert_eq!(a.stderr, "sh: 1: uptime: not found\n");
    }
}
