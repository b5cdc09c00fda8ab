//! `fleetpoll parse KIND [FILE]`: run one of `crate::parse`'s parsers on captured output and
//! print the report as JSON, or the parse error (exit status 1). Needs no settings, database
//! or runtime, so it works on any machine with a capture.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::print_json;
use crate::parse::{self, free};

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Which command's output it is.
    #[arg(value_enum)]
    pub kind: ParseKind,
    /// File with the captured output; stdin when absent.
    pub file: Option<PathBuf>,
    /// For `free`: the unit of plain numbers, i.e. the flag free ran with. The poller
    /// runs `free -b` (bytes); `free` typed by hand prints KiB, which is assumed (and said
    /// on stderr and as `unit_assumed` in the JSON) when this is absent.
    #[arg(long, value_enum)]
    pub unit: Option<FreeUnit>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ParseKind {
    /// `top -b` output (one or more frames; the last is used).
    Top,
    /// `free` output; say which unit with --unit (values with suffixes, `-h`, need none).
    Free,
    /// `df -kP` output.
    Df,
    /// `docker stats --no-stream` output, table or `{{json .}}` lines.
    DockerStats,
    /// `docker ps -a --format '{{json .}}'` output.
    DockerPs,
}

/// The unit `free` printed plain numbers in.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FreeUnit {
    /// `free -b`
    Bytes,
    /// `free`, `free -k` (the default)
    Kib,
    /// `free -m`
    Mib,
    /// `free -g`
    Gib,
    /// `free --si` / `free --kilo` (powers of 1000)
    Kb,
    /// `free --si -m` / `free --mega`
    Mb,
    /// `free --si -g` / `free --giga`
    Gb,
}

impl From<FreeUnit> for free::Unit {
    fn from(unit: FreeUnit) -> Self {
        match unit {
            FreeUnit::Bytes => Self::Bytes,
            FreeUnit::Kib => Self::Kibibytes,
            FreeUnit::Mib => Self::Mebibytes,
            FreeUnit::Gib => Self::Gibibytes,
            FreeUnit::Kb => Self::Kilobytes,
            FreeUnit::Mb => Self::Megabytes,
            FreeUnit::Gb => Self::Gigabytes,
        }
    }
}

/// `free` has no way to say which unit it printed, so the report says which unit was used:
/// `unit_assumed` when `--unit` was absent (KiB, free's default), and `warning` (also on
/// stderr) when the memory total is implausible for the unit, as `free -b` read as KiB is.
fn free_json(text: &str, unit: Option<FreeUnit>) -> Result<serde_json::Value, parse::ParseError> {
    let assumed = unit.is_none();
    let unit: free::Unit = unit.unwrap_or(FreeUnit::Kib).into();
    let report = free::parse_with_unit(text, unit)?;
    let mut value = json!(report);
    if assumed {
        eprintln!(
            "note: free: no --unit given, plain numbers read as {} (free's default; the poller's \
             `free -b` needs --unit bytes)",
            unit.label()
        );
        value["unit_assumed"] = json!(unit.label());
    }
    let why = free::implausible_total(&report, unit).or_else(|| free::looks_like_bytes(text, unit));
    if let Some(why) = why {
        eprintln!("warning: free: {why}");
        value["warning"] = json!(why);
    }
    Ok(value)
}

pub(super) fn run(args: &ParseArgs) -> anyhow::Result<ExitCode> {
    let mut text = String::new();
    match &args.file {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading stdin")?;
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    let result: Result<serde_json::Value, parse::ParseError> = match args.kind {
        ParseKind::Top => parse::top::parse(&text).map(|r| json!(r)),
        ParseKind::Free => free_json(&text, args.unit),
        ParseKind::Df => parse::df::parse(&text).map(|r| json!(r)),
        ParseKind::DockerStats => parse::docker_stats::parse(&text).map(|r| json!(r)),
        ParseKind::DockerPs => parse::docker_ps::parse(&text).map(|r| json!(r)),
    };
    match result {
        Ok(v) => {
            print_json(&v);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
