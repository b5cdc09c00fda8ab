//! What a simulated host prints: the probe's `key=value` lines and the poll script's framed
//! sections, built from real captures in `fixtures/` (embedded at compile time). Pure: no I/O,
//! no async; the host module decides when to send it.
//!
//! Every simulated host is the machine the captures were taken on (Debian 12, procps-ng
//! 4.0.2, coreutils 9.1, docker 28.2 reachable directly). Polls rotate through several real
//! two-frame `top` and `free -b` captures of that machine, each host starting at a different point of
//! the rotation, so CPU and memory charts move while every value still comes from a capture.

use std::sync::LazyLock;

/// Real `top -b -n 2 -d 1` captures of the same machine (procps-ng 4.0.2, `LC_ALL=C`, default
/// toprc), at rest, lightly loaded, with one core busy and while compiling: what a host answers
/// to the poll's own `top` command. The one-frame captures in `fixtures/top/` are left out:
/// a first frame's CPU figure is since boot or a few ticks (often 0 or 100%), which the
/// poller never reads, and a demo fleet built on them looked critical throughout.
const TOP: &[&str] = &[
    include_str!("../../fixtures/top/procps-ng-4.0.2-two-frames.txt"),
    include_str!("../../fixtures/top/procps-ng-4.0.2-two-frames-idle.txt"),
    include_str!("../../fixtures/top/procps-ng-4.0.2-two-frames-light-load.txt"),
    include_str!("../../fixtures/top/procps-ng-4.0.2-two-frames-one-core-busy.txt"),
];

/// Real `free -b` captures of the same machine (same total, different use and swap).
const FREE: &[&str] = &[
    include_str!("../../fixtures/free/procps-ng-4.0.2-b.txt"),
    include_str!("../../fixtures/free/procps-ng-4.0.2-b-with-swap.txt"),
];

/// Real `df -kP` captures of the same machine (one with pseudo filesystems listed).
const DF: &[&str] = &[
    include_str!("../../fixtures/df/coreutils-9.1-kP.txt"),
    include_str!("../../fixtures/df/coreutils-9.1-kP-pseudo.txt"),
];

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

/// The `top` captures as the poll script's awk filter leaves them: process rows dropped.
static TOP_FILTERED: LazyLock<Vec<String>> =
    LazyLock::new(|| TOP.iter().map(|t| drop_process_rows(t)).collect());

/// How many different outputs the rotation goes through before it repeats.
pub fn rotation_len() -> usize {
    TOP.len()
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

/// The answer to `sh -s` fed `script`; `turn` picks the captures (the host's poll count
/// plus its index).
pub fn answer(script: &str, turn: usize) -> Answer {
    match Script::recognise(script) {
        Script::Probe => Answer {
            stdout: PROBE_OUTPUT.to_string(),
            stderr: String::new(),
            exit_status: 0,
        },
        Script::Poll => poll_answer(script, turn),
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

fn poll_answer(script: &str, turn: usize) -> Answer {
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
    if script.contains("begin top") {
        section("top", &TOP_FILTERED[turn % TOP_FILTERED.len()], "", 0);
    }
    if script.contains("begin free") {
        section("free", FREE[turn % FREE.len()], "", 0);
    }
    if script.contains("begin df") {
        section("df", DF[turn % DF.len()], "", 0);
    }
    if script.contains("docker ps") || script.contains("docker stats") {
        section("docker_ps", DOCKER_PS, "", 0);
        section("docker_stats", DOCKER_STATS, "", 0);
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

    fn run(script: &str, turn: usize) -> CommandOutput {
        let a = answer(script, turn);
        CommandOutput {
            stdout: a.stdout.into_bytes(),
            stderr: a.stderr.into_bytes(),
            exit_status: Some(a.exit_status),
            truncated: false,
        }
    }

    #[test]
    fn probe_answer_reads_as_procps_with_direct_docker() {
        let out = run(PROBE_SCRIPT, 0);
        let p = Platform::read(&String::from_utf8_lossy(&out.stdout));
        assert!(p.free_in_bytes());
        let e = p.engine.expect("engine");
        assert_eq!((e.kind.as_str(), e.access.as_str()), ("docker", "direct"));
        assert_eq!(p.cpus, Some(2));
    }

    #[test]
    fn every_turn_of_the_rotation_assembles_without_problems() {
        let platform = Platform::read(PROBE_OUTPUT);
        let script = poll_script(Some(&platform));
        for turn in 0..rotation_len() * 2 {
            let snap = assemble(&run(&script, turn), true).expect("snapshot");
            assert!(snap.problems.is_empty(), "turn {turn}: {:?}", snap.problems);
            // free -b wins over top: always the captured machine's exact total.
            assert_eq!(snap.server.mem_total_bytes, Some(25_276_514_304));
            assert_eq!(snap.containers.len(), 8);
            assert!(snap.disks.iter().any(|d| d.mount == "/"));
        }
    }

    #[test]
    fn cpu_moves_between_turns() {
        let script = poll_script(Some(&Platform::read(PROBE_OUTPUT)));
        let cpus: std::collections::HashSet<String> = (0..rotation_len())
            .map(|t| {
                let s = assemble(&run(&script, t), true).expect("snapshot");
                format!("{:?}", s.server.cpu_busy_percent)
            })
            .collect();
        assert!(cpus.len() >= 3, "{cpus:?}");
    }

    #[test]
    fn the_default_script_gets_docker_sections_too() {
        let snap = assemble(&run(&poll_script(None), 3), true).expect("snapshot");
        assert!(snap.problems.is_empty(), "{:?}", snap.problems);
        assert_eq!(snap.containers.len(), 8);
    }

    #[test]
    fn process_rows_are_dropped_like_the_awk_filter_does() {
        let top = &TOP_FILTERED[0];
        assert!(!top.contains(" PID "));
        assert!(!top.contains("rustc"));
        assert_eq!(top.matches("top - ").count(), 2);
    }

    #[test]
    fn other_scripts_and_commands_exit_127() {
        assert_eq!(answer("echo hi\n", 0).exit_status, 127);
        let a = not_found("uptime -p");
        assert_eq!(a.exit_status, 127);
        assert_eq!(a.stderr, "sh: 1: uptime: not found\n");
    }
}
