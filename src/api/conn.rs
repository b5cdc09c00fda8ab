//! Accepting HTTP connections within bounds (#17). `axum::serve` accepts without limit and
//! never times a client out, so 1,100 idle sockets under a 1,024 descriptor limit starved
//! `/healthz` and the database writer. Here:
//!
//! - at most `max_connections` connections are open at once: each connection task holds a
//!   semaphore permit that is taken *before* `accept`, so further clients wait in the kernel's
//!   backlog, where they cost no descriptor of ours;
//! - a request's head must arrive within `header_timeout`. hyper starts that timer whenever it
//!   waits for a head, after the connection opens and again after each response, so the same
//!   timer closes a kept-alive connection that stays idle;
//! - bodies have their own deadline where they are read (`json.rs`);
//! - on shutdown, accepting stops, idle connections close at once and busy ones after their
//!   response (hyper's graceful shutdown), and `serve` returns when all are gone.
//!
//! HTTP/1.1 only: the dashboard and every client we know speak it, and hyper's header timeout
//! does not apply to cleartext HTTP/2, which would bring the unbounded idle connection back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// The share of the open-file limit that HTTP connections may take when
/// `http_max_connections` is 0: the rest is for SSH sessions (one per polled server while it
/// is polled, more with persistent sessions), SQLite's files and the process itself.
const DESCRIPTOR_SHARE: u64 = 4;
/// Used when the open-file limit cannot be read (not Linux): a small fleet's dashboard needs
/// far fewer connections, and 256 sits well below the common default limit of 1,024.
const FALLBACK_MAX_CONNECTIONS: usize = 256;
/// Never fewer, even under a tiny descriptor limit: a browser alone opens six.
const MIN_MAX_CONNECTIONS: usize = 16;

/// How many connections may be open at once and how long a request head may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Limits {
    /// From the settings; `http_max_connections = 0` becomes a quarter of the soft
    /// open-file limit (`ulimit -n`) read from `/proc/self/limits`.
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        let max_connections = match s.http_max_connections {
            0 => std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|t| soft_open_file_limit(&t))
                .map_or(FALLBACK_MAX_CONNECTIONS, share_of_descriptors),
            n => n,
        };
        Self {
            max_connections,
            header_timeout: s.http_header_timeout(),
        }
    }
}

/// The HTTP share of an open-file limit.
fn share_of_descriptors(limit: u64) -> usize {
    usize::try_from(limit / DESCRIPTOR_SHARE)
        .unwrap_or(usize::MAX)
        .max(MIN_MAX_CONNECTIONS)
}

/// The soft limit from the text of `/proc/self/limits`, whose line reads
/// `Max open files            1024                 4096                 files`
/// (`unlimited` is possible in principle; it is read as "no number").
fn soft_open_file_limit(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets open
/// connections finish their current request and returns when all are closed.
///
/// # Errors
/// None so far: accept errors (out of descriptors, a reset before accept) are logged and
/// retried, as `axum::serve` does; the `Result` keeps the door open for bind-time errors.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(
        max_connections = limits.max_connections,
        header_timeout_secs = limits.header_timeout.as_secs(),
        "Accepting HTTP connections"
    );
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                // Never closed while we hold `permits`; stop serving rather than spin.
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let stop = stop_rx.clone();
        let header_timeout = limits.header_timeout;
        tasks.spawn(async move {
            connection(stream, peer, app, header_timeout, stop).await;
            drop(permit);
        });
    }
    // Refuse new clients at once instead of leaving them in the backlog during the drain.
    drop(listener);
    let _ = stop_tx.send(true);
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// One connection, HTTP/1.1 with keep-alive, until the client or the timeout closes it, or
/// shutdown ends it after its current response.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // Handlers read the client address through axum's `ConnectInfo`, as under axum::serve.
    let service = app.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.map(Body::new)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    // Timeouts and resets are the client's business, not an operator's.
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Out of descriptors (EMFILE/ENFILE) is worth a log line and a pause, so the process can
/// close some before the next try; a client that reset before we accepted it is not.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "Accepting an HTTP connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 4096                 files     \n";
        assert_eq!(soft_open_file_limit(text), Some(1024));
        assert_eq!(
            soft_open_file_limit("Max open files  unlimited  unlimited  files"),
            None
        );
        assert_eq!(soft_open_file_limit(""), None);
    }

    #[test]
    fn http_takes_a_quarter_of_the_descriptors_and_never_too_few() {
        assert_eq!(share_of_descriptors(1024), 256);
        assert_eq!(share_of_descriptors(20_000), 5000);
        assert_eq!(share_of_descriptors(10), MIN_MAX_CONNECTIONS);
    }

    #[test]
    fn an_explicit_setting_wins_over_the_descriptor_share() {
        let s = crate::config::Settings {
            http_max_connections: 7,
            ..crate::config::Settings::default()
        };
        assert_eq!(Limits::from_settings(&s).max_connections, 7);
        let auto = Limits::from_settings(&crate::config::Settings::default());
        assert!(auto.max_connections >= MIN_MAX_CONNECTIONS);
    }
}
