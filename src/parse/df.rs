//! `df` output (GNU coreutils 9.x and BusyBox 1.35) → [`DfReport`].
//!
//! The poller runs `df -kP` (POSIX format, 1024-byte blocks, one line per filesystem);
//! [`parse`] reads that and the other common forms, taking the block size from the header:
//! ```text
//! Filesystem                                                        1024-blocks     Used Available Capacity Mounted on
//! /dev/loop0                                                              56037       14     51437       1% /mnt/fleet data
//! ```
//! - `1024-blocks`/`1K-blocks` (KiB), `1B-blocks`/`1-blocks` (`-B1`), `512-blocks`
//!   (`POSIXLY_CORRECT`), `1M-blocks` (`-BM`), and `Size` (`-h`, values carry suffixes). A value
//!   with a suffix (`55M`, `14K`, `-BM`'s `12046M`) describes itself; bare suffix letters are
//!   read as binary, so `df -H` output comes out about 5% high: run `-h` or `-k` instead.
//! - A `Type` column (`-T`) is skipped.
//! - The mount point is everything after the percent column, so `/mnt/fleet data` survives.
//! - `-` (pseudo filesystems under `df -a`, e.g. `proc ... -  /proc`) is `None`.
//! - BusyBox `df` without `-P` wraps a device name longer than 20 characters onto a line of
//!   its own, with the numbers on the next, indented line; the two are joined.
//!
//! - A row repeated verbatim in device and mount point (`df / /`) is kept once.
//! - `-T`/`-hT` (coreutils) and `-PT`/`-T` (BusyBox, which wraps after a long name there too)
//!   are read the same way; OpenWrt's `overlayfs:/overlay` is an ordinary device name.
//!
//! - A header in another language (`Dateisystem 1K-Blöcke Benutzt Verfügbar Verw% Eingehängt auf`,
//!   `Sys. de fichiers blocs de 1024 Utilisé Disponible Capacité Monté sur`) is read by position
//!   as the POSIX six columns, its block size taken from the word starting with a digit; see
//!   `localised_header`. A translated `-T` header is not recognised (its rows are refused).
//!
//! Filesystem names containing spaces cannot be told apart from the columns and are not supported.

use std::collections::HashSet;

use nom::bytes::complete::take_till1;
use nom::character::complete::{space0, space1};
use nom::combinator::rest;
use nom::{IResult, Parser};

use super::{parse_percent, parse_size_with, unit_multiplier, BareSuffix, ParseError};

const COMMAND: &str = "df";

/// One line per mounted filesystem, in output order.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct DfReport {
    pub rows: Vec<DfRow>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct DfRow {
    /// Device or source, e.g. `/dev/vda`, `tmpfs`.
    pub filesystem: String,
    /// Mount point, spaces included.
    pub mount: String,
    pub total_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    /// `Use%`/`Capacity` as printed (rounded up by GNU, down by BusyBox); `None` for `-`.
    pub use_percent: Option<f64>,
}

/// What the header told us.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// Bytes per plain number; `None` when a translated header names no block size, and then
    /// only sizes with a suffix (or `0`) are read.
    block: Option<u64>,
    /// Recognised by position only (a translated header): without a row after it, it was not
    /// df output at all, so it must be followed by one.
    localised: bool,
    /// `-T`: a filesystem type column follows the device.
    has_type: bool,
}

/// `Filesystem [Type] <size> Used Avail[able] Use%|Capacity Mounted on`
fn header(line: &str) -> Option<Header> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (has_type, size_at) = match words.get(1) {
        Some(&"Type") => (true, 2),
        _ => (false, 1),
    };
    if words.first() != Some(&"Filesystem") || words.len() != size_at + 6 {
        return None;
    }
    let used_ok = words.get(size_at + 1) == Some(&"Used");
    let avail_ok = matches!(words.get(size_at + 2), Some(&"Available" | &"Avail"));
    let pct_ok = matches!(words.get(size_at + 3), Some(&"Use%" | &"Capacity"));
    let mount_ok =
        words.get(size_at + 4) == Some(&"Mounted") && words.get(size_at + 5) == Some(&"on");
    if !(used_ok && avail_ok && pct_ok && mount_ok) {
        return None;
    }
    let block = block_size(words.get(size_at)?)?;
    Some(Header {
        block: Some(block),
        localised: false,
        has_type,
    })
}

/// A header in another language (operators paste output captured under `de_DE`, `fr_FR`...):
/// coreutils translates the words but keeps the POSIX six columns, so rows are read by position.
/// The block size is the header's `1024-Blöcke`, `1K-Blöcke`, `blocs de 1024`, `blocs de 1K`:
/// the first word that starts with a digit, read as `1024-blocks` would be. Without one (`-h`'s
/// `Größe`/`Taille`, but also `-i`'s `Inodes`) `block` is `None` and only sizes with a suffix
/// are accepted, so inode counts are never read as bytes.
/// ```text
/// Dateisystem    1024-Blöcke  Benutzt Verfügbar Kapazität Eingehängt auf
/// Sys. de fichiers blocs de 1024  Utilisé Disponible Capacité Monté sur
/// ```
fn localised_header(line: &str) -> Option<Header> {
    let words: Vec<&str> = line.split_whitespace().collect();
    // Six column titles, some of several words; a data row would start with `/` or a digit.
    let first = words.first()?;
    if words.len() < 6
        || first.starts_with(['/', '-'])
        || first.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    if words.first() == Some(&"Filesystem") {
        return None; // English, and not a form `header` reads (e.g. `df -i`): refuse it
    }
    let block = match words
        .iter()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
    {
        Some(word) => {
            let spec = word.split_once('-').map_or(*word, |(spec, _)| spec);
            Some(block_size(&format!("{spec}-blocks"))?)
        }
        None => None,
    };
    Some(Header {
        block,
        localised: true,
        has_type: false,
    })
}

/// `1024-blocks` → 1024, `1K-blocks` → 1024, `1B-blocks`/`1-blocks` → 1, `512-blocks` → 512,
/// `1M-blocks` → 2^20, `Size` → 1 (values carry suffixes; a bare `0` is zero).
fn block_size(word: &str) -> Option<u64> {
    if word == "Size" {
        return Some(1);
    }
    let spec = word.strip_suffix("-blocks")?;
    let digits_end = spec
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(spec.len());
    let (count, unit) = spec.split_at(digits_end);
    let count: u64 = count.parse().ok()?;
    count.checked_mul(unit_multiplier(unit, BareSuffix::Binary)?)
}

/// nom: one whitespace-delimited token followed by spaces.
fn token(i: &str) -> IResult<&str, &str> {
    let (i, t) = take_till1(|c: char| c.is_whitespace()).parse(i)?;
    let (i, _) = space1(i)?;
    Ok((i, t))
}

/// The columns after the device: `[type] total used avail pct mount...`.
fn numbers(i: &str, has_type: bool) -> IResult<&str, (&str, &str, &str, &str, &str)> {
    let (i, _) = space0(i)?;
    let (i, _) = if has_type { token(i)? } else { (i, "") };
    (token, token, token, token, rest).parse(i)
}

/// Parses `df` output; see the module docs. Use it for the poller's `df -kP`.
///
/// # Errors
/// [`ParseError`] for a header without a recognisable block-size column (e.g. `df -i`), a row
/// with too few columns or a non-numeric size, a wrapped device name with no numbers after it;
/// line 0 for empty output.
pub fn parse(out: &str) -> Result<DfReport, ParseError> {
    let mut head: Option<Header> = None;
    let mut rows = Vec::new();
    // BusyBox wrap: (line_no, line, device) of a device printed alone on its line.
    let mut pending: Option<(usize, &str, &str)> = None;
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (line_no, line) in super::numbered_lines(out) {
        if line.trim().is_empty() {
            continue;
        }
        let Some(h) = head else {
            head = Some(
                header(line)
                    .or_else(|| localised_header(line))
                    .ok_or_else(|| {
                        ParseError::at(
                    COMMAND,
                    line_no,
                    line,
                    "the header 'Filesystem 1024-blocks Used Available Capacity Mounted on' \
                     (or its six columns in another language)",
                )
                    })?,
            );
            continue;
        };
        let bad = |what: &str| ParseError::at(COMMAND, line_no, line, what);
        let continues = line.starts_with(char::is_whitespace);
        let (device, after_device) = match (continues, pending.take()) {
            (true, Some((_, _, device))) => (device, line),
            (true, None) => return Err(bad("a filesystem name before the indented numbers")),
            (false, Some((p_no, p_line, _))) => {
                return Err(ParseError::at(
                    COMMAND,
                    p_no,
                    p_line,
                    "numbers on the line after a wrapped filesystem name",
                ))
            }
            (false, None) => match line.split_once(char::is_whitespace) {
                Some((device, after)) => (device, after),
                None => {
                    pending = Some((line_no, line, line.trim()));
                    continue;
                }
            },
        };
        let (_, (total, used, avail, pct, mount)) = numbers(after_device, h.has_type)
            .map_err(|_| bad("'<total> <used> <available> <use%> <mount point>'"))?;
        let size = |t: &str| -> Result<Option<u64>, ParseError> {
            if t == "-" {
                return Ok(None);
            }
            match h.block {
                Some(block) => parse_size_with(t, block, BareSuffix::Binary),
                // A translated header without a block size: `-h` values carry a suffix; a
                // plain number could be a block count of unknown size or an inode count.
                None if t == "0" => Some(0),
                None if t.ends_with(|c: char| c.is_ascii_digit()) => None,
                None => parse_size_with(t, 1, BareSuffix::Binary),
            }
            .map(Some)
            .ok_or_else(|| match h.block {
                Some(_) => bad(&format!("a size or '-', not '{t}'")),
                None => bad(&format!(
                    "a size with a unit, not '{t}' (the header names no block size)"
                )),
            })
        };
        let use_percent = match pct {
            "-" => None,
            p => Some(
                parse_percent(p).ok_or_else(|| bad(&format!("a percentage or '-', not '{p}'")))?,
            ),
        };
        let mount = mount.trim_end();
        if mount.is_empty() {
            return Err(bad("a mount point after the percentage"));
        }
        let total_bytes = size(total)?;
        let used_bytes = size(used)?;
        let available_bytes = size(avail)?;
        if !seen.insert((device, mount)) {
            continue; // `df / /` prints the same row twice; once is the truth
        }
        rows.push(DfRow {
            filesystem: device.to_string(),
            mount: mount.to_string(),
            total_bytes,
            used_bytes,
            available_bytes,
            use_percent,
        });
    }
    if let Some((p_no, p_line, _)) = pending {
        return Err(ParseError::at(
            COMMAND,
            p_no,
            p_line,
            "numbers on the line after a wrapped filesystem name",
        ));
    }
    match head {
        Some(h) if h.localised && rows.is_empty() => {
            let (line_no, line) = super::numbered_lines(out)
                .find(|(_, l)| !l.trim().is_empty())
                .unwrap_or((0, ""));
            Err(ParseError::at(
                COMMAND,
                line_no,
                line,
                "the df header followed by rows (a header in another language is only \
                 recognised by the rows under it)",
            ))
        }
        Some(_) => Ok(DfReport { rows }),
        None => Err(ParseError::empty(COMMAND, "the df header")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const LONG: &str = "/dev/mapper/vg_fleetmonitor--prod-lv_var_lib_postgresql_data_long";

    fn row<'a>(r: &'a DfReport, mount: &str) -> &'a DfRow {
        r.rows
            .iter()
            .find(|row| row.mount == mount)
            .unwrap_or_else(|| panic!("no row for {mount:?} in {r:#?}"))
    }

    /// The loop filesystems of RECIPES §6 are 64 MiB ext4 images: 56037 KiB total, 14 used.
    fn assert_loop_rows(r: &DfReport, block_rounding: u64) {
        let data = row(r, "/mnt/fleet data");
        assert_eq!(data.filesystem, "/dev/loop0");
        let close = |got: Option<u64>, want: u64| {
            let got = got.unwrap_or(u64::MAX);
            assert!(got.abs_diff(want) <= block_rounding, "{got} vs {want}");
        };
        close(data.total_bytes, 56_037 * 1024);
        close(data.used_bytes, 14 * 1024);
        close(data.available_bytes, 51_437 * 1024);
        let long = row(r, "/mnt/fleetlong");
        assert_eq!(long.filesystem, LONG);
        close(long.total_bytes, 56_037 * 1024);
    }

    #[test]
    fn coreutils_kp_the_poller_format() {
        let r = parse(include_str!("../../fixtures/df/coreutils-9.1-kP.txt")).unwrap();
        assert_eq!(r.rows.len(), 6);
        assert_loop_rows(&r, 0);
        let root = row(&r, "/");
        assert_eq!(root.filesystem, "/dev/vda");
        assert_eq!(root.total_bytes, Some(264_212_084 * 1024));
        assert_eq!(root.used_bytes, Some(13_060_888 * 1024));
        assert_eq!(root.available_bytes, Some(82_225_000 * 1024));
        assert_eq!(root.use_percent, Some(14.0));
        assert_eq!(row(&r, "/mnt/fleet data").use_percent, Some(1.0));
        assert_eq!(row(&r, "/dev/shm").filesystem, "tmpfs");
    }

    #[test]
    fn pseudo_filesystems_have_no_percentage() {
        let r = parse(include_str!(
            "../../fixtures/df/coreutils-9.1-kP-pseudo.txt"
        ))
        .unwrap();
        assert_eq!(r.rows.len(), 9);
        let proc = row(&r, "/proc");
        assert_eq!(proc.filesystem, "proc");
        assert_eq!(proc.total_bytes, Some(0));
        assert_eq!(proc.use_percent, None);
        assert_eq!(row(&r, "/sys/fs/cgroup/memory").use_percent, None);
        // synthetic: `-` in size columns (GNU df prints it for unknown figures)
        let r =
            parse("Filesystem 1K-blocks Used Available Use% Mounted on\nfoo - - - - /x\n").unwrap();
        assert_eq!(
            r.rows.first().map(|r| (r.total_bytes, r.use_percent)),
            Some((None, None))
        );
    }

    #[test]
    fn every_block_size_header_gives_the_same_bytes() {
        for (text, rounding) in [
            (include_str!("../../fixtures/df/coreutils-9.1-P.txt"), 0),
            (
                include_str!("../../fixtures/df/coreutils-9.1-default.txt"),
                0,
            ),
            (include_str!("../../fixtures/df/coreutils-9.1-kPT.txt"), 0),
            (include_str!("../../fixtures/df/coreutils-9.1-B1.txt"), 0),
            (include_str!("../../fixtures/df/coreutils-9.1-B1-P.txt"), 0),
            (
                include_str!("../../fixtures/df/coreutils-9.1-P-posixly-correct.txt"),
                512,
            ),
            (
                include_str!("../../fixtures/df/coreutils-9.1-BM.txt"),
                1 << 20,
            ),
            (include_str!("../../fixtures/df/busybox-1.35-P.txt"), 0),
            (
                include_str!("../../fixtures/df/busybox-1.35-wrapped.txt"),
                0,
            ),
            (include_str!("../../fixtures/df/busybox-1.35-B1.txt"), 0),
        ] {
            let r = parse(text).unwrap();
            assert_loop_rows(&r, rounding);
        }
        let b1 = parse(include_str!("../../fixtures/df/coreutils-9.1-B1.txt")).unwrap();
        assert_eq!(row(&b1, "/mnt/fleet data").total_bytes, Some(57_381_888));
        let posix = parse(include_str!(
            "../../fixtures/df/coreutils-9.1-P-posixly-correct.txt"
        ))
        .unwrap();
        assert_eq!(row(&posix, "/").total_bytes, Some(528_424_168 * 512));
    }

    #[test]
    fn busybox_wrapped_rows_are_joined() {
        let r = parse(include_str!("../../fixtures/df/busybox-1.35-wrapped.txt")).unwrap();
        assert_eq!(r.rows.len(), 7);
        let long = row(&r, "/mnt/fleetlong");
        assert_eq!(long.filesystem, LONG);
        assert_eq!(long.used_bytes, Some(14 * 1024));
        assert_eq!(long.use_percent, Some(0.0), "BusyBox rounds down");
        assert_eq!(
            row(&r, "/proc").use_percent,
            Some(0.0),
            "BusyBox prints 0% where GNU prints -"
        );
    }

    #[test]
    fn human_sizes_are_read_from_suffixes() {
        let h = parse(include_str!("../../fixtures/df/coreutils-9.1-h.txt")).unwrap();
        assert_eq!(row(&h, "/mnt/fleet data").total_bytes, Some(55 << 20));
        assert_eq!(row(&h, "/mnt/fleet data").used_bytes, Some(14 << 10));
        assert_eq!(row(&h, "/").total_bytes, Some(252 << 30));
        assert_eq!(row(&h, "/proc").total_bytes, Some(0));
        let bb = parse(include_str!("../../fixtures/df/busybox-1.35-h.txt")).unwrap();
        assert_eq!(
            row(&bb, "/mnt/fleetlong").total_bytes,
            Some((54.7 * (1u64 << 20) as f64).round() as u64)
        );
        assert_eq!(row(&bb, "/mnt/fleetlong").filesystem, LONG);
        // -H: bare letters are read as binary (documented limitation), lowercase k as 1000
        let si = parse(include_str!("../../fixtures/df/coreutils-9.1-H-si.txt")).unwrap();
        assert_eq!(row(&si, "/mnt/fleet data").used_bytes, Some(15_000));
    }

    #[test]
    fn type_columns() {
        let ht = parse(include_str!("../../fixtures/df/coreutils-9.1-hT.txt")).unwrap();
        assert_eq!(ht.rows.len(), 6);
        assert_eq!(row(&ht, "/").total_bytes, Some(252 << 30));
        assert_eq!(row(&ht, "/").used_bytes, Some(20 << 30));
        assert_eq!(row(&ht, "/dev/shm").used_bytes, Some(84 << 10));
        assert_eq!(row(&ht, "/dev").filesystem, "devtmpfs");
        assert_eq!(row(&ht, "/mnt/fleetlong").filesystem, LONG);
        assert_eq!(row(&ht, "/mnt/fleet data").use_percent, Some(1.0));
        for text in [
            include_str!("../../fixtures/df/busybox-1.35-PT.txt"),
            include_str!("../../fixtures/df/busybox-1.35-T-wrapped.txt"),
        ] {
            let r = parse(text).unwrap();
            assert_eq!(r.rows.len(), 6);
            assert_loop_rows(&r, 0);
            assert_eq!(row(&r, "/dev/shm").used_bytes, Some(84 * 1024));
            assert_eq!(row(&r, "/").total_bytes, Some(264_212_084 * 1024));
        }
    }

    #[test]
    fn duplicate_rows_are_kept_once() {
        let r = parse(include_str!(
            "../../fixtures/df/coreutils-9.1-kP-duplicates.txt"
        ))
        .unwrap();
        assert_eq!(r.rows.len(), 6, "8 printed, 2 repeats");
        assert_loop_rows(&r, 0);
        assert_eq!(row(&r, "/").used_bytes, Some(20_467_624 * 1024));
    }

    #[test]
    fn openwrt_and_old_coreutils_shapes() {
        // synthetic: OpenWrt BusyBox `df -P` with the overlay root
        let text = "Filesystem           1024-blocks    Used Available Capacity Mounted on\n\
                    /dev/root                 3328      3328         0 100% /rom\n\
                    tmpfs                    62368       104     62264   0% /tmp\n\
                    /dev/mtdblock6            9728      1032      8696  11% /overlay\n\
                    overlayfs:/overlay        9728      1032      8696  11% /\n";
        let r = parse(text).unwrap();
        assert_eq!(r.rows.len(), 4);
        assert_eq!(row(&r, "/").filesystem, "overlayfs:/overlay");
        assert_eq!(row(&r, "/rom").use_percent, Some(100.0));
        assert_eq!(row(&r, "/rom").available_bytes, Some(0));
        // synthetic: coreutils 8.4 (CentOS 6) default output wrapping an LVM name
        let text = "Filesystem           1K-blocks      Used Available Use% Mounted on\n\
                    /dev/mapper/VolGroup-lv_root\n\
                    \x20                     51606140   4840040  44144660  10% /\n\
                    tmpfs                   953404         0    953404   0% /dev/shm\n";
        let r = parse(text).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(row(&r, "/").filesystem, "/dev/mapper/VolGroup-lv_root");
        assert_eq!(row(&r, "/").total_bytes, Some(51_606_140 * 1024));
        // synthetic: a `-P` row with its columns pushed out of line by a long name
        let text = "Filesystem         1024-blocks      Used Available Capacity Mounted on\n\
                    /dev/mapper/VolGroup-lv_root 51606140 4840040 44144660 10% /\n";
        assert_eq!(parse(text).unwrap().rows.len(), 1);
    }

    #[test]
    fn translated_headers_are_read_by_position() {
        // Issue #18: df captured under de_DE/fr_FR was refused at its header.
        for (text, rounding) in [
            (
                include_str!("../../fixtures/df/coreutils-9.1-kP-de_DE.txt"),
                0,
            ),
            (
                include_str!("../../fixtures/df/coreutils-9.1-default-de_DE.txt"),
                0,
            ),
            (
                include_str!("../../fixtures/df/coreutils-9.1-kP-fr_FR.txt"),
                0,
            ),
            (
                include_str!("../../fixtures/df/coreutils-9.1-default-fr_FR.txt"),
                0,
            ),
            // `Größe`: no block size in the header, every size carries its unit
            (
                include_str!("../../fixtures/df/coreutils-9.1-h-de_DE.txt"),
                1 << 29,
            ),
        ] {
            let r = parse(text).unwrap();
            assert_eq!(r.rows.len(), 4, "{text}");
            let root = row(&r, "/");
            assert_eq!(root.filesystem, "/dev/vda");
            let total = root.total_bytes.unwrap();
            assert!(
                total.abs_diff(264_212_084 * 1024) <= rounding,
                "{total}: {text}"
            );
            assert_eq!(root.use_percent, Some(75.0));
            let shm = row(&r, "/dev/shm");
            assert_eq!(shm.filesystem, "tmpfs");
            if rounding == 0 {
                assert_eq!(shm.used_bytes, Some(84 * 1024));
                assert_eq!(shm.available_bytes, Some(24_683_708 * 1024));
            }
            assert_eq!(row(&r, "/dev").used_bytes, Some(0));
        }
    }

    #[test]
    fn translated_inode_header_is_refused_not_read_as_bytes() {
        // `df -i` under de_DE: `Inodes IBenutzt IFrei IUse%` names no block size
        let err = parse(include_str!("../../fixtures/df/coreutils-9.1-i-de_DE.txt")).unwrap_err();
        assert_eq!(err.line_no, 2);
        assert!(err.expected.contains("names no block size"), "{err}");
        // six words and no rows is not df output
        let err = parse("ssh: connect to host db1 port 22: Connection refused\n").unwrap_err();
        assert_eq!(err.line_no, 1);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("Filesystem Inodes IUsed IFree IUse% Mounted on\n").unwrap_err();
        assert_eq!((err.command, err.line_no), ("df", 1));
        let text =
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 10 five 5 50% /\n";
        let err = parse(text).unwrap_err();
        assert_eq!(
            (err.line_no, err.line.as_str()),
            (2, "/dev/vda 10 five 5 50% /")
        );
        assert!(err.expected.contains("'five'"));
        let err = parse(
            "Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/mapper/very-long-name\n",
        )
        .unwrap_err();
        assert_eq!(err.line_no, 2, "a wrapped name with nothing after it");
        let err = parse("Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/vda 1 2 3\n")
            .unwrap_err();
        assert_eq!(err.line_no, 2);
        assert_eq!(parse("").unwrap_err().line_no, 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]
        /// Arbitrary text, and real fixtures truncated, shuffled or spliced: never a panic.
        #[test]
        fn never_panics(input in crate::parse::tests::fixture_variants("df")) {
            let _ = parse(&input);
        }
    }
}
