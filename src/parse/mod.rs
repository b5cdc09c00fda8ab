//! Pure parsers for the commands fleetpoll runs on a host: captured stdout in, typed report out.
//!
//! One file per command (`top`, `free`, `df`, `docker stats`, `docker ps`), each exposing
//! `parse(out: &str) -> Result<Report, ParseError>`. This module owns [`ParseError`] and the
//! token parsers they share (numbers with a decimal point or comma, sizes such as `1.5GiB`,
//! `316KiB`, `268.4MB`, `0B`, `1.5 MiB`, `12.3kB`, percentages).
//!
//! Rules every parser here keeps:
//! - no I/O, async, logging, and no imports from other crate modules (only `super::`);
//! - never panic on any input (no `unwrap`, no slicing by input-derived offsets);
//! - a value the command did not print is `None`, never 0;
//! - sizes are converted once, here, to bytes, and named `*_bytes`;
//! - nom runs one line (or one token) at a time, and its errors never leave the module:
//!   each parser turns them into a [`ParseError`] naming the 1-based line.

pub mod df;
pub mod docker_ps;
pub mod docker_stats;
pub mod free;
pub mod top;

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::character::complete::{char, digit1, one_of, space0};
use nom::combinator::{opt, recognize};
use nom::{IResult, Parser};

/// A command's output did not have the shape its parser expects.
///
/// `line_no` is 1-based; it is 0 (with `line` empty) when the whole output was empty, so
/// "the command printed nothing" is distinguishable from "line 1 was wrong".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{command}: line {line_no}: expected {expected}: '{line}'")]
pub struct ParseError {
    /// The command whose output failed, e.g. `"free"`, `"docker stats"`.
    pub command: &'static str,
    /// 1-based line number of the offending line; 0 for empty output.
    pub line_no: usize,
    /// The offending line, verbatim (empty for empty output).
    pub line: String,
    /// What the parser was looking for, in words.
    pub expected: String,
}

impl ParseError {
    pub(crate) fn at(
        command: &'static str,
        line_no: usize,
        line: &str,
        expected: impl Into<String>,
    ) -> Self {
        ParseError {
            command,
            line_no,
            line: line.to_string(),
            expected: expected.into(),
        }
    }

    /// The error for output that is empty or only whitespace.
    pub(crate) fn empty(command: &'static str, expected: impl Into<String>) -> Self {
        ParseError {
            command,
            line_no: 0,
            line: String::new(),
            expected: expected.into(),
        }
    }
}

/// Lines of `out` numbered from 1 (`str::lines` also drops a trailing `\r`).
pub(crate) fn numbered_lines(out: &str) -> impl Iterator<Item = (usize, &str)> {
    out.lines().enumerate().map(|(i, l)| (i + 1, l))
}

/// How to read a bare one-letter size suffix (`G`, `M`, `K`) that does not say whether it is
/// binary or decimal. `df -h`, BusyBox `-h` and `free -h` of BusyBox use powers of 1024 with bare
/// letters; `df -H` and `free --si -h` use powers of 1000 with the same letters (except `k`, which
/// only the SI forms print, so a lowercase bare `k` is always 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareSuffix {
    /// `G` = 1024^3 (the `-h` convention).
    #[default]
    Binary,
    /// `G` = 1000^3 (the `-H` / `--si` convention).
    Decimal,
}

/// nom: an unsigned number with an optional fraction after `.` or `,` (procps in de_DE/fr_FR
/// prints `24105,6`). Returns the recognised text.
pub(crate) fn number_text(i: &str) -> IResult<&str, &str> {
    recognize((digit1, opt((one_of(".,"), digit1)))).parse(i)
}

/// nom: a number as `f64` (decimal point or comma).
pub(crate) fn decimal(i: &str) -> IResult<&str, f64> {
    let (rest, text) = number_text(i)?;
    match to_f64(text) {
        Some(v) => Ok((rest, v)),
        None => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Float,
        ))),
    }
}

/// nom: an unsigned integer that fits in `u64`.
pub(crate) fn integer(i: &str) -> IResult<&str, u64> {
    let (rest, text) = digit1(i)?;
    match text.parse::<u64>() {
        Ok(v) => Ok((rest, v)),
        Err(_) => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Digit,
        ))),
    }
}

/// `"24105,6"` or `"24105.6"` as `f64`; `None` unless the whole text is such a number.
pub(crate) fn to_f64(text: &str) -> Option<f64> {
    let v: f64 = text.replace(',', ".").parse().ok()?;
    v.is_finite().then_some(v)
}

/// Parses a whole token as a number (decimal point or comma allowed).
pub fn parse_decimal(s: &str) -> Option<f64> {
    let (rest, v) = decimal(s.trim()).ok()?;
    rest.is_empty().then_some(v)
}

/// `"50.10%"` (or `"50.10 %"`, `"14%"`) as `50.1`; `"--"`, `"-"` and anything else as `None`.
pub fn parse_percent(s: &str) -> Option<f64> {
    let r: IResult<&str, f64> = (decimal, space0, char('%'))
        .map(|(v, _, _)| v)
        .parse(s.trim());
    match r {
        Ok(("", v)) => Some(v),
        _ => None,
    }
}

/// The multiplier of a unit suffix (`""` and `"B"` are bytes). `None` for an unknown suffix.
///
/// `KiB`/`Ki` (binary, what Docker and procps print) are powers of 1024; `kB`/`KB`/`MB`/...
/// (decimal, what podman and `docker ps --size` print) are powers of 1000; bare letters follow
/// `bare`, except lowercase `k`, which only SI output uses.
pub fn unit_multiplier(suffix: &str, bare: BareSuffix) -> Option<u64> {
    const KI: u64 = 1 << 10;
    const K: u64 = 1000;
    let pow = |base: u64, n: u32| base.checked_pow(n);
    let bare_base = match bare {
        BareSuffix::Binary => KI,
        BareSuffix::Decimal => K,
    };
    let letter_power = |c: char| match c.to_ascii_uppercase() {
        'K' => Some(1),
        'M' => Some(2),
        'G' => Some(3),
        'T' => Some(4),
        'P' => Some(5),
        'E' => Some(6),
        _ => None,
    };
    let mut chars = suffix.chars();
    match (chars.next(), chars.next(), chars.next(), chars.next()) {
        (None, ..) => Some(1),
        (Some('B' | 'b'), None, ..) => Some(1),
        (Some('k'), None, ..) => Some(K),
        (Some(c), None, ..) => pow(bare_base, letter_power(c)?),
        // `KiB`, `Ki`, `kiB`
        (Some(c), Some('i'), Some('B'), None) | (Some(c), Some('i'), None, _) => {
            pow(KI, letter_power(c)?)
        }
        // `kB`, `KB`, `MB`
        (Some(c), Some('B'), None, _) => pow(K, letter_power(c)?),
        _ => None,
    }
}

/// nom: a size with an optional unit suffix, e.g. `316KiB`, `1.5 MiB`, `268.4MB`, `0B`, `23Gi`,
/// `55M`, `4096`. Yields the number and its multiplier; the caller decides what a bare number means.
pub(crate) fn size_parts(bare: BareSuffix) -> impl Fn(&str) -> IResult<&str, (&str, Option<u64>)> {
    move |i: &str| {
        let (rest, (num, _, suffix)) = (
            number_text,
            space0,
            recognize(opt(alt((
                recognize((one_of("KMGTPEkmgtpe"), opt(char('i')), opt(char('B')))),
                tag("B"),
            )))),
        )
            .parse(i)?;
        let mult = if suffix.is_empty() {
            None
        } else {
            unit_multiplier(suffix, bare)
        };
        if !suffix.is_empty() && mult.is_none() {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )));
        }
        Ok((rest, (num, mult)))
    }
}

/// `number × multiplier` in bytes, exact for integers and rounded for fractions (procps prints
/// MiB to 0.1, so `24105.6 MiB` is only known to ±0.05 MiB; we round rather than truncate).
/// `None` on overflow.
pub(crate) fn scale(number: &str, multiplier: u64) -> Option<u64> {
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(multiplier);
    }
    let v = to_f64(number)? * multiplier as f64;
    // u64::MAX as f64 rounds up to 2^64, so `<` keeps the cast in range.
    (v >= 0.0 && v < u64::MAX as f64).then(|| v.round() as u64)
}

/// A whole token as bytes: `"1.5GiB"`, `"316KiB"`, `"268.4MB"`, `"0B"`, `"1.5 MiB"`, `"12.3kB"`.
/// A bare number is multiplied by `plain` (1 for bytes, 1024 for KiB columns...); bare one-letter
/// suffixes follow `bare`. `None` for `--`, `-` or anything that is not a size.
pub fn parse_size_with(s: &str, plain: u64, bare: BareSuffix) -> Option<u64> {
    let (rest, (num, mult)) = size_parts(bare)(s.trim()).ok()?;
    if !rest.is_empty() {
        return None;
    }
    scale(num, mult.unwrap_or(plain))
}

/// A whole token as bytes, reading bare numbers as bytes and bare letters as binary
/// (`1.5GiB` → 1610612736, `12.3kB` → 12300, `0B` → 0, `--` → `None`).
pub fn parse_size(s: &str) -> Option<u64> {
    parse_size_with(s, 1, BareSuffix::Binary)
}

/// Splits a table row on runs of two or more spaces: Docker's and podman's tables pad columns
/// with at least two (Docker three) spaces, while single spaces occur inside cells
/// (`324KiB / 256MiB`, `CONTAINER ID`).
pub(crate) fn split_wide_columns(line: &str) -> Vec<&str> {
    let mut cells = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        match rest.find("  ") {
            Some(pos) => {
                let (cell, tail) = rest.split_at(pos);
                cells.push(cell);
                rest = tail.trim_start();
            }
            None => {
                cells.push(rest);
                break;
            }
        }
    }
    cells
}

/// The string members of one JSON object, borrowed from the text unless an escape had to be
/// decoded; members of any other type are skipped unread (`None`). Docker's `{{json .}}` lines
/// are flat objects of strings, and building a `serde_json::Value` for each (an ordered map,
/// every key and string copied) was most of the cost of parsing a poll.
#[derive(Debug, Default)]
pub(crate) struct JsonStrings<'a>(Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>);

impl<'a> JsonStrings<'a> {
    /// Reads one JSON object; anything else is an error saying a JSON object was expected.
    pub(crate) fn from_json(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The member's value when it is a string. A key given twice means its last value, as in
    /// `serde_json::Value`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

impl<'de> serde::Deserialize<'de> for JsonStrings<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = JsonStrings<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    let MaybeText(value) = map.next_value()?;
                    members.push((key, value));
                }
                Ok(JsonStrings(members))
            }
        }
        d.deserialize_map(Object)
    }
}

/// A JSON string, borrowed when it holds no escape.
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
            .map(|t| Text(t.unwrap_or_default()))
    }
}

/// Any JSON value: `Some` text for a string, `None` (skipped unread) for the rest.
struct MaybeText<'a>(Option<Cow<'a, str>>);

impl<'de> serde::Deserialize<'de> for MaybeText<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor).map(MaybeText)
    }
}

struct TextVisitor;

impl<'de> serde::de::Visitor<'de> for TextVisitor {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    #[test]
    fn sizes_use_binary_and_decimal_units() {
        assert_eq!(parse_size("1.5GiB"), Some(1_610_612_736));
        assert_eq!(parse_size("316KiB"), Some(316 * 1024));
        assert_eq!(parse_size("268.4MB"), Some(268_400_000));
        assert_eq!(parse_size("0B"), Some(0));
        assert_eq!(parse_size("1.5 MiB"), Some(1_572_864));
        assert_eq!(parse_size("12.3kB"), Some(12_300));
        assert_eq!(parse_size("23Gi"), Some(23 * (1 << 30)));
        assert_eq!(parse_size("8.6Mi"), Some(9_017_754));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("55M"), Some(55 * (1 << 20)));
        assert_eq!(
            parse_size_with("55M", 1, BareSuffix::Decimal),
            Some(55_000_000)
        );
        assert_eq!(parse_size("15k"), Some(15_000));
        assert_eq!(
            parse_size_with("12", 1024, BareSuffix::Binary),
            Some(12_288)
        );
        assert_eq!(parse_size("24105,6 MiB"), Some(25_276_553_626));
    }

    #[test]
    fn non_sizes_are_none() {
        for s in [
            "--",
            "-",
            "",
            "GiB",
            "1.5XB",
            "1.5 GiBs",
            "1e3",
            "-5B",
            "99999999999999999999",
        ] {
            assert_eq!(parse_size(s), None, "{s:?}");
        }
        assert_eq!(
            parse_size("99999999999EiB"),
            None,
            "overflow is None, not a panic"
        );
    }

    #[test]
    fn percents_accept_point_comma_and_reject_dashes() {
        assert_eq!(parse_percent("50.10%"), Some(50.1));
        assert_eq!(parse_percent("14%"), Some(14.0));
        assert_eq!(parse_percent("0,5%"), Some(0.5));
        assert_eq!(parse_percent("--"), None);
        assert_eq!(parse_percent("-"), None);
        assert_eq!(parse_percent("5"), None);
    }

    #[test]
    fn wide_columns_split_on_two_spaces() {
        assert_eq!(
            split_wide_columns("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   PIDS"),
            vec!["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS"]
        );
        assert!(split_wide_columns("   ").is_empty());
    }

    /// The fixtures directory: `$FLEETPOLL_FIXTURES`, else `fixtures/` next to the `src/` this
    /// file lives in. `file!()` is relative to the manifest in the real crate and absolute when
    /// the module is mounted elsewhere with `#[path]`; joining handles both.
    pub(crate) fn fixtures_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("FLEETPOLL_FIXTURES") {
            return PathBuf::from(dir);
        }
        // Absolute `file!()` (module mounted via `#[path]`) replacing the base is the point.
        #[allow(clippy::join_absolute_paths)]
        let this_file = Path::new(env!("CARGO_MANIFEST_DIR")).join(file!());
        match this_file.ancestors().nth(3) {
            Some(root) => root.join("fixtures"),
            None => PathBuf::from("fixtures"),
        }
    }

    /// Every fixture file, as (path relative to fixtures/, contents).
    pub(crate) fn all_fixtures() -> Vec<(String, String)> {
        let root = fixtures_dir();
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if name == "SOURCES.md" || name.starts_with("README") {
                    continue;
                }
                let rel = path
                    .strip_prefix(&root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                let text =
                    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
                out.push((rel, text));
            }
        }
        out.sort();
        out
    }

    /// The texts of the fixtures under `fixtures/<dir>/`.
    pub(crate) fn fixtures_in(dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        let texts: Vec<String> = all_fixtures()
            .into_iter()
            .filter(|(rel, _)| rel.starts_with(&prefix))
            .map(|(_, text)| text)
            .collect();
        assert!(!texts.is_empty(), "no fixtures under fixtures/{dir}");
        texts
    }

    /// proptest input for the parser of `fixtures/<dir>/`: arbitrary strings, printable noise,
    /// and real fixtures truncated at any byte, with their lines shuffled, or with arbitrary
    /// text spliced in.
    pub(crate) fn fixture_variants(dir: &str) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        use proptest::sample::{select, Index};
        let texts = fixtures_in(dir);
        let truncated = (select(texts.clone()), any::<Index>()).prop_map(|(t, at)| {
            let mut cut = at.index(t.len() + 1);
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t.get(..cut).unwrap_or_default().to_string()
        });
        let shuffled = select(texts.clone()).prop_flat_map(|t| {
            let lines: Vec<String> = t.lines().map(str::to_string).collect();
            Just(lines).prop_shuffle().prop_map(|l| l.join("\n"))
        });
        let spliced = (select(texts), any::<Index>(), ".{0,40}").prop_map(|(t, at, noise)| {
            let mut cut = at.index(t.len() + 1);
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            let (a, b) = t.split_at(cut);
            format!("{a}{noise}{b}")
        });
        prop_oneof![
            any::<String>(),
            "[ -~\n\t%µ]{0,300}",
            truncated,
            shuffled,
            spliced,
        ]
        .boxed()
    }

    #[test]
    fn every_fixture_has_a_line_in_sources_md() {
        let root = fixtures_dir();
        let sources =
            std::fs::read_to_string(root.join("SOURCES.md")).expect("fixtures/SOURCES.md exists");
        let fixtures = all_fixtures();
        assert!(
            fixtures.len() > 20,
            "found only {} fixtures under {}",
            fixtures.len(),
            root.display()
        );
        let missing: BTreeSet<_> = fixtures
            .iter()
            .map(|(rel, _)| format!("fixtures/{rel}"))
            .filter(|p| !sources.contains(&format!("`{p}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "fixtures without a SOURCES.md line: {missing:?}"
        );
    }

    fn run_all_parsers(input: &str) {
        let _ = top::parse(input);
        let _ = free::parse(input);
        let _ = free::parse_bytes(input);
        let _ = df::parse(input);
        let _ = docker_stats::parse(input);
        let _ = docker_ps::parse(input);
    }

    /// Every parser on every truncated prefix of every fixture (cut at each line end and in the
    /// middle of each line), and on each fixture with one line mangled. Any panic fails the test.
    #[test]
    fn no_parser_panics_on_truncated_or_mangled_fixtures() {
        for (_, text) in all_fixtures() {
            let mut offset = 0;
            for line in text.split_inclusive('\n') {
                let cuts = [
                    0,
                    line.len() / 3,
                    line.len() / 2,
                    line.len().saturating_sub(2),
                    line.len(),
                ];
                for cut in cuts {
                    let end = offset + cut;
                    if let Some(prefix) = text.get(..end) {
                        run_all_parsers(prefix);
                    }
                }
                offset += line.len();
            }
            let lines: Vec<&str> = text.lines().collect();
            for (i, _) in lines.iter().enumerate() {
                for replacement in ["", "--", "x", "1", "%", "{", "Mem:", "top - up", "  PID"] {
                    let mut mangled = lines.clone();
                    if let Some(slot) = mangled.get_mut(i) {
                        *slot = replacement;
                    }
                    run_all_parsers(&mangled.join("\n"));
                }
            }
        }
    }

    /// Random garbage built from the characters these outputs are made of.
    #[test]
    fn no_parser_panics_on_random_garbage() {
        const ALPHABET: &[&str] = &[
            "0",
            "1",
            "9",
            ".",
            ",",
            "%",
            " ",
            "  ",
            "\t",
            "/",
            ":",
            "-",
            "--",
            "K",
            "i",
            "B",
            "M",
            "G",
            "k",
            "up",
            "day",
            "min",
            "Mem",
            "Swap",
            "{",
            "}",
            "\"",
            "[",
            "]",
            "é",
            "ü",
            "\r",
            "\n",
            "(",
            ")",
            "Exited",
            "total",
            "used",
            "CONTAINER ID",
            "NAME",
            "PID",
            "top -",
            "load average:",
            "Filesystem",
            "%Cpu(s):",
            "MiB",
            "18446744073709551616",
            "99999999999999999999.9",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let len = (next() % 60) as usize;
            let mut s = String::new();
            for _ in 0..len {
                let pick = (next() % ALPHABET.len() as u64) as usize;
                s.push_str(ALPHABET.get(pick).copied().unwrap_or(" "));
            }
            run_all_parsers(&s);
            let _ = parse_size(&s);
            let _ = parse_percent(&s);
        }
    }

    #[test]
    fn json_strings_keep_string_members_and_skip_the_rest() {
        let line = r#"{"ID":"abc","Command":"\"sh -c 'exit 3'\"","Labels":{"a":"b"},"Ports":[1,2],"Size":3,"ID2":null,"Name":"x","Name":"y"}"#;
        let o = JsonStrings::from_json(line).unwrap();
        assert_eq!(o.get("ID"), Some("abc"));
        assert_eq!(o.get("Command"), Some("\"sh -c 'exit 3'\""));
        assert_eq!(o.get("Labels"), None);
        assert_eq!(o.get("Ports"), None);
        assert_eq!(o.get("Size"), None);
        assert_eq!(o.get("ID2"), None);
        assert_eq!(o.get("Name"), Some("y"));
        assert_eq!(o.get("missing"), None);
        for not_an_object in ["[1]", "\"s\"", "5", "null", "{", "{\"a\":}"] {
            assert!(
                JsonStrings::from_json(not_an_object).is_err(),
                "{not_an_object}"
            );
        }
        assert!(JsonStrings::from_json("{} trailing").is_err());
    }
}
