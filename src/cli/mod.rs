//! The command line. One subcommand per operator task; each calls the same functions the API
//! calls (`ops`, `store`, `scheduler`). With `--json`, stdout carries only JSON; logs always
//! go to stderr.
//!
//! This file owns the global flags, the `Command` enum and `run`, whose one `match` decides
//! what each command needs (settings, a runtime, the database) and hands it to its family's
//! file: `server`, `accounts` (users and tokens), `key`, `poll`, `activity`, `alert` (rules,
//! alerts, silences), `channel`, `db`, `parse`, `sim`.
//! Those files print; they never load settings or open the database themselves.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::inventory::Server;
use crate::store::{Store, StoreError};

mod accounts;
mod activity;
mod alert;
mod channel;
mod db;
mod doctor;
/// `completions` and `man`, generated from the clap definition.
mod generate;
mod key;
mod parse;
mod poll;
mod server;
mod sim;

pub use accounts::{TokenCommand, UserCommand};
pub use activity::ActivityArgs;
pub use alert::{AlertCommand, RuleArgs, RuleCommand, SilenceCommand};
pub use channel::ChannelCommand;
pub use db::DbCommand;
pub use doctor::DoctorArgs;
pub use generate::{CompletionsArgs, ManArgs};
pub use key::KeyCommand;
pub use parse::{FreeUnit, ParseArgs, ParseKind};
pub use poll::{PollArgs, RemoteScriptArgs};
pub use server::{AddArgs, EditArgs, ServerCommand};
pub use sim::{DemoArgs, SimFleetArgs, DEMO_DATABASE};

#[derive(Debug, Parser)]
#[command(
    name = "fleetpoll",
    version,
    about = "Agentless fleet monitor: polls servers over SSH, stores metrics in SQLite, serves an API and dashboard"
)]
pub struct Cli {
    /// Config file (default: config/fleetpoll.toml when present, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SQLite database path, or a postgres:// URL (overrides database_path / database_url).
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Print JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log detail on stderr.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the scheduler and the HTTP API/dashboard until SIGINT or SIGTERM.
    Serve {
        /// Listen address, e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Seconds between polls.
        #[arg(long, value_name = "SECONDS")]
        interval: Option<u64>,
        /// all (poll and serve the API), poller or api: several processes on one PostgreSQL
        /// database (overrides role).
        #[arg(long, value_name = "ROLE", value_parser = ["all", "poller", "api"])]
        role: Option<String>,
    },
    /// Register, list, show, edit, remove servers; trust a changed host key.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Make the fleet's SSH key, and the restricted line for monitored hosts.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage user accounts (admin, operator, viewer).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage long-lived API tokens for automation.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Poll now and print the results.
    Poll(PollArgs),
    /// Parse captured command output (stdin or FILE) and print the parsed JSON.
    Parse(ParseArgs),
    /// Show the activity log, newest first.
    Activity(ActivityArgs),
    /// Alert rules, and the alerts they raise.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Silence alerts for a while, or plan a maintenance window.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Notification channels: where alerts go.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// The database: size per history tier, online backup, vacuum, upkeep now.
    #[command(subcommand)]
    Db(DbCommand),
    /// Print the script a poll runs on a host (the default one, or the one for a probed server).
    RemoteScript(RemoteScriptArgs),
    /// Check one target step by step (TCP, SSH banner, key, host key, login, probe,
    /// restricted key, one poll) and say what to fix; exits 1 when a step fails.
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, ...) on stdout.
    ///
    /// bash: `fleetpoll completions bash > /etc/bash_completion.d/fleetpoll`; zsh: into a
    /// directory of $fpath as `_fleetpoll`; fish: `~/.config/fish/completions/fleetpoll.fish`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command with --out-dir.
    ///
    /// `fleetpoll man | man -l -` reads it without installing it.
    Man(ManArgs),
    /// Run a simulated fleet of SSH servers on loopback addresses until SIGINT or SIGTERM.
    ///
    /// Host i listens on BASE+i (every address of 127.0.0.0/8 reaches `lo` on Linux), has
    /// its own ed25519 host key, accepts only the --client-key (any user name) and answers
    /// fleetpoll's probe and poll scripts with real captured outputs. Percentages are of
    /// --hosts; special hosts take the end of the range. Writes --hosts-file for `fleetpoll
    /// server import`.
    ///
    /// Each listening host costs one file descriptor, and so does each open SSH session:
    /// 10,000 hosts polled over persistent sessions need about 20,000 (`ulimit -n`).
    SimFleet(SimFleetArgs),
    /// Start a simulated fleet (50 hosts: 3 dead, 2 silent, 2 flapping), register it
    /// (tag `demo`) and serve the API and dashboard exactly like `serve`.
    ///
    /// Without --db (and without database_path in the config) the demo keeps its own
    /// database, data/demo/fleetpoll.db, so its hosts never mix with a real inventory. Its
    /// client key and host-key seed are created once next to the database; re-running it
    /// reuses them, and registers nothing twice.
    Demo(DemoArgs),
    /// Speak MCP (Model Context Protocol) on stdin/stdout for an assistant, acting as the API
    /// token in the FLEETPOLL_TOKEN environment variable (its role decides what it may do).
    ///
    /// Uses the same database and config as the other commands (--db, --config). Logs go to
    /// stderr; stdout carries only MCP messages.
    Mcp,
}

/// Runs the parsed command line.
///
/// # Errors
/// Anything that stops the command; `main` prints it and exits 2.
impl Command {
    /// Commands that only read the database: they never create one.
    fn reads_only(&self) -> bool {
        match self {
            Self::Server(c) => matches!(
                c,
                ServerCommand::List | ServerCommand::Show { .. } | ServerCommand::LastOutput { .. }
            ),
            Self::User(c) => matches!(c, UserCommand::List),
            Self::Token(c) => matches!(c, TokenCommand::List),
            // An assistant's server on a mistyped --db must fail, not serve an empty fleet.
            Self::Activity(_) | Self::Db(_) | Self::Mcp => true,
            Self::Alert(c) => matches!(
                c,
                AlertCommand::List { .. } | AlertCommand::Rule(RuleCommand::List)
            ),
            Self::Silence(c) => matches!(c, SilenceCommand::List { .. }),
            Self::Channel(c) => matches!(c, ChannelCommand::List),
            Self::RemoteScript(a) => a.server.is_some(),
            Self::Doctor(a) => a.name.is_some(),
            _ => false,
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli {
        config,
        db,
        json,
        verbose: _,
        command,
    } = cli;
    // Loaded per arm, not up front: commands that need no settings must keep working on a
    // broken config.
    let reads_only = command.reads_only();
    let settings = || {
        let s = load_settings(config.as_deref(), db.as_deref())?;
        // A mistyped --db must not leave a new empty database (and its directories) behind
        // a command that only reads.
        if let Some(path) = s.database().sqlite_path().filter(|_| reads_only) {
            if !path.exists() {
                bail!(
                    "database {} does not exist (`fleetpoll serve`, `demo` or a command that writes, \
                     such as `server add`, creates it)",
                    path.display()
                );
            }
        }
        Ok(s)
    };
    match command {
        // Parsing needs neither settings nor a runtime.
        Command::Parse(args) => parse::run(&args),
        // Generated from the CLI definition alone: no settings, so they work on a bare
        // machine (a package build) and on a broken config.
        Command::Completions(args) => generate::completions(&args),
        Command::Man(args) => generate::man(&args),
        Command::RemoteScript(args) => match args.server {
            None => Ok(poll::print_default_script(args.probe, json)),
            Some(name) => with_store(settings()?, async |store, _| {
                poll::print_server_script(store, &name, json).await
            }),
        },
        // The simulated fleet needs neither settings nor a database.
        Command::SimFleet(args) => sim::fleet(&args),
        Command::Serve {
            listen,
            interval,
            role,
        } => {
            let mut settings = settings()?;
            if let Some(r) = role {
                settings.role = r;
            }
            if let Some(l) = listen {
                settings.listen = l;
            }
            if let Some(i) = interval {
                settings.poll_interval_secs = i;
            }
            settings.validate()?;
            block_on(async {
                crate::app::serve(settings).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Demo(args) => sim::demo(settings()?, db.is_some(), &args),
        Command::Server(cmd) => with_store(settings()?, async |store, settings| {
            server::run(store, &settings, cmd, json).await
        }),
        Command::Key(cmd) => with_store(settings()?, async |store, settings| {
            key::run(store, &settings, cmd, json).await
        }),
        Command::User(cmd) => with_store(settings()?, async |store, _| {
            accounts::user(store, cmd, json).await
        }),
        Command::Token(cmd) => with_store(settings()?, async |store, _| {
            accounts::token(store, cmd, json).await
        }),
        Command::Doctor(args) => {
            let settings = settings()?;
            if args.name.is_some() {
                with_store(settings, async |store, settings| {
                    doctor::run(Some(store), &settings, args, json).await
                })
            } else {
                // A host not registered needs no database.
                block_on(async move { doctor::run(None, &settings, args, json).await })
            }
        }
        Command::Poll(args) => with_store(settings()?, async |store, settings| {
            poll::once(store, settings, args, json).await
        }),
        Command::Activity(args) => with_store(settings()?, async |store, _| {
            activity::run(store, args, json).await
        }),
        Command::Alert(cmd) => with_store(settings()?, async |store, _| {
            alert::alert(store, cmd, json).await
        }),
        Command::Db(cmd) => with_store(settings()?, async |store, settings| {
            db::run(store, settings, cmd, json).await
        }),
        Command::Silence(cmd) => with_store(settings()?, async |store, _| {
            alert::silence(store, cmd, json).await
        }),
        Command::Channel(cmd) => with_store(settings()?, async |store, _| {
            channel::run(store, cmd, json).await
        }),
        Command::Mcp => {
            // Read before the settings so a bad config cannot echo it; never printed.
            let token = std::env::var(crate::config::TOKEN_ENV)
                .ok()
                .map(crate::auth::Secret::new);
            with_store(settings()?, async |store, settings| {
                let state = crate::api::AppState::new(
                    store.clone(),
                    std::sync::Arc::new(settings),
                    std::sync::Arc::new(crate::observe::Metrics::default()),
                );
                crate::mcp::serve_stdio(state, token).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// An RFC 3339 time given to `--flag`.
fn time(v: Option<&str>, flag: &str) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    v.map(|t| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&chrono::Utc))
            .with_context(|| {
                format!("--{flag} '{t}' is not an RFC 3339 time such as 2026-11-24T05:00:00Z")
            })
    })
    .transpose()
}

/// The config file, then the environment, then `--db` on top.
fn load_settings(config: Option<&Path>, db: Option<&str>) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(config, std::env::vars())?;
    if let Some(db) = db {
        settings.set_database(db);
        // A --db URL of another scheme is refused here, not made into a file of that name.
        settings.validate()?;
    }
    Ok(settings)
}

/// Runs `work` on a multi-threaded runtime, built here rather than in `main` because `parse`,
/// `remote-script` without a server, and a command that fails on its settings need none.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(work)
}

/// Opens the database, runs `command` against it and closes it. On an error the store is
/// dropped unclosed, as the process is about to exit anyway.
fn with_store(
    settings: Settings,
    command: impl AsyncFnOnce(&Store, Settings) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let store = crate::app::open_store(&settings).await?;
        let code = command(&store, settings).await?;
        store.close().await;
        Ok(code)
    })
}

/// The registered server called `name`, or an error that says how to list them.
async fn find(store: &Store, name: &str) -> anyhow::Result<Server> {
    match store.server_by_name(name).await {
        Ok(s) => Ok(s),
        Err(StoreError::NotFound(_)) => {
            bail!("no server named '{name}' (see `fleetpoll server list`)")
        }
        Err(e) => Err(e.into()),
    }
}

/// An error and its causes on one line, each said once: many of our errors already show
/// their cause in their own message (`cannot read X: No such file or directory (os error 2)`),
/// and the chain would repeat it.
pub fn error_message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn key_string(p: &Path) -> anyhow::Result<String> {
    // Store an absolute path: `serve` may run from another directory.
    let abs = std::fs::canonicalize(p).or_else(|_| std::path::absolute(p))?;
    Ok(abs.to_string_lossy().into_owned())
}

/// Asks `prompt` on stderr and reads the answer from stdin; only y, Y or yes agree.
fn confirmed(prompt: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks a command's definition (unique names, existing conflicts) only when that
    /// command is parsed; this checks every one at once.
    #[test]
    fn an_error_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file (os error 2)");
        let e = anyhow::Error::new(crate::config::ConfigError::Read {
            path: "/etc/x.toml".into(),
            source: io,
        })
        .context("loading settings");
        let msg = super::error_message(&e);
        assert_eq!(msg.matches("No such file").count(), 1, "{msg}");
        assert!(
            msg.starts_with("loading settings: cannot read config file"),
            "{msg}"
        );
        // A cause not in the message above it is still said.
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::error_message(&e), "outer: inner");
    }

    #[test]
    fn every_command_is_well_defined() {
        super::Cli::command().debug_assert();
    }

    /// `--help` lists every flag with what it does (issue #18 found `--name`, `--port`,
    /// `--actor` and `--until` bare).
    #[test]
    fn every_flag_and_command_says_what_it_is_for() {
        fn walk(cmd: &clap::Command, path: &str, bare: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            for a in cmd.get_arguments() {
                let builtin = matches!(a.get_id().as_str(), "help" | "version");
                if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                    bare.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none()
                    && sub.get_long_about().is_none()
                    && sub.get_name() != "help"
                {
                    bare.push(format!("{path} {} (command)", sub.get_name()));
                }
                walk(sub, &path, bare);
            }
        }
        let mut bare = Vec::new();
        walk(&super::Cli::command(), "", &mut bare);
        assert!(bare.is_empty(), "without a description: {bare:#?}");
    }
}
