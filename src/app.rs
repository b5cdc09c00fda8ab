//! Wiring for `serve`: open the store, start the scheduler and the API under one
//! cancellation token, stop both on SIGINT/SIGTERM within the shutdown budget.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::activity::{self, ActivityEvent, Actor};
use crate::api::{self, AppState};
use crate::config::Settings;
use crate::scheduler::lease::Leases;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// Budget for stopping after the signal: in-flight polls get most of it, the API the rest.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(9);

/// Opens the database, binds the listener and runs until SIGINT or SIGTERM.
///
/// # Errors
/// The database cannot be opened or the address cannot be bound.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let listener = TcpListener::bind(settings.listen_addr())
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    run(settings, store, listener, shutdown_signal()).await
}

/// Opens the database the settings name, with the master key's directory.
///
/// # Errors
/// The database cannot be opened or migrated.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let db = settings.database();
    Store::open_at(&db, Some(&settings.key_dir()))
        .await
        .with_context(|| format!("opening database {db}"))
}

/// Stored keys without their master key poll nothing: said once at start, in words, rather
/// than only in every poll's error.
async fn warn_lost_master_key(store: &Store) {
    let missing = matches!(crate::vault::MasterKey::load(store.dir()), Ok(None));
    if missing && store.holds_sealed().await.unwrap_or(false) {
        tracing::error!(
            dir = %store.dir().display(),
            "The database holds keys sealed under a master key that is not here (no {} and no master.key): servers with stored keys cannot be polled until it is restored",
            crate::vault::MASTER_KEY_ENV
        );
    }
}

/// Runs scheduler and API on the given listener until `shutdown` resolves. Tests call this
/// with a port-0 listener and their own shutdown future.
///
/// # Errors
/// The API server fails.
pub async fn run(
    settings: Settings,
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("reading the bound address")?;
    let settings = Arc::new(settings);
    activity::record(
        &store,
        ActivityEvent::SystemStarted {
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen: addr.to_string(),
        },
        &Actor::system(),
        None,
    )
    .await?;
    let poller_only = settings.role == "poller";
    if poller_only {
        tracing::info!(%addr, interval_secs = settings.poll_interval_secs, db = %settings.database(), "Serving /healthz and /metrics on http://{addr}/ (role poller: the API and dashboard are on the processes of role all or api)");
    } else {
        tracing::info!(%addr, interval_secs = settings.poll_interval_secs, db = %settings.database(), "Serving the API and dashboard on http://{addr}/");
    }
    warn_lost_master_key(&store).await;

    let cancel = CancellationToken::new();
    let metrics = Arc::new(crate::observe::Metrics::default());
    let polls = settings.role != "api";
    // Several processes on one PostgreSQL database (issue #14): each registers; pollers share
    // the fleet by leases, and the oldest live poller runs the fleet-wide work.
    let shared = store.backend() == crate::store::Backend::Postgres;
    let me = uuid::Uuid::new_v4();
    if shared {
        store
            .register_poller(&crate::store::PollerInfo {
                id: me,
                hostname: hostname(),
                role: settings.role.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                started_at: chrono::Utc::now(),
            })
            .await
            .context("registering this process in the database")?;
        tracing::info!(id = %me, role = %settings.role, lease_secs = settings.lease_secs, "Registered with the shared database");
    }
    let beat_task = match settings.heartbeat() {
        Ok(Some(url)) => {
            tracing::info!(target = %crate::heartbeat::shown(&url), "Heartbeat posted every poll interval");
            let who = crate::heartbeat::Identity {
                id: me,
                hostname: hostname(),
                role: settings.role.clone(),
                started_at: chrono::Utc::now(),
            };
            Some(tokio::spawn(crate::heartbeat::run(
                url,
                settings.poll_interval(),
                who,
                metrics.clone(),
                shared && polls,
                cancel.clone(),
            )))
        }
        // Refused at start by the settings' validation.
        _ => None,
    };
    let lease_time = Duration::from_secs(settings.lease_secs);
    let leases = (shared && polls).then(|| Leases::new(me, lease_time));
    // Stopped after the scheduler, so that in-flight polls still write under their leases.
    let lease_cancel = CancellationToken::new();
    let lease_task = match &leases {
        Some(l) => tokio::spawn(l.clone().run(
            store.clone(),
            metrics.clone(),
            lease_cancel.clone(),
        )),
        None if shared => tokio::spawn(heartbeat(
            store.clone(),
            me,
            lease_time,
            lease_cancel.clone(),
        )),
        None => tokio::spawn(async {}),
    };
    let sched_task = polls.then(|| {
        let scheduler = Scheduler::with_leases(
            store.clone(),
            (*settings).clone(),
            metrics.clone(),
            leases.clone(),
        );
        tokio::spawn(scheduler.run(cancel.clone()))
    });
    // History upkeep (issue #12) and notifications (issue #13): fleet-wide work, run by the
    // leading poller (always, without leases). One of each per process, for every term.
    let upkeep = Arc::new(crate::scheduler::Maintenance::new(
        store.clone(),
        settings.clone(),
    ));
    let upkeep_task = polls.then(|| {
        tokio::spawn(while_leader(leases.clone(), cancel.clone(), move |c| {
            let upkeep = upkeep.clone();
            tokio::spawn(async move { upkeep.run(c).await })
        }))
    });
    let notify_task = if polls {
        let notifier = Arc::new(
            crate::notify::Dispatcher::new(
                store.clone(),
                crate::notify::Policy::from_settings(&settings),
                metrics.clone(),
            )
            .context("starting the notification dispatcher")?,
        );
        Some(tokio::spawn(while_leader(
            leases.clone(),
            cancel.clone(),
            move |c| {
                let notifier = notifier.clone();
                tokio::spawn(async move { notifier.run(c).await })
            },
        )))
    } else {
        None
    };
    let state = AppState::new(store.clone(), settings.clone(), metrics);
    if store.count_users().await? == 0 {
        // With this database named: `serve` may run on a --db or a config the operator's
        // next command would not find by default.
        tracing::warn!(
            "No users yet: every /api route answers 401. Create the first admin with \
             `fleetpoll --db {} user add NAME --role admin` (it asks for a password)",
            match settings.database() {
                crate::store::Location::Sqlite(p) =>
                    std::path::absolute(&p).unwrap_or(p).display().to_string(),
                // Shown without its password: the operator types their own.
                db @ crate::store::Location::Postgres(_) => format!("'{db}'"),
            }
        );
    }
    let api_cancel = cancel.clone();
    let limits = api::conn::Limits::from_settings(&settings);
    // MCP over streamable HTTP answers beside the API (issue #15); it sits above `api` in the
    // layering (its tools call the API's functions), so it is merged here, not in api::router.
    let routes = if poller_only {
        api::poller_router(state)
    } else {
        api::router(state.clone()).merge(crate::mcp::http::router(state, addr, cancel.clone()))
    };
    let mut api_task = tokio::spawn(api::conn::serve(listener, routes, limits, async move {
        api_cancel.cancelled().await
    }));

    tokio::select! {
        _ = shutdown => tracing::info!("Shutdown requested; finishing in-flight work"),
        r = &mut api_task => {
            cancel.cancel();
            if let Some(t) = sched_task {
                let _ = tokio::time::timeout(SHUTDOWN_BUDGET, t).await;
            }
            lease_cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), lease_task).await;
            return match r {
                Ok(Ok(())) => Err(anyhow::anyhow!("API server stopped unexpectedly")),
                Ok(Err(e)) => Err(anyhow::Error::new(e).context("API server failed")),
                Err(e) => Err(anyhow::Error::new(e).context("API task panicked")),
            };
        }
    }
    cancel.cancel();
    if let Some(t) = beat_task {
        let _ = t.await;
    }
    // Upkeep works in transactions of a few series: stopping it mid-way loses nothing, and
    // the next start resumes where it was.
    if let Some(t) = upkeep_task {
        t.abort();
        let _ = t.await;
    }
    let stopping = async {
        if let Some(t) = sched_task {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "Scheduler task ended abnormally");
            }
        }
        // Its hosts go back to the other pollers now, not when the leases run out.
        lease_cancel.cancel();
        if let Err(e) = lease_task.await {
            tracing::error!(error = %e, "Lease task ended abnormally");
        }
        if let Some(t) = notify_task {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "Notification dispatcher ended abnormally");
            }
        }
        match api_task.await {
            Ok(Err(e)) => tracing::error!(error = %e, "API server ended with an error"),
            Err(e) => tracing::error!(error = %e, "API task ended abnormally"),
            Ok(Ok(())) => {}
        }
    };
    if tokio::time::timeout(SHUTDOWN_BUDGET, stopping)
        .await
        .is_err()
    {
        tracing::warn!("Shutdown budget exceeded; exiting anyway");
    }
    activity::record(&store, ActivityEvent::SystemStopped, &Actor::system(), None).await?;
    store.close().await;
    Ok(())
}

/// Runs the fleet-wide work `start` makes while this process leads (always, without leases):
/// started when it becomes the leader, stopped when another does.
async fn while_leader(
    leases: Option<Arc<Leases>>,
    cancel: CancellationToken,
    start: impl Fn(CancellationToken) -> tokio::task::JoinHandle<()>,
) {
    let Some(leases) = leases else {
        let _ = start(cancel).await;
        return;
    };
    let check = Duration::from_secs(1);
    loop {
        while !leases.is_leader() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                () = tokio::time::sleep(check) => {}
            }
        }
        let term = cancel.child_token();
        let task = start(term.clone());
        while leases.is_leader() && !cancel.is_cancelled() {
            tokio::time::sleep(check).await;
        }
        term.cancel();
        let _ = task.await;
        if cancel.is_cancelled() {
            return;
        }
    }
}

/// An API node's heartbeat (it holds no leases), until `cancel`; then it says it stopped.
async fn heartbeat(store: Store, me: uuid::Uuid, lease: Duration, cancel: CancellationToken) {
    loop {
        if let Err(e) = store.poller_heartbeat(me, chrono::Utc::now(), None).await {
            tracing::warn!(error = %e, "Heartbeat not written; retrying");
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            () = tokio::time::sleep(lease / 3) => {}
        }
    }
    let _ = store.poller_stopped(me, chrono::Utc::now()).await;
}

/// This machine's name, for `GET /api/pollers`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that arrives in between (right after the "Serving"
/// line, on a busy machine) would otherwise meet the default action and kill the process
/// without a clean shutdown.
#[cfg(unix)]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            // No signal handling possible: run until killed.
            _ => std::future::pending::<()>().await,
        }
    }
}

#[cfg(not(unix))]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
