//! A real HTTP receiver for notification tests (RECIPES.md §10): an axum server on 127.0.0.1,
//! on its own thread and runtime so it answers whatever the test's runtime is doing. It
//! records every request (method, path, headers, raw body), checks the webhook signature
//! with its own HMAC-SHA256 when it knows the secret, and answers as told: a status, or
//! never (a receiver that hangs, to stop or kill the sender mid-attempt).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lower-case names; the last value of a repeated header.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// Whether `X-Fleetpoll-Signature` matched the body; `None` when the receiver has no
    /// secret to check with.
    pub signature_ok: Option<bool>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// How the receiver answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// This status, with a short body.
    Answer(u16),
    /// No answer at all: the request stays open until the client gives up or goes away.
    Hang,
}

struct Shared {
    secret: Option<String>,
    mode: Mutex<Mode>,
    requests: Mutex<Vec<Recorded>>,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let signature_ok = shared.secret.as_ref().map(|secret| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
        mac.update(&body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        headers.get("x-fleetpoll-signature") == Some(&format!("sha256={expected}"))
    });
    shared.requests.lock().expect("lock").push(Recorded {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |p| p.to_string()),
        headers,
        body: body.to_vec(),
        signature_ok,
    });
    let mode = *shared.mode.lock().expect("lock");
    match mode {
        Mode::Answer(code) => (
            StatusCode::from_u16(code).expect("status"),
            format!("receiver says {code}"),
        ),
        Mode::Hang => std::future::pending().await,
    }
}

impl Receiver {
    /// A receiver on a free port of 127.0.0.1 answering 200; `secret` checks signatures.
    pub fn start(secret: Option<&str>) -> Receiver {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        Self::serve(listener, secret)
    }

    /// A receiver on a given port (one a sender already tried while nothing listened).
    pub fn start_on(port: u16, secret: Option<&str>) -> Receiver {
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("bind the port");
        Self::serve(listener, secret)
    }

    fn serve(listener: std::net::TcpListener, secret: Option<&str>) -> Receiver {
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            secret: secret.map(str::to_string),
            mode: Mutex::new(Mode::Answer(200)),
            requests: Mutex::new(Vec::new()),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(record).with_state(state);
                tokio::select! {
                    r = axum::serve(listener, app) => r.expect("receiver serve"),
                    _ = rx => {}
                }
            });
            // Dropping the runtime cancels requests still hanging.
        });
        Receiver {
            port,
            shared,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("lock") = mode;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Waits (without blocking the test's runtime) until `n` requests have arrived; fails
    /// the test after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} requests within {within:?}, expected {n}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
