//! `fleetpoll demo`: a simulated fleet, registered and served exactly like production.
//!
//! Wiring, like `app`: it starts a fleet in this process, registers it through the same
//! import as `server import`, then hands over to `app::run`, the code path of `serve`. The
//! poller reaches the hosts over real TCP and SSH and never learns they are simulated. So,
//! like `app`, it reports with `anyhow` and context.
//!
//! Files, next to the database: `demo_ed25519` (+ `.pub`), the client key the hosts accept;
//! `demo_host_keys.seed`, from which every host key is derived, so a re-run presents the
//! keys pinned by the last run; `demo-hosts.csv`, the inventory it imports.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::store::Store;

/// The demo's fleet.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub hosts: usize,
    pub base: Ipv4Addr,
    pub port: u16,
}

/// Share of the fleet that is dead, silent and flapping: 3, 2 and 2 of 50 hosts.
const DEAD_PCT: f64 = 6.0;
const SILENT_PCT: f64 = 4.0;
const FLAPPING_PCT: f64 = 4.0;

/// Runs the demo until SIGINT or SIGTERM.
///
/// # Errors
/// Files cannot be written, an address is taken, the database or the API fails.
pub async fn run(settings: Settings, opts: DemoOptions) -> anyhow::Result<()> {
    let dir = settings.key_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path =
        std::path::absolute(dir.join("demo_ed25519")).context("resolving the demo key path")?;
    let client = if key_path.exists() {
        crate::ssh::keys::load_private_key(&key_path, None)
            .with_context(|| format!("loading the demo client key {}", key_path.display()))?
    } else {
        tracing::info!(key = %key_path.display(), "Generating the demo's client key");
        super::write_client_key(&key_path)
            .with_context(|| format!("writing {}", key_path.display()))?
    };
    let seed = host_key_seed(&dir.join("demo_host_keys.seed"))?;

    let mut sim = super::SimOptions::new(opts.hosts, client.public_key().clone());
    sim.base = opts.base;
    sim.port = opts.port;
    sim.dead = super::percent_of(opts.hosts, DEAD_PCT);
    sim.silent = super::percent_of(opts.hosts, SILENT_PCT);
    sim.flapping = super::percent_of(opts.hosts, FLAPPING_PCT);
    sim.host_key_seed = Some(seed);
    let fleet = super::start(sim.clone())
        .await
        .context("starting the simulated fleet")?;
    let last = fleet
        .hosts()
        .last()
        .map(|h| h.addr.to_string())
        .unwrap_or_default();
    tracing::info!(
        hosts = opts.hosts,
        dead = sim.dead,
        silent = sim.silent,
        flapping = sim.flapping,
        "Simulated fleet up on {}..{last}",
        sim.base
    );

    crate::activity::info_entries_at_debug();
    let result = async {
        let csv = dir.join("demo-hosts.csv");
        super::write_hosts_csv(
            &csv,
            fleet.hosts(),
            "fleet",
            &key_path,
            &["demo".to_string(), "sim".to_string()],
        )
        .with_context(|| format!("writing {}", csv.display()))?;
        let store = crate::app::open_store(&settings).await?;
        let report =
            crate::import::import_file(&store, &csv, &crate::activity::Actor::cli(), false)
                .await
                .context("registering the simulated fleet")?;
        for e in &report.failed {
            tracing::error!(%e, "Demo host not registered");
        }
        tracing::info!(
            added = report.added.len(),
            already_registered = report.skipped.len(),
            "Demo fleet registered (tag demo)"
        );
        let listener = TcpListener::bind(settings.listen_addr())
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let password = demo_login(&store).await?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // The one place a password is printed: a throwaway login for a throwaway database,
        // new at every start and stored only as an argon2id hash.
        eprintln!(
            "Demo dashboard: http://{addr}/  user: demo  password: {}",
            password.expose()
        );
        // The first cycle still logs its problems (hosts offline, alerts firing), which push
        // the login out of sight: say it again, in a block, once that cycle is over.
        let again = format!(
            "\n  fleetpoll demo: http://{addr}/\n  user: demo   password: {}\n  database: {}   (Ctrl-C stops it)\n",
            password.expose(),
            settings.database()
        );
        let after = Duration::from_secs(settings.poll_interval_secs.saturating_add(5));
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            eprintln!("{again}");
        });
        crate::app::run(settings, store, listener, crate::app::shutdown_signal()).await
    }
    .await;
    // The poller has stopped (or never started): the hosts may go.
    if tokio::time::timeout(Duration::from_secs(5), fleet.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Simulated fleet did not stop within 5 s");
    }
    result
}

/// Reads the seed, or writes a new random one (mode 0600: it is key material).
fn host_key_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            anyhow::anyhow!(
                "{} is not a 32-byte seed; delete it to get new host keys (then `fleetpoll server trust` each demo host, or start with a fresh database)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::random();
            super::write_private(path, &seed)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(seed)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    }
}

/// Creates the `demo` admin, or gives it a new password, and returns that password.
async fn demo_login(store: &Store) -> anyhow::Result<crate::auth::Secret> {
    let password = crate::auth::new_secret("demo");
    let actor = crate::activity::Actor::cli();
    match store.user_by_name("demo").await {
        Ok(user) => {
            crate::ops::update_user(store, user.id, None, Some(password.expose()), &actor)
                .await
                .context("resetting the demo user's password")?;
        }
        Err(crate::store::StoreError::NotFound(_)) => {
            crate::ops::create_user(
                store,
                "demo",
                crate::auth::Role::Admin,
                password.expose(),
                &actor,
            )
            .await
            .context("creating the demo user")?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(password)
}
