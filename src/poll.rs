//! One host's poll: reuse (or open) its SSH session, run the remote script once, split the
//! output into sections, parse each, and assemble a [`Snapshot`]. A section that fails is
//! reported as a problem while the others are still used. No SQL, no scheduling.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::inventory::Server;
use crate::model::{
    ContainerSample, DiskSample, DockerState, SectionProblem, ServerSample, Snapshot,
};
use crate::observe::Metrics;
use crate::parse;
use crate::probe::{poll_script, Platform, PROBE_SCRIPT};
use crate::ssh::keys::{load_private_key, Passphrase};
use crate::ssh::{CommandOutput, ConnectParams, HostKeyCheck, Session, SshError};
use serde::Serialize;

/// Why a poll produced no snapshot. `reason()` is the stored, documented word.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The script ran but none of top, free or df gave output we could use.
    #[error("{0}")]
    CommandFailed(String),
    #[error("{0}")]
    ParseFailed(String),
    /// The key named by the server could not be loaded (moved, passphrase variable unset).
    #[error("{0}")]
    Key(String),
}

impl PollError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Ssh(SshError::Unreachable { .. }) => "unreachable",
            Self::Ssh(SshError::Timeout { .. }) => "timeout",
            Self::Ssh(SshError::HostKeyChanged { .. }) => "host_key_changed",
            Self::Ssh(SshError::AuthFailed { .. }) | Self::Key(_) | Self::Ssh(SshError::Key(_)) => {
                "auth_failed"
            }
            Self::Ssh(SshError::Protocol(_)) => "unreachable",
            Self::CommandFailed(_) => "command_failed",
            Self::ParseFailed(_) => "parse_failed",
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

/// The raw text of a poll whose output could not all be read, for the admin to inspect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawOutput {
    pub problems: String,
    pub exit_status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

/// Kept raw output is capped: enough to see what went wrong, never a disk hog.
const RAW_CAP: usize = 256 * 1024;

impl RawOutput {
    fn new(out: &CommandOutput, problems: String) -> Self {
        let cap = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(RAW_CAP)]).into_owned();
        Self {
            problems,
            exit_status: out.exit_status,
            stdout: cap(&out.stdout),
            stderr: cap(&out.stderr),
        }
    }
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

/// A container's cumulative CPU seconds at the time of a poll.
type CpuMark = (f64, Instant);

/// Limits on opening new SSH sessions.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    pub per_second: u32,
    pub per_target: u32,
}

/// Paces new sessions: a token bucket fleet-wide, and a bound on handshakes in progress per
/// target address, so that a burst of reconnects never trips sshd's MaxStartups on one host
/// or a jump host in front of many.
struct Handshakes {
    limits: HandshakeLimits,
    bucket: std::sync::Mutex<(f64, Instant)>,
    targets: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl Handshakes {
    fn new(limits: HandshakeLimits) -> Self {
        Self {
            limits,
            bucket: std::sync::Mutex::new((f64::from(limits.per_second), Instant::now())),
            targets: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a handshake slot; the permit bounds the handshakes in progress per target address.
    async fn acquire(&self, host: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let rate = f64::from(self.limits.per_second.max(1));
        loop {
            let wait = {
                let Ok(mut b) = self.bucket.lock() else { break };
                let now = Instant::now();
                b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * rate).min(rate);
                b.1 = now;
                if b.0 >= 1.0 {
                    b.0 -= 1.0;
                    None
                } else {
                    Some(Duration::from_secs_f64((1.0 - b.0) / rate))
                }
            };
            match wait {
                None => break,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
        let sem = {
            let mut nets = self.targets.lock().ok()?;
            nets.entry(target_of(host))
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Semaphore::new(
                        self.limits.per_target.max(1) as usize
                    ))
                })
                .clone()
        };
        sem.acquire_owned().await.ok()
    }
}

/// The target a handshake counts against: the host's address (or its name when it is not
/// an address). sshd's MaxStartups is per listening server, and a jump host or NAT in front of
/// many hosts shows them all on one address; grouping wider (a /24) let a few silent hosts
/// hold every permit of their neighbours for a whole connect deadline.
pub fn target_of(host: &str) -> String {
    match host.parse::<std::net::IpAddr>() {
        Ok(a) => a.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

/// Polls servers, keeping one SSH session per server open between polls.
pub struct Poller {
    timeouts: PollTimeouts,
    sessions: Mutex<HashMap<Uuid, Cached>>,
    handshakes: Handshakes,
    metrics: Arc<Metrics>,
    /// Where the master key for stored SSH keys lives (the database's directory).
    key_dir: std::path::PathBuf,
    /// Podman's one-shot CPU% is the average since the container started; the current
    /// figure comes from its cumulative CPU time between two of our polls.
    cpu_marks: std::sync::Mutex<HashMap<(Uuid, String), CpuMark>>,
}

impl Poller {
    pub fn new(
        timeouts: PollTimeouts,
        limits: HandshakeLimits,
        metrics: Arc<Metrics>,
        key_dir: std::path::PathBuf,
    ) -> Self {
        Self {
            key_dir,
            timeouts,
            sessions: Mutex::new(HashMap::new()),
            handshakes: Handshakes::new(limits),
            metrics,
            cpu_marks: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Polls one server. Never panics and never returns early with `?`: every failure is a
    /// [`PollError`] in the result.
    pub async fn poll(&self, server: &Server) -> PollResult {
        let started = std::time::Instant::now();
        let mut result = self.poll_inner(server).await;
        if let Ok(snapshot) = &mut result.outcome {
            self.current_container_cpu(server.id, snapshot);
        }
        result.duration = started.elapsed();
        result
    }

    async fn poll_inner(&self, server: &Server) -> PollResult {
        let mut result = PollResult {
            server_id: server.id,
            outcome: Err(PollError::CommandFailed("not polled".into())),
            host_key: None,
            platform: None,
            raw: None,
            duration: Duration::ZERO,
        };
        let identity = identity(server);
        // Reuse the open session when it is still alive, still for the same target, and the
        // key it verified is still the trusted one (`trust` may have pinned another).
        let reused = {
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
        };
        if let Some((session, platform)) = reused {
            match self.run_script(&session, &platform).await {
                Ok((snapshot, raw)) => {
                    result.outcome = snapshot;
                    result.raw = raw;
                    return result;
                }
                // A timeout is the host's fault, not the session's: report it.
                Err(e @ SshError::Timeout { .. }) => {
                    self.forget(server.id).await;
                    result.outcome = Err(e.into());
                    return result;
                }
                // The connection dropped since the last poll: reconnect below.
                Err(_) => self.forget(server.id).await,
            }
        }

        let key = match load_key(server, &self.key_dir) {
            Ok(k) => k,
            Err(e) => {
                result.outcome = Err(e);
                return result;
            }
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
        if connected.is_err() {
            self.metrics
                .handshake_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        let session = match connected {
            Ok(s) => Arc::new(s),
            Err(SshError::HostKeyChanged { pinned, presented }) => {
                result.host_key = Some(HostKeyCheck::Changed {
                    pinned: pinned.clone(),
                    presented: presented.clone(),
                });
                result.outcome = Err(SshError::HostKeyChanged { pinned, presented }.into());
                return result;
            }
            Err(e) => {
                result.outcome = Err(e.into());
                return result;
            }
        };
        let check = session.host_key.clone();
        result.host_key = Some(check.clone());
        // First contact or reconnect: learn what the host runs before polling it.
        let platform = match session
            .exec("sh -s", PROBE_SCRIPT.as_bytes(), self.timeouts.command)
            .await
        {
            Ok(out) => Platform::read(&String::from_utf8_lossy(&out.stdout)),
            Err(e) => {
                result.outcome = Err(e.into());
                return result;
            }
        };
        result.platform = Some(platform.clone());
        match self.run_script(&session, &platform).await {
            Ok((snapshot, raw)) => {
                let fingerprint = match &check {
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
                drop(map);
                result.outcome = snapshot;
                result.raw = raw;
            }
            Err(e) => result.outcome = Err(e.into()),
        }
        result
    }

    /// Runs the poll script for `platform`; the outer error is the transport's, the inner
    /// result what the output amounted to.
    async fn run_script(
        &self,
        session: &Session,
        platform: &Platform,
    ) -> Result<(Result<Snapshot, PollError>, Option<RawOutput>), SshError> {
        let script = poll_script(Some(platform));
        let out = session
            .exec("sh -s", script.as_bytes(), self.timeouts.command)
            .await?;
        let snapshot = assemble(&out, platform.free_in_bytes());
        let raw = match &snapshot {
            Ok(s) if s.problems.is_empty() => None,
            Ok(s) => Some(RawOutput::new(
                &out,
                s.problems
                    .iter()
                    .map(|p| format!("{} {}: {}", p.section, p.kind, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            Err(e) => Some(RawOutput::new(&out, e.to_string())),
        };
        Ok((snapshot, raw))
    }

    /// Replaces podman's since-start CPU% with the use between this poll and the previous
    /// one (None on the first poll of a container). Docker's figure is already current: the
    /// daemon measures it over about a second before answering.
    fn current_container_cpu(&self, server: Uuid, snapshot: &mut Snapshot) {
        let Ok(mut marks) = self.cpu_marks.lock() else {
            return;
        };
        let now = Instant::now();
        for c in &mut snapshot.containers {
            let Some(total) = c.cpu_time_seconds else {
                continue;
            };
            let key = (server, c.container_id.clone());
            c.cpu_percent = marks.get(&key).and_then(|(prev, at)| {
                let wall = now.duration_since(*at).as_secs_f64();
                (wall > 0.0 && total >= *prev)
                    .then(|| ((total - prev) / wall * 1000.0).round() / 10.0)
            });
            marks.insert(key, (total, now));
        }
        // Forget containers of this server that no longer exist.
        let live: std::collections::HashSet<&str> = snapshot
            .containers
            .iter()
            .map(|c| c.container_id.as_str())
            .collect();
        marks.retain(|(sid, cid), _| *sid != server || live.contains(cid.as_str()));
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
    pub async fn retain(&self, keep: &std::collections::HashSet<Uuid>) {
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

/// The server's private key: its stored key opened with the master key in `key_dir`, or
/// the file at its path.
fn load_key(server: &Server, key_dir: &Path) -> Result<russh::keys::PrivateKey, PollError> {
    let passphrase = match &server.key_passphrase_env {
        Some(var) => Some(Passphrase::new(std::env::var(var).map_err(|_| {
            PollError::Key(format!(
                "environment variable '{var}' holding the key passphrase is not set"
            ))
        })?)),
        None => None,
    };
    if let Some(sealed) = &server.key_sealed {
        let master = crate::vault::MasterKey::load_or_create(key_dir)
            .map_err(|e| PollError::Key(e.to_string()))?;
        let text = master
            .open(&sealed.0)
            .map_err(|e| PollError::Key(e.to_string()))?;
        let text = crate::auth::Secret::new(String::from_utf8_lossy(&text).into_owned());
        return crate::ssh::keys::decode_private_key(text.expose(), passphrase.as_ref())
            .map_err(|e| PollError::Key(e.to_string()));
    }
    load_private_key(Path::new(&server.key_path), passphrase.as_ref())
        .map_err(|e| PollError::Key(e.to_string()))
}

/// One section of the script's output.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Section {
    pub stdout: String,
    pub stderr: String,
    pub exit_status: Option<i32>,
}

/// Splits the script's output into sections by their markers. A marker that follows
/// output without a trailing newline still starts at its `@@`.
pub fn split_sections(stdout: &str, stderr: &str) -> HashMap<String, Section> {
    let mut sections: HashMap<String, Section> = HashMap::new();
    let mut current: Option<String> = None;
    for raw in stdout.lines() {
        let (content, marker) = match marker_at(raw) {
            Some(i) => (&raw[..i], Some(&raw[i..])),
            None => (raw, None),
        };
        if let (Some(name), false) = (&current, content.is_empty() && marker.is_some()) {
            let s = sections.entry(name.clone()).or_default();
            s.stdout.push_str(content);
            s.stdout.push('\n');
        }
        let Some(marker) = marker else { continue };
        let mut words = marker.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("@@fleetpoll-begin"), Some(name), _) => {
                sections.entry(name.to_string()).or_default();
                current = Some(name.to_string());
            }
            (Some("@@fleetpoll-end"), Some(name), code) => {
                let s = sections.entry(name.to_string()).or_default();
                s.exit_status = code.and_then(|c| c.parse().ok());
                current = None;
            }
            _ => {}
        }
    }
    let mut current: Option<String> = None;
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("@@fleetpoll-begin ") {
            current = Some(rest.trim().to_string());
            continue;
        }
        if let Some(name) = &current {
            let s = sections.entry(name.clone()).or_default();
            s.stderr.push_str(line);
            s.stderr.push('\n');
        }
    }
    sections
}

/// Where a section marker starts in `line`: at the start, or glued to output that lacked a
/// final newline. Only a whole marker counts, so text that merely mentions `@@fleetpoll-`
/// (a process row showing our own command line) is content.
fn marker_at(line: &str) -> Option<usize> {
    let i = line.rfind("@@fleetpoll-")?;
    let mut words = line[i..].split(' ');
    let whole = match (words.next(), words.next(), words.next(), words.next()) {
        (Some("@@fleetpoll-begin"), Some(name), None, None) => is_section_name(name),
        (Some("@@fleetpoll-end"), Some(name), Some(code), None) => {
            is_section_name(name) && code.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    whole.then_some(i)
}

fn is_section_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// Turns the script's raw output into a snapshot, or an error when nothing usable came back.
pub fn assemble(out: &CommandOutput, free_in_bytes: bool) -> Result<Snapshot, PollError> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sections = split_sections(&stdout, &stderr);
    let mut problems = Vec::new();
    let mut server = ServerSample::default();
    let mut got_any = false;

    let section = |name: &str, problems: &mut Vec<SectionProblem>| -> Option<&Section> {
        let s = sections.get(name);
        if s.is_none() {
            problems.push(SectionProblem {
                section: name.into(),
                kind: "command_failed",
                message: format!(
                    "{name}: no output (the script stopped early, exit status {:?})",
                    out.exit_status
                ),
            });
        }
        s
    };

    if let Some(s) = section("top", &mut problems) {
        match parse::top::parse(&s.stdout) {
            Ok(t) => {
                got_any = true;
                server.cpu_busy_percent = t.cpu_busy_percent;
                server.cpu_user_percent = t.cpu.us;
                server.cpu_system_percent = t.cpu.sy;
                server.cpu_iowait_percent = t.cpu.wa;
                server.cpu_steal_percent = t.cpu.st;
                server.load1 = t.load1;
                server.load5 = t.load5;
                server.load15 = t.load15;
                server.uptime_seconds = t.uptime_seconds;
                server.tasks_total = t.tasks_total;
                server.mem_total_bytes = t.mem_total_bytes;
                server.mem_used_bytes = t.mem_used_bytes;
                server.mem_free_bytes = t.mem_free_bytes;
                server.mem_available_bytes = t.mem_available_bytes;
                server.swap_total_bytes = t.swap_total_bytes;
                server.swap_used_bytes = t.swap_used_bytes;
            }
            Err(e) => problems.push(problem("top", s, &e.to_string())),
        }
    }
    if let Some(s) = section("free", &mut problems) {
        let free = if free_in_bytes {
            parse::free::parse_bytes(&s.stdout)
        } else {
            parse::free::parse(&s.stdout)
        };
        match free {
            // free -b is exact to the byte where top rounds to 0.1 MiB: it wins.
            Ok(f) => {
                got_any = true;
                server.mem_total_bytes = f.mem_total_bytes.or(server.mem_total_bytes);
                server.mem_used_bytes = f.mem_used_bytes.or(server.mem_used_bytes);
                server.mem_free_bytes = f.mem_free_bytes.or(server.mem_free_bytes);
                server.mem_available_bytes = f.mem_available_bytes.or(server.mem_available_bytes);
                server.swap_total_bytes = f.swap_total_bytes.or(server.swap_total_bytes);
                server.swap_used_bytes = f.swap_used_bytes.or(server.swap_used_bytes);
            }
            Err(e) => problems.push(problem("free", s, &e.to_string())),
        }
    }
    let mut disks = Vec::new();
    if let Some(s) = section("df", &mut problems) {
        match parse::df::parse(&s.stdout) {
            Ok(d) => {
                got_any = true;
                // df lists a filesystem mounted twice (bind mounts) twice; keep the first.
                let mut seen = std::collections::HashSet::new();
                for r in d.rows {
                    if is_storage(&r.filesystem, &r.mount, r.total_bytes)
                        && seen.insert(r.mount.clone())
                    {
                        disks.push(DiskSample {
                            filesystem: r.filesystem,
                            mount: r.mount,
                            total_bytes: r.total_bytes,
                            used_bytes: r.used_bytes,
                            available_bytes: r.available_bytes,
                            use_percent: r.use_percent,
                        });
                    }
                }
            }
            Err(e) => problems.push(problem("df", s, &e.to_string())),
        }
    }

    let (containers, docker) = containers(&sections, &mut problems);

    if !got_any {
        let all_parse = problems.iter().filter(|p| p.kind == "parse_failed").count();
        let msg = problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(if all_parse > 0 {
            PollError::ParseFailed(msg)
        } else {
            PollError::CommandFailed(msg)
        });
    }
    Ok(Snapshot {
        taken_at: Utc::now(),
        server,
        disks,
        containers,
        docker,
        problems,
    })
}

/// Filesystems that hold data. RAM-backed and pseudo filesystems, container engines'
/// internal mounts (each a view of the root filesystem) and snap images (read-only squashfs,
/// always 100% full) would only add noise and false "disk full" alarms.
pub fn is_storage(filesystem: &str, mount: &str, total_bytes: Option<u64>) -> bool {
    const PSEUDO: &[&str] = &[
        "tmpfs", "devtmpfs", "udev", "none", "overlay", "shm", "proc", "sysfs", "cgroup",
        "cgroup2", "efivarfs", "squashfs", "devfs", "run",
    ];
    const INTERNAL: &[&str] = &[
        "/var/lib/docker/",
        "/var/lib/containers/",
        "/run/docker/",
        "/run/containerd/",
        "/var/lib/kubelet/",
        "/run/k3s/",
        "/snap/",
        "/var/snap/",
    ];
    total_bytes.is_some_and(|t| t > 0)
        && !PSEUDO.contains(&filesystem)
        && !INTERNAL.iter().any(|p| mount.starts_with(p))
}

/// A section that did not parse: `command_failed` when the command itself failed (its
/// error text is the reason), `parse_failed` when it succeeded and we could not read it.
fn problem(name: &str, s: &Section, parse_error: &str) -> SectionProblem {
    match s.exit_status {
        Some(0) => SectionProblem {
            section: name.into(),
            kind: "parse_failed",
            message: parse_error.to_string(),
        },
        code => {
            let err = s.stderr.trim();
            let err = if err.is_empty() {
                "no error output"
            } else {
                err
            };
            SectionProblem {
                section: name.into(),
                kind: "command_failed",
                message: format!(
                    "{name} exited with status {}: {}",
                    code.map_or("?".into(), |c| c.to_string()),
                    first_line(err)
                ),
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn containers(
    sections: &HashMap<String, Section>,
    problems: &mut Vec<SectionProblem>,
) -> (Vec<ContainerSample>, DockerState) {
    let Some(ps) = sections.get("docker_ps") else {
        return (Vec::new(), DockerState::Failed("no docker output".into()));
    };
    match ps.exit_status {
        Some(0) => {}
        Some(127) => return (Vec::new(), DockerState::Missing),
        _ => {
            let err = first_line(ps.stderr.trim()).to_string();
            let lower = err.to_ascii_lowercase();
            return (
                Vec::new(),
                if lower.contains("permission denied") || lower.contains("not permitted") {
                    DockerState::Denied(err)
                } else {
                    DockerState::Failed(if err.is_empty() {
                        "no error output".into()
                    } else {
                        err
                    })
                },
            );
        }
    }
    let states = match parse::docker_ps::parse(&ps.stdout) {
        Ok(r) => r.containers,
        Err(e) => {
            problems.push(problem("docker_ps", ps, &e.to_string()));
            return (Vec::new(), DockerState::Available);
        }
    };
    let mut stats = HashMap::new();
    if let Some(s) = sections.get("docker_stats") {
        match parse::docker_stats::parse(&s.stdout) {
            Ok(r) => {
                for c in r.containers {
                    stats.insert(short_id(&c.id).to_string(), c);
                }
            }
            Err(e) => problems.push(problem("docker_stats", s, &e.to_string())),
        }
    }
    let rows = states
        .into_iter()
        .map(|st| {
            let usage = stats.remove(short_id(&st.id));
            ContainerSample {
                container_id: short_id(&st.id).to_string(),
                name: st.name,
                image: st.image,
                state: st.state,
                status_text: st.status,
                exit_code: st.exit_code,
                health: st.health,
                cpu_percent: usage.as_ref().and_then(|u| u.cpu_percent),
                cpu_time_seconds: usage.as_ref().and_then(|u| u.cpu_time_seconds),
                mem_used_bytes: usage.as_ref().and_then(|u| u.mem_used_bytes),
                mem_limit_bytes: usage.as_ref().and_then(|u| u.mem_limit_bytes),
                mem_percent: usage.as_ref().and_then(|u| u.mem_percent),
                net_rx_bytes: usage.as_ref().and_then(|u| u.net_rx_bytes),
                net_tx_bytes: usage.as_ref().and_then(|u| u.net_tx_bytes),
                block_read_bytes: usage.as_ref().and_then(|u| u.block_read_bytes),
                block_write_bytes: usage.as_ref().and_then(|u| u.block_write_bytes),
                pids: usage.as_ref().and_then(|u| u.pids),
            }
        })
        .collect();
    (rows, DockerState::Available)
}

/// Docker prints 12-character ids by default and 64 with `--no-trunc`; compare on 12.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_on_markers_even_without_trailing_newline() {
        let out = "@@fleetpoll-begin a\nx 1\ny@@fleetpoll-end a 0\n@@fleetpoll-begin b\n@@fleetpoll-end b 2\n";
        let err = "@@fleetpoll-begin a\n@@fleetpoll-begin b\nboom\n";
        let s = split_sections(out, err);
        assert_eq!(s["a"].stdout, "x 1\ny\n");
        assert_eq!(s["a"].exit_status, Some(0));
        assert_eq!(s["b"].stdout, "");
        assert_eq!(s["b"].exit_status, Some(2));
        assert_eq!(s["b"].stderr, "boom\n");
    }

    #[test]
    fn text_mentioning_a_marker_is_content_not_a_marker() {
        let out = "@@fleetpoll-begin top\n 42 root awk '/^@@fleetpoll-/ { print }'\n@@fleetpoll-end top 0\n";
        let s = split_sections(out, "");
        assert!(s["top"].stdout.contains("awk"), "{:?}", s["top"]);
        assert_eq!(s["top"].exit_status, Some(0));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn handshakes_are_paced_per_target_address() {
        assert_eq!(target_of("10.1.2.3"), "10.1.2.3");
        assert_ne!(target_of("10.1.2.200"), target_of("10.1.2.3"));
        assert_eq!(
            target_of("2001:db8:1:2:0:0:0:5"),
            target_of("2001:db8:1:2::5")
        );
        assert_eq!(target_of("Web-1.example.com"), "web-1.example.com");
    }

    #[test]
    fn missing_docker_is_not_a_failure() {
        let out = "@@fleetpoll-begin docker_ps\n@@fleetpoll-end docker_ps 127\n";
        let s = split_sections(
            out,
            "@@fleetpoll-begin docker_ps\ndocker: command not found\n",
        );
        let mut problems = Vec::new();
        let (rows, state) = containers(&s, &mut problems);
        assert!(rows.is_empty());
        assert_eq!(state, DockerState::Missing);
        assert!(problems.is_empty());
    }

    #[test]
    fn permission_denied_docker_is_denied() {
        let out = "@@fleetpoll-begin docker_ps\n@@fleetpoll-end docker_ps 1\n";
        let err = "@@fleetpoll-begin docker_ps\npermission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock\n";
        let (_, state) = containers(&split_sections(out, err), &mut Vec::new());
        assert!(matches!(state, DockerState::Denied(_)), "{state:?}");
    }

    #[test]
    fn pseudo_and_engine_internal_filesystems_are_not_disks() {
        assert!(is_storage("/dev/vda1", "/", Some(1)));
        assert!(is_storage(
            "/dev/mapper/vg-data",
            "/mnt/fleet data",
            Some(1)
        ));
        assert!(!is_storage("tmpfs", "/run", Some(1)));
        assert!(!is_storage(
            "overlay",
            "/var/lib/docker/overlay2/abc/merged",
            Some(1)
        ));
        assert!(!is_storage("/dev/loop3", "/snap/core22/1033", Some(1)));
        assert!(!is_storage("/dev/sdb1", "/data", Some(0)));
        assert!(!is_storage("/dev/sdb1", "/data", None));
    }

    #[test]
    fn output_with_no_usable_section_is_an_error() {
        let out = crate::ssh::CommandOutput {
            stdout: b"@@fleetpoll-begin top\ngarbage\n@@fleetpoll-end top 0\n".to_vec(),
            ..Default::default()
        };
        let e = assemble(&out, true).expect_err("nothing usable");
        assert_eq!(e.reason(), "parse_failed");
    }
}
