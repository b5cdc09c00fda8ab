//! `top -b` output (procps-ng 4.0.x and BusyBox 1.35) → [`TopReport`].
//!
//! Input may hold several frames (`top -b -n 2 -d 1`); the **last** frame wins, because the
//! first frame of procps-ng shows CPU percentages averaged since boot. A frame starts at a
//! `top - ` line (procps) or a `Mem:` line (BusyBox), or whenever a summary line repeats.
//! Process tables (from a `PID ...` header to the next frame) are skipped, so callers may
//! filter them out (`| head -n 5`) or not.
//!
//! procps lines read (sample from procps-ng 4.0.2, `LC_ALL=C`):
//! ```text
//! top - 05:17:43 up 3 min,  0 user,  load average: 2.61, 1.06, 0.40
//! Tasks:  76 total,   2 running,  74 sleeping,   0 stopped,   0 zombie
//! %Cpu(s):100.0 us,  0.0 sy,  0.0 ni,  0.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st
//! MiB Mem :  24105.6 total,  21766.3 free,    705.2 used,   1906.1 buff/cache
//! MiB Swap:      0.0 total,      0.0 free,      0.0 used.  23400.4 avail Mem
//! ```
//! The memory unit is whatever `-E` chose (`KiB`..`EiB`); procps rounds to one decimal, so MiB
//! and GiB figures are converted honestly (value × 2^20, rounded) and are only that precise.
//! Localised output (`de_DE`, `fr_FR`: decimal commas, `%CPU(s)`, `MiB Spch:`, `Tâches:`) is read
//! by position, which procps keeps fixed across translations: tasks are the line after the
//! `top -` line, memory lines are `total, free, used, buff/cache` and `total, free, used. avail`.
//!
//! BusyBox (no uptime, no swap, no `avail`):
//! ```text
//! Mem: 2640600K used, 22043496K free, 8788K shrd, 19072K buff, 1885820K cached
//! CPU:  94% usr   5% sys   0% nic   0% idle   0% io   0% irq   0% sirq
//! Load average: 2.48 1.11 0.43 3/99 9794
//! ```

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till1, take_until, take_while1};
use nom::character::complete::{char, space0, space1};
use nom::combinator::{opt, rest};
use nom::multi::many1;
use nom::sequence::{preceded, terminated};
use nom::{IResult, Parser};

use super::{decimal, integer, number_text, scale, unit_multiplier, BareSuffix, ParseError};

const COMMAND: &str = "top";

/// Load averages over 1, 5 and 15 minutes.
type Loads = (f64, f64, f64);

/// The summary block of the last frame of `top -b`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct TopReport {
    /// Seconds since boot, at the resolution top prints (minutes). BusyBox prints none.
    pub uptime_seconds: Option<u64>,
    /// Load averages over 1, 5 and 15 minutes.
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    /// procps `Tasks: N total`; BusyBox: the total in `Load average: ... running/total`.
    pub tasks_total: Option<u64>,
    /// CPU time split of the last frame, in percent.
    pub cpu: CpuPercents,
    /// `100 - idle`, clamped to 0..=100; `None` when idle is unknown.
    pub cpu_busy_percent: Option<f64>,
    /// BusyBox prints no total; it prints `used = MemTotal - MemFree` and `free`, so the total
    /// is their sum, exactly.
    pub mem_total_bytes: Option<u64>,
    pub mem_free_bytes: Option<u64>,
    pub mem_used_bytes: Option<u64>,
    /// procps `avail Mem` (MemAvailable); BusyBox has none.
    pub mem_available_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_used_bytes: Option<u64>,
}

/// The `%Cpu(s)` line (procps) or `CPU:` line (BusyBox, where `usr sys nic idle io irq sirq`
/// map to `us sy ni id wa hi si`; BusyBox has no steal).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct CpuPercents {
    pub us: Option<f64>,
    pub sy: Option<f64>,
    pub ni: Option<f64>,
    pub id: Option<f64>,
    pub wa: Option<f64>,
    pub hi: Option<f64>,
    pub si: Option<f64>,
    pub st: Option<f64>,
}

/// What a non-blank line outside a process table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Summary,
    Tasks,
    Cpu,
    Mem,
    Swap,
    BusyboxMem,
    BusyboxCpu,
    BusyboxLoad,
    /// Recognised and deliberately unused (`%Cpu0 :` per-CPU rows, `Threads:` under `-H`).
    Ignored,
}

/// Parses `top -b` output; see the module docs for what is read.
///
/// # Errors
/// [`ParseError`] naming the first line that is neither a known summary line nor part of a
/// process table, or line 0 when the output is empty or has no summary line at all.
pub fn parse(out: &str) -> Result<TopReport, ParseError> {
    let mut frame = TopReport::default();
    let mut seen: Vec<Kind> = Vec::new();
    let mut in_processes = false;
    let mut prev: Option<Kind> = None;
    let mut any = false;

    for (line_no, line) in super::numbered_lines(out) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let starts_frame = line.starts_with("top -") || line.starts_with("Mem:");
        if in_processes && !starts_frame {
            continue;
        }
        in_processes = false;
        if trimmed.starts_with("PID ") {
            in_processes = true;
            continue;
        }
        let kind = classify(line, prev)
            .ok_or_else(|| ParseError::at(COMMAND, line_no, line, "a top summary line"))?;
        if starts_frame || (kind != Kind::Ignored && seen.contains(&kind)) {
            frame = TopReport::default();
            seen.clear();
        }
        let bad = |what: &str| ParseError::at(COMMAND, line_no, line, what);
        match kind {
            Kind::Summary => {
                let (uptime, loads) = summary_line(line)
                    .map_err(|_| bad("'top - HH:MM:SS up ..., load average: a, b, c'"))?;
                frame.uptime_seconds = Some(uptime);
                set_loads(&mut frame, loads);
            }
            Kind::Tasks => {
                frame.tasks_total =
                    Some(first_count(line).map_err(|_| bad("'Tasks: N total, ...'"))?);
            }
            Kind::Cpu => {
                frame.cpu = cpu_line(line).map_err(|_| bad("'%Cpu(s): N us, N sy, ...'"))?;
            }
            Kind::Mem => {
                let m = mem_line(line)
                    .map_err(|_| bad("'MiB Mem : N total, N free, N used, N buff/cache'"))?;
                frame.mem_total_bytes = m.first;
                frame.mem_free_bytes = m.second;
                frame.mem_used_bytes = m.third;
            }
            Kind::Swap => {
                let m = mem_line(line)
                    .map_err(|_| bad("'MiB Swap: N total, N free, N used. N avail Mem'"))?;
                frame.swap_total_bytes = m.first;
                frame.swap_used_bytes = m.third;
                frame.mem_available_bytes = m.fourth;
            }
            Kind::BusyboxMem => {
                let (used, free) =
                    busybox_mem_line(line).map_err(|_| bad("'Mem: NK used, NK free, ...'"))?;
                frame.mem_used_bytes = used;
                frame.mem_free_bytes = free;
                frame.mem_total_bytes = used.zip(free).and_then(|(u, f)| u.checked_add(f));
            }
            Kind::BusyboxCpu => {
                frame.cpu =
                    busybox_cpu_line(line).map_err(|_| bad("'CPU:  N% usr  N% sys ...'"))?;
            }
            Kind::BusyboxLoad => {
                let (loads, total) = busybox_load_line(line)
                    .map_err(|_| bad("'Load average: a b c running/total lastpid'"))?;
                set_loads(&mut frame, loads);
                frame.tasks_total = Some(total);
            }
            Kind::Ignored => {}
        }
        seen.push(kind);
        prev = Some(kind);
        any = true;
    }
    if !any {
        return Err(ParseError::empty(
            COMMAND,
            "a top summary ('top - ...' or BusyBox 'Mem: ...')",
        ));
    }
    // top prints idle to 0.1; rounding the difference keeps 0.4 from reading 0.4000000000000057.
    frame.cpu_busy_percent = frame
        .cpu
        .id
        .map(|id| ((100.0 - id) * 10.0).round().clamp(0.0, 1000.0) / 10.0);
    Ok(frame)
}

fn set_loads(frame: &mut TopReport, (l1, l5, l15): Loads) {
    frame.load1 = Some(l1);
    frame.load5 = Some(l5);
    frame.load15 = Some(l15);
}

/// Decides what a line is from its label. `prev` lets localised tasks lines (`Tâches:`) be
/// recognised by position: procps always prints them right after the `top -` line.
fn classify(line: &str, prev: Option<Kind>) -> Option<Kind> {
    if line.starts_with("top -") {
        return Some(Kind::Summary);
    }
    if line.starts_with("Mem:") {
        return Some(Kind::BusyboxMem);
    }
    if line.starts_with("CPU:") {
        return Some(Kind::BusyboxCpu);
    }
    if line.starts_with("Load average:") {
        return Some(Kind::BusyboxLoad);
    }
    let (label, _) = line.split_once(':')?;
    let label = label.trim();
    if label.eq_ignore_ascii_case("%Cpu(s)") {
        return Some(Kind::Cpu);
    }
    if label.len() > 4
        && label
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("%Cpu"))
    {
        return Some(Kind::Ignored); // per-CPU rows (`top -1`): the aggregate line is what we keep
    }
    if label == "Threads" {
        return Some(Kind::Ignored);
    }
    // `MiB Mem :`, `KiB Swap:`, localised `MiB Spch:`, `MiB Éch :`.
    let mut words = label.split_whitespace();
    if let (Some(unit), Some(name), None) = (words.next(), words.next(), words.next()) {
        if memory_unit(unit).is_some() {
            return match (name, prev) {
                ("Swap", _) => Some(Kind::Swap),
                ("Mem", _) => Some(Kind::Mem),
                (_, Some(Kind::Mem)) => Some(Kind::Swap),
                _ => Some(Kind::Mem),
            };
        }
    }
    if label == "Tasks" || (prev == Some(Kind::Summary) && first_count(line).is_ok()) {
        return Some(Kind::Tasks);
    }
    None
}

/// `KiB`..`EiB`: the `-E` scaling of procps memory lines.
fn memory_unit(unit: &str) -> Option<u64> {
    match unit {
        "KiB" | "MiB" | "GiB" | "TiB" | "PiB" | "EiB" => unit_multiplier(unit, BareSuffix::Binary),
        _ => None,
    }
}

/// `top - 05:17:43 up 375 days,  3:01,  0 user,  load average: 2.61, 1.06, 0.40`
fn summary_line(line: &str) -> Result<(u64, Loads), ()> {
    let r: IResult<&str, (Option<u64>, Loads)> = (
        preceded(
            (
                tag("top -"),
                space1,
                take_till1(|c: char| c == ' '),
                space1,
                tag("up"),
                space1,
            ),
            uptime,
        ),
        preceded(
            (take_until("load average:"), tag("load average:"), space0),
            comma_loads,
        ),
    )
        .parse(line);
    match r {
        Ok((rest, (Some(up), loads))) if rest.trim().is_empty() => Ok((up, loads)),
        _ => Err(()),
    }
}

/// The procps uptime forms: `5 min`, `1:01`, `1 day, 1 min`, `375 days,  3:01`,
/// `2 days, 0 min`. Yields `None` on arithmetic overflow.
fn uptime(i: &str) -> IResult<&str, Option<u64>> {
    let day_word = alt((tag("days"), tag("day")));
    let (i, days) = opt(terminated(integer, (space1, day_word, char(','), space1))).parse(i)?;
    let (i, secs) = alt((
        (integer, char(':'), integer).map(|(h, _, m)| h.checked_mul(3600).zip(m.checked_mul(60))),
        terminated(integer, (space1, tag("min"))).map(|m| Some((0, m.checked_mul(60)?))),
    ))
    .parse(i)?;
    let total = secs
        .and_then(|(h, m)| h.checked_add(m))
        .and_then(|s| days.unwrap_or(0).checked_mul(86_400)?.checked_add(s));
    Ok((i, total))
}

/// `2.61, 1.06, 0.40` (or `2,34, 1,17, 0,46` in de_DE: a decimal comma has a digit after it).
fn comma_loads(i: &str) -> IResult<&str, Loads> {
    (
        terminated(decimal, (char(','), space0)),
        terminated(decimal, (char(','), space0)),
        decimal,
    )
        .parse(i)
}

/// First integer after the label: `Tasks:  76 total, ...` → 76.
fn first_count(line: &str) -> Result<u64, ()> {
    let r: IResult<&str, u64> = preceded(
        (take_till1(|c: char| c == ':'), char(':'), space0),
        terminated(
            integer,
            (
                space1,
                take_while1(|c: char| c != ',' && c != ' '),
                char(','),
            ),
        ),
    )
    .parse(line);
    r.map(|(_, v)| v).map_err(|_| ())
}

/// `%Cpu(s):100.0 us,  0.0 sy,  0.0 ni,  0.0 id, ...`: value/key pairs. Keys are matched by
/// name in the C locale and by position otherwise (fr_FR prints `ut` for `us`).
fn cpu_line(line: &str) -> Result<CpuPercents, ()> {
    let pair = (
        space0,
        decimal,
        space1,
        take_while1(|c: char| c.is_alphabetic()),
        opt(char(',')),
    )
        .map(|(_, v, _, k, _)| (k, v));
    let r: IResult<&str, Vec<(&str, f64)>> =
        preceded((take_till1(|c: char| c == ':'), char(':')), many1(pair)).parse(line);
    let (rest, pairs) = r.map_err(|_| ())?;
    if !rest.trim().is_empty() {
        return Err(());
    }
    const ORDER: [&str; 8] = ["us", "sy", "ni", "id", "wa", "hi", "si", "st"];
    let mut cpu = CpuPercents::default();
    for (pos, (key, value)) in pairs.into_iter().enumerate() {
        let index = ORDER.iter().position(|k| *k == key).unwrap_or(pos);
        if let Some(slot) = cpu_slot(&mut cpu, index) {
            *slot = Some(value);
        }
    }
    Ok(cpu)
}

fn cpu_slot(cpu: &mut CpuPercents, index: usize) -> Option<&mut Option<f64>> {
    Some(match index {
        0 => &mut cpu.us,
        1 => &mut cpu.sy,
        2 => &mut cpu.ni,
        3 => &mut cpu.id,
        4 => &mut cpu.wa,
        5 => &mut cpu.hi,
        6 => &mut cpu.si,
        7 => &mut cpu.st,
        _ => return None,
    })
}

/// The four numbers of a procps memory line, in bytes: Mem = total, free, used, buff/cache;
/// Swap = total, free, used, avail Mem.
#[derive(Debug, Default)]
struct MemFigures {
    first: Option<u64>,
    second: Option<u64>,
    third: Option<u64>,
    fourth: Option<u64>,
}

/// `MiB Mem :  24105.6 total,  21766.3 free,    705.2 used,   1906.1 buff/cache`
/// `MiB Swap:      0.0 total,      0.0 free,      0.0 used.  23400.4 avail Mem`
fn mem_line(line: &str) -> Result<MemFigures, ()> {
    let word = take_while1(|c: char| !c.is_whitespace() && c != ',');
    let figure = (
        space0,
        number_text,
        space1,
        word,
        opt(alt((char(','), char('.')))),
    )
        .map(|(_, n, _, _, _)| n);
    let r: IResult<&str, (&str, Vec<&str>, &str)> = (
        take_till1(|c: char| c == ' '),
        preceded((take_till1(|c: char| c == ':'), char(':')), many1(figure)),
        rest,
    )
        .parse(line);
    let (_, (unit, numbers, _)) = r.map_err(|_| ())?;
    let mult = memory_unit(unit).ok_or(())?;
    if numbers.len() < 3 {
        return Err(());
    }
    let at = |i: usize| numbers.get(i).and_then(|n| scale(n, mult));
    Ok(MemFigures {
        first: at(0),
        second: at(1),
        third: at(2),
        fourth: at(3),
    })
}

/// `Mem: 2640600K used, 22043496K free, 8788K shrd, 19072K buff, 1885820K cached` → (used, free).
fn busybox_mem_line(line: &str) -> Result<(Option<u64>, Option<u64>), ()> {
    let item = (
        space0,
        number_text,
        take_while1(|c: char| c.is_ascii_alphabetic()),
        space1,
        take_while1(|c: char| c.is_alphabetic()),
        opt(char(',')),
    )
        .map(|(_, n, unit, _, key, _)| (n, unit, key));
    let r: IResult<&str, Vec<(&str, &str, &str)>> = preceded(tag("Mem:"), many1(item)).parse(line);
    let (rest, items) = r.map_err(|_| ())?;
    if !rest.trim().is_empty() {
        return Err(());
    }
    let find = |key: &str| {
        items
            .iter()
            .find(|(_, _, k)| *k == key)
            .and_then(|(n, unit, _)| scale(n, unit_multiplier(unit, BareSuffix::Binary)?))
    };
    Ok((find("used"), find("free")))
}

/// `CPU:  94% usr   5% sys   0% nic   0% idle   0% io   0% irq   0% sirq`
fn busybox_cpu_line(line: &str) -> Result<CpuPercents, ()> {
    let item = (
        space0,
        decimal,
        char('%'),
        space1,
        take_while1(|c: char| c.is_ascii_alphabetic()),
    )
        .map(|(_, v, _, _, k)| (k, v));
    let r: IResult<&str, Vec<(&str, f64)>> = preceded(tag("CPU:"), many1(item)).parse(line);
    let (rest, items) = r.map_err(|_| ())?;
    if !rest.trim().is_empty() {
        return Err(());
    }
    let mut cpu = CpuPercents::default();
    for (key, value) in items {
        let slot = match key {
            "usr" => &mut cpu.us,
            "sys" => &mut cpu.sy,
            "nic" => &mut cpu.ni,
            "idle" => &mut cpu.id,
            "io" => &mut cpu.wa,
            "irq" => &mut cpu.hi,
            "sirq" => &mut cpu.si,
            "steal" | "st" => &mut cpu.st,
            _ => continue,
        };
        *slot = Some(value);
    }
    Ok(cpu)
}

/// `Load average: 2.48 1.11 0.43 3/99 9794` → loads and the task total (99).
fn busybox_load_line(line: &str) -> Result<(Loads, u64), ()> {
    let r: IResult<&str, (f64, f64, f64, u64, u64)> = preceded(
        (tag("Load average:"), space0),
        (
            terminated(decimal, space1),
            terminated(decimal, space1),
            terminated(decimal, space1),
            terminated(integer, char('/')),
            terminated(integer, opt((space1, integer))),
        ),
    )
    .parse(line);
    match r {
        Ok((rest, (a, b, c, _running, total))) if rest.trim().is_empty() => Ok(((a, b, c), total)),
        _ => Err(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;
    fn mib(v: f64) -> Option<u64> {
        Some((v * MIB).round() as u64)
    }

    #[test]
    fn procps_two_frames_uses_the_last_frame() {
        let r = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-two-frames.txt"
        ))
        .unwrap();
        // frame 1 says 100.0 id (since boot), frame 2 says 2.2 id
        assert_eq!(r.cpu.id, Some(2.2));
        assert_eq!(r.cpu.us, Some(80.1));
        assert_eq!(r.cpu.wa, Some(0.4));
        assert_eq!(r.cpu.st, Some(0.0));
        assert!((r.cpu_busy_percent.unwrap() - 97.8).abs() < 1e-9);
        assert_eq!(r.uptime_seconds, Some(180));
        assert_eq!(
            (r.load1, r.load5, r.load15),
            (Some(2.48), Some(1.11), Some(0.43))
        );
        assert_eq!(r.tasks_total, Some(76));
        assert_eq!(r.mem_total_bytes, mib(24105.6));
        assert_eq!(r.mem_total_bytes, Some(25_276_553_626));
        assert_eq!(r.mem_free_bytes, mib(21482.6));
        assert_eq!(r.mem_used_bytes, mib(941.9));
        assert_eq!(r.mem_available_bytes, mib(23163.6));
        assert_eq!(r.swap_total_bytes, Some(0));
        assert_eq!(r.swap_used_bytes, Some(0));
    }

    #[test]
    fn procps_mib_total_is_within_rounding_of_free_b() {
        // Invariant across fixtures of the same machine: MemTotal from `free -b` is exact; top's
        // `24105.6 MiB` is rounded to 0.1 MiB, so the two differ by at most 0.05 MiB.
        let top = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-header-only.txt"
        ))
        .unwrap();
        let exact: u64 = 25_276_514_304; // fixtures/free/procps-ng-4.0.2-b.txt
        assert!(top.mem_total_bytes.unwrap().abs_diff(exact) <= 52_429);
    }

    #[test]
    fn procps_header_only_reads_the_no_space_cpu_form() {
        let r = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-header-only.txt"
        ))
        .unwrap();
        // `%Cpu(s):100.0 us,`
        assert_eq!(r.cpu.us, Some(100.0));
        assert_eq!(r.cpu.id, Some(0.0));
        assert_eq!(r.cpu_busy_percent, Some(100.0));
        assert_eq!(r.tasks_total, Some(76));
        assert_eq!(r.mem_total_bytes, mib(24105.6));
    }

    #[test]
    fn procps_kib_and_gib_scaling() {
        let k = parse(include_str!("../../fixtures/top/procps-ng-4.0.2-E-k.txt")).unwrap();
        assert_eq!(k.mem_total_bytes, Some(24_684_096 * 1024));
        let k = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-E-k-with-swap.txt"
        ))
        .unwrap();
        assert_eq!(k.mem_total_bytes, Some(24_684_096 * 1024));
        assert_eq!(k.mem_used_bytes, Some(817_268 * 1024));
        assert_eq!(k.swap_total_bytes, Some(65_532 * 1024));
        assert_eq!(k.swap_used_bytes, Some(0));
        assert_eq!(k.mem_available_bytes, Some(23_866_828 * 1024));
        let g = parse(include_str!("../../fixtures/top/procps-ng-4.0.2-E-g.txt")).unwrap();
        let gib = g.mem_total_bytes.unwrap() as f64 / (1u64 << 30) as f64;
        assert!((gib - 23.5).abs() < 0.051, "{gib}");
    }

    #[test]
    fn procps_with_swap() {
        let r = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-with-swap.txt"
        ))
        .unwrap();
        assert_eq!(r.swap_total_bytes, mib(64.0));
        assert_eq!(r.swap_used_bytes, Some(0));
        assert_eq!(r.cpu.sy, Some(100.0));
    }

    #[test]
    fn uptime_forms_from_the_time_namespace() {
        let cases: [(&str, u64); 6] = [
            (
                include_str!("../../fixtures/top/procps-ng-4.0.2-up-5-min.txt"),
                300,
            ),
            (
                include_str!("../../fixtures/top/procps-ng-4.0.2-up-1-01.txt"),
                3660,
            ),
            (
                include_str!("../../fixtures/top/procps-ng-4.0.2-up-1-day-1-min.txt"),
                86_460,
            ),
            (
                include_str!("../../fixtures/top/procps-ng-4.0.2-up-1-day-1-00.txt"),
                90_000,
            ),
            (
                include_str!("../../fixtures/top/procps-ng-4.0.2-up-2-days-0-min.txt"),
                172_800,
            ),
            (
                include_str!("../../fixtures/top/procps-ng-4.0.2-up-375-days-3-01.txt"),
                375 * 86_400 + 3 * 3600 + 60,
            ),
        ];
        for (text, secs) in cases {
            let r = parse(text).unwrap();
            assert_eq!(
                r.uptime_seconds,
                Some(secs),
                "{}",
                text.lines().next().unwrap_or("")
            );
            assert_eq!(r.load1, Some(2.48));
            assert_eq!(r.tasks_total, Some(77));
        }
    }

    #[test]
    fn localised_output_reads_decimal_commas_by_position() {
        let de = parse(include_str!("../../fixtures/top/procps-ng-4.0.2-de_DE.txt")).unwrap();
        assert_eq!(
            (de.load1, de.load5, de.load15),
            (Some(2.34), Some(1.17), Some(0.46))
        );
        assert_eq!(de.tasks_total, Some(78));
        assert_eq!(de.cpu.us, Some(50.0));
        assert_eq!(de.cpu.id, Some(0.0));
        assert_eq!(de.mem_total_bytes, mib(24105.6));
        assert_eq!(de.mem_used_bytes, mib(779.2));
        assert_eq!(de.mem_available_bytes, mib(23326.3));
        let fr = parse(include_str!("../../fixtures/top/procps-ng-4.0.2-fr_FR.txt")).unwrap();
        assert_eq!(fr.tasks_total, Some(77));
        assert_eq!(fr.cpu.us, Some(50.0), "`ut` is read by position");
        assert_eq!(fr.mem_free_bytes, mib(21622.6));
        assert_eq!(fr.swap_total_bytes, Some(0));
        assert_eq!(fr.mem_available_bytes, mib(23372.4));
    }

    #[test]
    fn busybox_one_frame() {
        let r = parse(include_str!(
            "../../fixtures/top/busybox-1.35-one-frame.txt"
        ))
        .unwrap();
        assert_eq!(r.mem_used_bytes, Some(2_781_656 * 1024));
        assert_eq!(r.mem_free_bytes, Some(21_902_440 * 1024));
        assert_eq!(
            r.mem_total_bytes,
            Some(24_684_096 * 1024),
            "used + free = MemTotal"
        );
        assert_eq!(r.mem_available_bytes, None);
        assert_eq!(r.swap_total_bytes, None);
        assert_eq!(r.uptime_seconds, None);
        assert_eq!(
            (r.load1, r.load5, r.load15),
            (Some(2.40), Some(1.14), Some(0.45))
        );
        assert_eq!(r.tasks_total, Some(105));
        assert_eq!(r.cpu.us, Some(85.0));
        assert_eq!(r.cpu.id, Some(9.0));
        assert_eq!(r.cpu.st, None);
        assert_eq!(r.cpu_busy_percent, Some(91.0));
    }

    #[test]
    fn busybox_two_frames_uses_the_last_frame() {
        let r = parse(include_str!(
            "../../fixtures/top/busybox-1.35-two-frames.txt"
        ))
        .unwrap();
        assert_eq!(r.mem_used_bytes, Some(2_709_012 * 1024));
        assert_eq!(r.cpu.us, Some(95.0));
        assert_eq!(r.cpu.sy, Some(3.0));
        assert_eq!(r.cpu.id, Some(0.0));
        assert_eq!(r.tasks_total, Some(106));
    }

    #[test]
    fn process_rows_are_ignored_even_when_they_look_like_summaries() {
        // synthetic: a process table whose command column contains summary-like text
        let text = "top - 10:00:00 up 5 min,  0 user,  load average: 0.00, 0.01, 0.05\n\
                    %Cpu(s):  1.0 us,  1.0 sy,  0.0 ni, 98.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st\n\
                    \n  PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND\n\
                    \x20   1 root      20   0   40500  11428   6296 S   0.0   0.0   0:01.88 %Cpu(s): garbage\n";
        let r = parse(text).unwrap();
        assert_eq!(r.cpu.id, Some(98.0));
        assert_eq!(r.tasks_total, None, "no Tasks line: None, never 0");
        assert_eq!(r.mem_total_bytes, None);
    }

    #[test]
    fn garbage_names_the_line() {
        let err = parse(
            "top - 10:00:00 up 5 min,  0 user,  load average: 0.00, 0.01, 0.05\nhello world\n",
        )
        .unwrap_err();
        assert_eq!(err.command, "top");
        assert_eq!(err.line_no, 2);
        assert_eq!(err.line, "hello world");
        let err = parse("top - 10:00:00 up sometime,  load average: 0.00, 0.01, 0.05").unwrap_err();
        assert_eq!(err.line_no, 1);
        assert!(
            err.to_string().starts_with("top: line 1: expected"),
            "{err}"
        );
    }

    #[test]
    fn empty_output_is_line_zero() {
        for text in ["", "\n\n  \n"] {
            let err = parse(text).unwrap_err();
            assert_eq!((err.line_no, err.line.as_str()), (0, ""));
        }
    }
}
