//! `fleetpoll parse <kind> FILE` as a process, on every capture under `fixtures/`.
//!
//! Each fixture either parses (exit 0, JSON on stdout with a plausible non-empty result) or is
//! on the short list of captures kept to test a refusal (exit 1, an error naming the line).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Captures the parsers must refuse, with the reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "docker_ps/docker-28.2-table-all.txt",
        "the docker ps table; only --format '{{json .}}' is read",
    ),
    (
        "top/procps-ng-4.0.2-toprc-graphs.txt",
        "top's bar-graph mode from a toprc",
    ),
    (
        "df/coreutils-9.1-i-de_DE.txt",
        "df -i under de_DE: a translated header naming no block size, inode counts are not bytes",
    ),
];

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `fixtures/<dir>` → the `fleetpoll parse` kind.
fn kind_of(dir: &str) -> &'static str {
    match dir {
        "top" => "top",
        "free" => "free",
        "df" => "df",
        "docker_stats" => "docker-stats",
        "docker_ps" => "docker-ps",
        other => panic!("fixtures/{other}: no `fleetpoll parse` kind for this directory"),
    }
}

/// The `--unit` for a `free` capture, from the flag in its file name (`procps-ng-4.0.2-b-w.txt`
/// was `free -b -w`). `-h` output carries its own suffixes; everything else is KiB.
fn free_unit(file_name: &str) -> &'static str {
    let stem = file_name.trim_end_matches(".txt");
    let flags: Vec<&str> = stem.split('-').collect();
    if flags.contains(&"b") {
        "bytes"
    } else if flags.contains(&"si") && !flags.contains(&"h") {
        "kb"
    } else if flags.contains(&"m") {
        "mib"
    } else if flags.contains(&"g") {
        "gib"
    } else {
        "kib"
    }
}

/// Every capture as (`dir/file`, path), sorted.
fn all_captures() -> Vec<(String, PathBuf)> {
    let root = fixtures_root();
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("fixtures/ exists") {
        let dir = dir.expect("dir entry").path();
        if !dir.is_dir() {
            continue;
        }
        let dir_name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_string();
        for file in std::fs::read_dir(&dir).expect("fixture dir") {
            let path = file.expect("dir entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name")
                .to_string();
            out.push((format!("{dir_name}/{name}"), path));
        }
    }
    out.sort();
    out
}

/// What a successful parse must contain to count as plausible.
fn assert_plausible(rel: &str, kind: &str, json: &Value) {
    let empty_capture = rel.contains("no-containers");
    match kind {
        "top" => {
            let has = |k: &str| json.get(k).is_some_and(|v| !v.is_null());
            assert!(has("load1"), "{rel}: no load average in {json}");
            assert!(
                has("mem_total_bytes") || has("mem_used_bytes"),
                "{rel}: no memory in {json}"
            );
        }
        "free" => {
            let total = json.get("mem_total_bytes").and_then(Value::as_u64);
            assert!(total.is_some_and(|t| t > 1 << 30), "{rel}: {json}");
        }
        "df" => {
            let rows = json.get("rows").and_then(Value::as_array).expect("rows");
            assert!(!rows.is_empty(), "{rel}: no rows");
            for row in rows {
                let mount = row.get("mount").and_then(Value::as_str).unwrap_or("");
                assert!(mount.starts_with('/'), "{rel}: bad mount in {row}");
            }
        }
        "docker-stats" | "docker-ps" => {
            let containers = json
                .get("containers")
                .and_then(Value::as_array)
                .expect("containers");
            assert_eq!(containers.is_empty(), empty_capture, "{rel}: {json}");
            for c in containers {
                let id = c.get("id").and_then(Value::as_str).unwrap_or("");
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                assert!(!(id.is_empty() && name.is_empty()), "{rel}: {c}");
            }
        }
        _ => unreachable!("kind_of returns only these"),
    }
}

#[test]
fn parse_reads_every_fixture_or_refuses_it_naming_a_line() {
    let captures = all_captures();
    assert!(captures.len() > 50, "only {} fixtures", captures.len());
    for (rel, _) in REFUSED {
        assert!(
            captures.iter().any(|(r, _)| r == rel),
            "REFUSED lists a missing fixture {rel}"
        );
    }
    let mut parsed = 0;
    let mut refused = 0;
    for (rel, path) in &captures {
        if rel.ends_with("SOURCES.md") || !rel.contains('/') {
            continue;
        }
        let (dir, file) = rel.split_once('/').expect("dir/file");
        let kind = kind_of(dir);
        let mut cmd = crate::common::fleetpoll();
        cmd.arg("parse").arg(kind).arg(path);
        if kind == "free" {
            cmd.arg("--unit").arg(free_unit(file));
        }
        let out = cmd.output().expect("run fleetpoll");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if REFUSED.iter().any(|(r, _)| r == rel) {
            assert_eq!(
                out.status.code(),
                Some(1),
                "{rel} should be refused: {stdout}"
            );
            assert!(
                stderr.contains(": line ") && stderr.contains("expected"),
                "{rel}: the error should name a line: {stderr}"
            );
            refused += 1;
            continue;
        }
        assert!(
            out.status.success(),
            "{rel}: fleetpoll parse {kind} failed ({:?}): {stderr}",
            out.status
        );
        let json: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{rel}: stdout is not JSON ({e}): {stdout}"));
        assert_plausible(rel, kind, &json);
        parsed += 1;
    }
    assert_eq!(refused, REFUSED.len());
    assert!(parsed > 50, "parsed only {parsed}");
}

#[test]
fn free_units_from_file_names() {
    assert_eq!(free_unit("procps-ng-4.0.2-b-w-t-l.txt"), "bytes");
    assert_eq!(free_unit("busybox-1.35-m.txt"), "mib");
    assert_eq!(free_unit("procps-ng-4.0.2-g.txt"), "gib");
    assert_eq!(free_unit("procps-ng-4.0.2-h-with-swap.txt"), "kib");
    assert_eq!(free_unit("procps-ng-4.0.2-si.txt"), "kb");
    assert_eq!(free_unit("procps-ng-4.0.2-si-h.txt"), "kib");
}

#[test]
fn free_si_read_in_kilobytes_agrees_with_free_b() {
    let total = |file: &str, unit: &str| -> u64 {
        let out = crate::common::fleetpoll()
            .args(["parse", "free", "--unit", unit])
            .arg(fixtures_root().join("free").join(file))
            .output()
            .expect("run");
        crate::common::assert_ok(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["mem_total_bytes"].as_u64().expect("total")
    };
    let bytes = total("procps-ng-4.0.2-b.txt", "bytes");
    let kb = total("procps-ng-4.0.2-si.txt", "kb");
    // free --si prints whole kilobytes (10^3): equal within one of them.
    assert!(
        bytes.abs_diff(kb) < 1000,
        "free -b {bytes} vs free --si {kb}"
    );
}

#[test]
fn parse_reads_stdin_and_refuses_garbage_naming_the_line() {
    use std::io::Write;
    let mut child = crate::common::fleetpoll()
        .args(["parse", "free", "--unit", "bytes"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fleetpoll");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"              total        used        free\nBogus:  1 2 3\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("free: line 2"), "{stderr}");
}

/// Issue #18: `free -b | fleetpoll parse free` (no --unit) read bytes as KiB and reported 25 TB
/// without a word; now the assumed unit is said, and the implausible total warned about.
#[test]
fn free_without_unit_says_kib_was_assumed_and_warns_on_an_implausible_total() {
    let run = |file: &str, unit: Option<&str>| {
        let mut cmd = crate::common::fleetpoll();
        cmd.args(["parse", "free"])
            .arg(fixtures_root().join("free").join(file));
        if let Some(u) = unit {
            cmd.args(["--unit", u]);
        }
        let out = cmd.output().expect("run fleetpoll");
        crate::common::assert_ok(&out);
        let json: Value = serde_json::from_slice(&out.stdout).expect("json");
        (json, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // the poller's `free -b`, no --unit: KiB assumed and said, and warned: its 23.5 TiB total
    // is under the 64 TiB line on this 24 GiB machine, but every figure is a multiple of 1024.
    let (json, stderr) = run("procps-ng-4.0.2-b.txt", None);
    assert_eq!(json["unit_assumed"], "KiB", "{json}");
    assert!(stderr.contains("read as KiB"), "{stderr}");
    assert!(stderr.contains("--unit bytes"), "{stderr}");
    let warning = json["warning"].as_str().expect("a warning field");
    assert!(warning.contains("multiple of 1024"), "{warning}");
    assert!(warning.contains("--unit bytes"), "{warning}");
    // the same with swap in use
    let (json, _) = run("procps-ng-4.0.2-b-with-swap.txt", None);
    assert!(
        json["warning"]
            .as_str()
            .is_some_and(|w| w.contains("free -b")),
        "{json}"
    );
    // `free -b` read as MiB: over 64 TiB, warned on stderr and in the JSON
    let (json, stderr) = run("procps-ng-4.0.2-b.txt", Some("mib"));
    assert!(json.get("unit_assumed").is_none(), "{json}");
    let warning = json["warning"].as_str().expect("a warning field");
    assert!(warning.contains("more than 64 TiB"), "{warning}");
    assert!(warning.contains("--unit bytes"), "{warning}");
    assert!(stderr.contains("warning: free:"), "{stderr}");
    // plain `free` (KiB), no --unit: assumed and said, but plausible, so no warning
    let (json, stderr) = run("procps-ng-4.0.2-default.txt", None);
    assert_eq!(json["unit_assumed"], "KiB");
    assert!(json.get("warning").is_none(), "{json}");
    assert!(!stderr.contains("warning"), "{stderr}");
    // an explicit --unit assumes nothing
    let (json, stderr) = run("procps-ng-4.0.2-b.txt", Some("bytes"));
    assert!(
        json.get("unit_assumed").is_none() && json.get("warning").is_none(),
        "{json}"
    );
    assert!(stderr.is_empty(), "{stderr}");
    // `free -m` read as bytes: 24 KB total, under 1 MiB
    let (json, _) = run("procps-ng-4.0.2-m.txt", Some("bytes"));
    assert!(
        json["warning"]
            .as_str()
            .is_some_and(|w| w.contains("less than 1 MiB")),
        "{json}"
    );
}
