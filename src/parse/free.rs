//! `free` output (procps-ng 4.0.x and BusyBox 1.35) → [`FreeReport`].
//!
//! **Which function to call.** `free` prints plain numbers in a unit chosen by a flag the
//! parser cannot see, so the caller says which:
//! - [`parse_bytes`] for `free -b` (what the poller runs: exact, no rounding);
//! - [`parse`] for plain `free` / `free -k` (the procps and BusyBox default, KiB);
//! - [`parse_with_unit`] for `-m`, `-g`, `--si` and the rest.
//!
//! Values with a suffix (`free -h`: `23Gi`, `736Mi`, `0B`; BusyBox `-h`: `23.5G`) describe
//! themselves and are read the same by all three. Bare one-letter suffixes are binary (BusyBox
//! `-h`) unless the unit passed is decimal (`--si -h` prints `25G` meaning 25·10^9).
//!
//! The header names the columns and values are mapped by name, not position:
//! ```text
//!                total        used        free      shared  buff/cache   available
//! Mem:     25276514304   772055040 22669045760     8998912  2122833920 24504459264
//! Swap:              0           0           0
//! ```
//! `-w` splits `buff/cache` into `buffers` and `cache`; `-l` adds `Low:`/`High:`, `-t` a
//! `Total:` row, `-v` a `Comm:` row, procps 3.2.8/3.3.3 a `-/+ buffers/cache:` row and older
//! BusyBox a `-/+ buffers:` row: all ignored. Those old versions print `buffers` and `cached`
//! columns and no `available`, which is then `None`. Old `free -h` prints bare `G`/`M`/`K`/`B`
//! suffixes (binary, as procps-ng 4's `Gi`/`Mi`).
//! de_DE/fr_FR column and row names are known too. procps-ng 4 computes `used` as
//! `total - available`; older procps as `total - free - buff/cache`: we report the printed value.

use nom::bytes::complete::take_till1;
use nom::character::complete::{char, space0};
use nom::sequence::terminated;
use nom::{IResult, Parser};

use super::{parse_size_with, BareSuffix, ParseError};

const COMMAND: &str = "free";

/// Memory and swap as printed by `free`, in bytes.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct FreeReport {
    pub mem_total_bytes: Option<u64>,
    pub mem_used_bytes: Option<u64>,
    pub mem_free_bytes: Option<u64>,
    /// `available` (MemAvailable); `None` on kernels/tools that do not print it.
    pub mem_available_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_used_bytes: Option<u64>,
    pub swap_free_bytes: Option<u64>,
}

/// The unit of plain (suffix-less) numbers, i.e. which `free` flag produced the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// `free -b`
    Bytes,
    /// `free`, `free -k`, BusyBox `free` (the default)
    #[default]
    Kibibytes,
    /// `free -m`
    Mebibytes,
    /// `free -g`
    Gibibytes,
    /// `free --tebi`
    Tebibytes,
    /// `free --si -k` / `free --kilo`
    Kilobytes,
    /// `free --si -m` / `free --mega`
    Megabytes,
    /// `free --si -g` / `free --giga`
    Gigabytes,
}

impl Unit {
    fn multiplier(self) -> u64 {
        match self {
            Unit::Bytes => 1,
            Unit::Kibibytes => 1 << 10,
            Unit::Mebibytes => 1 << 20,
            Unit::Gibibytes => 1 << 30,
            Unit::Tebibytes => 1 << 40,
            Unit::Kilobytes => 1_000,
            Unit::Megabytes => 1_000_000,
            Unit::Gigabytes => 1_000_000_000,
        }
    }

    /// How the unit is written in messages and JSON: `bytes`, `KiB`, `MB`, ...
    pub fn label(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Kibibytes => "KiB",
            Unit::Mebibytes => "MiB",
            Unit::Gibibytes => "GiB",
            Unit::Tebibytes => "TiB",
            Unit::Kilobytes => "kB",
            Unit::Megabytes => "MB",
            Unit::Gigabytes => "GB",
        }
    }

    fn bare_suffix(self) -> BareSuffix {
        match self {
            Unit::Kilobytes | Unit::Megabytes | Unit::Gigabytes => BareSuffix::Decimal,
            _ => BareSuffix::Binary,
        }
    }
}

/// Parses `free -b` output (plain numbers are bytes). **This is the one the poller uses.**
///
/// # Errors
/// See [`parse_with_unit`].
pub fn parse_bytes(out: &str) -> Result<FreeReport, ParseError> {
    parse_with_unit(out, Unit::Bytes)
}

/// Parses plain `free` / `free -k` output (plain numbers are KiB, the procps and BusyBox default).
///
/// # Errors
/// See [`parse_with_unit`].
pub fn parse(out: &str) -> Result<FreeReport, ParseError> {
    parse_with_unit(out, Unit::Kibibytes)
}

/// Largest memory total taken as plausible: 64 TiB (the largest single machines sold have 32).
pub const PLAUSIBLE_MAX_TOTAL_BYTES: u64 = 64 << 40;
/// Smallest memory total taken as plausible: 1 MiB.
pub const PLAUSIBLE_MIN_TOTAL_BYTES: u64 = 1 << 20;

/// Why `report`'s memory total is implausible when plain numbers were read as `unit`, and
/// which unit would make it plausible; `None` when it is plausible (or absent). `free` cannot say
/// which flag it ran with, so a total above 64 TiB or below 1 MiB almost always means the wrong
/// unit was assumed: `free -b` read as KiB gives 25 TB for a 24 GiB machine.
pub fn implausible_total(report: &FreeReport, unit: Unit) -> Option<String> {
    let total = report.mem_total_bytes?;
    if (PLAUSIBLE_MIN_TOTAL_BYTES..=PLAUSIBLE_MAX_TOTAL_BYTES).contains(&total) {
        return None;
    }
    let side = if total > PLAUSIBLE_MAX_TOTAL_BYTES {
        "more than 64 TiB"
    } else {
        "less than 1 MiB"
    };
    // The one confusion worth naming: `free -b` (what the poller runs) read as anything else.
    let plain = total / unit.multiplier().max(1);
    let bytes_fit = unit != Unit::Bytes
        && (PLAUSIBLE_MIN_TOTAL_BYTES..=PLAUSIBLE_MAX_TOTAL_BYTES).contains(&plain);
    let hint = if bytes_fit {
        "; if this is `free -b` output, pass --unit bytes".to_string()
    } else {
        "; pass --unit with the flag free ran with".to_string()
    };
    Some(format!(
        "memory total {total} bytes is {side}: plain numbers were read as {}{hint}",
        unit.label()
    ))
}

/// Why `text`, read with plain numbers in `unit`, looks like `free -b` output; `None` when it
/// does not. `free` reads the kernel's KiB and multiplies, so in bytes every figure is a
/// multiple of 1024, which KiB figures are only by chance (one in 1024 each); three or more
/// non-zero figures make chance negligible. This catches what the 64 TiB line cannot: a 24 GiB
/// host's `free -b` read as KiB is 23.5 TiB. Figures with a suffix (`-h`) say their own unit,
/// so text with any is left alone.
pub fn looks_like_bytes(text: &str, unit: Unit) -> Option<String> {
    if unit == Unit::Bytes {
        return None;
    }
    let mut figures = Vec::new();
    // The header names columns; the rows start with a label (`Mem:`, `Speicher:`, `Swap:`).
    for line in text.lines().skip(1) {
        for token in line.split_whitespace().skip(1) {
            if token.bytes().all(|b| b.is_ascii_digit()) {
                figures.push(token.parse::<u64>().ok()?);
            } else if token.bytes().any(|b| b.is_ascii_digit()) {
                return None;
            }
        }
    }
    let nonzero: Vec<u64> = figures.into_iter().filter(|&v| v > 0).collect();
    (nonzero.len() >= 3 && nonzero.iter().all(|v| v % 1024 == 0)).then(|| {
        format!(
            "every figure is a multiple of 1024, as `free -b` prints them (it multiplies the \
             kernel's KiB), so plain numbers read as {} are likely 1024 times too large; if this \
             is `free -b` output, pass --unit bytes",
            unit.label()
        )
    })
}

/// Column meanings we use; others (`shared`, `buffers`, `cache`, `buff/cache`) are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Total,
    Used,
    Free,
    Available,
    Other,
}

fn column(name: &str) -> Option<Column> {
    Some(match name {
        "total" | "gesamt" => Column::Total,
        "used" | "benutzt" | "utilisé" => Column::Used,
        "free" | "frei" | "libre" => Column::Free,
        "available" | "verfügbar" | "disponible" => Column::Available,
        "shared" | "buff/cache" | "buffers" | "cache" | "cached" | "gemns." | "Puffer/Cache"
        | "Puffer" | "Cache" | "partagé" | "tamp/cache" | "tampon" => Column::Other,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Mem,
    Swap,
    Ignored,
}

fn row(label: &str) -> Option<Row> {
    Some(match label {
        "Mem" | "Speicher" => Row::Mem,
        "Swap" | "Échange" | "Auslagerung" => Row::Swap,
        // `-/+ buffers/cache:` (procps 3.2.8, 3.3.3), `-/+ buffers:` (older BusyBox)
        "Low" | "High" | "Total" | "Comm" | "-/+ buffers/cache" | "-/+ buffers" | "Niedrig"
        | "Hoch" | "Gesamt" | "Bas" | "Haut" => Row::Ignored,
        _ => return None,
    })
}

/// nom: `Mem:` → `Mem` (the row label, which may contain spaces: `-/+ buffers/cache:`).
fn row_label(i: &str) -> IResult<&str, &str> {
    terminated(take_till1(|c: char| c == ':'), (char(':'), space0)).parse(i)
}

/// Parses `free` output whose plain numbers are in `unit`.
///
/// # Errors
/// [`ParseError`] for an unknown header column, an unknown row label, or a value that is not a
/// number/size; line 0 for empty output. Output without a `Mem:` row is an error too.
pub fn parse_with_unit(out: &str, unit: Unit) -> Result<FreeReport, ParseError> {
    let mut columns: Option<Vec<Column>> = None;
    let mut report = FreeReport::default();
    let mut saw_mem = false;
    let mut last_line = (0, "");
    for (line_no, line) in super::numbered_lines(out) {
        if line.trim().is_empty() {
            continue;
        }
        last_line = (line_no, line);
        let Some(cols) = &columns else {
            let parsed: Option<Vec<Column>> = line.split_whitespace().map(column).collect();
            match parsed {
                Some(c) if c.contains(&Column::Total) => columns = Some(c),
                _ => {
                    return Err(ParseError::at(
                        COMMAND,
                        line_no,
                        line,
                        "the header 'total used free ...'",
                    ))
                }
            }
            continue;
        };
        let bad = |what: &str| ParseError::at(COMMAND, line_no, line, what);
        let (values, label) = row_label(line).map_err(|_| bad("a row such as 'Mem: N N N'"))?;
        let kind = row(label.trim())
            .ok_or_else(|| bad("a row labelled Mem:, Swap:, Low:, High:, Total: or Comm:"))?;
        let mut total = None;
        let mut used = None;
        let mut free = None;
        let mut available = None;
        let tokens: Vec<&str> = values.split_whitespace().collect();
        if tokens.is_empty() || tokens.len() > cols.len() {
            return Err(bad(&format!("1 to {} values", cols.len())));
        }
        for (token, col) in tokens.iter().zip(cols.iter()) {
            let v = parse_size_with(token, unit.multiplier(), unit.bare_suffix())
                .ok_or_else(|| bad(&format!("a number or size, not '{token}'")))?;
            match col {
                Column::Total => total = Some(v),
                Column::Used => used = Some(v),
                Column::Free => free = Some(v),
                Column::Available => available = Some(v),
                Column::Other => {}
            }
        }
        match kind {
            Row::Mem => {
                saw_mem = true;
                report.mem_total_bytes = total;
                report.mem_used_bytes = used;
                report.mem_free_bytes = free;
                report.mem_available_bytes = available;
            }
            Row::Swap => {
                report.swap_total_bytes = total;
                report.swap_used_bytes = used;
                report.swap_free_bytes = free;
            }
            Row::Ignored => {}
        }
    }
    match (columns.is_some(), saw_mem) {
        (false, _) => Err(ParseError::empty(
            COMMAND,
            "the header 'total used free ...'",
        )),
        (true, false) => Err(ParseError::at(
            COMMAND,
            last_line.0,
            last_line.1,
            "a 'Mem:' row",
        )),
        (true, true) => Ok(report),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn procps_b_is_exact_bytes() {
        let r = parse_bytes(include_str!("../../fixtures/free/procps-ng-4.0.2-b.txt")).unwrap();
        assert_eq!(
            r,
            FreeReport {
                mem_total_bytes: Some(25_276_514_304),
                mem_used_bytes: Some(772_055_040),
                mem_free_bytes: Some(22_669_045_760),
                mem_available_bytes: Some(24_504_459_264),
                swap_total_bytes: Some(0),
                swap_used_bytes: Some(0),
                swap_free_bytes: Some(0),
            }
        );
        // procps-ng 4: used = total - available
        assert_eq!(
            r.mem_total_bytes.unwrap() - r.mem_available_bytes.unwrap(),
            r.mem_used_bytes.unwrap()
        );
    }

    #[test]
    fn implausible_totals_name_the_unit_that_fits() {
        // Issue #18: `free -b` read in a larger unit. On this 24 GiB machine, read as KiB it is
        // 23.5 TiB, under the 64 TiB line, and caught by its figures all being multiples of
        // 1024; read as MiB it is far over.
        let text = include_str!("../../fixtures/free/procps-ng-4.0.2-b.txt");
        assert_eq!(
            implausible_total(&parse(text).unwrap(), Unit::Kibibytes),
            None
        );
        let why = looks_like_bytes(text, Unit::Kibibytes).unwrap();
        assert!(why.contains("multiple of 1024"), "{why}");
        assert_eq!(looks_like_bytes(text, Unit::Bytes), None);
        // KiB figures, and figures with their own suffixes, are left alone.
        for other in [
            include_str!("../../fixtures/free/procps-ng-4.0.2-default.txt"),
            include_str!("../../fixtures/free/procps-ng-4.0.2-h.txt"),
            include_str!("../../fixtures/free/busybox-1.35-default.txt"),
        ] {
            assert_eq!(looks_like_bytes(other, Unit::Kibibytes), None, "{other}");
        }
        let as_mib = parse_with_unit(text, Unit::Mebibytes).unwrap();
        let why = implausible_total(&as_mib, Unit::Mebibytes).unwrap();
        assert!(why.contains("more than 64 TiB"), "{why}");
        assert!(why.contains("read as MiB"), "{why}");
        assert!(why.contains("--unit bytes"), "{why}");
        assert_eq!(
            implausible_total(&parse_bytes(text).unwrap(), Unit::Bytes),
            None
        );
        // plain `free` (KiB) read as bytes: 24 MiB is plausible, so only `free -m` read as bytes
        // (24105 bytes) falls below 1 MiB
        let m = include_str!("../../fixtures/free/procps-ng-4.0.2-m.txt");
        let why = implausible_total(&parse_bytes(m).unwrap(), Unit::Bytes).unwrap();
        assert!(why.contains("less than 1 MiB"), "{why}");
        assert_eq!(
            implausible_total(
                &parse_with_unit(m, Unit::Mebibytes).unwrap(),
                Unit::Mebibytes
            ),
            None
        );
    }

    #[test]
    fn procps_b_with_swap() {
        let r = parse_bytes(include_str!(
            "../../fixtures/free/procps-ng-4.0.2-b-with-swap.txt"
        ))
        .unwrap();
        assert_eq!(r.swap_total_bytes, Some(67_104_768));
        assert_eq!(r.swap_used_bytes, Some(0));
        assert_eq!(r.swap_free_bytes, Some(67_104_768));
        assert_eq!(r.mem_used_bytes, Some(834_105_344));
    }

    #[test]
    fn wide_total_low_and_comm_rows_do_not_disturb_mem_and_swap() {
        for text in [
            include_str!("../../fixtures/free/procps-ng-4.0.2-b-w.txt"),
            include_str!("../../fixtures/free/procps-ng-4.0.2-b-t.txt"),
            include_str!("../../fixtures/free/procps-ng-4.0.2-b-l.txt"),
            include_str!("../../fixtures/free/procps-ng-4.0.2-b-w-t-l.txt"),
            include_str!("../../fixtures/free/procps-ng-4.0.2-b-v.txt"),
        ] {
            let r = parse_bytes(text).unwrap();
            assert_eq!(r.mem_total_bytes, Some(25_276_514_304));
            assert_eq!(
                r.mem_used_bytes,
                Some(772_055_040),
                "Low: row has used 2607468544; must not win"
            );
            assert_eq!(r.mem_available_bytes, Some(24_504_459_264));
            assert_eq!(r.swap_total_bytes, Some(0));
        }
    }

    #[test]
    fn default_and_k_are_kib() {
        for text in [
            include_str!("../../fixtures/free/procps-ng-4.0.2-default.txt"),
            include_str!("../../fixtures/free/procps-ng-4.0.2-k.txt"),
        ] {
            let r = parse(text).unwrap();
            assert_eq!(r.mem_total_bytes, Some(24_684_096 * KIB));
            assert_eq!(r.mem_used_bytes, Some(753_960 * KIB));
            assert_eq!(r.mem_available_bytes, Some(23_930_136 * KIB));
        }
    }

    #[test]
    fn m_g_and_si_need_their_unit() {
        let m = parse_with_unit(
            include_str!("../../fixtures/free/procps-ng-4.0.2-m.txt"),
            Unit::Mebibytes,
        )
        .unwrap();
        assert_eq!(m.mem_total_bytes, Some(24_105 * MIB));
        let g = parse_with_unit(
            include_str!("../../fixtures/free/procps-ng-4.0.2-g.txt"),
            Unit::Gibibytes,
        )
        .unwrap();
        assert_eq!(g.mem_total_bytes, Some(23 * GIB));
        assert_eq!(
            g.mem_used_bytes,
            Some(0),
            "free -g rounds 736 MiB down to 0"
        );
        let si = parse_with_unit(
            include_str!("../../fixtures/free/procps-ng-4.0.2-si.txt"),
            Unit::Kilobytes,
        )
        .unwrap();
        assert_eq!(si.mem_total_bytes, Some(25_276_514_000));
    }

    #[test]
    fn human_suffixes_describe_themselves() {
        let h = parse(include_str!("../../fixtures/free/procps-ng-4.0.2-h.txt")).unwrap();
        assert_eq!(h.mem_total_bytes, Some(23 * GIB));
        assert_eq!(h.mem_used_bytes, Some(736 * MIB));
        assert_eq!(h.mem_available_bytes, Some(22 * GIB));
        assert_eq!(h.swap_total_bytes, Some(0), "`0B`");
        let h = parse_bytes(include_str!(
            "../../fixtures/free/procps-ng-4.0.2-h-with-swap.txt"
        ))
        .unwrap();
        assert_eq!(h.swap_total_bytes, Some(63 * MIB));
        let si = parse_with_unit(
            include_str!("../../fixtures/free/procps-ng-4.0.2-si-h.txt"),
            Unit::Kilobytes,
        )
        .unwrap();
        assert_eq!(si.mem_total_bytes, Some(25_000_000_000));
        assert_eq!(si.mem_used_bytes, Some(772_000_000));
    }

    #[test]
    fn busybox_free() {
        let r = parse(include_str!("../../fixtures/free/busybox-1.35-default.txt")).unwrap();
        assert_eq!(r.mem_total_bytes, Some(24_684_096 * KIB));
        assert_eq!(r.mem_used_bytes, Some(473_276 * KIB));
        assert_eq!(r.mem_available_bytes, Some(23_930_136 * KIB));
        let r = parse(include_str!(
            "../../fixtures/free/busybox-1.35-with-swap.txt"
        ))
        .unwrap();
        assert_eq!(r.swap_total_bytes, Some(65_532 * KIB));
        let b = parse_bytes(include_str!("../../fixtures/free/busybox-1.35-b.txt")).unwrap();
        assert_eq!(b.mem_total_bytes, Some(25_276_514_304));
        let m = parse_with_unit(
            include_str!("../../fixtures/free/busybox-1.35-m.txt"),
            Unit::Mebibytes,
        )
        .unwrap();
        assert_eq!(m.mem_total_bytes, Some(24_106 * MIB));
        let h = parse(include_str!("../../fixtures/free/busybox-1.35-h.txt")).unwrap();
        assert_eq!(h.mem_total_bytes, Some((23.5 * GIB as f64) as u64));
        assert_eq!(h.mem_used_bytes, Some((462.5 * MIB as f64) as u64));
        assert_eq!(h.swap_total_bytes, Some(0));
    }

    #[test]
    fn localised_headers_and_rows() {
        let de = parse(include_str!(
            "../../fixtures/free/procps-ng-4.0.2-de_DE.txt"
        ))
        .unwrap();
        assert_eq!(de.mem_total_bytes, Some(24_684_096 * KIB));
        assert_eq!(de.mem_used_bytes, Some(753_932 * KIB));
        assert_eq!(de.mem_available_bytes, Some(23_930_164 * KIB));
        assert_eq!(de.swap_total_bytes, Some(0));
        let fr = parse(include_str!(
            "../../fixtures/free/procps-ng-4.0.2-fr_FR.txt"
        ))
        .unwrap();
        assert_eq!(fr.mem_used_bytes, Some(753_968 * KIB));
        assert_eq!(fr.swap_free_bytes, Some(0));
    }

    #[test]
    fn columns_are_mapped_by_header_name() {
        // synthetic: procps-ng 3.3 without `available`, and with an old `-/+ buffers/cache:` row
        let text = "             total       used       free     shared    buffers     cached\n\
                    Mem:       1016460     941904      74556       1020      75192     551160\n\
                    -/+ buffers/cache:     315552     700908\n\
                    Swap:      1046524      15148    1031376\n";
        let r = parse(text).unwrap();
        assert_eq!(r.mem_total_bytes, Some(1_016_460 * KIB));
        assert_eq!(r.mem_free_bytes, Some(74_556 * KIB));
        assert_eq!(r.mem_available_bytes, None, "not printed: None, never 0");
        assert_eq!(r.swap_used_bytes, Some(15_148 * KIB));
    }

    #[test]
    fn human_wide_total_and_busybox_k() {
        let r = parse(include_str!(
            "../../fixtures/free/procps-ng-4.0.2-h-w-t.txt"
        ))
        .unwrap();
        assert_eq!(r.mem_total_bytes, Some(23 * GIB));
        assert_eq!(r.mem_used_bytes, Some(GIB), "`1.0Gi`");
        assert_eq!(r.mem_free_bytes, Some(18 * GIB));
        assert_eq!(r.mem_available_bytes, Some(22 * GIB));
        assert_eq!(r.swap_total_bytes, Some(0), "`Total:` row must not win");
        let k = parse(include_str!("../../fixtures/free/busybox-1.35-k.txt")).unwrap();
        assert_eq!(k.mem_total_bytes, Some(24_684_096 * KIB));
        assert_eq!(k.mem_used_bytes, Some(754_428 * KIB));
        assert_eq!(k.mem_available_bytes, Some(23_609_452 * KIB));
    }

    #[test]
    fn old_procps_and_busybox_shapes() {
        // synthetic: procps 3.2.8 (CentOS 6) `free -b`: buffers and cached, `-/+ buffers/cache:`
        let text = "             total       used       free     shared    buffers     cached\n\
                    Mem:    16723095552 16264212480  458883072          0  257974272 10112450560\n\
                    -/+ buffers/cache: 5893787648 10829307904\n\
                    Swap:    2147479552  126418944 2021060608\n";
        let r = parse_bytes(text).unwrap();
        assert_eq!(r.mem_total_bytes, Some(16_723_095_552));
        assert_eq!(
            r.mem_used_bytes,
            Some(16_264_212_480),
            "3.2.8 used includes cache"
        );
        assert_eq!(r.mem_free_bytes, Some(458_883_072));
        assert_eq!(r.mem_available_bytes, None);
        assert_eq!(r.swap_free_bytes, Some(2_021_060_608));
        // synthetic: procps 3.3.3 `free -h`: bare G/M/K/B suffixes
        let text = "             total       used       free     shared    buffers     cached\n\
                    Mem:           15G        15G       437M         0B       246M       9.4G\n\
                    -/+ buffers/cache:       5.5G        10G\n\
                    Swap:         2.0G       120M       1.9G\n";
        let r = parse(text).unwrap();
        assert_eq!(r.mem_total_bytes, Some(15 * GIB));
        assert_eq!(r.mem_free_bytes, Some(437 * MIB));
        assert_eq!(r.swap_used_bytes, Some(120 * MIB));
        assert_eq!(r.swap_free_bytes, Some((1.9 * GIB as f64).round() as u64));
        // synthetic: older BusyBox (OpenWrt) with a `-/+ buffers:` row, KiB
        let text = "             total       used       free     shared    buffers     cached\n\
                    Mem:        124936      44548      80388          0       4660      16516\n\
                    -/+ buffers:             39888      85048\n\
                    Swap:            0          0          0\n";
        let r = parse(text).unwrap();
        assert_eq!(r.mem_total_bytes, Some(124_936 * KIB));
        assert_eq!(r.mem_used_bytes, Some(44_548 * KIB));
        assert_eq!(r.mem_available_bytes, None);
        assert_eq!(r.swap_total_bytes, Some(0));
        // synthetic: BusyBox 1.30 (Alpine 3.10): the procps-ng 3.3.10 header, no `-/+` row
        let text = "              total        used        free      shared  buff/cache   available\n\
                    Mem:        2041232      108836     1672476         148      259920     1781604\n\
                    Swap:        524284           0      524284\n";
        let r = parse(text).unwrap();
        assert_eq!(r.mem_available_bytes, Some(1_781_604 * KIB));
        assert_eq!(r.swap_free_bytes, Some(524_284 * KIB));
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_bytes("garbage here\n").unwrap_err();
        assert_eq!(
            (err.command, err.line_no, err.line.as_str()),
            ("free", 1, "garbage here")
        );
        let text = include_str!("../../fixtures/free/procps-ng-4.0.2-b.txt")
            .replace("Swap:              0", "Swap:            0x");
        let err = parse_bytes(&text).unwrap_err();
        assert_eq!(err.line_no, 3);
        assert!(err.expected.contains("'0x'"), "{err}");
        let err = parse_bytes("   total used free\nBogus: 1 2 3\n").unwrap_err();
        assert_eq!(err.line_no, 2);
        let err = parse_bytes("   total used free\n").unwrap_err();
        assert_eq!(err.expected, "a 'Mem:' row");
        assert_eq!(parse_bytes("").unwrap_err().line_no, 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]
        /// Arbitrary text, and real fixtures truncated, shuffled or spliced: never a panic.
        #[test]
        fn never_panics(input in crate::parse::tests::fixture_variants("free")) {
            for unit in [
                Unit::Bytes,
                Unit::Kibibytes,
                Unit::Mebibytes,
                Unit::Gibibytes,
                Unit::Tebibytes,
                Unit::Kilobytes,
                Unit::Megabytes,
                Unit::Gigabytes,
            ] {
                let _ = parse_with_unit(&input, unit);
            }
        }
    }
}
