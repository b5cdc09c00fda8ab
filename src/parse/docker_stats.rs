//! `docker stats --no-stream` output → [`DockerStatsReport`].
//!
//! Three shapes are read, told apart by their first non-blank character:
//! - `{`: one JSON object per line, from `docker stats --no-stream --all --format '{{json .}}'`
//!   (what the poller should run). Every value is a string:
//!   `{"BlockIO":"0B / 0B","CPUPerc":"50.13%","Container":"278ada9c5daf","ID":"278ada9c5daf","MemPerc":"0.12%","MemUsage":"324KiB / 256MiB","Name":"busy","NetIO":"0B / 0B","PIDs":"1"}`
//! - `[`: podman 4's `--format json`, one pretty-printed array with lowercase keys
//!   (`id name cpu_percent mem_usage mem_percent net_io block_io pids`).
//! - anything else: the default table, columns found by header name and split on runs of two
//!   or more spaces (`CONTAINER ID   NAME   CPU %   MEM USAGE / LIMIT   MEM %   NET I/O ...`;
//!   podman: `ID  NAME  CPU %  MEM USAGE / LIMIT  MEM %  NET IO  BLOCK IO  PIDS  CPU TIME ...`).
//!
//!   Older Docker (1.5 to 17.x) printed a `CONTAINER` column (the id, or the name given on the
//!   command line), `MEM USAGE/LIMIT` without spaces (1.5-1.8), no `BLOCK I/O` (before 1.9) or
//!   `PIDS` (before 1.11), and a space between number and unit (`1.5 MiB / 1.952 GiB`, `648 B`);
//!   columns that are absent are `None`. A custom `--format "table {{.Name}}\t{{.CPUPerc}}..."`
//!   table is read the same way as long as it has an ID, CONTAINER or NAME column; a column the
//!   table lacks gives `None` (`null`), never `""`. podman's `CPU TIME` and `AVG CPU %` columns (and `cpu_time`,
//!   `avg_cpu` JSON keys) fill [`ContainerStats::cpu_time_seconds`] and
//!   [`ContainerStats::avg_cpu_percent`].
//!
//! Docker prints binary units (`KiB`, `MiB`) for memory and decimal ones (`kB`, `MB`) for I/O;
//! podman decimal throughout; each is converted by its own suffix. `--` (a container being
//! created or removed) becomes `None`. Exited and created containers report real zeros
//! (`0B / 0B`, `0.00%`), kept as `Some(0)`: pair with `docker ps` state to tell them apart.
//! Empty output (no containers, or a header alone) is an empty report.

use serde_json::{Map, Value};

use super::{parse_percent, parse_size, split_wide_columns, ParseError};

const COMMAND: &str = "docker stats";

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct DockerStatsReport {
    pub containers: Vec<ContainerStats>,
}

/// One container's line.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct ContainerStats {
    /// Container id as printed (12 hex, or 64 with `--no-trunc`); `None` (null in JSON) when
    /// the output had no ID column (a custom `--format 'table {{.Name}}...'`). Never empty.
    pub id: Option<String>,
    /// Container name; `None` when the output had no NAME column (Docker 1.5-17.x tables, a
    /// custom table without `{{.Name}}`). Never empty. At least one of `id` and `name` is set.
    pub name: Option<String>,
    /// Percent of one CPU; may exceed 100 on multi-core hosts.
    pub cpu_percent: Option<f64>,
    pub mem_used_bytes: Option<u64>,
    /// The `-m` limit, or the host's memory when unlimited.
    pub mem_limit_bytes: Option<u64>,
    pub mem_percent: Option<f64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    pub block_read_bytes: Option<u64>,
    pub block_write_bytes: Option<u64>,
    pub pids: Option<u64>,
    /// podman's `CPU TIME` (`cpu_time` in JSON): CPU seconds the container has used since it
    /// started, printed as a Go duration (`24.715247ms`, `1.462623871s`, `4m39.028579s`).
    /// Two polls give a current CPU% as `Δcpu_time / Δwall`. `None` for Docker, which prints no
    /// such column.
    pub cpu_time_seconds: Option<f64>,
    /// podman's `AVG CPU %` (`avg_cpu`): average CPU% since the container started. `None` for
    /// Docker.
    pub avg_cpu_percent: Option<f64>,
}

/// Parses any of the three shapes; see the module docs.
///
/// # Errors
/// [`ParseError`] naming a line that is not a JSON object, a value that is not a size or
/// percentage (other than `--`), a table header without `CONTAINER ID`/`ID`, or a table row whose
/// column count does not match the header.
pub fn parse(out: &str) -> Result<DockerStatsReport, ParseError> {
    let first = super::numbered_lines(out).find(|(_, l)| !l.trim().is_empty());
    match first {
        None => Ok(DockerStatsReport::default()),
        Some((_, l)) if l.trim_start().starts_with('{') => parse_json_lines(out),
        Some((n, l)) if l.trim_start().starts_with('[') => parse_json_array(out, n, l),
        Some(_) => parse_table(out),
    }
}

/// The fields of one container, as the strings Docker printed, keyed by meaning.
#[derive(Debug, Default)]
struct Raw<'a> {
    id: Option<&'a str>,
    name: Option<&'a str>,
    cpu: Option<&'a str>,
    mem_usage: Option<&'a str>,
    mem_percent: Option<&'a str>,
    net: Option<&'a str>,
    block: Option<&'a str>,
    pids: Option<&'a str>,
    cpu_time: Option<&'a str>,
    avg_cpu: Option<&'a str>,
}

/// Turns raw strings into typed stats; `Err` carries what was wrong, for the caller's line.
fn convert(raw: &Raw<'_>) -> Result<ContainerStats, String> {
    // A custom `--format "table {{.Name}}..."` may print a name and no ID, and old Docker tables
    // an id and no name: what the text does not give is `None`, never `""`.
    let text = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let (id, name) = (text(raw.id), text(raw.name));
    if id.is_none() && name.is_none() {
        return Err("a container ID or name".to_string());
    }
    let percent = |v: Option<&str>, what: &str| -> Result<Option<f64>, String> {
        match v.map(str::trim) {
            None | Some("--") => Ok(None),
            Some(s) => parse_percent(s)
                .map(Some)
                .ok_or(format!("{what} like '50.13%', not '{s}'")),
        }
    };
    let pair = |v: Option<&str>, what: &str| -> Result<(Option<u64>, Option<u64>), String> {
        let Some(s) = v.map(str::trim) else {
            return Ok((None, None));
        };
        if s == "--" {
            return Ok((None, None));
        }
        let (a, b) = s
            .split_once('/')
            .ok_or(format!("{what} like '324KiB / 256MiB', not '{s}'"))?;
        let one = |t: &str| -> Result<Option<u64>, String> {
            match t.trim() {
                "--" => Ok(None),
                t => parse_size(t)
                    .map(Some)
                    .ok_or(format!("{what} like '324KiB / 256MiB', not '{s}'")),
            }
        };
        Ok((one(a)?, one(b)?))
    };
    let (mem_used_bytes, mem_limit_bytes) = pair(raw.mem_usage, "memory usage / limit")?;
    let (net_rx_bytes, net_tx_bytes) = pair(raw.net, "net I/O rx / tx")?;
    let (block_read_bytes, block_write_bytes) = pair(raw.block, "block I/O read / write")?;
    let pids = match raw.pids.map(str::trim) {
        None | Some("--") => None,
        Some(p) => Some(
            p.parse::<u64>()
                .map_err(|_| format!("a PID count, not '{p}'"))?,
        ),
    };
    let cpu_time_seconds = match raw.cpu_time.map(str::trim) {
        None | Some("--") => None,
        Some(t) => Some(go_duration_seconds(t).ok_or(format!(
            "a CPU time like '1.462623871s' or '4m39.03s', not '{t}'"
        ))?),
    };
    Ok(ContainerStats {
        id,
        name,
        cpu_percent: percent(raw.cpu, "a CPU percentage")?,
        mem_used_bytes,
        mem_limit_bytes,
        mem_percent: percent(raw.mem_percent, "a memory percentage")?,
        net_rx_bytes,
        net_tx_bytes,
        block_read_bytes,
        block_write_bytes,
        pids,
        cpu_time_seconds,
        avg_cpu_percent: percent(raw.avg_cpu, "an average CPU percentage")?,
    })
}

/// A Go `time.Duration` as printed by `String()` (podman's `CPU TIME`): `0s`, `24.715247ms`,
/// `1.462623871s`, `4m39.028579s`, `1h2m3.5s`, `812µs`, `5ns`, in seconds. Go durations are
/// whole nanoseconds, so they are summed exactly as nanoseconds and divided once (`24.715247ms`
/// is 0.024715247 s, not 0.024715247000000003). `None` for anything else, including `""`.
pub(crate) fn go_duration_seconds(s: &str) -> Option<f64> {
    const UNITS: [(&str, u128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let mut rest = s;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, tail) = rest.split_at(int_end);
        let (frac, tail) = match tail.strip_prefix('.') {
            Some(t) => t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len())),
            None => ("", tail),
        };
        if int.is_empty() || (frac.is_empty() && tail.len() < rest.len() - int.len()) {
            return None; // `.5s` or `1.s`
        }
        // Longest unit first: `ms` before `m`, `µs` before `s`.
        let (unit, per) = UNITS.iter().find(|(u, _)| tail.starts_with(u))?;
        let whole: u128 = int.parse().ok()?;
        // Go prints at most 9 fractional digits; more cannot be nanoseconds.
        let frac = frac.get(..frac.len().min(18))?;
        let scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        let part: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        nanos = nanos
            .checked_add(whole.checked_mul(*per)?)?
            .checked_add(part.checked_mul(*per)? / scale)?;
        rest = tail.get(unit.len()..)?;
    }
    (!s.is_empty()).then(|| nanos as f64 / 1e9)
}

/// Reads both Docker's (`CPUPerc`) and podman's (`cpu_percent`) key spellings.
fn raw_from_object(obj: &Map<String, Value>) -> Raw<'_> {
    raw_from(|k| obj.get(k).and_then(Value::as_str))
}

/// [`Raw`] from a lookup of an object's string members by key.
fn raw_from<'a>(member: impl Fn(&str) -> Option<&'a str>) -> Raw<'a> {
    let get = |keys: &[&str]| keys.iter().find_map(|k| member(k));
    Raw {
        id: get(&["ID", "Container", "id"]),
        name: get(&["Name", "name"]),
        cpu: get(&["CPUPerc", "cpu_percent"]),
        mem_usage: get(&["MemUsage", "mem_usage"]),
        mem_percent: get(&["MemPerc", "mem_percent"]),
        net: get(&["NetIO", "net_io"]),
        block: get(&["BlockIO", "block_io"]),
        pids: get(&["PIDs", "pids"]),
        cpu_time: get(&["cpu_time", "CPUTime"]),
        avg_cpu: get(&["avg_cpu", "AvgCPU"]),
    }
}

fn parse_json_lines(out: &str) -> Result<DockerStatsReport, ParseError> {
    let mut containers = Vec::new();
    for (line_no, line) in super::numbered_lines(out) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: String| ParseError::at(COMMAND, line_no, line, what);
        let obj = super::JsonStrings::from_json(line).map_err(|e| {
            bad(format!(
                "a JSON object from --format '{{{{json .}}}}' ({e})"
            ))
        })?;
        containers.push(convert(&raw_from(|k| obj.get(k))).map_err(bad)?);
    }
    Ok(DockerStatsReport { containers })
}

/// podman's array spans many lines; errors point at its first line (serde reports the line
/// inside the array, which we add to the message).
fn parse_json_array(
    out: &str,
    first_no: usize,
    first_line: &str,
) -> Result<DockerStatsReport, ParseError> {
    let bad = |what: String| ParseError::at(COMMAND, first_no, first_line, what);
    let value: Value = serde_json::from_str(out)
        .map_err(|e| bad(format!("a JSON array of stats objects ({e})")))?;
    let items = value
        .as_array()
        .ok_or_else(|| bad("a JSON array".to_string()))?;
    let mut containers = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| bad(format!("element {i} to be an object")))?;
        containers
            .push(convert(&raw_from_object(obj)).map_err(|e| bad(format!("element {i}: {e}")))?);
    }
    Ok(DockerStatsReport { containers })
}

fn parse_table(out: &str) -> Result<DockerStatsReport, ParseError> {
    let mut header: Option<Vec<&str>> = None;
    let mut containers = Vec::new();
    for (line_no, line) in super::numbered_lines(out) {
        if line.trim().is_empty() {
            continue;
        }
        let cells = split_wide_columns(line);
        let Some(names) = &header else {
            if !cells
                .iter()
                .any(|c| matches!(*c, "CONTAINER ID" | "CONTAINER" | "ID" | "NAME"))
            {
                return Err(ParseError::at(
                    COMMAND,
                    line_no,
                    line,
                    "the table header 'CONTAINER ID   NAME   CPU % ...' (or a custom \
                     --format 'table ...' with an ID, CONTAINER or NAME column)",
                ));
            }
            header = Some(cells);
            continue;
        };
        if cells.len() != names.len() {
            return Err(ParseError::at(
                COMMAND,
                line_no,
                line,
                format!("{} columns as in the header", names.len()),
            ));
        }
        let mut raw = Raw::default();
        for (name, cell) in names.iter().zip(cells) {
            let slot = match *name {
                "CONTAINER ID" | "CONTAINER" | "ID" => &mut raw.id,
                "NAME" => &mut raw.name,
                "CPU %" => &mut raw.cpu,
                // Docker 1.5-1.8 wrote `MEM USAGE/LIMIT` without spaces.
                "MEM USAGE / LIMIT" | "MEM USAGE/LIMIT" => &mut raw.mem_usage,
                "MEM %" => &mut raw.mem_percent,
                "NET I/O" | "NET IO" => &mut raw.net,
                "BLOCK I/O" | "BLOCK IO" => &mut raw.block,
                // podman 4 titles a custom `{{.PIDs}}` column `PI DS` (its header humaniser
                // splits the camel case), so `split_wide_columns` keeps it as one cell.
                "PIDS" | "PI DS" => &mut raw.pids,
                "CPU TIME" => &mut raw.cpu_time,
                "AVG CPU %" => &mut raw.avg_cpu,
                _ => continue,
            };
            *slot = Some(cell);
        }
        containers.push(convert(&raw).map_err(|e| ParseError::at(COMMAND, line_no, line, e))?);
    }
    Ok(DockerStatsReport { containers })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1 << 20;

    fn by_name<'a>(r: &'a DockerStatsReport, name: &str) -> &'a ContainerStats {
        r.containers
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {r:#?}"))
    }

    #[test]
    fn json_all_reads_every_container() {
        let r = parse(include_str!(
            "../../fixtures/docker_stats/docker-28.2-json-all.txt"
        ))
        .unwrap();
        assert_eq!(r.containers.len(), 8);
        let busy = by_name(&r, "busy");
        assert_eq!(
            *busy,
            ContainerStats {
                id: Some("12219b8fa017".into()),
                name: Some("busy".into()),
                cpu_percent: Some(49.98),
                mem_used_bytes: Some(328 * KIB),
                mem_limit_bytes: Some(268_435_456),
                mem_percent: Some(0.13),
                net_rx_bytes: Some(0),
                net_tx_bytes: Some(0),
                block_read_bytes: Some(0),
                block_write_bytes: Some(0),
                pids: Some(1),
                cpu_time_seconds: None,
                avg_cpu_percent: None,
            }
        );
        let frozen = by_name(&r, "frozen");
        assert_eq!(frozen.mem_limit_bytes, Some(128 * MIB));
        assert_eq!(
            frozen.mem_used_bytes,
            Some(324 * KIB),
            "paused keeps real memory"
        );
        assert_eq!(frozen.cpu_percent, Some(0.0));
        let gone = by_name(&r, "gone");
        assert_eq!((gone.mem_limit_bytes, gone.pids), (Some(0), Some(0)));
        assert_eq!(by_name(&r, "checked").mem_limit_bytes, Some(64 * MIB));
    }

    #[test]
    fn json_without_all_lists_only_running_and_paused() {
        let r = parse(include_str!(
            "../../fixtures/docker_stats/docker-28.2-json-running.txt"
        ))
        .unwrap();
        assert_eq!(r.containers.len(), 6);
        assert!(r
            .containers
            .iter()
            .all(|c| !matches!(c.name.as_deref(), Some("gone" | "fresh"))));
        assert_eq!(by_name(&r, "idle").mem_limit_bytes, Some(256 * MIB));
    }

    #[test]
    fn tables_match_by_header_name() {
        for (text, n) in [
            (
                include_str!("../../fixtures/docker_stats/docker-28.2-table-all.txt"),
                8,
            ),
            (
                include_str!("../../fixtures/docker_stats/docker-28.2-table-running.txt"),
                6,
            ),
            (
                include_str!("../../fixtures/docker_stats/docker-20.10-table-all.txt"),
                8,
            ),
        ] {
            let r = parse(text).unwrap();
            assert_eq!(r.containers.len(), n);
            let busy = by_name(&r, "busy");
            assert_eq!(busy.id.as_deref(), Some("12219b8fa017"));
            assert_eq!(busy.mem_limit_bytes, Some(268_435_456));
            assert!(busy.cpu_percent.unwrap() > 40.0);
            assert_eq!(busy.pids, Some(1));
        }
        let all = parse(include_str!(
            "../../fixtures/docker_stats/docker-28.2-table-all.txt"
        ))
        .unwrap();
        assert_eq!(by_name(&all, "busy").cpu_percent, Some(50.12));
        assert_eq!(by_name(&all, "warming").mem_used_bytes, Some(480 * KIB));
    }

    #[test]
    fn no_containers_is_an_empty_report() {
        for text in [
            include_str!("../../fixtures/docker_stats/docker-28.2-json-no-containers.txt"),
            include_str!("../../fixtures/docker_stats/docker-28.2-table-no-containers.txt"),
            "",
            "\n",
        ] {
            assert_eq!(parse(text).unwrap(), DockerStatsReport::default());
        }
    }

    #[test]
    fn dashes_are_none() {
        // synthetic: Docker prints `--` for a container that is starting or being removed
        let json = r#"{"BlockIO":"--","CPUPerc":"--","Container":"abc","ID":"abc","MemPerc":"--","MemUsage":"-- / --","Name":"x","NetIO":"--","PIDs":"--"}"#;
        let c = parse(json).unwrap().containers.pop().unwrap();
        assert_eq!(c.id.as_deref(), Some("abc"));
        assert_eq!(
            (c.cpu_percent, c.mem_used_bytes, c.mem_limit_bytes, c.pids),
            (None, None, None, None)
        );
        // synthetic: table form of the same
        let table = "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\n\
                     abc            x         --        -- / --             --        --        --          --\n";
        let c = parse(table).unwrap().containers.pop().unwrap();
        assert_eq!(
            (c.cpu_percent, c.net_rx_bytes, c.block_write_bytes),
            (None, None, None)
        );
    }

    #[test]
    fn podman_captures_use_decimal_units() {
        for text in [
            include_str!("../../fixtures/docker_stats/podman-4.3-table.txt"),
            include_str!("../../fixtures/docker_stats/podman-4.3-json.txt"),
        ] {
            let r = parse(text).unwrap();
            assert_eq!(r.containers.len(), 4);
            let busy = by_name(&r, "pbusy");
            assert_eq!(busy.id.as_deref(), Some("d1e337870abf"));
            assert_eq!(
                (busy.mem_used_bytes, busy.mem_limit_bytes),
                (Some(348_200), Some(268_400_000))
            );
            assert!(busy.cpu_percent.unwrap() > 40.0);
            assert_eq!(by_name(&r, "ppaused").mem_limit_bytes, Some(134_200_000));
            assert_eq!(by_name(&r, "pgone").pids, Some(0));
        }
    }

    #[test]
    fn podman_shapes_and_decimal_units() {
        // synthetic: podman 4.3 shapes, copied from RECIPES §2 (not captured on this machine)
        let table = "ID            NAME        CPU %       MEM USAGE / LIMIT  MEM %       NET IO      BLOCK IO    PIDS        CPU TIME      AVG CPU %\n\
                     d7c267040bfa  pbusy       51.33%      356.4kB / 268.4MB  0.13%       0B / 0B     0B / 0B     1           1.245326504s  51.33%\n";
        let c = parse(table).unwrap().containers.pop().unwrap();
        assert_eq!(
            (c.id.as_deref(), c.name.as_deref()),
            (Some("d7c267040bfa"), Some("pbusy"))
        );
        assert_eq!(
            (c.mem_used_bytes, c.mem_limit_bytes),
            (Some(356_400), Some(268_400_000))
        );
        let json = r#"[
 {
  "id": "d7c267040bfa",
  "name": "pbusy",
  "cpu_time": "1.245326504s",
  "cpu_percent": "51.33%",
  "avg_cpu": "51.33%",
  "mem_usage": "356.4kB / 268.4MB",
  "mem_percent": "0.13%",
  "net_io": "0B / 0B",
  "block_io": "12.3kB / 1.5MB",
  "pids": "1"
 }
]"#;
        let c = parse(json).unwrap().containers.pop().unwrap();
        assert_eq!(
            (c.cpu_percent, c.block_read_bytes, c.block_write_bytes),
            (Some(51.33), Some(12_300), Some(1_500_000))
        );
    }

    #[test]
    fn podman_cpu_time_and_average_cpu() {
        for text in [
            include_str!("../../fixtures/docker_stats/podman-4.3-table.txt"),
            include_str!("../../fixtures/docker_stats/podman-4.3-json.txt"),
        ] {
            let r = parse(text).unwrap();
            let idle = by_name(&r, "pidle");
            assert_eq!(idle.cpu_time_seconds, Some(0.024_715_247));
            assert_eq!(by_name(&r, "pgone").cpu_time_seconds, Some(0.0));
            assert_eq!(by_name(&r, "pgone").avg_cpu_percent, Some(0.0));
            let busy = by_name(&r, "pbusy");
            assert!(busy.cpu_time_seconds.unwrap() > 1.0);
            assert!(busy.avg_cpu_percent.unwrap() > 40.0);
        }
        let docker = parse(include_str!(
            "../../fixtures/docker_stats/docker-28.2-json-all.txt"
        ))
        .unwrap();
        assert!(docker
            .containers
            .iter()
            .all(|c| c.cpu_time_seconds.is_none() && c.avg_cpu_percent.is_none()));
    }

    #[test]
    fn podman_cpu_time_in_minutes_and_all() {
        let t = parse(include_str!(
            "../../fixtures/docker_stats/podman-4.3-table-all-minutes.txt"
        ))
        .unwrap();
        assert_eq!(t.containers.len(), 4);
        let busy = by_name(&t, "pbusy");
        assert!((busy.cpu_time_seconds.unwrap() - 153.921_682_382).abs() < 1e-9);
        assert_eq!(busy.avg_cpu_percent, Some(49.91));
        assert_eq!(by_name(&t, "pidle").mem_used_bytes, Some(340_000));
        assert_eq!(by_name(&t, "ppaused").cpu_time_seconds, Some(0.028_746_482));
        let j = parse(include_str!(
            "../../fixtures/docker_stats/podman-4.3-json-minutes.txt"
        ))
        .unwrap();
        let busy = by_name(&j, "pbusy");
        assert!((busy.cpu_time_seconds.unwrap() - 153.925_671_922).abs() < 1e-9);
        assert_eq!(busy.cpu_percent, Some(49.90));
    }

    #[test]
    fn go_durations() {
        let close = |s: &str, want: f64| {
            let got = go_duration_seconds(s).unwrap_or(f64::NAN);
            assert!((got - want).abs() < 1e-9, "{s}: {got} vs {want}");
        };
        close("0s", 0.0);
        close("24.715247ms", 0.024_715_247);
        close("1.462623871s", 1.462_623_871);
        close("4m39.028579s", 279.028_579);
        close("1h2m3.5s", 3723.5);
        close("812µs", 0.000_812);
        close("5ns", 5e-9);
        for bad in ["", "s", "1", "1x", "1.2.3s", "--", "-1s", "1s "] {
            assert_eq!(go_duration_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn custom_format_tables() {
        // `--format "table {{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}"` (no ID column)
        let r = parse(include_str!(
            "../../fixtures/docker_stats/docker-28.2-custom-table-name-cpu-mem.txt"
        ))
        .unwrap();
        assert_eq!(r.containers.len(), 4);
        let busy = by_name(&r, "busy");
        assert_eq!(busy.id, None, "no ID column: null, not \"\"");
        assert_eq!(busy.cpu_percent, Some(51.01));
        assert_eq!(
            (busy.mem_used_bytes, busy.mem_limit_bytes),
            (Some(320 * KIB), Some(256 * MIB))
        );
        assert_eq!(busy.mem_percent, Some(0.12));
        assert_eq!((busy.net_rx_bytes, busy.pids), (None, None), "not printed");
        assert_eq!(by_name(&r, "gone").mem_limit_bytes, Some(0));
        // `table {{.Container}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}`
        let r = parse(include_str!(
            "../../fixtures/docker_stats/docker-28.2-custom-table-container.txt"
        ))
        .unwrap();
        assert_eq!(r.containers.len(), 3);
        let busy = r
            .containers
            .iter()
            .find(|c| c.id.as_deref() == Some("71970e2bf5bf"))
            .unwrap();
        assert_eq!(busy.name, None, "no NAME column: null, not \"\"");
        assert_eq!(busy.cpu_percent, Some(49.17));
        assert_eq!(busy.mem_percent, None);
        assert_eq!((busy.net_tx_bytes, busy.pids), (Some(0), Some(1)));
        // plain `docker stats idle busy`
        let r = parse(include_str!(
            "../../fixtures/docker_stats/docker-28.2-table-named.txt"
        ))
        .unwrap();
        assert_eq!(r.containers.len(), 2);
        assert_eq!(by_name(&r, "idle").mem_used_bytes, Some(328 * KIB));
    }

    #[test]
    fn podman_custom_tables_keep_pids_and_leave_missing_columns_null() {
        // podman 4.3 titles `{{.PIDs}}` as `PI DS` in a custom table (issue #18: pids were lost)
        let r = parse(include_str!(
            "../../fixtures/docker_stats/podman-4.3-custom-table-pids.txt"
        ))
        .unwrap();
        assert_eq!(r.containers.len(), 2);
        let busy = by_name(&r, "wtparse-pbusy");
        assert_eq!(busy.id.as_deref(), Some("c39e43aa3f1d"));
        assert_eq!(busy.pids, Some(1));
        assert_eq!(busy.cpu_percent, Some(51.01));
        assert_eq!(
            (busy.mem_used_bytes, busy.mem_limit_bytes),
            (Some(770_000), Some(268_400_000))
        );
        assert_eq!(busy.mem_percent, None, "not printed");
        // no ID column: id is null; no NAME column: name is null (issue #18: not "")
        let r = parse(include_str!(
            "../../fixtures/docker_stats/podman-4.3-custom-table-name-pids.txt"
        ))
        .unwrap();
        let idle = by_name(&r, "wtparse-pidle");
        assert_eq!((idle.id.as_deref(), idle.pids), (None, Some(1)));
        let r = parse(include_str!(
            "../../fixtures/docker_stats/podman-4.3-custom-table-id-pids.txt"
        ))
        .unwrap();
        assert!(r
            .containers
            .iter()
            .all(|c| c.name.is_none() && c.pids == Some(1)));
        assert_eq!(
            r.containers.first().and_then(|c| c.id.as_deref()),
            Some("5501640f077c")
        );
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["containers"][0]["name"].is_null(), "{json}");
    }

    #[test]
    fn docker_20_10_json_and_all() {
        let r = parse(include_str!(
            "../../fixtures/docker_stats/docker-20.10-json-all.txt"
        ))
        .unwrap();
        assert_eq!(r.containers.len(), 4);
        let gone = by_name(&r, "gone");
        assert_eq!(
            (gone.cpu_percent, gone.mem_used_bytes, gone.mem_limit_bytes),
            (Some(0.0), Some(0), Some(0)),
            "stopped: real zeros from `0B / 0B`"
        );
        assert_eq!(by_name(&r, "busy").cpu_percent, Some(49.23));
        assert_eq!(by_name(&r, "frozen").mem_limit_bytes, Some(128 * MIB));
    }

    #[test]
    fn old_docker_tables() {
        // synthetic: Docker 1.5/1.6 default table: CONTAINER (as given), `MEM USAGE/LIMIT`,
        // spaces before units, no BLOCK I/O, no PIDS
        let t = "CONTAINER           CPU %               MEM USAGE/LIMIT       MEM %               NET I/O\n\
                 redis1              0.07%               796 KiB/64 MiB        1.21%               788 B/648 B\n";
        let c = parse(t).unwrap().containers.pop().unwrap();
        assert_eq!((c.id.as_deref(), c.name.as_deref()), (Some("redis1"), None));
        assert_eq!(c.cpu_percent, Some(0.07));
        assert_eq!(
            (c.mem_used_bytes, c.mem_limit_bytes),
            (Some(796 * KIB), Some(64 * MIB))
        );
        assert_eq!((c.net_rx_bytes, c.net_tx_bytes), (Some(788), Some(648)));
        assert_eq!((c.block_read_bytes, c.pids), (None, None));
        // synthetic: Docker 1.9: decimal MB/GB from go-units HumanSize, BLOCK I/O, no PIDS
        let t = "CONTAINER           CPU %               MEM USAGE / LIMIT     MEM %               NET I/O               BLOCK I/O\n\
                 4e3b7a5c0c9f        0.00%               1.85 MB / 2.094 GB    0.09%               648 B / 648 B         3.01 MB / 0 B\n";
        let c = parse(t).unwrap().containers.pop().unwrap();
        assert_eq!(
            (c.mem_used_bytes, c.mem_limit_bytes),
            (Some(1_850_000), Some(2_094_000_000))
        );
        assert_eq!(
            (c.block_read_bytes, c.block_write_bytes),
            (Some(3_010_000), Some(0))
        );
        assert_eq!(c.pids, None);
        // synthetic: Docker 1.12 / 17.x: binary units with a space, PIDS
        let t = "CONTAINER           CPU %               MEM USAGE / LIMIT       MEM %               NET I/O               BLOCK I/O           PIDS\n\
                 4e3b7a5c0c9f        12.50%              1.5 MiB / 1.952 GiB     0.08%               1.3 kB / 648 B        0 B / 0 B           2\n\
                 9f1c2d3e4a5b        --                  -- / --                 --                  --                    --                  --\n";
        let r = parse(t).unwrap();
        let c = r.containers.first().unwrap();
        assert_eq!(c.mem_used_bytes, Some(1_572_864));
        assert_eq!(
            c.mem_limit_bytes,
            Some((1.952 * (1u64 << 30) as f64).round() as u64)
        );
        assert_eq!((c.net_rx_bytes, c.pids), (Some(1300), Some(2)));
        let dashes = r.containers.get(1).unwrap();
        assert_eq!((dashes.cpu_percent, dashes.mem_used_bytes), (None, None));
        // synthetic: decimal TB and binary TiB each with their own base
        let j = r#"{"ID":"a","Name":"n","MemUsage":"1.5TiB / 2TB","BlockIO":"1GB / 1GiB"}"#;
        let c = parse(j).unwrap().containers.pop().unwrap();
        assert_eq!(
            (c.mem_used_bytes, c.mem_limit_bytes),
            (Some(1_649_267_441_664), Some(2_000_000_000_000))
        );
        assert_eq!(
            (c.block_read_bytes, c.block_write_bytes),
            (Some(1_000_000_000), Some(1 << 30))
        );
    }

    #[test]
    fn podman_5_table_and_json() {
        // synthetic: podman 5 table with a minutes-long CPU TIME and `--` values
        let t = "ID            NAME             CPU %       MEM USAGE / LIMIT  MEM %       NET IO      BLOCK IO    PIDS        CPU TIME      AVG CPU %\n\
                 a9f807ffaacd  frosty_hodgkin   --          3.092MB / 16.7GB   0.02%       -- / --     -- / --     2           4m39.028579s  1.45%\n\
                 3b33001239ee  sleepy_stallman  --          -- / --            --          -- / --     -- / --     --          4.933ms       3.10%\n";
        let r = parse(t).unwrap();
        let a = r.containers.first().unwrap();
        assert_eq!(a.cpu_percent, None);
        assert_eq!(
            (a.mem_used_bytes, a.mem_limit_bytes),
            (Some(3_092_000), Some(16_700_000_000))
        );
        assert_eq!((a.net_rx_bytes, a.net_tx_bytes), (None, None));
        assert!((a.cpu_time_seconds.unwrap() - 279.028_579).abs() < 1e-9);
        assert_eq!(a.avg_cpu_percent, Some(1.45));
        let b = r.containers.get(1).unwrap();
        assert_eq!((b.pids, b.mem_used_bytes), (None, None));
        assert!((b.cpu_time_seconds.unwrap() - 0.004_933).abs() < 1e-12);
        // synthetic: podman 5 `--format json` with `--` values
        let j = r#"[{"id":"3b33001239ee","name":"s","cpu_time":"--","cpu_percent":"--","avg_cpu":"--","mem_usage":"-- / --","mem_percent":"--","net_io":"-- / --","block_io":"-- / --","pids":"--"}]"#;
        let c = parse(j).unwrap().containers.pop().unwrap();
        assert_eq!(
            (c.cpu_time_seconds, c.avg_cpu_percent, c.mem_limit_bytes),
            (None, None, None)
        );
    }

    #[test]
    fn errors_name_the_line() {
        let text = format!(
            "{}\nnot json\n",
            include_str!("../../fixtures/docker_stats/docker-28.2-json-all.txt").trim_end()
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(
            (err.command, err.line_no, err.line.as_str()),
            ("docker stats", 9, "not json")
        );
        let err = parse(r#"{"ID":"a","MemUsage":"lots"}"#).unwrap_err();
        assert!(err.expected.contains("'lots'"), "{err}");
        let err = parse("hello world\n").unwrap_err();
        assert_eq!(err.line_no, 1);
        let err = parse("CONTAINER ID   NAME\nabc   x   extra\n").unwrap_err();
        assert_eq!(err.line_no, 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]
        /// Arbitrary text, and real fixtures truncated, shuffled or spliced: never a panic.
        #[test]
        fn never_panics(input in crate::parse::tests::fixture_variants("docker_stats")) {
            let _ = parse(&input);
            let _ = go_duration_seconds(&input);
        }
    }
}
