//! `fleetpoll db`: what the history takes on disk, an online backup, a vacuum, and the
//! upkeep `serve` runs on its own (compaction, rollups, retention) run now.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;

use super::print_json;
use crate::activity::{self, ActivityEvent, Actor};
use crate::config::Settings;
use crate::scheduler::Maintenance;
use crate::store::{DbStats, Store};
use crate::text::bytes;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Size per table and per history tier: bytes per stored value, bytes per server and day,
    /// oldest and newest of each tier.
    Stats,
    /// A consistent copy of the live database in FILE (safe while `serve` runs; FILE must not
    /// exist).
    Backup {
        /// Where to write the copy.
        file: PathBuf,
    },
    /// Rewrites the file at its smallest size (takes the write lock while it runs).
    Vacuum,
    /// Compacts closed hours with their rollups and applies retention and the size cap now,
    /// as `serve` does by itself.
    Maintain,
}

pub(super) async fn run(
    store: &Store,
    settings: Settings,
    cmd: DbCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Stats => {
            let s = store.stats().await?;
            if json {
                print_json(&serde_json::to_value(&s)?);
            } else {
                print_stats(&s);
            }
        }
        DbCommand::Backup { file } => {
            let size = store.backup(&file).await?;
            let path = file.display().to_string();
            activity::record(
                store,
                ActivityEvent::DatabaseBackedUp {
                    path: path.clone(),
                    bytes: size,
                },
                &Actor::cli(),
                None,
            )
            .await?;
            if json {
                print_json(&json!({ "file": path, "bytes": size }));
            } else {
                println!("Backed up to {path} ({})", bytes(size));
            }
        }
        DbCommand::Vacuum => {
            let (before, after) = store.vacuum().await?;
            activity::record(
                store,
                ActivityEvent::DatabaseVacuumed { before, after },
                &Actor::cli(),
                None,
            )
            .await?;
            if json {
                print_json(&json!({ "bytes_before": before, "bytes_after": after }));
            } else {
                println!("Vacuumed: {} -> {}", bytes(before), bytes(after));
            }
        }
        DbCommand::Maintain => {
            let upkeep = Maintenance::new(store.clone(), Arc::new(settings));
            let c = upkeep.compact_now().await?;
            upkeep.retention().await?;
            if json {
                print_json(&json!({ "hours_compacted": c.hours, "samples_compacted": c.samples }));
            } else {
                println!(
                    "Compacted {} samples into {} hour chunks; retention applied",
                    c.samples, c.hours
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(s: &DbStats) {
    println!(
        "File {} ({} free), {} servers",
        bytes(s.file_bytes),
        bytes(s.free_bytes),
        s.servers
    );
    println!();
    println!(
        "{:<9} {:>10} {:>12} {:>12} {:>9} {:>12}  {:<20} {:<20}",
        "TIER", "BYTES", "ROWS", "VALUES", "B/VALUE", "B/HOST-DAY", "OLDEST", "NEWEST"
    );
    for t in &s.tiers {
        let when = |d: Option<chrono::DateTime<chrono::Utc>>| {
            d.map_or("-".to_string(), |d| d.format("%Y-%m-%d %H:%M").to_string())
        };
        println!(
            "{:<9} {:>10} {:>12} {:>12} {:>9} {:>12}  {:<20} {:<20}",
            t.tier,
            bytes(t.bytes),
            t.rows,
            t.values,
            t.bytes_per_value.map_or("-".into(), |v| format!("{v:.2}")),
            t.bytes_per_host_day
                .map_or("-".into(), |v| bytes(v.round() as u64)),
            when(t.oldest),
            when(t.newest),
        );
    }
    println!();
    println!("{:<40} {:>10}", "TABLE OR INDEX", "BYTES");
    for (name, b) in &s.tables {
        println!("{name:<40} {:>10}", bytes(*b));
    }
}
