//! A simulated fleet: N SSH servers in one process (russh's server side), host i on its own
//! loopback address, each with its own host key, answering fleetpoll's probe and poll
//! scripts with real captured outputs. For `fleetpoll demo`, the tests and the benchmark;
//! the poller talks to it exactly as to real hosts and cannot tell the difference.
//!
//! Owns: listeners, simulated sessions, the hosts file. Must not touch the store, the
//! scheduler or the poller (the demo wires those in `demo`).
//!
//! Host kinds, assigned from the end of the address range (`sim-0001` is always live):
//! live hosts answer after `delay`; dead hosts have no listener (connection refused);
//! silent hosts accept TCP and never send a byte; slow hosts answer after `slow_delay`;
//! flapping hosts close their listener and drop their sessions every `flap_period`, and
//! come back after another. With `rekey_after`, host 0 presents a new host key to
//! connections made after that delay.
//!
//! Cost: one file descriptor per listening host plus one per open session, a few hundred
//! bytes of state per host (its key and russh configuration) and one task per listener.

pub mod demo;
mod host;
pub mod outputs;

use std::fmt;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{Algorithm, PrivateKey, PublicKey};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::import::{csv_field, CSV_HEADER, TAG_SEPARATOR};

/// What a simulated host does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// Answers every command after the command delay.
    Live,
    /// Nothing listens: connections are refused.
    Dead,
    /// Accepts TCP and never sends a byte (a wedged sshd, a black-holing middlebox).
    Silent,
    /// Speaks SSH but answers commands only after the slow delay.
    Slow,
    /// Alternately up (like `Live`) and down (like `Dead`, sessions dropped).
    Flapping,
}

impl HostKind {
    /// The word used in tags and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Dead => "dead",
            Self::Silent => "silent",
            Self::Slow => "slow",
            Self::Flapping => "flapping",
        }
    }
}

impl fmt::Display for HostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to build a fleet. Counts, not percentages: the CLI converts.
#[derive(Clone)]
pub struct SimOptions {
    /// Number of hosts.
    pub hosts: usize,
    /// Address of host 0; host i listens on `base + i` (all of 127.0.0.0/8 reaches `lo`).
    pub base: Ipv4Addr,
    /// The port every host listens on.
    pub port: u16,
    /// The only key accepted for public-key authentication (any user name).
    pub client_key: PublicKey,
    pub dead: usize,
    pub silent: usize,
    pub slow: usize,
    pub flapping: usize,
    /// Delay before a live host answers a command (the time real commands take).
    pub delay: Duration,
    /// Delay before a slow host answers: longer than any sane command timeout.
    pub slow_delay: Duration,
    /// How long a flapping host stays up, then down.
    pub flap_period: Duration,
    /// When set, host 0 presents a new host key to connections made after this delay.
    pub rekey_after: Option<Duration>,
    /// Derives every host key from this seed (a re-run presents the same keys, so pinned
    /// keys stay valid); random keys when `None`. The rekeyed key is always random.
    pub host_key_seed: Option<[u8; 32]>,
}

impl fmt::Debug for SimOptions {
    // The seed is key material: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimOptions")
            .field("hosts", &self.hosts)
            .field("base", &self.base)
            .field("port", &self.port)
            .field("dead", &self.dead)
            .field("silent", &self.silent)
            .field("slow", &self.slow)
            .field("flapping", &self.flapping)
            .field("delay", &self.delay)
            .field("slow_delay", &self.slow_delay)
            .field("flap_period", &self.flap_period)
            .field("rekey_after", &self.rekey_after)
            .field("host_key_seed", &self.host_key_seed.map(|_| "[redacted]"))
            .finish()
    }
}

impl SimOptions {
    /// Defaults for `hosts` live hosts from 127.1.0.1:2222 accepting `client_key`.
    pub fn new(hosts: usize, client_key: PublicKey) -> Self {
        Self {
            hosts,
            base: Ipv4Addr::new(127, 1, 0, 1),
            port: 2222,
            client_key,
            dead: 0,
            silent: 0,
            slow: 0,
            flapping: 0,
            delay: Duration::from_millis(50),
            slow_delay: Duration::from_secs(120),
            flap_period: Duration::from_secs(30),
            rekey_after: None,
            host_key_seed: None,
        }
    }
}

/// Why a fleet could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The options contradict each other or leave 127.0.0.0/8.
    #[error("{0}")]
    Invalid(String),
    /// A host's address could not be bound (in use, or out of file descriptors).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A host key could not be generated.
    #[error("cannot generate a host key: {0}")]
    Key(String),
}

/// One simulated host, as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHost {
    pub index: usize,
    /// `sim-0001` for index 0.
    pub name: String,
    pub addr: SocketAddr,
    pub kind: HostKind,
    /// Whether this host's key changes after `rekey_after`.
    pub rekey: bool,
    /// `SHA256:...` of the key it presents at start.
    pub host_key_fingerprint: String,
}

/// A running fleet. Dropping it does not stop it: call [`SimFleet::shutdown`].
pub struct SimFleet {
    hosts: Vec<SimHost>,
    states: Vec<Arc<host::Host>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl SimFleet {
    /// The hosts, in address order.
    pub fn hosts(&self) -> &[SimHost] {
        &self.hosts
    }

    /// SSH sessions each host has seen start, in address order.
    pub fn sessions(&self) -> Vec<u64> {
        self.states.iter().map(|h| h.sessions()).collect()
    }

    /// Closes every listener and drops every session; returns when all tasks ended.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Name of host `index`: `sim-0001` for 0, four digits at least.
pub fn host_name(index: usize) -> String {
    format!("sim-{:04}", index + 1)
}

/// Starts the fleet: binds every listening host before returning, so a taken address or a
/// lack of file descriptors is an error here rather than a dead host later.
///
/// # Errors
/// [`SimError`] for bad options, a bind failure or key generation.
pub async fn start(opts: SimOptions) -> Result<SimFleet, SimError> {
    let kinds = assign_kinds(&opts)?;
    let base = u32::from(opts.base);
    let last = base + u32::try_from(opts.hosts.saturating_sub(1)).unwrap_or(u32::MAX);
    if opts.base.octets()[0] != 127
        || Ipv4Addr::from(last).octets()[0] != 127
        || last == u32::from(Ipv4Addr::new(127, 255, 255, 255))
    {
        return Err(SimError::Invalid(format!(
            "{} hosts from {} leave 127.0.0.0/8 (the loopback range every address of which reaches lo)",
            opts.hosts, opts.base
        )));
    }
    if opts.port == 0 {
        return Err(SimError::Invalid("port must be between 1 and 65535".into()));
    }
    let shared = Arc::new(host::Shared {
        client_key: opts.client_key.clone(),
        delay: opts.delay,
        slow_delay: opts.slow_delay,
    });
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut hosts = Vec::with_capacity(opts.hosts);
    let mut states = Vec::with_capacity(opts.hosts);
    let mut bound = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let ip = Ipv4Addr::from(base + u32::try_from(i).unwrap_or(0));
        let addr = SocketAddr::from((ip, opts.port));
        let key = host_key(opts.host_key_seed.as_ref(), i)?;
        let fingerprint = key
            .public_key()
            .fingerprint(russh::keys::HashAlg::Sha256)
            .to_string();
        let rekey = i == 0 && opts.rekey_after.is_some();
        let state = Arc::new(host::Host::new(i, addr, key));
        states.push(state.clone());
        if kind != HostKind::Dead {
            let listener = host::bind(addr).map_err(|source| SimError::Bind { addr, source })?;
            bound.push((state.clone(), kind, listener));
        }
        if let (true, Some(after)) = (rekey, opts.rekey_after) {
            let state = state.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(after) => {
                        match PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519) {
                            Ok(k) => {
                                tracing::info!(host = %host_name(0), "Simulated host presents a new host key from now on");
                                state.set_key(k);
                            }
                            Err(e) => tracing::error!(error = %e, "Cannot generate the new host key"),
                        }
                    }
                }
            });
        }
        hosts.push(SimHost {
            index: i,
            name: host_name(i),
            addr,
            kind,
            rekey,
            host_key_fingerprint: fingerprint,
        });
    }
    for (state, kind, listener) in bound {
        let cancel = cancel.clone();
        let shared = shared.clone();
        let t = tracker.clone();
        match kind {
            HostKind::Silent => {
                tracker.spawn(host::accept_silent(listener, cancel, t));
            }
            HostKind::Flapping => {
                tracker.spawn(host::flap(
                    state,
                    listener,
                    shared,
                    opts.flap_period,
                    cancel,
                    t,
                ));
            }
            HostKind::Live | HostKind::Slow => {
                tracker.spawn(host::accept_ssh(
                    state,
                    listener,
                    shared,
                    kind == HostKind::Slow,
                    cancel,
                    t,
                ));
            }
            HostKind::Dead => {}
        }
    }
    Ok(SimFleet {
        hosts,
        states,
        cancel,
        tracker,
    })
}

/// Kinds by index: specials from the end of the range so that host 0 (the rekey host) is
/// live, in the order dead, silent, slow, flapping going backwards.
fn assign_kinds(opts: &SimOptions) -> Result<Vec<HostKind>, SimError> {
    if opts.hosts == 0 {
        return Err(SimError::Invalid("a fleet needs at least one host".into()));
    }
    let special = opts.dead + opts.silent + opts.slow + opts.flapping;
    let reserved = usize::from(opts.rekey_after.is_some());
    if special + reserved > opts.hosts {
        return Err(SimError::Invalid(format!(
            "{} dead + {} silent + {} slow + {} flapping hosts{} do not fit in {} hosts",
            opts.dead,
            opts.silent,
            opts.slow,
            opts.flapping,
            if reserved > 0 {
                " plus the live rekey host"
            } else {
                ""
            },
            opts.hosts
        )));
    }
    let mut kinds = vec![HostKind::Live; opts.hosts];
    let mut i = opts.hosts;
    for (kind, n) in [
        (HostKind::Dead, opts.dead),
        (HostKind::Silent, opts.silent),
        (HostKind::Slow, opts.slow),
        (HostKind::Flapping, opts.flapping),
    ] {
        for _ in 0..n {
            i -= 1;
            kinds[i] = kind;
        }
    }
    Ok(kinds)
}

/// Host `index`'s key: derived from the seed (SHA-256 of seed and index as the ed25519
/// seed), or random.
fn host_key(seed: Option<&[u8; 32]>, index: usize) -> Result<PrivateKey, SimError> {
    match seed {
        Some(seed) => {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(seed);
            h.update((index as u64).to_le_bytes());
            let derived: [u8; 32] = h.finalize().into();
            let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&derived);
            Ok(PrivateKey::from(pair))
        }
        None => PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .map_err(|e| SimError::Key(e.to_string())),
    }
}

/// Percent of `hosts`, rounded to the nearest host (`--dead 10` of 50 is 5).
pub fn percent_of(hosts: usize, pct: f64) -> usize {
    if !(pct.is_finite() && pct > 0.0) {
        return 0;
    }
    ((hosts as f64) * pct / 100.0).round() as usize
}

/// Writes the hosts file in `server import`'s format: one row per host, tags `<tags>;<kind>`
/// (plus `rekey`).
///
/// # Errors
/// The file cannot be written.
pub fn write_hosts_csv(
    path: &Path,
    hosts: &[SimHost],
    user: &str,
    key_path: &Path,
    tags: &[String],
) -> std::io::Result<()> {
    let mut out = String::with_capacity(64 * (hosts.len() + 1));
    out.push_str(CSV_HEADER);
    out.push('\n');
    let key = csv_field(&key_path.to_string_lossy());
    for h in hosts {
        let mut t: Vec<&str> = tags.iter().map(String::as_str).collect();
        t.push(h.kind.as_str());
        if h.rekey {
            t.push("rekey");
        }
        let sep = TAG_SEPARATOR.to_string();
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            h.name,
            h.addr.ip(),
            h.addr.port(),
            csv_field(user),
            key,
            csv_field(&t.join(&sep))
        ));
    }
    let mut f = std::fs::File::create(path)?;
    f.write_all(out.as_bytes())?;
    f.sync_all()
}

/// Writes a new ed25519 key pair in OpenSSH format: the private key at `path` (mode 0600)
/// and the public key at `path.pub`.
///
/// # Errors
/// The key cannot be generated or written.
pub fn write_client_key(path: &Path) -> std::io::Result<PrivateKey> {
    crate::ssh::keys::generate(path, "fleetpoll-demo")
}

/// Creates `path` readable by its owner only, then writes `bytes`.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(hosts: usize) -> SimOptions {
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("key");
        SimOptions::new(hosts, key.public_key().clone())
    }

    #[test]
    fn specials_come_from_the_end_and_host_zero_stays_live() {
        let mut o = opts(10);
        o.dead = 2;
        o.silent = 1;
        o.slow = 1;
        o.flapping = 1;
        let k = assign_kinds(&o).expect("kinds");
        assert_eq!(k[0], HostKind::Live);
        assert_eq!(&k[8..], &[HostKind::Dead, HostKind::Dead]);
        assert_eq!(k[7], HostKind::Silent);
        assert_eq!(k[6], HostKind::Slow);
        assert_eq!(k[5], HostKind::Flapping);
        assert_eq!(k.iter().filter(|k| **k == HostKind::Live).count(), 5);
    }

    #[test]
    fn too_many_specials_are_refused() {
        let mut o = opts(3);
        o.dead = 3;
        o.rekey_after = Some(Duration::from_secs(1));
        assert!(matches!(assign_kinds(&o), Err(SimError::Invalid(_))));
    }

    #[test]
    fn percentages_round_to_the_nearest_host() {
        assert_eq!(percent_of(50, 6.0), 3);
        assert_eq!(percent_of(10_000, 10.0), 1000);
        assert_eq!(percent_of(6, 10.0), 1);
        assert_eq!(percent_of(6, 0.0), 0);
        assert_eq!(percent_of(6, f64::NAN), 0);
    }

    #[test]
    fn seeded_keys_repeat_and_differ_per_host() {
        let seed = [7u8; 32];
        let fp = |i| {
            host_key(Some(&seed), i)
                .expect("key")
                .public_key()
                .fingerprint(russh::keys::HashAlg::Sha256)
                .to_string()
        };
        assert_eq!(fp(3), fp(3));
        assert_ne!(fp(3), fp(4));
    }

    #[test]
    fn debug_does_not_show_the_seed() {
        let mut o = opts(1);
        o.host_key_seed = Some([42u8; 32]);
        assert!(format!("{o:?}").contains("[redacted]"));
        assert!(!format!("{o:?}").contains("42, 42"));
    }

    #[tokio::test]
    async fn addresses_outside_loopback_are_refused() {
        let mut o = opts(3);
        o.base = Ipv4Addr::new(127, 255, 255, 254);
        assert!(matches!(start(o).await, Err(SimError::Invalid(_))));
        let mut o = opts(1);
        o.base = Ipv4Addr::new(10, 0, 0, 1);
        assert!(matches!(start(o).await, Err(SimError::Invalid(_))));
    }
}
