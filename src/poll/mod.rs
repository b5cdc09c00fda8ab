//! One host's poll, the session half: reuse (or open, pace and probe) its SSH session, run the
//! poll script once, and hand the output to [`assemble`], the pure half, for a [`Snapshot`].
//! Owns the open sessions between polls. No SQL, no scheduling, no parsing of its own.

mod assemble;
mod cpu_rates;
mod handshakes;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use uuid::Uuid;

pub use assemble::{assemble, is_storage, split_sections, Section};
pub use handshakes::HandshakeLimits;

use crate::inventory::Server;
use crate::model::{RawOutput, SectionProblem, Snapshot};
use crate::observe::Metrics;
use crate::outcome::{Outcome, ProblemKind};
use crate::probe::{poll_script, Platform, PROBE_SCRIPT};
use crate::ssh::keys::{off_async, resolve, KeyError, KeySource};
use crate::ssh::{ConnectParams, HostKeyCheck, Session, SshError};
use cpu_rates::CpuRates;
use handshakes::Handshakes;

/// Why a poll produced no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The script ran but no section of it gave output we could use.
    #[error("{}", messages(problems))]
    NothingUsable { problems: Vec<SectionProblem> },
    /// The server's key could not be resolved (file moved, passphrase variable unset, master
    /// key changed).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The scheduler stopped before the poll could start.
    #[error("scheduler is shutting down")]
    ShuttingDown,
}

fn messages(problems: &[SectionProblem]) -> String {
    problems
        .iter()
        .map(SectionProblem::message)
        .collect::<Vec<_>>()
        .join("; ")
}

impl PollError {
    /// The outcome this failure is counted and stored as.
    pub fn reason(&self) -> Outcome {
        match self {
            Self::Ssh(SshError::Unreachable { .. } | SshError::Protocol(_)) => Outcome::Unreachable,
            Self::Ssh(SshError::Timeout { .. }) => Outcome::Timeout,
            Self::Ssh(SshError::HostKeyChanged { .. }) => Outcome::HostKeyChanged,
            Self::Ssh(SshError::AuthFailed { .. }) | Self::Key(_) => Outcome::AuthFailed,
            // Unreadable output is the more telling word when some command did run.
            Self::NothingUsable { problems } => {
                if problems
                    .iter()
                    .any(|p| p.kind() == ProblemKind::ParseFailed)
                {
                    Outcome::ParseFailed
                } else {
                    Outcome::CommandFailed
                }
            }
            Self::ShuttingDown => Outcome::CommandFailed,
        }
    }
}

/// What one poll returns to the scheduler.
#[derive(Debug)]
pub struct PollResult {
    pub server_id: Uuid,
    pub outcome: Result<Snapshot, PollError>,
    /// Set when a new session was opened: how its host key compared with the pin.
    pub host_key: Option<HostKeyCheck>,
    /// Set when a new session was opened and probed.
    pub platform: Option<Platform>,
    /// The script's raw output, kept when a section could not be used.
    pub raw: Option<RawOutput>,
    pub duration: Duration,
}

/// The private key `server` logs in with: its sealed stored copy (unsealed with the master
/// key in `key_dir`) or its key file, with the passphrase from its variable. Blocking file
/// I/O: the poller calls it through `off_async`.
///
/// # Errors
/// The key cannot be read, unsealed or decrypted.
pub fn server_key(
    server: &Server,
    key_dir: &std::path::Path,
) -> Result<russh::keys::PrivateKey, KeyError> {
    let path = PathBuf::from(&server.key_path);
    let source = match &server.key_sealed {
        Some(sealed) => KeySource::Sealed {
            sealed: &sealed.0,
            key_dir,
        },
        None => KeySource::File(&path),
    };
    resolve(source, server.key_passphrase_env.as_deref())
}

/// Timeouts for one poll, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct PollTimeouts {
    pub connect: Duration,
    pub auth: Duration,
    pub command: Duration,
}

struct Cached {
    /// How the server is reached; when it changes, the session is for another target.
    identity: String,
    /// The host key this session verified.
    fingerprint: String,
    session: Arc<Session>,
    /// What the probe found when this session was opened.
    platform: Platform,
}

/// Polls servers, keeping one SSH session per server open between polls.
pub struct Poller {
    timeouts: PollTimeouts,
    sessions: Mutex<HashMap<Uuid, Cached>>,
    handshakes: Handshakes,
    metrics: Arc<Metrics>,
    /// Where the master key for stored SSH keys lives (the database's directory).
    key_dir: PathBuf,
    cpu_rates: CpuRates,
}

/// What a poll learnt on the way, whatever its outcome.
#[derive(Default)]
struct Learnt {
    host_key: Option<HostKeyCheck>,
    platform: Option<Platform>,
    raw: Option<RawOutput>,
}

impl Poller {
    pub fn new(
        timeouts: PollTimeouts,
        limits: HandshakeLimits,
        metrics: Arc<Metrics>,
        key_dir: PathBuf,
    ) -> Self {
        Self {
            key_dir,
            timeouts,
            sessions: Mutex::new(HashMap::new()),
            handshakes: Handshakes::new(limits),
            metrics,
            cpu_rates: CpuRates::default(),
        }
    }

    /// Polls one server. Never panics and never returns early with `?`: every failure is a
    /// [`PollError`] in the result.
    pub async fn poll(&self, server: &Server) -> PollResult {
        let started = Instant::now();
        let mut learnt = Learnt::default();
        let mut outcome = self.poll_inner(server, &mut learnt).await;
        if let Ok(snapshot) = &mut outcome {
            self.cpu_rates.apply(server.id, snapshot, Instant::now());
        }
        PollResult {
            server_id: server.id,
            outcome,
            host_key: learnt.host_key,
            platform: learnt.platform,
            raw: learnt.raw,
            duration: started.elapsed(),
        }
    }

    async fn poll_inner(
        &self,
        server: &Server,
        learnt: &mut Learnt,
    ) -> Result<Snapshot, PollError> {
        let identity = identity(server);
        if let Some((session, platform)) = self.reusable(server, &identity).await {
            match self.run_script(&session, &platform, learnt).await {
                Ok(snapshot) => return snapshot,
                // A timeout is the host's fault, not the session's: report it.
                Err(e @ SshError::Timeout { .. }) => {
                    self.forget(server.id).await;
                    return Err(e.into());
                }
                // The connection dropped since the last poll: reconnect below.
                Err(_) => self.forget(server.id).await,
            }
        }
        let session = self.connect(server, learnt).await?;
        // First contact or reconnect: learn what the host runs before polling it.
        let probe = session
            .exec(
                crate::probe::REMOTE_COMMAND,
                PROBE_SCRIPT.as_bytes(),
                self.timeouts.command,
            )
            .await?;
        let platform = Platform::read(&String::from_utf8_lossy(&probe.stdout));
        learnt.platform = Some(platform.clone());
        let snapshot = self.run_script(&session, &platform, learnt).await?;
        let fingerprint = match &session.host_key {
            HostKeyCheck::FirstSeen(fp) | HostKeyCheck::Match(fp) => fp.clone(),
            HostKeyCheck::Changed { presented, .. } => presented.clone(),
        };
        let mut map = self.sessions.lock().await;
        map.insert(
            server.id,
            Cached {
                identity,
                fingerprint,
                session,
                platform,
            },
        );
        self.metrics
            .open_sessions
            .store(map.len() as u64, Ordering::Relaxed);
        snapshot
    }

    /// The open session of this server when it is still alive, still for the same target,
    /// and the key it verified is still the trusted one (`trust` may have pinned another).
    async fn reusable(&self, server: &Server, identity: &str) -> Option<(Arc<Session>, Platform)> {
        let mut map = self.sessions.lock().await;
        match map.get(&server.id) {
            Some(c)
                if c.identity == identity
                    && !c.session.is_closed()
                    && server
                        .host_key_fingerprint
                        .as_ref()
                        .is_none_or(|pin| *pin == c.fingerprint) =>
            {
                Some((c.session.clone(), c.platform.clone()))
            }
            Some(_) => {
                map.remove(&server.id);
                None
            }
            None => None,
        }
    }

    /// Opens a new session: resolves the key, waits for a handshake slot, connects and
    /// checks the host key against the pin.
    async fn connect(
        &self,
        server: &Server,
        learnt: &mut Learnt,
    ) -> Result<Arc<Session>, PollError> {
        let key = {
            let server = server.clone();
            let key_dir = self.key_dir.clone();
            off_async(move || server_key(&server, &key_dir))
                .await
                .unwrap_or(Err(KeyError::TimedOut))?
        };
        let params = ConnectParams {
            host: server.host.clone(),
            port: server.port,
            user: server.user.clone(),
            key: Arc::new(key),
            pinned: server.host_key_fingerprint.clone(),
            connect_timeout: self.timeouts.connect,
            auth_timeout: self.timeouts.auth,
        };
        // Waiting for a handshake slot is our own pacing, not the host's slowness: it has no
        // deadline of its own, and the connect deadline starts once the slot is ours.
        let permit = self.handshakes.acquire(&server.host).await;
        self.metrics.handshakes.fetch_add(1, Ordering::Relaxed);
        let connected = Session::connect(&params).await;
        drop(permit);
        match connected {
            Ok(s) => {
                learnt.host_key = Some(s.host_key.clone());
                Ok(Arc::new(s))
            }
            Err(e) => {
                self.metrics
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                if let SshError::HostKeyChanged { pinned, presented } = &e {
                    learnt.host_key = Some(HostKeyCheck::Changed {
                        pinned: pinned.clone(),
                        presented: presented.clone(),
                    });
                }
                Err(e.into())
            }
        }
    }

    /// Runs the poll script for `platform`; the outer error is the transport's, the inner
    /// result what the output amounted to. Output that could not all be read is kept raw.
    async fn run_script(
        &self,
        session: &Session,
        platform: &Platform,
        learnt: &mut Learnt,
    ) -> Result<Result<Snapshot, PollError>, SshError> {
        let script = poll_script(Some(platform));
        let out = session
            .exec(
                crate::probe::REMOTE_COMMAND,
                script.as_bytes(),
                self.timeouts.command,
            )
            .await?;
        let snapshot = assemble(&out, platform.free_in_bytes());
        let problems = match &snapshot {
            Ok(s) if s.problems.is_empty() => None,
            Ok(s) => Some(
                s.problems
                    .iter()
                    .map(|p| format!("{} {}: {}", p.section, p.kind(), p.message()))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(e) => Some(e.to_string()),
        };
        learnt.raw =
            problems.map(|p| RawOutput::capped(&out.stdout, &out.stderr, out.exit_status, p));
        Ok(snapshot)
    }

    /// Drops a server's session (removed, edited, or broken).
    pub async fn forget(&self, id: Uuid) {
        let cached = {
            let mut map = self.sessions.lock().await;
            let c = map.remove(&id);
            self.metrics
                .open_sessions
                .store(map.len() as u64, Ordering::Relaxed);
            c
        };
        if let Some(c) = cached {
            if let Ok(session) = Arc::try_unwrap(c.session) {
                session.close().await;
            }
        }
    }

    /// Closes the sessions of servers no longer polled (removed or disabled).
    pub async fn retain(&self, keep: &HashSet<Uuid>) {
        let dropped: Vec<Cached> = {
            let mut map = self.sessions.lock().await;
            let gone: Vec<Uuid> = map
                .keys()
                .filter(|id| !keep.contains(id))
                .copied()
                .collect();
            let dropped = gone.iter().filter_map(|id| map.remove(id)).collect();
            self.metrics
                .open_sessions
                .store(map.len() as u64, Ordering::Relaxed);
            dropped
        };
        for c in dropped {
            if let Ok(session) = Arc::try_unwrap(c.session) {
                session.close().await;
            }
        }
    }

    /// Closes every session, for shutdown.
    pub async fn close_all(&self) {
        let all: Vec<Cached> = self.sessions.lock().await.drain().map(|(_, c)| c).collect();
        self.metrics.open_sessions.store(0, Ordering::Relaxed);
        for c in all {
            if let Ok(session) = Arc::try_unwrap(c.session) {
                session.close().await;
            }
        }
    }
}

/// How a server is reached: when any of it changes, an open session is for another target.
fn identity(server: &Server) -> String {
    format!(
        "{}|{}|{}|{}|{:?}",
        server.host, server.port, server.user, server.key_path, server.key_passphrase_env
    )
}
