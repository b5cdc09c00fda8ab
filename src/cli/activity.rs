//! `fleetpoll activity`: read the activity log, newest first, as a table, JSON, or a CSV/JSONL
//! export. Reading only: entries are written through `crate::activity`, never from here.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::{find, print_json, time};
use crate::activity::ExportFormat;
use crate::outcome::Severity;
use crate::store::{ActivityFilter, Store};
use crate::text::for_terminal;

#[derive(Debug, Args)]
pub struct ActivityArgs {
    /// Entry type, e.g. server_offline.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Server name.
    #[arg(long)]
    pub server: Option<String>,
    /// Who acted: system, cli:LOGIN, user:NAME or token:NAME (API), anonymous (failed login).
    #[arg(long)]
    pub actor: Option<String>,
    /// info, warning or critical.
    #[arg(long)]
    pub severity: Option<String>,
    /// RFC 3339 time, e.g. 2026-11-24T00:00:00Z.
    #[arg(long)]
    pub since: Option<String>,
    /// RFC 3339 time; entries before it.
    #[arg(long)]
    pub until: Option<String>,
    /// Entries at most (default 50; 100000 with --format).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: Option<u32>,
    /// Entries to skip (paging).
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Export instead of a table: csv or jsonl (all matching entries unless --limit).
    #[arg(long)]
    pub format: Option<String>,
}

pub(super) async fn run(store: &Store, a: ActivityArgs, json: bool) -> anyhow::Result<ExitCode> {
    let severity = a
        .severity
        .as_deref()
        .map(|s| {
            s.parse::<Severity>()
                .map_err(|m| anyhow::anyhow!("--severity {m}"))
        })
        .transpose()?;
    let format = a
        .format
        .as_deref()
        .map(|f| {
            f.parse::<ExportFormat>()
                .map_err(|m| anyhow::anyhow!("--format: {m}"))
        })
        .transpose()?;
    let server_id = match &a.server {
        Some(name) => Some(find(store, name).await?.id),
        None => None,
    };
    let filter = ActivityFilter {
        kind: a.kind.clone(),
        server_id,
        actor: a.actor.clone(),
        severity,
        since: time(a.since.as_deref(), "since")?,
        until: time(a.until.as_deref(), "until")?,
        limit: a
            .limit
            .unwrap_or(if format.is_some() { 100_000 } else { 50 }),
        offset: a.offset,
    };
    let (total, items) = store.activity(&filter).await?;
    if let Some(f) = format {
        print!("{}", crate::activity::export(&items, f));
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        print_json(&json!({ "total": total, "items": items }));
    } else {
        println!(
            "{:<20} {:<8} {:<20} {:<16} {:<14} MESSAGE",
            "TIME (UTC)", "SEVERITY", "TYPE", "ACTOR", "SERVER"
        );
        for e in &items {
            println!(
                "{:<20} {:<8} {:<20} {:<16} {:<14} {}",
                e.timestamp.format("%Y-%m-%d %H:%M:%S"),
                e.severity,
                e.kind,
                e.actor,
                for_terminal(e.server_name.as_deref().unwrap_or("-")),
                for_terminal(&e.message)
            );
        }
        eprintln!("{} of {} entries", items.len(), total);
    }
    Ok(ExitCode::SUCCESS)
}
