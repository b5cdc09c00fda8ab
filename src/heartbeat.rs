//! The outbound heartbeat (`heartbeat_url`, issue #16): a JSON POST every interval with this
//! process's counts, so that a poller that died, hangs or lost its network is noticed by
//! something outside it (a dead man's switch such as healthchecks.io or Uptime Kuma's push
//! monitor), which no alert of its own can do.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::observe::Metrics;
use crate::outcome::Outcome;

/// A receiver that does not answer within this is counted as a failed beat.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Who beats.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: Uuid,
    pub hostname: String,
    pub role: String,
    pub started_at: DateTime<Utc>,
}

/// One beat, as posted.
#[derive(Debug, Serialize)]
struct Beat<'a> {
    service: &'static str,
    version: &'static str,
    id: Uuid,
    hostname: &'a str,
    role: &'a str,
    started_at: DateTime<Utc>,
    sent_at: DateTime<Utc>,
    interval_secs: u64,
    /// Polls finished since the previous beat, by outcome (all of them at the first).
    polls: BTreeMap<&'static str, u64>,
    /// Polls skipped since the previous beat (the previous poll of the host still running).
    skipped: u64,
    ssh_open_sessions: u64,
    /// Hosts leased here (several pollers on PostgreSQL); null otherwise.
    leased_hosts: Option<u64>,
}

/// The part of a URL that may be logged: scheme, host and port. Push URLs of dead man's
/// switches carry their secret in the path or query.
pub fn shown(url: &reqwest::Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    s.push_str("/...");
    s
}

/// Beats every `every` until `cancel`. A failed beat is logged once per run of failures
/// (and when they end); polling never waits for it.
pub async fn run(
    url: reqwest::Url,
    every: Duration,
    who: Identity,
    metrics: Arc<Metrics>,
    leased: bool,
    cancel: CancellationToken,
) {
    let http = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the heartbeat's HTTP client; no heartbeat");
            return;
        }
    };
    let target = shown(&url);
    let mut seen: Vec<u64> = vec![0; Outcome::ALL.len()];
    let mut skipped_seen = 0;
    let mut failing = false;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut polls = BTreeMap::new();
        for (i, o) in Outcome::ALL.iter().enumerate() {
            let now = metrics.polls(*o);
            polls.insert(o.as_str(), now.saturating_sub(seen[i]));
            seen[i] = now;
        }
        let skipped_now = metrics.skipped.load(Ordering::Relaxed);
        let beat = Beat {
            service: "fleetpoll",
            version: env!("CARGO_PKG_VERSION"),
            id: who.id,
            hostname: &who.hostname,
            role: &who.role,
            started_at: who.started_at,
            sent_at: Utc::now(),
            interval_secs: every.as_secs(),
            polls,
            skipped: skipped_now.saturating_sub(skipped_seen),
            ssh_open_sessions: metrics.open_sessions.load(Ordering::Relaxed),
            leased_hosts: leased.then(|| metrics.leased_hosts.load(Ordering::Relaxed)),
        };
        skipped_seen = skipped_now;
        let result = http.post(url.clone()).json(&beat).send().await;
        let problem = match result {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("answered {}", r.status())),
            // Without the URL: reqwest's message would name it, secret and all.
            Err(e) => Some(e.without_url().to_string()),
        };
        match (problem, failing) {
            (Some(p), false) => {
                tracing::warn!(target = %target, problem = %p, "Heartbeat not delivered (said once until one is)");
                failing = true;
            }
            (Some(p), true) => {
                tracing::debug!(target = %target, problem = %p, "Heartbeat not delivered")
            }
            (None, true) => {
                tracing::info!(target = %target, "Heartbeat delivered again");
                failing = false;
            }
            (None, false) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_keeps_no_path_or_query() {
        let url = reqwest::Url::parse("https://hc-ping.com/8f2e0b1c-secret?x=token").expect("url");
        assert_eq!(shown(&url), "https://hc-ping.com/...");
        let url = reqwest::Url::parse("http://10.0.0.5:3001/api/push/AbC?status=up").expect("url");
        assert_eq!(shown(&url), "http://10.0.0.5:3001/...");
    }
}
