//! `fleetpoll key ...`: make the fleet's SSH key pair and print the restricted
//! authorized_keys line that lets it run fleetpoll's scripts and nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::find;
use crate::config::Settings;
use crate::ssh::keys;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an ed25519 key pair for fleetpoll (private key mode 0600, never overwritten).
    Generate {
        /// Where to write it (default: next to the database, fleetpoll_ed25519).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Print the authorized_keys line that lets this key run fleetpoll's scripts and nothing
    /// else (`restrict` plus a command= wrapper). Regenerate it after upgrading fleetpoll.
    AuthorizedLine {
        /// The private key (default: next to the database, fleetpoll_ed25519).
        #[arg(long, value_name = "PATH", conflicts_with = "server")]
        key: Option<PathBuf>,
        /// Use this server's registered key.
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
    },
}

pub(super) async fn run(
    store: &Store,
    settings: &Settings,
    cmd: KeyCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        KeyCommand::Generate { out } => {
            let path = out.unwrap_or_else(|| default_key_path(settings));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            keys::generate(&path, "fleetpoll").with_context(|| {
                format!(
                    "writing {} (an existing key is never overwritten)",
                    path.display()
                )
            })?;
            if json {
                super::print_json(
                    &serde_json::json!({ "key": path, "public_key": format!("{}.pub", path.display()) }),
                );
            } else {
                println!("{}", path.display());
            }
            eprintln!(
                "Wrote {} and {}.pub. Put `fleetpoll key authorized-line --key {}` in the monitored user's authorized_keys.",
                path.display(),
                path.display(),
                path.display()
            );
        }
        KeyCommand::AuthorizedLine { key, server } => {
            let (path, passphrase_env) = match server {
                Some(name) => {
                    let s = find(store, &name).await?;
                    (PathBuf::from(s.key_path), s.key_passphrase_env)
                }
                None => (key.unwrap_or_else(|| default_key_path(settings)), None),
            };
            let passphrase = passphrase_env
                .map(|v| {
                    std::env::var(&v)
                        .map(keys::Passphrase::new)
                        .with_context(|| format!("{v} is not set"))
                })
                .transpose()?;
            let key = keys::load_private_key(&path, passphrase.as_ref())?;
            let public = keys::public_line(&key)?;
            let line = crate::probe::authorized_line(&public, "fleetpoll");
            if json {
                super::print_json(&serde_json::json!({ "key": path, "authorized_line": line }));
            } else {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `key generate` writes and `key authorized-line` reads when given no path.
fn default_key_path(settings: &Settings) -> PathBuf {
    settings.key_dir().join("fleetpoll_ed25519")
}
