//! `fleetpoll server ...`: register, list, show, edit, remove and trust servers, read the raw
//! output of a failed poll, and import a CSV inventory. The changes go through `ops` and
//! `import`, as the API's do, so both write the same activity entries.

use crate::text::for_terminal;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{confirmed, find, key_string, print_json};
use crate::activity::Actor;
use crate::config::Settings;
use crate::inventory::{NewServer, Server, ServerPatch};
use crate::ops;
use crate::store::{Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Register a server.
    Add(AddArgs),
    /// List servers.
    List,
    /// Show one server.
    Show {
        /// The server's name.
        name: String,
    },
    /// Change a server's registration.
    Edit(EditArgs),
    /// Remove a server and its samples (the activity log keeps its history).
    Remove {
        /// The server's name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Accept the host key the server presents now (after a legitimate key change).
    Trust {
        /// The server's name.
        name: String,
    },
    /// Print the raw output of the server's last poll that could not all be read.
    LastOutput {
        /// The server's name.
        name: String,
    },
    /// Register servers from a CSV file with the header name,host,port,user,key_path,tags.
    ///
    /// Each row is validated like `server add`; bad rows are reported by line number and
    /// the others still imported (exit status 1 if any failed). Names already registered
    /// are skipped, so importing a file twice is harmless. Tags within a cell are separated
    /// by ';'; a relative key_path is relative to the file's directory; an optional
    /// key_passphrase_env column may be added.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Validate and report, register nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Name of the server in fleetpoll (unique; used by every other command).
    #[arg(long)]
    pub name: String,
    /// Hostname or IP address.
    #[arg(long)]
    pub host: String,
    /// SSH port.
    #[arg(long, default_value_t = 22, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Login name on the server.
    #[arg(long)]
    pub user: String,
    /// Path to the private key (ed25519, ECDSA or RSA). Only the path is stored, unless
    /// --store-key.
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// Store the key itself in the database, encrypted under the master key (beside the
    /// database, or FLEETPOLL_MASTER_KEY), instead of its path.
    #[arg(long)]
    pub store_key: bool,
    /// Environment variable holding the key's passphrase (for encrypted keys).
    #[arg(long, value_name = "VAR")]
    pub key_passphrase_env: Option<String>,
    /// Tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Register without polling it yet.
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The server to edit, by its current name.
    pub name: String,
    /// New name.
    #[arg(long)]
    pub rename: Option<String>,
    /// New hostname or IP address.
    #[arg(long)]
    pub host: Option<String>,
    /// New SSH port.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// New login name.
    #[arg(long)]
    pub user: Option<String>,
    /// New private key path.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// New environment variable holding the key's passphrase.
    #[arg(long, value_name = "VAR")]
    pub key_passphrase_env: Option<String>,
    /// Replace the tags (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Remove all tags.
    #[arg(long, conflicts_with = "tags")]
    pub clear_tags: bool,
    /// Poll it again.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Stop polling it, keeping its registration and history.
    #[arg(long)]
    pub disable: bool,
}

pub(super) async fn run(
    store: &Store,
    settings: &Settings,
    cmd: ServerCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        ServerCommand::Add(a) => {
            let new = NewServer {
                name: a.name,
                host: a.host,
                port: a.port,
                user: a.user,
                key_path: if a.store_key {
                    String::new()
                } else {
                    key_string(&a.key)?
                },
                key_passphrase_env: a.key_passphrase_env,
                tags: a.tags,
                enabled: !a.disabled,
                key_material: if a.store_key {
                    let text = std::fs::read_to_string(&a.key)
                        .with_context(|| format!("--key: reading {}", a.key.display()))?;
                    Some(crate::auth::Secret::new(text))
                } else {
                    None
                },
                key_stored: false,
            };
            let s = ops::add_server(store, new, &actor).await?;
            warn_if_shared(&a.key);
            if json {
                print_json(&server_json(&s, settings));
            } else {
                println!(
                    "Added server {} ({}) with id {}; it is polled at the next interval.",
                    s.name, s.host, s.id
                );
            }
        }
        ServerCommand::List => {
            let servers = store.servers().await?;
            if json {
                print_json(&json!(servers
                    .iter()
                    .map(|s| server_json(s, settings))
                    .collect::<Vec<_>>()));
            } else {
                println!(
                    "{:<20} {:<24} {:<18} {:<17} {:<20} REASON",
                    "NAME", "ADDRESS", "USER", "STATUS", "LAST SAMPLE"
                );
                for s in &servers {
                    println!(
                        "{:<20} {:<24} {:<18} {:<17} {:<20} {}",
                        s.name,
                        format!("{}:{}", s.host, s.port),
                        s.user,
                        s.effective_status(chrono::Utc::now(), settings.poll_interval_secs)
                            .as_str(),
                        s.last_sample_at
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_else(|| "-".into()),
                        for_terminal(s.reason.as_deref().unwrap_or(""))
                    );
                }
            }
        }
        ServerCommand::Show { name } => show_server(&find(store, &name).await?, settings, json),
        ServerCommand::Edit(e) => {
            let s = find(store, &e.name).await?;
            let patch = ServerPatch {
                name: e.rename,
                host: e.host,
                port: e.port,
                user: e.user,
                key_path: e.key.as_deref().map(key_string).transpose()?,
                key_passphrase_env: e.key_passphrase_env.map(Some),
                tags: if e.clear_tags {
                    Some(Vec::new())
                } else {
                    (!e.tags.is_empty()).then_some(e.tags)
                },
                enabled: if e.enable {
                    Some(true)
                } else if e.disable {
                    Some(false)
                } else {
                    None
                },
                key_material: None,
            };
            let s = ops::update_server(store, s.id, patch, &actor).await?;
            show_server(&s, settings, json);
        }
        ServerCommand::Remove { name, yes } => {
            let s = find(store, &name).await?;
            if !yes {
                if !std::io::stdin().is_terminal() {
                    bail!("refusing to remove '{name}' without confirmation: not on a terminal, pass --yes");
                }
                if !confirmed(&format!(
                    "Remove server '{}' ({}:{}) and all its samples? [y/N] ",
                    s.name, s.host, s.port
                ))? {
                    eprintln!("Not removed.");
                    return Ok(ExitCode::from(1));
                }
            }
            let s = ops::remove_server(store, s.id, &actor).await?;
            if json {
                print_json(&json!({ "removed": s.id, "name": s.name }));
            } else {
                println!("Removed server {}.", s.name);
            }
        }
        ServerCommand::LastOutput { name } => {
            let s = find(store, &name).await?;
            match store.last_failed_output(s.id).await {
                Ok(raw) if json => print_json(&json!(raw)),
                Ok(raw) => {
                    println!(
                        "# {} at {} (exit status {:?})",
                        s.name,
                        crate::text::timestamp(&raw.timestamp),
                        raw.exit_status
                    );
                    println!("# problems: {}", for_terminal(&raw.problems));
                    // Line by line: the host's own line breaks stay, its escapes are shown.
                    println!("# --- stdout ---");
                    raw.stdout
                        .lines()
                        .for_each(|l| println!("{}", for_terminal(l)));
                    println!("# --- stderr ---");
                    raw.stderr
                        .lines()
                        .for_each(|l| println!("{}", for_terminal(l)));
                }
                Err(StoreError::NotFound(_)) => {
                    eprintln!(
                        "Every poll of {} so far could be read; nothing stored.",
                        s.name
                    );
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
        ServerCommand::Import { file, dry_run } => {
            return import(store, &file, dry_run, json, &actor).await;
        }
        ServerCommand::Trust { name } => {
            let before = find(store, &name).await?;
            let s = ops::trust_host_key(store, before.id, &actor).await?;
            if json {
                print_json(&server_json(&s, settings));
            } else {
                println!(
                    "Trusted host key {} for {}.",
                    s.host_key_fingerprint.as_deref().unwrap_or("-"),
                    s.name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The same view of a server the API returns, so `--json` output and API bodies match.
fn server_json(s: &Server, settings: &Settings) -> serde_json::Value {
    json!(s.view(chrono::Utc::now(), settings.poll_interval_secs))
}

fn show_server(s: &Server, settings: &Settings, json: bool) {
    if json {
        print_json(&server_json(s, settings));
        return;
    }
    let v = server_json(s, settings);
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            let text = match val {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            println!("{k:<30} {}", for_terminal(&text));
        }
    }
}

async fn import(
    store: &Store,
    file: &Path,
    dry_run: bool,
    json: bool,
    actor: &Actor,
) -> anyhow::Result<ExitCode> {
    let report = crate::import::import_file(store, file, actor, dry_run).await?;
    if json {
        print_json(&json!({
            "dry_run": report.dry_run,
            "added": report.added.len(),
            "skipped": report.skipped.len(),
            "failed": report.failed.len(),
            "added_names": report.added,
            "skipped_rows": report.skipped,
            "failed_rows": report.failed,
        }));
    } else {
        for e in &report.failed {
            eprintln!("{e}");
        }
        println!(
            "{} {}, skipped {} already registered, failed {}.{}",
            if dry_run { "Would add" } else { "Added" },
            report.added.len(),
            report.skipped.len(),
            report.failed.len(),
            if dry_run {
                " (dry run: nothing registered)"
            } else {
                ""
            }
        );
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// OpenSSH refuses a private key that others may read; fleetpoll reads it all the same (it
/// may run as a user that shares a group with the key's owner on purpose), but says so once,
/// when the key is registered.
fn warn_if_shared(key: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(key) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} is readable by others (mode {mode:03o}); OpenSSH refuses such keys: chmod 600 {}",
                key.display(),
                key.display()
            );
        }
    }
}
