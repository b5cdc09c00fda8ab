//! `fleetpoll poll --once` and `fleetpoll remote-script`: poll through the scheduler now and
//! print each host's outcome, or print the script a poll runs. The table is built from the
//! typed `PollResult`s; `--json` prints the same rows as JSON.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{find, print_json};
use crate::config::Settings;
use crate::inventory::Server;
use crate::model::Snapshot;
use crate::poll::PollResult;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::text::for_terminal;

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Poll once and exit (continuous polling is `serve`).
    #[arg(long)]
    pub once: bool,
    /// Only this server.
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoteScriptArgs {
    /// The script for this server's probed platform.
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// Print the probe run once per connection instead.
    #[arg(long, conflicts_with = "server")]
    pub probe: bool,
}

pub(super) async fn once(
    store: &Store,
    settings: Settings,
    args: PollArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !args.once {
        bail!("`poll` needs --once; continuous polling is `fleetpoll serve`");
    }
    let servers = match args.server {
        Some(name) => vec![find(store, &name).await?],
        None => store
            .servers()
            .await?
            .into_iter()
            .filter(|s| s.enabled)
            .collect(),
    };
    if servers.is_empty() {
        bail!("no enabled servers to poll (add one with `fleetpoll server add`)");
    }
    let scheduler = Scheduler::new(store.clone(), settings);
    let results = scheduler.poll_now(servers).await;
    if json {
        print_json(&json!(results
            .iter()
            .map(|(s, r)| row_json(s, r))
            .collect::<Vec<_>>()));
    } else {
        print_table(&results);
    }
    Ok(if results.iter().all(|(_, r)| r.outcome.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

use crate::text::percent;

fn row_json(s: &Server, r: &PollResult) -> serde_json::Value {
    let secs = crate::text::seconds(r.duration);
    match &r.outcome {
        Ok(snap) => json!({
            "name": s.name, "ok": true, "duration_seconds": secs,
            "cpu_percent": percent(snap.server.cpu_busy_percent), "memory_percent": percent(snap.server.memory_percent()),
            "disk_percent": percent(fullest_disk_percent(snap)), "load1": snap.server.load1, "containers": snap.containers.len(),
            "docker": snap.docker, "problems": snap.problems,
        }),
        Err(e) => {
            json!({ "name": s.name, "ok": false, "duration_seconds": secs, "reason": e.reason(), "error": e.to_string() })
        }
    }
}

fn print_table(results: &[(Server, PollResult)]) {
    println!(
        "{:<20} {:<7} {:>6} {:>6} {:>6} {:>6} {:>10} {:>7}  NOTE",
        "NAME", "RESULT", "CPU%", "MEM%", "DISK%", "LOAD1", "CONTAINERS", "SECS"
    );
    for (s, r) in results {
        let secs = r.duration.as_secs_f64();
        match &r.outcome {
            Ok(snap) => {
                let note = if snap.problems.is_empty() {
                    String::new()
                } else {
                    format!("{} section(s) unreadable", snap.problems.len())
                };
                println!(
                    "{:<20} {:<7} {:>6} {:>6} {:>6} {:>6} {:>10} {:>7.1}  {}",
                    s.name,
                    "ok",
                    one_decimal(snap.server.cpu_busy_percent),
                    one_decimal(snap.server.memory_percent()),
                    one_decimal(fullest_disk_percent(snap)),
                    one_decimal(snap.server.load1),
                    snap.containers.len().to_string(),
                    secs,
                    note
                );
            }
            Err(e) => println!(
                "{:<20} {:<7} {:>6} {:>6} {:>6} {:>6} {:>10} {:>7.1}  {}",
                s.name,
                e.reason(),
                "-",
                "-",
                "-",
                "-",
                "-",
                secs,
                for_terminal(&e.to_string())
            ),
        }
    }
}

/// The use of the fullest filesystem.
fn fullest_disk_percent(snap: &Snapshot) -> Option<f64> {
    snap.disks
        .iter()
        .filter_map(|d| d.use_percent)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
}

/// A table cell: one decimal, or "-" where `--json` has null. JSON has no NaN or infinity
/// (serde_json writes them as null), so those print as "-" too.
fn one_decimal(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or("-".to_string(), |x| format!("{x:.1}"))
}

pub(super) fn print_default_script(probe: bool, json: bool) -> ExitCode {
    let script = if probe {
        crate::probe::PROBE_SCRIPT.to_string()
    } else {
        crate::probe::poll_script(None)
    };
    print_script(&script, if probe { "probe" } else { "default" }, json);
    ExitCode::SUCCESS
}

/// The script as is, or with --json as `{"script": ..., "for": ...}`.
fn print_script(script: &str, what: &str, json: bool) {
    if json {
        super::print_json(&serde_json::json!({ "for": what, "script": script }));
    } else {
        print!("{script}");
    }
}

pub(super) async fn print_server_script(
    store: &Store,
    name: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let s = find(store, name).await?;
    if s.platform.is_none() {
        eprintln!("{name} has not been probed yet; this is the default script");
    }
    let script = crate::probe::poll_script(s.platform.as_ref());
    print_script(&script, &format!("server {name}"), json);
    Ok(ExitCode::SUCCESS)
}
