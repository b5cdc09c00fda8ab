//! `fleetpoll sim-fleet` and `fleetpoll demo`: start `crate::sim`'s simulated SSH hosts, either
//! alone (writing a hosts file for `server import`) or registered and served like `serve`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{block_on, key_string};
use crate::config::Settings;
use crate::sim::{self, percent_of};

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

pub(super) fn fleet(a: &SimFleetArgs) -> anyhow::Result<ExitCode> {
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
    opts.delay = Duration::from_millis(a.delay_ms);
    opts.slow_delay = Duration::from_secs(a.slow_secs);
    opts.flap_period = Duration::from_secs(a.flap_secs);
    opts.rekey_after = a
        .rekey_host
        .then(|| Duration::from_secs(a.rekey_after_secs));
    block_on(async {
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

/// `explicit_db`: whether `--db` was given. Without it, and without a configured
/// database_path, the demo uses DEMO_DATABASE so its hosts never mix with a real inventory.
pub(super) fn demo(
    mut settings: Settings,
    explicit_db: bool,
    a: &DemoArgs,
) -> anyhow::Result<ExitCode> {
    if !explicit_db
        && settings.database_url.is_empty()
        && settings.database_path == Settings::default().database_path
    {
        settings.database_path = PathBuf::from(DEMO_DATABASE);
    }
    if let Some(l) = &a.listen {
        settings.listen = l.clone();
    }
    settings.poll_interval_secs = a.interval;
    settings.validate()?;
    let opts = sim::demo::DemoOptions {
        hosts: a.hosts as usize,
        base: a.base,
        port: a.port,
    };
    block_on(async {
        sim::demo::run(settings, opts).await?;
        Ok(ExitCode::SUCCESS)
    })
}
