//! `fleetpoll channel add|list|test|remove`: notification channels, through the same `notify`
//! functions as `/api/notification-channels`. Secrets in a channel's config (tokens, passwords,
//! URLs that hold a token) are sealed before they reach the database and never printed; give
//! the settings on stdin (`--settings -`) to keep them out of the shell's history.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::print_json;
use crate::activity::Actor;
use crate::notify::{self, ChannelInput, ChannelView};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Add a channel, e.g. `--name pager --kind webhook --settings '{"url": "https://..."}'`.
    Add {
        /// The channel's name (unique; rules name it).
        #[arg(long)]
        name: String,
        /// webhook, slack, discord, teams, telegram, ntfy, gotify, pushover, matrix or email.
        #[arg(long)]
        kind: String,
        /// The kind's settings (the API's `config`) as a JSON object (README:
        /// "Notifications"); `-` reads it from stdin.
        #[arg(long, value_name = "JSON")]
        settings: String,
    },
    /// List channels (never their secrets).
    List,
    /// Send a test message now and print what the receiver answered.
    Test {
        /// The channel's name.
        name: String,
    },
    /// Remove a channel (refused while a rule names it).
    Remove {
        /// The channel's name.
        name: String,
    },
}

async fn named(store: &Store, name: &str) -> anyhow::Result<ChannelView> {
    notify::channel::list(store)
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow!("no channel named '{name}' (see `fleetpoll channel list`)"))
}

pub(super) async fn run(
    store: &Store,
    cmd: ChannelCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        ChannelCommand::Add {
            name,
            kind,
            settings: config,
        } => {
            let text = if config == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the config from stdin")?;
                s
            } else {
                config
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).context("--settings is not valid JSON")?;
            let serde_json::Value::Object(config) = value else {
                bail!("--settings must be a JSON object");
            };
            let view = notify::channel::create(
                store,
                ChannelInput {
                    name: Some(name),
                    kind: Some(kind),
                    enabled: None,
                    config: Some(config),
                },
                &actor,
            )
            .await?;
            if json {
                print_json(&json!(view));
            } else {
                println!("Added {} channel '{}'.", view.kind, view.name);
            }
        }
        ChannelCommand::List => {
            let channels = notify::channel::list(store).await?;
            if json {
                print_json(&json!(channels));
            } else {
                println!(
                    "{:<24} {:<10} {:<8} {:<7} CONFIG",
                    "NAME", "KIND", "ENABLED", "SECRET"
                );
                for c in &channels {
                    println!(
                        "{:<24} {:<10} {:<8} {:<7} {}",
                        c.name,
                        c.kind,
                        if c.enabled { "yes" } else { "no" },
                        if c.has_secret { "sealed" } else { "-" },
                        c.config
                    );
                }
            }
        }
        ChannelCommand::Test { name } => {
            let c = named(store, &name).await?;
            let attempt =
                notify::test_channel(store, c.id, std::time::Duration::from_secs(10)).await?;
            if json {
                print_json(&json!({
                    "delivered": attempt.delivered, "status": attempt.http_status,
                    "answer": attempt.answer, "error": attempt.error,
                }));
            } else if attempt.delivered {
                println!(
                    "Delivered to '{name}' (status {}).",
                    attempt.http_status.map_or("-".into(), |s| s.to_string())
                );
            } else {
                println!(
                    "Not delivered to '{name}': {}",
                    crate::text::for_terminal(attempt.error.as_deref().unwrap_or("no answer"))
                );
            }
            return Ok(if attempt.delivered {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        ChannelCommand::Remove { name } => {
            let c = named(store, &name).await?;
            notify::channel::delete(store, c.id, &actor).await?;
            if !json {
                println!("Removed channel '{name}'.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
