//! Real parts for the integration tests: a throwaway OpenSSH server with a fake (or real) `docker`,
//! TCP endpoints that refuse or stall, and busybox containers on a real Docker engine.
//!
//! Everything here is synchronous and std-only (plus `tempfile`): the helpers block, which is fine
//! from `#[tokio::test]` bodies because they run once per test. Recipes: `RECIPES.md` §1 and §7.
#![allow(dead_code)]

pub mod browser;
pub mod docker;
/// Notification receivers: an HTTP server that records and checks signatures, and aiosmtpd.
pub mod receiver;
pub mod smtp;
mod sshd;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use sshd::{DockerMode, KeyKind, Sshd};

/// A port on 127.0.0.1 that nothing listens on: connecting to it is refused at once.
pub fn closed_port() -> u16 {
    for _ in 0..100 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return port,
            _ => continue,
        }
    }
    panic!("closed_port: found no unused port on 127.0.0.1 in 100 tries");
}

/// Accepts TCP connections on 127.0.0.1 and never sends a byte: a server that hangs before the SSH
/// banner. Connections are held open until the server is dropped.
pub struct SilentServer {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("SilentServer: bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("SilentServer: local_addr")
            .port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, stp) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    held.push(s);
                    acc.fetch_add(1, Ordering::SeqCst);
                }
            }
            // `held` drops here: every client sees EOF only once the server is dropped.
        });
        SilentServer {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    /// How many connections have been accepted (and are being held) so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            Duration::from_secs(1),
        );
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is our effective uid).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
