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
//! Older procps is read too: procps 3.2.x (`Cpu(s):  1.3%us, ...`, `Mem:  16331148k total,
//! 15883024k used, ...`), procps-ng 3.3.9 (`KiB Mem:` with `total, used, free, buffers` and
//! `cached Mem` on the swap line, which is not `avail`), 3.3.10+ (`KiB Mem :`, `buff/cache`,
//! `avail Mem`); memory figures are matched by their word, see `mem_line`.
//!
//! `top -1` (or a toprc with the `1` toggle) prints `%Cpu0  :` rows instead of `%Cpu(s)`; they
//! go to [`TopReport::per_cpu`], and the aggregate is their mean when every CPU has a row (not
//! in the 80-column form, which cuts off every second CPU: then it stays `None`). When the line is wide enough
//! procps-ng 4 prints two CPUs, and Mem and Swap, abreast on one line; each half is read. Bar
//! graph mode (`t`/`m` toggles saved in a toprc: `%Cpu(s):  50.0/50.0  100[|||...]`) is refused
//! with an error naming the line.
//!
//! BusyBox (no uptime, no swap, no `avail`):
//! ```text
//! Mem: 2640600K used, 22043496K free, 8788K shrd, 19072K buff, 1885820K cached
//! CPU:  94% usr   5% sys   0% nic   0% idle   0% io   0% irq   0% sirq
//! Load average: 2.48 1.11 0.43 3/99 9794
//! ```

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till1, take_until, take_while1};
use nom::character::complete::{char, one_of, space0, space1};
use nom::combinator::opt;
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
    /// CPU time split of the last frame, in percent: the `%Cpu(s)` line, or in per-CPU mode
    /// the mean of the `%CpuN` rows when every CPU has one (see [`TopReport::per_cpu`]).
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
    /// Per-CPU rows (`%Cpu0  :`), present when `top -1`, a toprc with the `1` toggle or a
    /// system-wide `/etc/topdefaultrc` shows them instead of `%Cpu(s)`. top then prints no
    /// aggregate; when every CPU has a row (numbered 0..N, and the frame reached its Swap line)
    /// [`TopReport::cpu`] and [`TopReport::cpu_busy_percent`] are the rows' mean. Otherwise they
    /// stay `None`: at 80 columns (batch mode's default width) procps-ng 4 cuts off every
    /// second CPU, and averaging the rows shown would be a guess.
    pub per_cpu: Vec<CpuRow>,
}

/// One `%CpuN :` row.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct CpuRow {
    /// N in `%CpuN`.
    pub cpu: u32,
    pub percents: CpuPercents,
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
    /// `%Cpu0  :` (procps-ng) or `Cpu0  :` (procps 3.2): one CPU.
    PerCpu,
    /// Recognised and deliberately unused (`%Node0 :` NUMA rows, `Threads:` under `-H`).
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

    for (line_no, whole_line) in super::numbered_lines(out) {
        let trimmed = whole_line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let starts_frame = whole_line.starts_with("top -") || is_busybox_mem(whole_line);
        if in_processes && !starts_frame {
            continue;
        }
        in_processes = false;
        if trimmed.starts_with("PID ") {
            in_processes = true;
            continue;
        }
        // procps-ng 4 prints two CPUs, or Mem and Swap, abreast on one line when it is wide
        // enough; each half is read as a line of its own.
        for line in abreast_parts(whole_line) {
            let kind = classify(line, prev).ok_or_else(|| {
                ParseError::at(COMMAND, line_no, whole_line, "a top summary line")
            })?;
            let repeats = !matches!(kind, Kind::Ignored | Kind::PerCpu) && seen.contains(&kind);
            if matches!(kind, Kind::Summary | Kind::BusyboxMem) || repeats {
                frame = TopReport::default();
                seen.clear();
            }
            read_summary_part(&mut frame, kind, line)
                .map_err(|what| ParseError::at(COMMAND, line_no, whole_line, what))?;
            seen.push(kind);
            prev = Some(kind);
            any = true;
        }
    }
    if !any {
        return Err(ParseError::empty(
            COMMAND,
            "a top summary ('top - ...' or BusyBox 'Mem: ...')",
        ));
    }
    if frame.cpu == CpuPercents::default() && every_cpu_has_a_row(&frame, &seen) {
        frame.cpu = mean_of_rows(&frame.per_cpu);
    }
    // top prints idle to 0.1 (a mean of rows to 0.01 or finer); rounding the difference to
    // 0.01 keeps 0.4 from reading 0.4000000000000057.
    frame.cpu_busy_percent = frame
        .cpu
        .id
        .map(|id| ((100.0 - id) * 100.0).round().clamp(0.0, 10_000.0) / 100.0);
    Ok(frame)
}

/// Whether the last frame's `%CpuN` rows cover every CPU, so their mean is the host's figure.
///
/// top prints no `%Cpu(s)` line in per-CPU mode, and the rows shown are not always all of them:
/// at 80 columns (batch mode's default width) procps-ng 4 prints two CPUs abreast and cuts off
/// the second of each pair, and Mem and Swap abreast, cutting off Swap; a capture cut short
/// with `head` may stop inside the CPU rows. So the rows count only when they are numbered
/// 0..N without a gap or repeat (a cut-off odd CPU leaves a gap from 4 CPUs up) and the frame
/// reached its Swap line (cut off too at 80 columns, which is what gives away the 2-CPU case,
/// where `%Cpu0` alone looks like a 1-CPU host).
fn every_cpu_has_a_row(frame: &TopReport, seen: &[Kind]) -> bool {
    let numbered_from_zero = frame
        .per_cpu
        .iter()
        .enumerate()
        .all(|(i, row)| u32::try_from(i).is_ok_and(|i| i == row.cpu));
    !frame.per_cpu.is_empty() && numbered_from_zero && seen.contains(&Kind::Swap)
}

/// The mean of each field over `rows`, rounded to 0.01; `None` for a field some row lacks.
/// top computes `%Cpu(s)` from the summed ticks of all CPUs, and each CPU ticks at the same
/// rate, so the mean of the rows is that figure (to the rows' 0.1 rounding).
fn mean_of_rows(rows: &[CpuRow]) -> CpuPercents {
    let mean = |field: fn(&CpuPercents) -> Option<f64>| -> Option<f64> {
        let sum = rows
            .iter()
            .map(|r| field(&r.percents))
            .sum::<Option<f64>>()?;
        let n = rows.len() as f64;
        (n > 0.0).then(|| (sum / n * 100.0).round() / 100.0)
    };
    CpuPercents {
        us: mean(|p| p.us),
        sy: mean(|p| p.sy),
        ni: mean(|p| p.ni),
        id: mean(|p| p.id),
        wa: mean(|p| p.wa),
        hi: mean(|p| p.hi),
        si: mean(|p| p.si),
        st: mean(|p| p.st),
    }
}

/// Reads one summary line (or one half of an abreast line) of known `kind` into `frame`;
/// `Err` says what the line should have looked like.
fn read_summary_part(frame: &mut TopReport, kind: Kind, line: &str) -> Result<(), String> {
    let bad = |what: &str| what.to_string();
    {
        match kind {
            Kind::Summary => {
                let (uptime, loads) = summary_line(line)
                    .map_err(|_| bad("'top - HH:MM:SS up ..., load average: a, b, c'"))?;
                frame.uptime_seconds = Some(uptime);
                set_loads(frame, loads);
            }
            Kind::Tasks => {
                frame.tasks_total =
                    Some(first_count(line).map_err(|_| bad("'Tasks: N total, ...'"))?);
            }
            Kind::Cpu => {
                frame.cpu = cpu_line(line).map_err(|_| bad(CPU_EXPECTED))?;
            }
            Kind::Mem => {
                let m = mem_line(line, false)
                    .map_err(|_| bad("'MiB Mem : N total, N free, N used, N buff/cache'"))?;
                frame.mem_total_bytes = m.total;
                frame.mem_free_bytes = m.free;
                frame.mem_used_bytes = m.used;
            }
            Kind::Swap => {
                let m = mem_line(line, true)
                    .map_err(|_| bad("'MiB Swap: N total, N free, N used. N avail Mem'"))?;
                frame.swap_total_bytes = m.total;
                frame.swap_used_bytes = m.used;
                frame.mem_available_bytes = m.avail;
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
                set_loads(frame, loads);
                frame.tasks_total = Some(total);
            }
            Kind::PerCpu => {
                let cpu = cpu_number(line).ok_or_else(|| bad("'%CpuN  : N us, N sy, ...'"))?;
                let percents = cpu_line(line).map_err(|_| bad(CPU_EXPECTED))?;
                frame.per_cpu.push(CpuRow { cpu, percents });
            }
            Kind::Ignored => {}
        }
    }
    Ok(())
}

const CPU_EXPECTED: &str = "'%Cpu(s): N us, N sy, ...' (top's bar-graph mode, the 't'/'m' \
                            toggles saved in a toprc, is not supported)";

/// BusyBox `Mem: 2640600K used, ...` (procps 3.2's `Mem:  16331148k total, ...` has a total).
fn is_busybox_mem(line: &str) -> bool {
    line.starts_with("Mem:") && !line.contains("total")
}

/// Splits an abreast line at the start of its second half: a `%Cpu`/`Cpu` label or a memory
/// unit (`MiB Swap:`) after at least two spaces. Other lines come back whole.
/// ```text
/// %Cpu0  :  0.0 us, ... 0.0 st   %Cpu1  :  0.0 us, ... 0.0 st
/// MiB Mem :  24105.6 total, ... buff/cache       MiB Swap:      0.0 total, ... avail Mem
/// ```
fn abreast_parts(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut search = 0;
    while let Some(gap) = line.get(search..).and_then(|t| t.find("  ")) {
        let gap_at = search + gap;
        let Some(after) = line.get(gap_at..) else {
            break;
        };
        let next = gap_at + (after.len() - after.trim_start().len());
        let tail = line.get(next..).unwrap_or_default();
        let label_like = tail.starts_with("%Cpu")
            || tail.starts_with("%CPU")
            || (tail.starts_with("Cpu") && tail.get(3..4).is_some_and(|c| c != "("))
            || tail
                .split_once(' ')
                .is_some_and(|(w, _)| memory_unit(w).is_some());
        if label_like && next > start && !tail.is_empty() {
            if let Some(part) = line.get(start..gap_at) {
                parts.push(part);
            }
            start = next;
        }
        if next <= search {
            break;
        }
        search = next;
    }
    if let Some(part) = line.get(start..) {
        parts.push(part);
    }
    parts
}

/// `%Cpu12 :` / `Cpu0  :` → 12 / 0.
fn cpu_number(line: &str) -> Option<u32> {
    let label = line.split_once(':')?.0.trim();
    let digits = label
        .trim_start_matches('%')
        .get(3..)?
        .trim_end_matches(char::is_whitespace);
    digits.parse().ok()
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
    if is_busybox_mem(line) {
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
    // procps 3.2: `Mem:  16331148k total, ...`, `Swap:  2097144k total, ...`
    if label == "Mem" {
        return Some(Kind::Mem);
    }
    if label == "Swap" {
        return Some(Kind::Swap);
    }
    // `%Cpu(s)` (procps-ng), `Cpu(s)` (procps 3.2), `%CPU(s)` (de_DE)
    let cpu_label = label.strip_prefix('%').unwrap_or(label);
    if cpu_label.eq_ignore_ascii_case("Cpu(s)") {
        return Some(Kind::Cpu);
    }
    if cpu_label
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("Cpu"))
        && cpu_number(line).is_some()
    {
        return Some(Kind::PerCpu);
    }
    if label.starts_with("%Node") {
        return Some(Kind::Ignored); // NUMA rows (`2`/`3` toggles)
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
/// procps 3.2 wrote `Cpu(s):  1.3%us,  0.5%sy, ...` (older 3.2 releases `21.7% us`) and had no
/// `st` before 3.2.7; a key that is not printed stays `None`.
fn cpu_line(line: &str) -> Result<CpuPercents, ()> {
    let pair = (
        space0,
        decimal,
        opt(char('%')),
        space0,
        take_while1(|c: char| c.is_alphabetic()),
        opt(char(',')),
    )
        .map(|(_, v, _, _, k, _)| (k, v));
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

/// The figures of a procps memory line, in bytes, by meaning.
#[derive(Debug, Default)]
struct MemFigures {
    total: Option<u64>,
    free: Option<u64>,
    used: Option<u64>,
    /// `avail Mem` on the swap line (procps-ng 3.3.10+); 3.3.9's `cached Mem` is not it.
    avail: Option<u64>,
}

/// What a memory figure's word means. Unknown (translated) words fall back to their position
/// in the procps-ng 3.3.10+ order, which translations keep.
fn mem_word(
    word: &str,
    position: usize,
    swap: bool,
) -> Option<fn(&mut MemFigures) -> &mut Option<u64>> {
    let total: fn(&mut MemFigures) -> &mut Option<u64> = |m| &mut m.total;
    let free: fn(&mut MemFigures) -> &mut Option<u64> = |m| &mut m.free;
    let used: fn(&mut MemFigures) -> &mut Option<u64> = |m| &mut m.used;
    let avail: fn(&mut MemFigures) -> &mut Option<u64> = |m| &mut m.avail;
    match word {
        "total" => Some(total),
        "free" | "libr" => Some(free),
        "used" | "util" => Some(used),
        "avail" | "dispo" => Some(avail),
        "buff/cache" | "buffers" | "cached" | "tamp/cache" => None,
        _ => match (position, swap) {
            (0, _) => Some(total),
            (1, _) => Some(free),
            (2, _) => Some(used),
            (3, true) => Some(avail),
            _ => None,
        },
    }
}

/// A procps memory line; figures are matched to meanings by their word, since the order
/// changed in procps-ng 3.3.10:
/// ```text
/// MiB Mem :  24105.6 total,  21766.3 free,    705.2 used,   1906.1 buff/cache     (3.3.10+)
/// MiB Swap:      0.0 total,      0.0 free,      0.0 used.  23400.4 avail Mem
/// KiB Mem:  16331148 total, 15883024 used,   448124 free,   251928 buffers         (3.3.9)
/// KiB Swap:  2097144 total,   123456 used,  1974088 free.  9876543 cached Mem
/// Mem:  16331148k total, 15883024k used,   448124k free,   251928k buffers        (3.2.x)
/// KiB Mem : 26385862+total, 25123456+free, ...        (3.3.x: `+` = too wide, digits cut)
/// ```
/// procps 3.2's `k` suffix is KiB (top never meant 1000). A figure cut short by `+` is `None`.
fn mem_line(line: &str, swap: bool) -> Result<MemFigures, ()> {
    let word = take_while1(|c: char| !c.is_whitespace() && c != ',' && c != '.');
    let figure = (
        space0,
        number_text,
        opt(one_of("kKmMgGtT")),
        opt(char('+')),
        space0,
        word,
        opt(alt((char(','), char('.')))),
    )
        .map(|(_, n, suffix, cut, _, w, _)| (n, suffix, cut.is_some(), w));
    let r: IResult<&str, (&str, Vec<_>)> = (
        terminated(take_till1(|c: char| c == ':'), char(':')),
        many1(figure),
    )
        .parse(line);
    let (_, (label, figures)) = r.map_err(|_| ())?;
    let line_unit = match label.split_whitespace().next() {
        Some(unit) if label.split_whitespace().count() > 1 => memory_unit(unit).ok_or(())?,
        _ => 1024, // procps 3.2 `Mem:`: figures carry `k`
    };
    if figures.len() < 3 {
        return Err(());
    }
    let mut m = MemFigures::default();
    for (position, (number, suffix, cut, word)) in figures.into_iter().enumerate() {
        let mult = match suffix {
            None => line_unit,
            Some(c) => {
                unit_multiplier(&c.to_ascii_uppercase().to_string(), BareSuffix::Binary).ok_or(())?
            }
        };
        let value = if cut { None } else { scale(number, mult) };
        if let Some(slot) = mem_word(word, position, swap) {
            *slot(&mut m) = value;
        }
    }
    Ok(m)
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
    fn per_cpu_rows_at_80_columns_lose_every_second_cpu() {
        // `top -1 -b -n 1`: batch mode is 80 columns wide, so %Cpu1 and Swap are cut off.
        let r = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-1-per-cpu-80-cols.txt"
        ))
        .unwrap();
        assert_eq!(r.per_cpu.len(), 1);
        let cpu0 = r.per_cpu.first().unwrap();
        assert_eq!(cpu0.cpu, 0);
        assert_eq!(
            (cpu0.percents.id, cpu0.percents.st),
            (Some(100.0), Some(0.0))
        );
        assert_eq!(
            r.cpu,
            CpuPercents::default(),
            "no %Cpu(s): None, not a guess"
        );
        assert_eq!(r.cpu_busy_percent, None);
        assert_eq!(r.mem_total_bytes, mib(24105.6));
        assert_eq!(r.mem_used_bytes, mib(442.5));
        assert_eq!((r.swap_total_bytes, r.mem_available_bytes), (None, None));
        assert_eq!(r.tasks_total, Some(69));
    }

    #[test]
    fn abreast_cpus_and_mem_swap_on_one_line() {
        let r = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-1-abreast-200-cols.txt"
        ))
        .unwrap();
        let ids: Vec<u32> = r.per_cpu.iter().map(|c| c.cpu).collect();
        assert_eq!(ids, [0, 1]);
        assert_eq!(r.per_cpu.get(1).unwrap().percents.id, Some(100.0));
        assert_eq!(r.mem_total_bytes, mib(24105.6));
        assert_eq!(r.mem_free_bytes, mib(19863.2));
        assert_eq!(r.swap_total_bytes, Some(0));
        assert_eq!(r.mem_available_bytes, mib(23663.1));
        let two = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-1-abreast-two-frames.txt"
        ))
        .unwrap();
        assert_eq!(two.per_cpu.len(), 2, "the last frame only");
        assert_eq!(two.mem_available_bytes, mib(23662.6));
        assert_eq!(two.uptime_seconds, Some(32 * 60));
        // synthetic: procps 3.2 per-CPU rows, `Cpu0  :  1.0%us, ...`
        let text = "top - 10:00:00 up 12 days,  3:02,  2 users,  load average: 0.00, 0.01, 0.05\n\
                    Cpu0  :  1.0%us,  2.0%sy,  0.0%ni, 97.0%id,  0.0%wa,  0.0%hi,  0.0%si,  0.0%st\n\
                    Cpu1  :  3.0%us,  1.0%sy,  0.0%ni, 96.0%id,  0.0%wa,  0.0%hi,  0.0%si,  0.0%st\n";
        let r = parse(text).unwrap();
        assert_eq!(r.per_cpu.len(), 2);
        assert_eq!(r.per_cpu.get(1).unwrap().percents.us, Some(3.0));
        assert_eq!(r.uptime_seconds, Some(12 * 86_400 + 3 * 3600 + 2 * 60));
    }

    #[test]
    fn per_cpu_rows_one_per_line_give_their_mean() {
        // Issue #18: a toprc with the `1` toggle (one CPU per line) gave no cpu_busy_percent.
        let r = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-toprc-1-per-cpu-two-frames-one-core-busy.txt"
        ))
        .unwrap();
        // last frame: %Cpu0 9.4 us 6.0 sy 73.5 id 7.7 wa 0.9 st; %Cpu1 54.8 us 44.3 sy 0.0 id
        assert_eq!(r.per_cpu.len(), 2, "the last frame only");
        assert_eq!(r.cpu.us, Some(32.1));
        assert_eq!(r.cpu.sy, Some(25.15));
        assert_eq!(r.cpu.id, Some(36.75));
        assert_eq!(r.cpu.wa, Some(3.85));
        assert_eq!(r.cpu.si, Some(1.3));
        assert_eq!(r.cpu.st, Some(0.9));
        assert_eq!(r.cpu_busy_percent, Some(63.25));
        assert_eq!(r.swap_total_bytes, Some(0));
    }

    #[test]
    fn per_cpu_rows_abreast_give_their_mean() {
        let r = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-1-abreast-two-frames.txt"
        ))
        .unwrap();
        assert_eq!(
            (r.cpu.id, r.cpu.us, r.cpu.st),
            (Some(100.0), Some(0.0), Some(0.0))
        );
        assert_eq!(r.cpu_busy_percent, Some(0.0));
        // synthetic: four CPUs abreast at 80 columns lose %Cpu1 and %Cpu3 (a gap) and Swap
        let text = "top - 10:00:00 up 5 min,  0 user,  load average: 0.00, 0.01, 0.05\n\
                    %Cpu0  : 10.0 us,  0.0 sy,  0.0 ni, 90.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st \n\
                    %Cpu2  : 30.0 us,  0.0 sy,  0.0 ni, 70.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st \n\
                    MiB Mem :  24105.6 total,  19863.2 free,    442.5 used,   4112.6 buff/cache     \n";
        let r = parse(text).unwrap();
        assert_eq!(
            (r.cpu_busy_percent, r.cpu.us),
            (None, None),
            "a gap: no mean"
        );
        // synthetic: cut by `head` before the memory lines: the rows may not be all of them
        let text = "top - 10:00:00 up 5 min,  0 user,  load average: 0.00, 0.01, 0.05\n\
                    %Cpu0  : 10.0 us,  0.0 sy,  0.0 ni, 90.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st \n\
                    %Cpu1  : 30.0 us,  0.0 sy,  0.0 ni, 70.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st \n";
        assert_eq!(parse(text).unwrap().cpu_busy_percent, None);
    }

    #[test]
    fn toprc_bar_graphs_are_refused_naming_the_line() {
        let err = parse(include_str!(
            "../../fixtures/top/procps-ng-4.0.2-toprc-graphs.txt"
        ))
        .unwrap_err();
        assert_eq!(err.line_no, 3);
        assert!(err.line.starts_with("%Cpu(s):   0.0/100.0"), "{err}");
        assert!(err.expected.contains("bar-graph"), "{err}");
    }

    #[test]
    fn procps_3_2_header() {
        // synthetic: procps 3.2.8 (CentOS 6): `%us` glued to the number, `k` figures in the
        // order total, used, free, buffers; `cached` on the swap line
        let text = "top - 14:03:11 up 375 days,  3:01,  1 user,  load average: 0.15, 0.10, 0.05\n\
                    Tasks: 183 total,   1 running, 182 sleeping,   0 stopped,   0 zombie\n\
                    Cpu(s):  1.3%us,  0.5%sy,  0.0%ni, 97.9%id,  0.2%wa,  0.0%hi,  0.1%si,  0.0%st\n\
                    Mem:  16331148k total, 15883024k used,   448124k free,   251928k buffers\n\
                    Swap:  2097144k total,   123456k used,  1973688k free,  9876543k cached\n";
        let r = parse(text).unwrap();
        assert_eq!(r.uptime_seconds, Some(375 * 86_400 + 3 * 3600 + 60));
        assert_eq!(r.tasks_total, Some(183));
        assert_eq!(
            (r.cpu.us, r.cpu.id, r.cpu.st),
            (Some(1.3), Some(97.9), Some(0.0))
        );
        assert_eq!(r.cpu_busy_percent, Some(2.1));
        assert_eq!(r.mem_total_bytes, Some(16_331_148 * 1024));
        assert_eq!(r.mem_used_bytes, Some(15_883_024 * 1024));
        assert_eq!(r.mem_free_bytes, Some(448_124 * 1024));
        assert_eq!(r.swap_used_bytes, Some(123_456 * 1024));
        assert_eq!(
            r.mem_available_bytes, None,
            "`cached` is not available memory"
        );
        // synthetic: early procps 3.2 `21.7% us` spacing and no `st` column
        let text = "top - 14:03:11 up 6 min,  1 user,  load average: 0.15, 0.10, 0.05\n\
                    Cpu(s): 21.7% us,  2.3% sy,  0.0% ni, 75.0% id,  0.7% wa,  0.0% hi,  0.3% si\n";
        let r = parse(text).unwrap();
        assert_eq!(
            (r.cpu.us, r.cpu.si, r.cpu.st),
            (Some(21.7), Some(0.3), None)
        );
        assert_eq!(r.cpu_busy_percent, Some(25.0));
        assert_eq!(r.uptime_seconds, Some(360));
    }

    #[test]
    fn procps_ng_3_3_headers() {
        // synthetic: procps-ng 3.3.9 (CentOS 7.0): `KiB Mem:`, used before free, `cached Mem`
        let text = "top - 14:03:11 up  2:26,  2 users,  load average: 0.00, 0.01, 0.05\n\
                    Tasks:  98 total,   2 running,  96 sleeping,   0 stopped,   0 zombie\n\
                    %Cpu(s):  0.3 us,  0.3 sy,  0.0 ni, 99.3 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st\n\
                    KiB Mem:   1016476 total,   862208 used,   154268 free,      948 buffers\n\
                    KiB Swap:  2097148 total,        0 used,  2097148 free.   510304 cached Mem\n";
        let r = parse(text).unwrap();
        assert_eq!(r.uptime_seconds, Some(2 * 3600 + 26 * 60));
        assert_eq!(r.mem_used_bytes, Some(862_208 * 1024));
        assert_eq!(r.mem_free_bytes, Some(154_268 * 1024));
        assert_eq!(r.swap_total_bytes, Some(2_097_148 * 1024));
        assert_eq!(r.swap_used_bytes, Some(0));
        assert_eq!(
            r.mem_available_bytes, None,
            "`cached Mem` is not `avail Mem`"
        );
        // synthetic: procps-ng 3.3.10 (CentOS 7.2+): `KiB Mem :`, buff/cache, avail Mem
        let text = "top - 14:03:11 up 1 day,  6 min,  0 users,  load average: 0.00, 0.01, 0.05\n\
                    KiB Mem :  1016476 total,   154268 free,   351904 used,   510304 buff/cache\n\
                    KiB Swap:  2097148 total,  2097148 free,        0 used.   480452 avail Mem\n";
        let r = parse(text).unwrap();
        assert_eq!(r.uptime_seconds, Some(86_400 + 360));
        assert_eq!(r.mem_free_bytes, Some(154_268 * 1024));
        assert_eq!(r.mem_used_bytes, Some(351_904 * 1024));
        assert_eq!(r.mem_available_bytes, Some(480_452 * 1024));
        // synthetic: procps-ng 3.3 with figures too wide for their column (`+` = digits cut)
        let text = "top - 14:03:11 up 6 min,  0 users,  load average: 0.00, 0.01, 0.05\n\
                    KiB Mem : 26385862+total, 25123456+free,  5432100 used,  7654321 buff/cache\n";
        let r = parse(text).unwrap();
        assert_eq!((r.mem_total_bytes, r.mem_free_bytes), (None, None));
        assert_eq!(r.mem_used_bytes, Some(5_432_100 * 1024));
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

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]
        /// Arbitrary text, and real fixtures truncated, shuffled or spliced: never a panic.
        #[test]
        fn never_panics(input in crate::parse::tests::fixture_variants("top")) {
            let _ = parse(&input);
        }
    }
}
