//! SSH transport: connect with deadlines, check the host key against the pin, authenticate
//! with a private key, run one command and collect its output. Knows nothing of top, free,
//! df or docker.

pub mod host_key;
pub mod keys;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;
use tokio::net::TcpStream;
use tokio::time::timeout;

pub use host_key::HostKeyCheck;

/// Output beyond this is dropped; a hostile or broken host cannot exhaust our memory.
const MAX_OUTPUT_BYTES: usize = 8 * 1024 * 1024;

/// Why a connection or command failed. Each variant maps to one poll failure reason.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// DNS, refused or unreachable TCP.
    #[error("cannot reach {target}: {message}")]
    Unreachable { target: String, message: String },
    /// A step did not finish within its deadline.
    #[error("{stage} timed out after {}s", after.as_secs())]
    Timeout {
        stage: &'static str,
        after: Duration,
    },
    /// The presented host key is not the pinned one; nothing was sent to the host.
    #[error("host key changed: pinned {pinned}, presented {presented}")]
    HostKeyChanged { pinned: String, presented: String },
    /// The server refused our key.
    #[error("authentication as '{user}' with the configured key was refused")]
    AuthFailed { user: String },
    /// The SSH conversation broke (protocol error, connection dropped).
    #[error("ssh: {0}")]
    Protocol(String),
}

/// Everything needed to open a session.
#[derive(Clone)]
pub struct ConnectParams {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: Arc<PrivateKey>,
    /// The pinned host key fingerprint, if any.
    pub pinned: Option<String>,
    pub connect_timeout: Duration,
    pub auth_timeout: Duration,
}

/// The output of one remote command.
#[derive(Debug, Clone, Default)]
pub struct CommandOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the channel closed without an exit status (killed by a signal).
    pub exit_status: Option<u32>,
    /// True when output beyond [`MAX_OUTPUT_BYTES`] was dropped.
    pub truncated: bool,
}

/// The russh settings of every session (the floor benchmark, `examples/ssh_floor.rs`, uses
/// them too, so that it measures the same sessions).
pub fn client_config() -> client::Config {
    client::Config {
        // Keepalives detect a dead peer between polls; the next poll reconnects.
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        ..Default::default()
    }
}

struct Client {
    pinned: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = host_key::fingerprint(key);
        let accepted = HostKeyCheck::check(self.pinned.as_deref(), &presented).accepted();
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(presented);
        }
        Ok(accepted)
    }
}

/// An authenticated SSH connection, reused across polls.
pub struct Session {
    handle: client::Handle<Client>,
    /// How the host key compared with the pin when this session was opened.
    pub host_key: HostKeyCheck,
}

impl Session {
    /// Connects, verifies the host key and authenticates, each step under its deadline.
    ///
    /// # Errors
    /// [`SshError`] saying which step failed.
    pub async fn connect(p: &ConnectParams) -> Result<Self, SshError> {
        let target = format!("{}:{}", p.host, p.port);
        let stream = timeout(p.connect_timeout, connect_tcp(&p.host, p.port))
            .await
            .map_err(|_| SshError::Timeout {
                stage: "connect",
                after: p.connect_timeout,
            })?
            .map_err(|e| SshError::Unreachable {
                target: target.clone(),
                message: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        let config = Arc::new(client_config());
        let seen = Arc::new(Mutex::new(None));
        let handler = Client {
            pinned: p.pinned.clone(),
            seen: seen.clone(),
        };
        let handshake = timeout(
            p.connect_timeout,
            client::connect_stream(config, stream, handler),
        )
        .await;
        let presented = seen.lock().ok().and_then(|s| s.clone());
        let mut handle = match handshake {
            Err(_) => {
                return Err(SshError::Timeout {
                    stage: "ssh handshake",
                    after: p.connect_timeout,
                })
            }
            Ok(Err(e)) => {
                if let (Some(pinned), Some(presented)) = (&p.pinned, &presented) {
                    if pinned != presented {
                        return Err(SshError::HostKeyChanged {
                            pinned: pinned.clone(),
                            presented: presented.clone(),
                        });
                    }
                }
                return Err(SshError::Protocol(e.to_string()));
            }
            Ok(Ok(h)) => h,
        };
        let presented =
            presented.ok_or_else(|| SshError::Protocol("server presented no host key".into()))?;
        let host_key = HostKeyCheck::check(p.pinned.as_deref(), &presented);

        let auth = async {
            let hash = handle.best_supported_rsa_hash().await?.flatten();
            handle
                .authenticate_publickey(
                    p.user.clone(),
                    PrivateKeyWithHashAlg::new(p.key.clone(), hash),
                )
                .await
        };
        match timeout(p.auth_timeout, auth).await {
            Err(_) => Err(SshError::Timeout {
                stage: "authentication",
                after: p.auth_timeout,
            }),
            Ok(Err(e)) => Err(SshError::Protocol(e.to_string())),
            Ok(Ok(r)) if r.success() => Ok(Self { handle, host_key }),
            Ok(Ok(_)) => Err(SshError::AuthFailed {
                user: p.user.clone(),
            }),
        }
    }

    /// True when the underlying connection has gone away.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Runs `command`, feeds it `stdin` (then end-of-file), and reads until the channel
    /// closes (output may still arrive after the exit status).
    ///
    /// # Errors
    /// `Timeout` when the whole command exceeds `limit`; `Protocol` when the channel breaks.
    pub async fn exec(
        &self,
        command: &str,
        stdin: &[u8],
        limit: Duration,
    ) -> Result<CommandOutput, SshError> {
        let run = async {
            let mut channel = self
                .handle
                .channel_open_session()
                .await
                .map_err(|e| SshError::Protocol(format!("cannot open channel: {e}")))?;
            channel
                .exec(true, command)
                .await
                .map_err(|e| SshError::Protocol(format!("exec refused: {e}")))?;
            if !stdin.is_empty() {
                channel
                    .data(stdin)
                    .await
                    .map_err(|e| SshError::Protocol(format!("cannot send input: {e}")))?;
            }
            channel
                .eof()
                .await
                .map_err(|e| SshError::Protocol(format!("cannot close input: {e}")))?;
            let mut out = CommandOutput::default();
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => append(&mut out.stdout, &data, &mut out.truncated),
                    ChannelMsg::ExtendedData { data, .. } => {
                        append(&mut out.stderr, &data, &mut out.truncated)
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                    _ => {}
                }
            }
            Ok(out)
        };
        timeout(limit, run).await.map_err(|_| SshError::Timeout {
            stage: "command",
            after: limit,
        })?
    }

    /// Says goodbye; errors are irrelevant at this point.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

fn append(buf: &mut Vec<u8>, data: &[u8], truncated: &mut bool) {
    let room = MAX_OUTPUT_BYTES.saturating_sub(buf.len());
    if data.len() > room {
        *truncated = true;
    }
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

/// Resolves and connects, trying each address in turn (a host may resolve to v6 and v4).
async fn connect_tcp(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "name resolved to no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}
