//! The command line. One subcommand per operator task; each calls the same functions the API
//! calls (`ops`, `store`, `scheduler`). With `--json`, stdout carries only JSON; logs always
//! go to stderr.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::config::Settings;
use crate::inventory::{NewServer, Server, ServerPatch};
use crate::ops;
use crate::parse;
use crate::scheduler::Scheduler;
use crate::store::{ActivityFilter, Store, StoreError};

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
    /// SQLite database path (overrides database_path).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
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
    Poll {
        /// Poll once and exit (continuous polling is `serve`).
        #[arg(long)]
        once: bool,
        /// Only this server.
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
    },
    /// Parse captured command output (stdin or FILE) and print the parsed JSON.
    Parse {
        #[arg(value_enum)]
        kind: ParseKind,
        /// File with the captured output; stdin when absent.
        file: Option<PathBuf>,
        /// For `free`: the unit of plain numbers, i.e. the flag free ran with. The poller
        /// runs `free -b` (bytes); `free` typed by hand prints KiB.
        #[arg(long, value_enum, default_value_t = FreeUnit::Kib)]
        unit: FreeUnit,
    },
    /// Show the activity log, newest first.
    Activity(ActivityArgs),
    /// Print the script a poll runs on a host (the default one, or the one for a probed server).
    RemoteScript {
        /// The script for this server's probed platform.
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
        /// Print the probe run once per connection instead.
        #[arg(long, conflicts_with = "server")]
        probe: bool,
    },
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
}

/// Where `demo` keeps its database unless told otherwise.
pub const DEMO_DATABASE: &str = "data/demo/fleetpoll.db";

#[derive(Debug, Args)]
pub struct SimFleetArgs {
    /// Number of hosts.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub hosts: u32,
    /// Private key whose public half the hosts accept; its path goes into the hosts file.
    #[arg(long, value_name = "PATH")]
    pub client_key: PathBuf,
    /// CSV written at start: name,host,port,user,key_path,tags (tags separated by ';').
    #[arg(long, value_name = "OUT.csv")]
    pub hosts_file: PathBuf,
    /// Percent of hosts with nothing listening (connection refused).
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub dead: f64,
    /// Percent of hosts that accept TCP and never send a byte.
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub silent: f64,
    /// Percent of hosts that answer commands only after --slow-secs.
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub slow: f64,
    /// Percent of hosts that go down and up every --flap-secs.
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub flapping: f64,
    /// How long a slow host takes to answer (longer than any sane command timeout).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub slow_secs: u64,
    /// How long a flapping host stays up, then down (its sessions are dropped).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub flap_secs: u64,
    /// How long every command takes on a live host.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    pub delay_ms: u64,
    /// Host 0 (sim-0001) presents a new host key after --rekey-after-secs.
    #[arg(long)]
    pub rekey_host: bool,
    /// When sim-0001's new key replaces the old one (with --rekey-host).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub rekey_after_secs: u64,
    /// Address of host 0; host i is BASE+i.
    #[arg(long, default_value = "127.1.0.1")]
    pub base: std::net::Ipv4Addr,
    /// Port every host listens on.
    #[arg(long, default_value_t = 2222, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Login name written into the hosts file (the hosts accept any).
    #[arg(long, default_value = "fleet")]
    pub user: String,
    /// Tag of every host in the hosts file (repeatable); each also gets its kind as a tag.
    #[arg(long = "tag", value_name = "TAG", default_value = "sim")]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of simulated hosts (6% dead, 4% silent, 4% flapping).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub hosts: u32,
    /// Listen address of the API and dashboard (default: the configured one, 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Seconds between polls: 10 by default so the dashboard fills quickly.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub interval: u64,
    /// Address of the first simulated host.
    #[arg(long, default_value = "127.1.0.1")]
    pub base: std::net::Ipv4Addr,
    /// Port the simulated hosts listen on.
    #[arg(long, default_value_t = 2222, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
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

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is asked for on the terminal, or read as one line from
    /// standard input with --password-stdin.
    Add {
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users (never passwords).
    List,
    /// Set a new password (ends the user's sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (ends the user's sessions).
    SetRole {
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Delete a user and their sessions.
    Remove {
        name: String,
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (alone on stdout, or `{"token": ...}` with --json).
    Create {
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
    Revoke { name: String },
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

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Register a server.
    Add(AddArgs),
    /// List servers.
    List,
    /// Show one server.
    Show { name: String },
    /// Change a server's registration.
    Edit(EditArgs),
    /// Remove a server and its samples (the activity log keeps its history).
    Remove {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Accept the host key the server presents now (after a legitimate key change).
    Trust { name: String },
    /// Print the raw output of the server's last poll that could not all be read.
    LastOutput { name: String },
    /// Register servers from a CSV file with the header name,host,port,user,key_path,tags.
    ///
    /// Each row is validated like `server add`; bad rows are reported by line number and
    /// the others still imported (exit status 1 if any failed). Names already registered
    /// are skipped, so importing a file twice is harmless. Tags within a cell are separated
    /// by ';'; a relative key_path is relative to the file's directory; an optional
    /// key_passphrase_env column may be added.
    Import {
        file: PathBuf,
        /// Validate and report, register nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[arg(long)]
    pub name: String,
    /// Hostname or IP address.
    #[arg(long)]
    pub host: String,
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
    pub name: String,
    #[arg(long)]
    pub rename: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    #[arg(long, value_name = "VAR")]
    pub key_passphrase_env: Option<String>,
    /// Replace the tags (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Remove all tags.
    #[arg(long, conflicts_with = "tags")]
    pub clear_tags: bool,
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
}

#[derive(Debug, Args)]
pub struct ActivityArgs {
    /// Entry type, e.g. server_offline.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Server name.
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long)]
    pub actor: Option<String>,
    /// info, warning or critical.
    #[arg(long)]
    pub severity: Option<String>,
    /// RFC 3339 time, e.g. 2026-11-24T00:00:00Z.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    /// Entries at most (default 50; 100000 with --format).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: Option<u32>,
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Export instead of a table: csv or jsonl (all matching entries unless --limit).
    #[arg(long)]
    pub format: Option<String>,
}

/// Runs the parsed command line.
///
/// # Errors
/// Anything that stops the command; `main` prints it and exits 2.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Parsing needs neither settings nor a runtime: keep it usable on a broken config.
    if let Command::Parse { kind, file, unit } = &cli.command {
        return parse_cmd(*kind, file.as_ref(), *unit);
    }
    if let Command::RemoteScript {
        server: None,
        probe,
    } = &cli.command
    {
        if *probe {
            print!("{}", crate::probe::PROBE_SCRIPT);
        } else {
            print!("{}", crate::probe::poll_script(None));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // The simulated fleet needs neither settings nor a database.
    if let Command::SimFleet(args) = &cli.command {
        return sim_fleet_cmd(args);
    }
    let mut settings = Settings::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(db) = &cli.db {
        settings.database_path = db.clone();
    }
    if let Command::Serve { listen, interval } = &cli.command {
        if let Some(l) = listen {
            settings.listen = l.clone();
        }
        if let Some(i) = interval {
            settings.poll_interval_secs = *i;
        }
        settings.validate()?;
    }
    if let Command::Demo(d) = &cli.command {
        if cli.db.is_none() && settings.database_path == Settings::default().database_path {
            settings.database_path = PathBuf::from(DEMO_DATABASE);
        }
        if let Some(l) = &d.listen {
            settings.listen = l.clone();
        }
        settings.poll_interval_secs = d.interval;
        settings.validate()?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(dispatch(cli, settings))
}

async fn dispatch(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    if let Command::Serve { .. } = cli.command {
        crate::app::serve(settings).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Demo(d) = &cli.command {
        let opts = crate::sim::demo::DemoOptions {
            hosts: d.hosts as usize,
            base: d.base,
            port: d.port,
        };
        crate::sim::demo::run(settings, opts).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open(&settings.database_path)
        .await
        .with_context(|| format!("opening database {}", settings.database_path.display()))?;
    let json = cli.json;
    let code = match cli.command {
        Command::Server(cmd) => server_cmd(&store, &settings, cmd, json).await?,
        Command::User(cmd) => user_cmd(&store, cmd, json).await?,
        Command::Key(cmd) => key_cmd(&store, &settings, cmd).await?,
        Command::Token(cmd) => token_cmd(&store, cmd, json).await?,
        Command::Poll { once, server } => {
            if !once {
                bail!("`poll` needs --once; continuous polling is `fleetpoll serve`");
            }
            poll_once(&store, settings, server, json).await?
        }
        Command::Activity(args) => activity_cmd(&store, args, json).await?,
        Command::RemoteScript {
            server: Some(name), ..
        } => {
            let s = find(&store, &name).await?;
            if s.platform.is_none() {
                eprintln!("{name} has not been probed yet; this is the default script");
            }
            print!("{}", crate::probe::poll_script(s.platform.as_ref()));
            ExitCode::SUCCESS
        }
        Command::Serve { .. }
        | Command::Parse { .. }
        | Command::RemoteScript { .. }
        | Command::SimFleet(_)
        | Command::Demo(_) => ExitCode::SUCCESS,
    };
    store.close().await;
    Ok(code)
}

async fn find(store: &Store, name: &str) -> anyhow::Result<Server> {
    match store.server_by_name(name).await {
        Ok(s) => Ok(s),
        Err(StoreError::NotFound(_)) => {
            bail!("no server named '{name}' (see `fleetpoll server list`)")
        }
        Err(e) => Err(e.into()),
    }
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

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
            println!("{k:<30} {text}");
        }
    }
}

fn key_string(p: &std::path::Path) -> anyhow::Result<String> {
    // Store an absolute path: `serve` may run from another directory.
    let abs = std::fs::canonicalize(p).or_else(|_| std::path::absolute(p))?;
    Ok(abs.to_string_lossy().into_owned())
}

async fn server_cmd(
    store: &Store,
    settings: &Settings,
    cmd: ServerCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let actor = crate::activity::Actor::cli();
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
                        s.reason.as_deref().unwrap_or("")
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
                eprint!(
                    "Remove server '{}' ({}:{}) and all its samples? [y/N] ",
                    s.name, s.host, s.port
                );
                std::io::stderr().flush()?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
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
                        raw.timestamp.to_rfc3339(),
                        raw.exit_status
                    );
                    println!("# problems: {}", raw.problems);
                    println!("# --- stdout ---");
                    print!("{}", raw.stdout);
                    println!("# --- stderr ---");
                    print!("{}", raw.stderr);
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
            return import_cmd(store, &file, dry_run, json, &actor).await;
        }
        ServerCommand::Trust { name } => {
            let before = find(store, &name).await?;
            let s = ops::trust_host_key(store, before.id, &actor).await?;
            if json {
                print_json(&server_json(&s, settings));
            } else {
                match &s.host_key_fingerprint {
                    Some(fp) => println!("Trusted host key {fp} for {}.", s.name),
                    None => println!("Cleared the pinned host key of {}; the next connect pins the key it presents.", s.name),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn poll_once(
    store: &Store,
    settings: Settings,
    only: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let servers = match only {
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
    let mut failures = 0;
    let mut rows = Vec::new();
    for (s, r) in &results {
        let secs = r.duration.as_secs_f64();
        match &r.outcome {
            Ok(snap) => {
                let disk = snap
                    .disks
                    .iter()
                    .filter_map(|d| d.use_percent)
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                rows.push(json!({
                    "name": s.name, "ok": true, "duration_seconds": secs,
                    "cpu_percent": snap.server.cpu_busy_percent, "memory_percent": snap.server.memory_percent(),
                    "disk_percent": disk, "load1": snap.server.load1, "containers": snap.containers.len(),
                    "docker": snap.docker, "problems": snap.problems,
                }));
            }
            Err(e) => {
                failures += 1;
                rows.push(json!({ "name": s.name, "ok": false, "duration_seconds": secs, "reason": e.reason(), "error": e.to_string() }));
            }
        }
    }
    if json {
        print_json(&json!(rows));
    } else {
        let f = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.1}"));
        println!(
            "{:<20} {:<7} {:>6} {:>6} {:>6} {:>6} {:>10} {:>7}  NOTE",
            "NAME", "RESULT", "CPU%", "MEM%", "DISK%", "LOAD1", "CONTAINERS", "SECS"
        );
        for r in &rows {
            let ok = r["ok"].as_bool().unwrap_or(false);
            let note = if ok {
                r["problems"]
                    .as_array()
                    .filter(|p| !p.is_empty())
                    .map(|p| format!("{} section(s) unreadable", p.len()))
                    .unwrap_or_default()
            } else {
                r["error"].as_str().unwrap_or("").to_string()
            };
            println!(
                "{:<20} {:<7} {:>6} {:>6} {:>6} {:>6} {:>10} {:>7.1}  {}",
                r["name"].as_str().unwrap_or(""),
                if ok {
                    "ok"
                } else {
                    r["reason"].as_str().unwrap_or("failed")
                },
                f(&r["cpu_percent"]),
                f(&r["memory_percent"]),
                f(&r["disk_percent"]),
                f(&r["load1"]),
                r["containers"]
                    .as_u64()
                    .map_or("-".into(), |c| c.to_string()),
                r["duration_seconds"].as_f64().unwrap_or(0.0),
                note
            );
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn activity_cmd(store: &Store, a: ActivityArgs, json: bool) -> anyhow::Result<ExitCode> {
    let time =
        |v: &Option<String>, name: &str| -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
            v.as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .with_context(|| {
                            format!(
                            "--{name} '{t}' is not an RFC 3339 time such as 2026-11-24T05:00:00Z"
                        )
                        })
                })
                .transpose()
        };
    let severity = a
        .severity
        .as_deref()
        .map(|s| {
            s.parse::<crate::outcome::Severity>()
                .map_err(|m| anyhow::anyhow!("--severity {m}"))
        })
        .transpose()?;
    let format = a
        .format
        .as_deref()
        .map(|f| {
            f.parse::<crate::activity::ExportFormat>()
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
        since: time(&a.since, "since")?,
        until: time(&a.until, "until")?,
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
                e.server_name.as_deref().unwrap_or("-"),
                e.message
            );
        }
        eprintln!("{} of {} entries", items.len(), total);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_cmd(kind: ParseKind, file: Option<&PathBuf>, unit: FreeUnit) -> anyhow::Result<ExitCode> {
    let mut text = String::new();
    match file {
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
    let result: Result<serde_json::Value, parse::ParseError> = match kind {
        ParseKind::Top => parse::top::parse(&text).map(|r| json!(r)),
        ParseKind::Free => {
            let unit = match unit {
                FreeUnit::Bytes => parse::free::Unit::Bytes,
                FreeUnit::Kib => parse::free::Unit::Kibibytes,
                FreeUnit::Mib => parse::free::Unit::Mebibytes,
                FreeUnit::Gib => parse::free::Unit::Gibibytes,
                FreeUnit::Kb => parse::free::Unit::Kilobytes,
                FreeUnit::Mb => parse::free::Unit::Megabytes,
                FreeUnit::Gb => parse::free::Unit::Gigabytes,
            };
            parse::free::parse_with_unit(&text, unit).map(|r| json!(r))
        }
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

async fn import_cmd(
    store: &Store,
    file: &std::path::Path,
    dry_run: bool,
    json: bool,
    actor: &crate::activity::Actor,
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

fn sim_fleet_cmd(a: &SimFleetArgs) -> anyhow::Result<ExitCode> {
    use crate::sim::{self, percent_of};
    let key =
        crate::ssh::keys::load_private_key(&a.client_key, None).context("reading --client-key")?;
    let key_path = PathBuf::from(key_string(&a.client_key)?);
    let hosts = a.hosts as usize;
    let mut opts = sim::SimOptions::new(hosts, key.public_key().clone());
    opts.base = a.base;
    opts.port = a.port;
    opts.dead = percent_of(hosts, a.dead);
    opts.silent = percent_of(hosts, a.silent);
    opts.slow = percent_of(hosts, a.slow);
    opts.flapping = percent_of(hosts, a.flapping);
    opts.delay = std::time::Duration::from_millis(a.delay_ms);
    opts.slow_delay = std::time::Duration::from_secs(a.slow_secs);
    opts.flap_period = std::time::Duration::from_secs(a.flap_secs);
    opts.rekey_after = a
        .rekey_host
        .then(|| std::time::Duration::from_secs(a.rekey_after_secs));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let stop = crate::app::shutdown_signal();
        let fleet = sim::start(opts.clone())
            .await
            .context("starting the simulated fleet")?;
        sim::write_hosts_csv(&a.hosts_file, fleet.hosts(), &a.user, &key_path, &a.tags)
            .with_context(|| format!("writing {}", a.hosts_file.display()))?;
        let last = fleet
            .hosts()
            .last()
            .map(|h| h.addr.to_string())
            .unwrap_or_default();
        tracing::info!(
            hosts = hosts,
            dead = opts.dead,
            silent = opts.silent,
            slow = opts.slow,
            flapping = opts.flapping,
            rekey = a.rekey_host,
            hosts_file = %a.hosts_file.display(),
            "Simulated fleet up on {}..{last}; stop with Ctrl-C",
            opts.base
        );
        stop.await;
        tracing::info!("Stopping the simulated fleet");
        fleet.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
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

fn parse_role(s: &str) -> anyhow::Result<crate::auth::Role> {
    s.parse()
        .map_err(|m: String| anyhow::anyhow!("--role: {m}"))
}

async fn find_user(store: &Store, name: &str) -> anyhow::Result<crate::store::UserRow> {
    match store.user_by_name(name).await {
        Ok(u) => Ok(u),
        Err(StoreError::NotFound(_)) => bail!("no user named '{name}' (see `fleetpoll user list`)"),
        Err(e) => Err(e.into()),
    }
}

async fn user_cmd(store: &Store, cmd: UserCommand, json: bool) -> anyhow::Result<ExitCode> {
    let actor = crate::activity::Actor::cli();
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
                eprint!("Remove user '{name}'? [y/N] ");
                std::io::stderr().flush()?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
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

async fn token_cmd(store: &Store, cmd: TokenCommand, json: bool) -> anyhow::Result<ExitCode> {
    let actor = crate::activity::Actor::cli();
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

fn default_key_path(settings: &Settings) -> PathBuf {
    settings
        .database_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .join("fleetpoll_ed25519")
}

async fn key_cmd(store: &Store, settings: &Settings, cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeyCommand::Generate { out } => {
            let path = out.unwrap_or_else(|| default_key_path(settings));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            crate::ssh::keys::generate(&path, "fleetpoll").with_context(|| {
                format!(
                    "writing {} (an existing key is never overwritten)",
                    path.display()
                )
            })?;
            println!("{}", path.display());
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
                        .map(crate::ssh::keys::Passphrase::new)
                        .with_context(|| format!("{v} is not set"))
                })
                .transpose()?;
            let key = crate::ssh::keys::load_private_key(&path, passphrase.as_ref())?;
            let public = crate::ssh::keys::public_line(&key)?;
            println!("{}", crate::probe::authorized_line(&public, "fleetpoll"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
