//! One simulated host on the network: its listener, its SSH sessions (russh's server side),
//! and how it answers `sh -s`. What it answers comes from `outputs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Config, Handle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::outputs::{self, Answer};

/// Input beyond this is dropped: fleetpoll's scripts are a few KiB.
const MAX_STDIN_BYTES: usize = 256 * 1024;

/// What every host of the fleet shares.
pub(super) struct Shared {
    pub client_key: PublicKey,
    pub delay: Duration,
    pub slow_delay: Duration,
}

/// One host's state: kept small, since a benchmark fleet has 10,000 of them.
pub(super) struct Host {
    index: usize,
    pub addr: SocketAddr,
    /// russh's server configuration holds the host key; replaced whole when it changes, so
    /// sessions already open keep the key they were opened with (like a real sshd).
    config: RwLock<Arc<Config>>,
    /// SSH sessions started, so tests can tell a kept session from a new one.
    sessions: AtomicU64,
}

impl Host {
    pub fn new(index: usize, addr: SocketAddr, key: PrivateKey) -> Self {
        Self {
            index,
            addr,
            config: RwLock::new(config(key)),
            sessions: AtomicU64::new(0),
        }
    }

    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Presents `key` to connections made from now on.
    pub fn set_key(&self, key: PrivateKey) {
        let new = config(key);
        match self.config.write() {
            Ok(mut c) => *c = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

fn config(key: PrivateKey) -> Arc<Config> {
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::PublicKey);
    Arc::new(Config {
        keys: vec![key],
        methods,
        // No delay on the initial "none" probe; a refused key waits like sshd does.
        auth_rejection_time_initial: Some(Duration::ZERO),
        auth_rejection_time: Duration::from_millis(500),
        // Longer than any poll interval: fleetpoll keeps its sessions open between polls
        // and its keepalives count as activity.
        inactivity_timeout: Some(Duration::from_secs(900)),
        nodelay: true,
        ..Default::default()
    })
}

/// Binds `addr` with SO_REUSEADDR so a flapping host can come back while the connections it
/// dropped are in TIME_WAIT.
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts until `cancel`, handing each connection to `handle` as a tracked task. An accept
/// error (out of file descriptors, most likely) is waited out instead of spun on.
async fn accept_each<F, Fut>(
    listener: TcpListener,
    cancel: CancellationToken,
    tracker: TaskTracker,
    mut handle: F,
) where
    F: FnMut(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                tracker.spawn(handle(stream));
            }
            Err(e) => {
                tracing::debug!(error = %e, "Simulated host cannot accept");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

/// A live or slow host: every connection gets an SSH session until `cancel`.
pub(super) async fn accept_ssh(
    host: Arc<Host>,
    listener: TcpListener,
    shared: Arc<Shared>,
    slow: bool,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let each = cancel.clone();
    accept_each(listener, cancel, tracker, move |stream| {
        serve(stream, host.clone(), shared.clone(), slow, each.clone())
    })
    .await;
}

async fn serve(
    stream: TcpStream,
    host: Arc<Host>,
    shared: Arc<Shared>,
    slow: bool,
    cancel: CancellationToken,
) {
    let handler = Conn {
        host: host.clone(),
        shared,
        slow,
        cancel: cancel.clone(),
        channels: Vec::new(),
    };
    let session = tokio::select! {
        _ = cancel.cancelled() => return,
        r = russh::server::run_stream(host.config(), stream, handler) => match r {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(addr = %host.addr, error = %e, "Simulated SSH session failed to start");
                return;
            }
        },
    };
    host.sessions.fetch_add(1, Ordering::Relaxed);
    let handle = session.handle();
    tokio::select! {
        _ = session => {}
        _ = cancel.cancelled() => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "host going down".into(), "en".into())
                .await;
        }
    }
}

/// A silent host: accepts, reads and discards, never writes; holds each connection until
/// the client gives up or `cancel`.
pub(super) async fn accept_silent(
    listener: TcpListener,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let each = cancel.clone();
    accept_each(listener, cancel, tracker, move |mut stream| {
        let cancel = each.clone();
        async move {
            let mut buf = [0u8; 256];
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = stream.read(&mut buf) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    },
                }
            }
        }
    })
    .await;
}

/// A flapping host: up for `period` (listening, answering), then down for `period`
/// (listener closed, sessions dropped), until `cancel`.
pub(super) async fn flap(
    host: Arc<Host>,
    listener: TcpListener,
    shared: Arc<Shared>,
    period: Duration,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let mut first = Some(listener);
    loop {
        let listener = match first.take() {
            Some(l) => Ok(l),
            None => bind(host.addr),
        };
        match listener {
            Ok(listener) => {
                tracing::debug!(addr = %host.addr, "Flapping host up");
                let up = cancel.child_token();
                tokio::select! {
                    _ = accept_ssh(host.clone(), listener, shared.clone(), false, up.clone(), tracker.clone()) => {}
                    _ = tokio::time::sleep(period) => {}
                }
                // Closes the listener (dropped with the accept loop) and every session.
                up.cancel();
                tracing::debug!(addr = %host.addr, "Flapping host down");
            }
            Err(e) => {
                tracing::warn!(addr = %host.addr, error = %e, "Flapping host cannot come back up")
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

/// One SSH connection's handler.
struct Conn {
    host: Arc<Host>,
    shared: Arc<Shared>,
    slow: bool,
    cancel: CancellationToken,
    /// Open session channels running `sh -s`, with the input received so far.
    channels: Vec<(ChannelId, Vec<u8>)>,
}

impl Conn {
    fn accepts(&self, key: &PublicKey) -> Auth {
        if key.key_data() == self.shared.client_key.key_data() {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }

    /// Sends `answer` on `channel` after `delay`, the way sshd ends a command: output,
    /// exit status, EOF, close. Spawned so the session keeps serving meanwhile.
    fn reply_later(&self, session: &Session, channel: ChannelId, answer: Answer, delay: Duration) {
        let handle = session.handle();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(delay) => send(&handle, channel, answer).await,
            }
        });
    }

    fn delay(&self) -> Duration {
        if self.slow {
            self.shared.slow_delay
        } else {
            self.shared.delay
        }
    }
}

async fn send(handle: &Handle, channel: ChannelId, a: Answer) {
    if !a.stdout.is_empty() && handle.data(channel, a.stdout.into_bytes()).await.is_err() {
        return;
    }
    if !a.stderr.is_empty()
        && handle
            .extended_data(channel, 1, a.stderr.into_bytes())
            .await
            .is_err()
    {
        return;
    }
    let _ = handle.exit_status_request(channel, a.exit_status).await;
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.accepts(offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.accepts(key.public_key))
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Input and requests arrive through the handler's callbacks; the channel object
        // itself is not needed.
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let command = String::from_utf8_lossy(data);
        if command.trim() == "sh -s" {
            // The script comes on stdin; answered at EOF.
            self.channels.push((channel, Vec::new()));
        } else {
            self.reply_later(session, channel, outputs::not_found(&command), self.delay());
        }
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some((_, buf)) = self.channels.iter_mut().find(|(c, _)| *c == channel) {
            let room = MAX_STDIN_BYTES.saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(pos) = self.channels.iter().position(|(c, _)| *c == channel) else {
            return Ok(());
        };
        let (_, stdin) = self.channels.swap_remove(pos);
        let script = String::from_utf8_lossy(&stdin);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let answer = outputs::answer(&script, &outputs::Profile::of(self.host.index), now);
        self.reply_later(session, channel, answer, self.delay());
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.retain(|(c, _)| *c != channel);
        Ok(())
    }
}
