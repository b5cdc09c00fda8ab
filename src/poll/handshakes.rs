//! Pacing of new SSH sessions: a token bucket fleet-wide and a bound on handshakes in progress
//! per target address. Knows nothing of what a poll runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Limits on opening new SSH sessions.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    pub per_second: u32,
    pub per_target: u32,
}

/// Paces new sessions: a token bucket fleet-wide, and a bound on handshakes in progress per
/// target address, so that a burst of reconnects never trips sshd's MaxStartups on one host
/// or a jump host in front of many.
pub(super) struct Handshakes {
    limits: HandshakeLimits,
    bucket: std::sync::Mutex<(f64, Instant)>,
    targets: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl Handshakes {
    pub(super) fn new(limits: HandshakeLimits) -> Self {
        Self {
            limits,
            bucket: std::sync::Mutex::new((f64::from(limits.per_second), Instant::now())),
            targets: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a handshake slot; the permit bounds the handshakes in progress per target address.
    pub(super) async fn acquire(&self, host: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn the_bucket_paces_handshakes_beyond_its_rate() {
        let h = Handshakes::new(HandshakeLimits {
            per_second: 5,
            per_target: 10,
        });
        let started = Instant::now();
        // The bucket starts full (5); the 6th and 7th wait about 0.2 s each.
        for _ in 0..7 {
            drop(h.acquire("10.0.0.1").await);
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(350), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
