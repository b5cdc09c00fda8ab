//! The pure half of a poll: the script's raw output in, a [`Snapshot`] out. Splits the output
//! into its marked sections, runs each section's parser, and maps the reports into stored
//! rows. A section that fails becomes a [`SectionProblem`] while the others are still used.
//! No I/O, no sessions, no clock but the snapshot's timestamp.

use std::collections::HashMap;

use chrono::Utc;

use super::PollError;
use crate::model::{
    ContainerSample, DiskSample, DockerState, ProblemCause, SectionProblem, ServerSample, Snapshot,
};
use crate::parse::{self, ParseError};
use crate::ssh::CommandOutput;
use crate::text;

/// One section of the script's output.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Section {
    pub stdout: String,
    pub stderr: String,
    pub exit_status: Option<i32>,
}

/// Splits the script's output into sections by their markers. A marker that follows
/// output without a trailing newline still starts at its `@@`.
pub fn split_sections(stdout: &str, stderr: &str) -> HashMap<String, Section> {
    let mut sections: HashMap<String, Section> = HashMap::new();
    let mut current: Option<String> = None;
    for raw in stdout.lines() {
        let (content, marker) = match marker_at(raw) {
            Some(i) => (&raw[..i], Some(&raw[i..])),
            None => (raw, None),
        };
        if let (Some(name), false) = (&current, content.is_empty() && marker.is_some()) {
            let s = sections.entry(name.clone()).or_default();
            s.stdout.push_str(content);
            s.stdout.push('\n');
        }
        let Some(marker) = marker else { continue };
        let mut words = marker.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("@@fleetpoll-begin"), Some(name), _) => {
                sections.entry(name.to_string()).or_default();
                current = Some(name.to_string());
            }
            (Some("@@fleetpoll-end"), Some(name), code) => {
                let s = sections.entry(name.to_string()).or_default();
                s.exit_status = code.and_then(|c| c.parse().ok());
                current = None;
            }
            _ => {}
        }
    }
    let mut current: Option<String> = None;
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("@@fleetpoll-begin ") {
            current = Some(rest.trim().to_string());
            continue;
        }
        if let Some(name) = &current {
            let s = sections.entry(name.clone()).or_default();
            s.stderr.push_str(line);
            s.stderr.push('\n');
        }
    }
    sections
}

/// Where a section marker starts in `line`: at the start, or glued to output that lacked a
/// final newline. Only a whole marker counts, so text that merely mentions `@@fleetpoll-`
/// (a process row showing our own command line) is content.
fn marker_at(line: &str) -> Option<usize> {
    let i = line.rfind("@@fleetpoll-")?;
    let mut words = line[i..].split(' ');
    let whole = match (words.next(), words.next(), words.next(), words.next()) {
        (Some("@@fleetpoll-begin"), Some(name), None, None) => is_section_name(name),
        (Some("@@fleetpoll-end"), Some(name), Some(code), None) => {
            is_section_name(name) && code.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    whole.then_some(i)
}

fn is_section_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// Turns the script's raw output into a snapshot, or an error when nothing usable came back.
pub fn assemble(out: &CommandOutput, free_in_bytes: bool) -> Result<Snapshot, PollError> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sections = split_sections(&stdout, &stderr);
    let mut problems = Vec::new();
    let mut server = ServerSample::default();
    let mut got_any = false;

    let section = |name: &str, problems: &mut Vec<SectionProblem>| -> Option<&Section> {
        let s = sections.get(name);
        if s.is_none() {
            problems.push(SectionProblem {
                section: name.into(),
                cause: ProblemCause::Missing {
                    script_exit_status: out.exit_status,
                },
            });
        }
        s
    };

    if let Some(s) = section("top", &mut problems) {
        match parse::top::parse(&s.stdout) {
            Ok(t) => {
                got_any = true;
                server.cpu_busy_percent = t.cpu_busy_percent;
                server.cpu_user_percent = t.cpu.us;
                server.cpu_system_percent = t.cpu.sy;
                server.cpu_iowait_percent = t.cpu.wa;
                server.cpu_steal_percent = t.cpu.st;
                server.load1 = t.load1;
                server.load5 = t.load5;
                server.load15 = t.load15;
                server.uptime_seconds = t.uptime_seconds;
                server.tasks_total = t.tasks_total;
                server.mem_total_bytes = t.mem_total_bytes;
                server.mem_used_bytes = t.mem_used_bytes;
                server.mem_free_bytes = t.mem_free_bytes;
                server.mem_available_bytes = t.mem_available_bytes;
                server.swap_total_bytes = t.swap_total_bytes;
                server.swap_used_bytes = t.swap_used_bytes;
            }
            Err(e) => problems.push(problem("top", s, e)),
        }
    }
    if let Some(s) = section("free", &mut problems) {
        let free = if free_in_bytes {
            parse::free::parse_bytes(&s.stdout)
        } else {
            parse::free::parse(&s.stdout)
        };
        match free {
            // free -b is exact to the byte where top rounds to 0.1 MiB: it wins.
            Ok(f) => {
                got_any = true;
                server.mem_total_bytes = f.mem_total_bytes.or(server.mem_total_bytes);
                server.mem_used_bytes = f.mem_used_bytes.or(server.mem_used_bytes);
                server.mem_free_bytes = f.mem_free_bytes.or(server.mem_free_bytes);
                server.mem_available_bytes = f.mem_available_bytes.or(server.mem_available_bytes);
                server.swap_total_bytes = f.swap_total_bytes.or(server.swap_total_bytes);
                server.swap_used_bytes = f.swap_used_bytes.or(server.swap_used_bytes);
            }
            Err(e) => problems.push(problem("free", s, e)),
        }
    }
    let mut disks = Vec::new();
    if let Some(s) = section("df", &mut problems) {
        match parse::df::parse(&s.stdout) {
            Ok(d) => {
                got_any = true;
                // df lists a filesystem mounted twice (bind mounts) twice; keep the first.
                let mut seen = std::collections::HashSet::new();
                for r in d.rows {
                    if is_storage(&r.filesystem, &r.mount, r.total_bytes)
                        && seen.insert(r.mount.clone())
                    {
                        disks.push(DiskSample {
                            filesystem: host_text(&r.filesystem),
                            mount: host_text(&r.mount),
                            total_bytes: r.total_bytes,
                            used_bytes: r.used_bytes,
                            available_bytes: r.available_bytes,
                            use_percent: r.use_percent,
                        });
                    }
                }
            }
            Err(e) => problems.push(problem("df", s, e)),
        }
    }

    let (containers, docker) = containers(&sections, &mut problems);

    if !got_any {
        return Err(PollError::NothingUsable { problems });
    }
    let mut snapshot = Snapshot {
        taken_at: Utc::now(),
        server,
        disks,
        containers,
        docker,
        problems,
    };
    let implausible = clamp_implausible(&mut snapshot);
    if !implausible.is_empty() {
        snapshot.problems.push(SectionProblem {
            section: "values".into(),
            cause: ProblemCause::Implausible(text::clip_owned(
                implausible.join(", "),
                text::MAX_FIELD_TEXT,
            )),
        });
    }
    Ok(snapshot)
}

/// Clamps values no machine can have (a disk 500% full, a load of 1e20, more memory used
/// than there is) to the possible range, and says which: a broken or hostile host must not
/// skew charts, averages and alerts, and the sample is flagged rather than silently fixed.
fn clamp_implausible(s: &mut Snapshot) -> Vec<String> {
    let mut said = Vec::new();
    let mut pct = |what: String, v: &mut Option<f64>, max: f64| {
        if let Some(x) = *v {
            let kept = if x.is_nan() { 0.0 } else { x.clamp(0.0, max) };
            if kept != x {
                said.push(format!("{what} {x} (kept {kept})"));
                *v = Some(kept);
            }
        }
    };
    let m = &mut s.server;
    for (name, v) in [
        ("cpu_busy_percent", &mut m.cpu_busy_percent),
        ("cpu_user_percent", &mut m.cpu_user_percent),
        ("cpu_system_percent", &mut m.cpu_system_percent),
        ("cpu_iowait_percent", &mut m.cpu_iowait_percent),
        ("cpu_steal_percent", &mut m.cpu_steal_percent),
    ] {
        pct(name.to_string(), v, 100.0);
    }
    // A million runnable tasks per CPU-minute is already far past any real machine.
    for (name, v) in [
        ("load1", &mut m.load1),
        ("load5", &mut m.load5),
        ("load15", &mut m.load15),
    ] {
        pct(name.to_string(), v, 1e6);
    }
    for d in &mut s.disks {
        pct(
            format!("disk {} use_percent", d.mount),
            &mut d.use_percent,
            100.0,
        );
    }
    // Docker's CPU% is of one CPU: 100 per core, and no machine has 4,096 cores here.
    for c in &mut s.containers {
        pct(
            format!("container {} cpu_percent", c.name),
            &mut c.cpu_percent,
            409_600.0,
        );
        pct(
            format!("container {} mem_percent", c.name),
            &mut c.mem_percent,
            100.0,
        );
    }
    let mut at_most = |what: &str, v: &mut Option<u64>, max: Option<u64>| {
        if let (Some(x), Some(max)) = (*v, max) {
            if x > max {
                said.push(format!("{what} {x} (kept {max})"));
                *v = Some(max);
            }
        }
    };
    let total = m.mem_total_bytes;
    at_most("mem_used_bytes", &mut m.mem_used_bytes, total);
    at_most("mem_free_bytes", &mut m.mem_free_bytes, total);
    at_most("mem_available_bytes", &mut m.mem_available_bytes, total);
    let swap = m.swap_total_bytes;
    at_most("swap_used_bytes", &mut m.swap_used_bytes, swap);
    // A century of uptime.
    at_most("uptime_seconds", &mut m.uptime_seconds, Some(3_155_760_000));
    for d in &mut s.disks {
        let total = d.total_bytes;
        at_most(
            &format!("disk {} used_bytes", d.mount),
            &mut d.used_bytes,
            total,
        );
        at_most(
            &format!("disk {} available_bytes", d.mount),
            &mut d.available_bytes,
            total,
        );
    }
    said
}

/// Filesystems that hold data. RAM-backed and pseudo filesystems, container engines'
/// internal mounts (each a view of the root filesystem) and snap images (read-only squashfs,
/// always 100% full) would only add noise and false "disk full" alarms.
pub fn is_storage(filesystem: &str, mount: &str, total_bytes: Option<u64>) -> bool {
    const PSEUDO: &[&str] = &[
        "tmpfs", "devtmpfs", "udev", "none", "overlay", "shm", "proc", "sysfs", "cgroup",
        "cgroup2", "efivarfs", "squashfs", "devfs", "run",
    ];
    const INTERNAL: &[&str] = &[
        "/var/lib/docker/",
        "/var/lib/containers/",
        "/run/docker/",
        "/run/containerd/",
        "/var/lib/kubelet/",
        "/run/k3s/",
        "/snap/",
        "/var/snap/",
    ];
    total_bytes.is_some_and(|t| t > 0)
        && !PSEUDO.contains(&filesystem)
        && !INTERNAL.iter().any(|p| mount.starts_with(p))
}

/// A section that did not parse: the command's own failure when it exited non-zero (its
/// error text is the reason), our reading when it succeeded.
fn problem(name: &str, s: &Section, mut parse_error: ParseError) -> SectionProblem {
    let cause = match s.exit_status {
        Some(0) => {
            parse_error.line = host_text(&parse_error.line);
            ProblemCause::Unreadable(parse_error)
        }
        status => {
            let err = first_line(s.stderr.trim());
            ProblemCause::Exited {
                status,
                error_line: if err.is_empty() {
                    "no error output".into()
                } else {
                    host_text(err)
                },
            }
        }
    };
    SectionProblem {
        section: name.into(),
        cause,
    }
}

/// A string the host printed, bounded before it becomes part of a row or an entry.
fn host_text(s: &str) -> String {
    text::clip(s, text::MAX_FIELD_TEXT).into_owned()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn containers(
    sections: &HashMap<String, Section>,
    problems: &mut Vec<SectionProblem>,
) -> (Vec<ContainerSample>, DockerState) {
    let Some(ps) = sections.get("docker_ps") else {
        return (Vec::new(), DockerState::Failed("no docker output".into()));
    };
    match ps.exit_status {
        Some(0) => {}
        Some(127) => return (Vec::new(), DockerState::Missing),
        _ => {
            let err = host_text(first_line(ps.stderr.trim()));
            let lower = err.to_ascii_lowercase();
            return (
                Vec::new(),
                if lower.contains("permission denied") || lower.contains("not permitted") {
                    DockerState::Denied(err)
                } else {
                    DockerState::Failed(if err.is_empty() {
                        "no error output".into()
                    } else {
                        err
                    })
                },
            );
        }
    }
    let states = match parse::docker_ps::parse(&ps.stdout) {
        Ok(r) => r.containers,
        Err(e) => {
            problems.push(problem("docker_ps", ps, e));
            return (Vec::new(), DockerState::Available);
        }
    };
    // The stats parser leaves `id` or `name` null when its table had no such column (a custom
    // `--format 'table {{.Name}}...'`, Docker 1.5-17.x tables without NAME), while every
    // `docker ps` row has both; the `ContainerSample` keeps docker ps's id and name. So a stats
    // row is matched by its id when it has one and by its name otherwise; an old table's
    // CONTAINER column holds the name when names were typed on the command line, so an id that
    // matches no container id is tried as a name too. A row with neither cannot be matched: it
    // is reported as a section problem instead of being stored under an empty name.
    let mut stats_by_id = HashMap::new();
    let mut stats_by_name = HashMap::new();
    if let Some(s) = sections.get("docker_stats") {
        match parse::docker_stats::parse(&s.stdout) {
            Ok(r) => {
                for (row, c) in r.containers.into_iter().enumerate() {
                    match (c.id.clone(), c.name.clone()) {
                        (Some(id), _) => {
                            stats_by_id.insert(short_id(&id).to_string(), c);
                        }
                        (None, Some(name)) => {
                            stats_by_name.insert(name, c);
                        }
                        (None, None) => problems.push(SectionProblem {
                            section: "docker_stats".into(),
                            cause: ProblemCause::Unreadable(ParseError {
                                command: "docker stats",
                                line_no: 0,
                                line: String::new(),
                                expected: format!(
                                    "a container ID or name in row {}, to match it to a container",
                                    row + 1
                                ),
                            }),
                        }),
                    }
                }
            }
            Err(e) => problems.push(problem("docker_stats", s, e)),
        }
    }
    let rows = states
        .into_iter()
        .map(|st| {
            let name = st.name.as_deref();
            let usage = stats_by_id
                .remove(short_id(&st.id))
                .or_else(|| name.and_then(|n| stats_by_name.remove(n)))
                .or_else(|| name.and_then(|n| stats_by_id.remove(n)));
            ContainerSample {
                container_id: host_text(short_id(&st.id)),
                // A row is named; without `Names` (a custom format) the id is the name Docker
                // itself accepts for the container.
                name: host_text(name.unwrap_or_else(|| short_id(&st.id))),
                image: st.image.as_deref().map(host_text),
                state: host_text(&st.state),
                status_text: host_text(&st.status),
                exit_code: st.exit_code,
                health: st.health.as_deref().map(host_text),
                cpu_percent: usage.as_ref().and_then(|u| u.cpu_percent),
                cpu_time_seconds: usage.as_ref().and_then(|u| u.cpu_time_seconds),
                mem_used_bytes: usage.as_ref().and_then(|u| u.mem_used_bytes),
                mem_limit_bytes: usage.as_ref().and_then(|u| u.mem_limit_bytes),
                mem_percent: usage.as_ref().and_then(|u| u.mem_percent),
                net_rx_bytes: usage.as_ref().and_then(|u| u.net_rx_bytes),
                net_tx_bytes: usage.as_ref().and_then(|u| u.net_tx_bytes),
                block_read_bytes: usage.as_ref().and_then(|u| u.block_read_bytes),
                block_write_bytes: usage.as_ref().and_then(|u| u.block_write_bytes),
                pids: usage.as_ref().and_then(|u| u.pids),
            }
        })
        .collect();
    (rows, DockerState::Available)
}

/// Docker prints 12-character ids by default and 64 with `--no-trunc`; compare on 12.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_on_markers_even_without_trailing_newline() {
        let out = "@@fleetpoll-begin a\nx 1\ny@@fleetpoll-end a 0\n@@fleetpoll-begin b\n@@fleetpoll-end b 2\n";
        let err = "@@fleetpoll-begin a\n@@fleetpoll-begin b\nboom\n";
        let s = split_sections(out, err);
        assert_eq!(s["a"].stdout, "x 1\ny\n");
        assert_eq!(s["a"].exit_status, Some(0));
        assert_eq!(s["b"].stdout, "");
        assert_eq!(s["b"].exit_status, Some(2));
        assert_eq!(s["b"].stderr, "boom\n");
    }

    #[test]
    fn text_mentioning_a_marker_is_content_not_a_marker() {
        let out = "@@fleetpoll-begin top\n 42 root awk '/^@@fleetpoll-/ { print }'\n@@fleetpoll-end top 0\n";
        let s = split_sections(out, "");
        assert!(s["top"].stdout.contains("awk"), "{:?}", s["top"]);
        assert_eq!(s["top"].exit_status, Some(0));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn missing_docker_is_not_a_failure() {
        let out = "@@fleetpoll-begin docker_ps\n@@fleetpoll-end docker_ps 127\n";
        let s = split_sections(
            out,
            "@@fleetpoll-begin docker_ps\ndocker: command not found\n",
        );
        let mut problems = Vec::new();
        let (rows, state) = containers(&s, &mut problems);
        assert!(rows.is_empty());
        assert_eq!(state, DockerState::Missing);
        assert!(problems.is_empty());
    }

    #[test]
    fn stats_without_an_id_column_match_containers_by_name() {
        // Issue #18: a custom `--format 'table {{.Name}}...'` table has no ID column; its rows
        // used to carry `id: ""` and match nothing.
        let ps = include_str!("../../fixtures/docker_ps/docker-28.2-json-all.txt");
        let stats =
            include_str!("../../fixtures/docker_stats/docker-28.2-custom-table-name-cpu-mem.txt");
        let out = format!(
            "@@fleetpoll-begin docker_ps\n{ps}@@fleetpoll-end docker_ps 0\n\
             @@fleetpoll-begin docker_stats\n{stats}@@fleetpoll-end docker_stats 0\n"
        );
        let mut problems = Vec::new();
        let (rows, _) = containers(&split_sections(&out, ""), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let busy = rows.iter().find(|r| r.name == "busy").expect("busy");
        assert_eq!(busy.cpu_percent, Some(51.01));
        assert_eq!(busy.container_id.len(), 12, "the id comes from docker ps");
        let fresh = rows.iter().find(|r| r.name == "fresh").expect("fresh");
        assert_eq!(fresh.cpu_percent, None, "not in the stats table");
    }

    #[test]
    fn a_container_without_a_name_is_stored_under_its_id() {
        let line = include_str!("../../fixtures/docker_ps/docker-28.2-json-all.txt")
            .lines()
            .next()
            .expect("a line");
        let mut v: serde_json::Value = serde_json::from_str(line).expect("captured JSON");
        let id = v["ID"].as_str().expect("ID").to_string();
        v.as_object_mut().expect("object").remove("Names");
        let out = format!("@@fleetpoll-begin docker_ps\n{v}\n@@fleetpoll-end docker_ps 0\n");
        let mut problems = Vec::new();
        let (rows, _) = containers(&split_sections(&out, ""), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, id);
    }

    #[test]
    fn permission_denied_docker_is_denied() {
        let out = "@@fleetpoll-begin docker_ps\n@@fleetpoll-end docker_ps 1\n";
        let err = "@@fleetpoll-begin docker_ps\npermission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock\n";
        let (_, state) = containers(&split_sections(out, err), &mut Vec::new());
        assert!(matches!(state, DockerState::Denied(_)), "{state:?}");
    }

    #[test]
    fn pseudo_and_engine_internal_filesystems_are_not_disks() {
        assert!(is_storage("/dev/vda1", "/", Some(1)));
        assert!(is_storage(
            "/dev/mapper/vg-data",
            "/mnt/fleet data",
            Some(1)
        ));
        assert!(!is_storage("tmpfs", "/run", Some(1)));
        assert!(!is_storage(
            "overlay",
            "/var/lib/docker/overlay2/abc/merged",
            Some(1)
        ));
        assert!(!is_storage("/dev/loop3", "/snap/core22/1033", Some(1)));
        assert!(!is_storage("/dev/sdb1", "/data", Some(0)));
        assert!(!is_storage("/dev/sdb1", "/data", None));
    }

    #[test]
    fn output_with_no_usable_section_is_an_error() {
        let out = crate::ssh::CommandOutput {
            stdout: b"@@fleetpoll-begin top\ngarbage\n@@fleetpoll-end top 0\n".to_vec(),
            ..Default::default()
        };
        let e = assemble(&out, true).expect_err("nothing usable");
        assert_eq!(e.reason(), "parse_failed");
    }

    #[test]
    fn a_failed_command_names_its_status_and_first_error_line() {
        let out = CommandOutput {
            stdout: b"@@fleetpoll-begin top\n@@fleetpoll-end top 0\n@@fleetpoll-begin df\n@@fleetpoll-end df 1\n".to_vec(),
            stderr: b"@@fleetpoll-begin df\ndf: /mnt: Stale file handle\nsecond line\n".to_vec(),
            exit_status: Some(0),
            ..Default::default()
        };
        let e = assemble(&out, true).expect_err("nothing usable");
        let PollError::NothingUsable { problems } = &e else {
            panic!("{e:?}")
        };
        let df = problems
            .iter()
            .find(|p| p.section == "df")
            .expect("df problem");
        assert_eq!(df.kind(), crate::outcome::ProblemKind::CommandFailed);
        assert_eq!(
            df.message(),
            "df exited with status 1: df: /mnt: Stale file handle"
        );
        let top = problems
            .iter()
            .find(|p| p.section == "top")
            .expect("top problem");
        // The parser's error keeps its structure up to here: the line it could not read.
        assert!(
            matches!(&top.cause, ProblemCause::Unreadable(p) if p.command == "top"),
            "{top:?}"
        );
        assert_eq!(e.reason(), crate::outcome::Outcome::ParseFailed);
    }

    #[test]
    fn impossible_values_are_clamped_and_the_sample_flagged() {
        let out = CommandOutput {
            stdout: b"@@fleetpoll-begin df\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda1 100 500 0 500% /\n@@fleetpoll-end df 0\n".to_vec(),
            ..Default::default()
        };
        let snap = assemble(&out, true).expect("df was read");
        assert_eq!(snap.disks[0].use_percent, Some(100.0));
        assert_eq!(snap.disks[0].used_bytes, Some(100 * 1024));
        let flagged = snap
            .problems
            .iter()
            .find(|p| p.section == "values")
            .expect("flagged");
        assert!(
            flagged.message().contains("use_percent 500 (kept 100)"),
            "{}",
            flagged.message()
        );
    }
}
