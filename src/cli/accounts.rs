//! `fleetpoll user ...` and `fleetpoll token ...`: the accounts the API authenticates. Changes
//! go through `ops`, as the API's do; passwords are read here (terminal or stdin) and token
//! secrets printed here exactly once.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::{confirmed, print_json};
use crate::activity::Actor;
use crate::auth::Role;
use crate::ops;
use crate::store::{Store, StoreError, UserRow};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is asked for on the terminal, or read as one line from
    /// standard input with --password-stdin.
    Add {
        /// The user's login name.
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
        /// Read the password as one line from standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users (never passwords).
    List,
    /// Set a new password (ends the user's sessions).
    Passwd {
        /// The user's login name.
        name: String,
        /// Read the password as one line from standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (ends the user's sessions).
    SetRole {
        /// The user's login name.
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
    },
    /// Delete a user and their sessions.
    Remove {
        /// The user's login name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (alone on stdout, or `{"token": ...}` with --json).
    Create {
        /// The token's name (unique), shown in the activity log as token:NAME.
        #[arg(long)]
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
        /// Lifetime such as 90d, 12h; never expires when absent.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never the secret).
    List,
    /// Revoke a token by name.
    Revoke {
        /// The token's name.
        name: String,
    },
}

pub(super) async fn user(store: &Store, cmd: UserCommand, json: bool) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let role = parse_role(&role)?;
            let password = read_password(password_stdin)?;
            let u = ops::create_user(store, &name, role, &password, &actor).await?;
            if json {
                print_json(&json!(u));
            } else {
                println!("Created user {} with role {}.", u.name, u.role);
            }
        }
        UserCommand::List => {
            let users = store.users().await?;
            if json {
                print_json(&json!(users));
            } else {
                println!("{:<24} {:<10} CREATED", "NAME", "ROLE");
                for u in &users {
                    println!(
                        "{:<24} {:<10} {}",
                        u.name,
                        u.role,
                        u.created_at.format("%Y-%m-%d %H:%M:%S")
                    );
                }
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let u = find_user(store, &name).await?;
            let password = read_password(password_stdin)?;
            ops::update_user(store, u.id, None, Some(&password), &actor).await?;
            if !json {
                println!("Password of {name} changed; their sessions have ended.");
            }
        }
        UserCommand::SetRole { name, role } => {
            let u = find_user(store, &name).await?;
            let u = ops::update_user(store, u.id, Some(parse_role(&role)?), None, &actor).await?;
            if json {
                print_json(&json!(u));
            } else {
                println!("{} is now {}.", u.name, u.role);
            }
        }
        UserCommand::Remove { name, yes } => {
            let u = find_user(store, &name).await?;
            if !yes {
                if !std::io::stdin().is_terminal() {
                    bail!("refusing to remove user '{name}' without confirmation: not on a terminal, pass --yes");
                }
                if !confirmed(&format!("Remove user '{name}'? [y/N] "))? {
                    eprintln!("Not removed.");
                    return Ok(ExitCode::from(1));
                }
            }
            ops::delete_user(store, u.id, &actor).await?;
            if !json {
                println!("Removed user {name}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn token(
    store: &Store,
    cmd: TokenCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        TokenCommand::Create {
            name,
            role,
            expires,
        } => {
            let role = parse_role(&role)?;
            let lifetime = expires
                .as_deref()
                .map(|e| {
                    crate::auth::parse_duration(e).map_err(|m| anyhow::anyhow!("--expires: {m}"))
                })
                .transpose()?;
            let (t, secret) = ops::create_token(store, &name, role, lifetime, &actor).await?;
            if json {
                print_json(
                    &json!({ "token": secret.expose(), "name": t.name, "role": t.role, "expires_at": t.expires_at }),
                );
            } else {
                // Alone on stdout, so `$(fleetpoll token create ...)` captures exactly it.
                println!("{}", secret.expose());
                eprintln!(
                    "Token {} ({}) created; it is shown only now.",
                    t.name, t.role
                );
            }
        }
        TokenCommand::List => {
            let tokens = store.tokens().await?;
            if json {
                print_json(&json!(tokens));
            } else {
                println!(
                    "{:<20} {:<9} {:<20} {:<20} {:<20} STATE",
                    "NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED"
                );
                let t = |d: Option<chrono::DateTime<chrono::Utc>>| {
                    d.map_or("-".into(), |d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                };
                let now = chrono::Utc::now();
                for k in &tokens {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else if k.expires_at.is_some_and(|e| e <= now) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<20} {:<9} {:<20} {:<20} {:<20} {state}",
                        k.name,
                        k.role.as_str(),
                        t(Some(k.created_at)),
                        t(k.expires_at),
                        t(k.last_used_at)
                    );
                }
            }
        }
        TokenCommand::Revoke { name } => {
            let t = match store.token_by_name(&name).await {
                Ok(t) => t,
                Err(StoreError::NotFound(_)) => {
                    bail!("no token named '{name}' (see `fleetpoll token list`)")
                }
                Err(e) => return Err(e.into()),
            };
            ops::revoke_token(store, t.id, &actor).await?;
            if !json {
                println!("Revoked token {name}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A password from stdin (one line, trailing newline stripped) or asked twice on a terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    if !std::io::stdin().is_terminal() {
        bail!("not on a terminal: pass --password-stdin and write the password on standard input");
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let again = rpassword::prompt_password("Again: ").context("reading the password")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    s.parse()
        .map_err(|m: String| anyhow::anyhow!("--role: {m}"))
}

async fn find_user(store: &Store, name: &str) -> anyhow::Result<UserRow> {
    match store.user_by_name(name).await {
        Ok(u) => Ok(u),
        Err(StoreError::NotFound(_)) => bail!("no user named '{name}' (see `fleetpoll user list`)"),
        Err(e) => Err(e.into()),
    }
}
