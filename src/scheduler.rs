//! When and how many: every interval, poll each enabled server under a concurrency bound and
//! a deadline, turn each outcome into stored samples and a status, and write an activity
//! entry when (and only when) a status changes. Nothing leaves a poll with `?`: one broken
//! host never stops the others. Also runs retention.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::activity::{self, ActivityEvent, SYSTEM};
use crate::config::Settings;
use crate::inventory::{Server, ServerStatus};
use crate::poll::{PollError, PollResult, PollTimeouts, Poller};
use crate::ssh::{HostKeyCheck, SshError};
use crate::store::{NewActivity, ServerUpdate, Store, StoreError};

/// How long in-flight polls may finish after shutdown is asked, before they are dropped
/// (unwritten: a poll's rows are written in one transaction or not at all).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(6);

/// Polls the fleet. Shared by `serve` (the loop) and `poll --once`.
pub struct Scheduler {
    store: Store,
    poller: Poller,
    settings: Settings,
    /// Servers with a poll running; a server is never polled twice at once.
    in_flight: Mutex<HashSet<Uuid>>,
    semaphore: Semaphore,
}

impl Scheduler {
    pub fn new(store: Store, settings: Settings) -> Arc<Self> {
        let poller = Poller::new(PollTimeouts {
            connect: Duration::from_secs(settings.connect_timeout_secs),
            auth: Duration::from_secs(settings.auth_timeout_secs),
            command: Duration::from_secs(settings.command_timeout_secs),
        });
        Arc::new(Self {
            store,
            poller,
            semaphore: Semaphore::new(settings.concurrency),
            settings,
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    /// The poll loop, until `cancel` fires. Reads the inventory at every tick, so servers
    /// added, edited or removed with the CLI take effect at the next poll.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let tracker = TaskTracker::new();
        let hard_stop = CancellationToken::new();
        let mut tick = tokio::time::interval(self.settings.poll_interval());
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut next_retention = Instant::now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            if Instant::now() >= next_retention {
                next_retention =
                    Instant::now() + Duration::from_secs(self.settings.retention_check_secs);
                if let Err(e) = self.retention().await {
                    tracing::error!(error = %e, "Retention run failed");
                }
            }
            let servers = match self.store.servers().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "Cannot read the inventory; skipping this cycle");
                    continue;
                }
            };
            let polled: HashSet<Uuid> =
                servers.iter().filter(|s| s.enabled).map(|s| s.id).collect();
            self.poller.retain(&polled).await;
            for server in servers.into_iter().filter(|s| s.enabled) {
                if !self.claim(server.id) {
                    tracing::warn!(server = %server.name, "Previous poll still running; skipping this one");
                    continue;
                }
                let this = self.clone();
                let hard_stop = hard_stop.clone();
                tracker.spawn(async move {
                    let id = server.id;
                    tokio::select! {
                        _ = this.poll_and_record(server) => {}
                        _ = hard_stop.cancelled() => {}
                    }
                    this.release(id);
                });
            }
        }
        tracker.close();
        if timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
            tracing::warn!("In-flight polls did not finish in time; dropping them unwritten");
            hard_stop.cancel();
            tracker.wait().await;
        }
        self.poller.close_all().await;
    }

    fn claim(&self, id: Uuid) -> bool {
        self.in_flight
            .lock()
            .map(|mut s| s.insert(id))
            .unwrap_or(false)
    }

    fn release(&self, id: Uuid) {
        if let Ok(mut s) = self.in_flight.lock() {
            s.remove(&id);
        }
    }

    /// Polls the given servers now, all at once under the concurrency bound, and records
    /// each result. Returns the results in the order given.
    pub async fn poll_now(self: &Arc<Self>, servers: Vec<Server>) -> Vec<(Server, PollResult)> {
        let tasks: Vec<_> = servers
            .into_iter()
            .map(|s| {
                let this = self.clone();
                tokio::spawn(async move {
                    let r = this.poll_and_record(s.clone()).await;
                    (s, r)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await {
                out.push(r);
            }
        }
        self.poller.close_all().await;
        out
    }

    /// One server: wait for a slot, poll under the overall deadline, store the outcome.
    pub async fn poll_and_record(&self, server: Server) -> PollResult {
        let Ok(_permit) = self.semaphore.acquire().await else {
            return failed(
                &server,
                PollError::CommandFailed("scheduler is shutting down".into()),
            );
        };
        // The poller has a deadline per step; this one bounds the sum, plus slack.
        let deadline = self.settings.poll_deadline() + Duration::from_secs(2);
        let result = match timeout(deadline, self.poller.poll(&server)).await {
            Ok(r) => r,
            Err(_) => {
                self.poller.forget(server.id).await;
                failed(
                    &server,
                    PollError::Ssh(SshError::Timeout {
                        stage: "poll",
                        after: deadline,
                    }),
                )
            }
        };
        if let Err(e) = self.record(&server, &result).await {
            tracing::error!(server = %server.name, error = %e, "Cannot store poll result");
        }
        result
    }

    /// Writes one poll's outcome and the status transitions it causes, in one transaction.
    async fn record(&self, polled: &Server, result: &PollResult) -> Result<(), StoreError> {
        // Re-read: the server may have been edited, trusted or removed while we polled.
        let current = match self.store.server(polled.id).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        if current.host_key_fingerprint != polled.host_key_fingerprint
            || current.host != polled.host
            || current.port != polled.port
        {
            // Polled against an outdated registration; the next poll uses the new one.
            return Ok(());
        }
        let now = Utc::now();
        let docker_note_before = self.store.docker_note(polled.id).await?;
        let (update, events) = transition(&current, result, docker_note_before.as_deref());
        let who = Some((current.id, current.name.as_str()));
        let entries: Vec<NewActivity> = events
            .iter()
            .map(|e| activity::entry(e, SYSTEM, who, now))
            .collect();
        let snapshot = result.outcome.as_ref().ok();
        self.store
            .record_poll(current.id, snapshot, &update, &entries)
            .await?;
        activity::emit(&entries);
        Ok(())
    }

    /// Deletes samples older than the retention and logs the counts.
    ///
    /// # Errors
    /// Database failure.
    pub async fn retention(&self) -> Result<(), StoreError> {
        let days = self.settings.retention_days;
        let cutoff = Utc::now()
            - chrono::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400_000));
        let now = Utc::now();
        let mut logged = Vec::new();
        self.store
            .apply_retention(cutoff, |counts| {
                let total = counts.server_metrics + counts.disk_usage + counts.container_metrics;
                (total > 0).then(|| {
                    let e = activity::entry(
                        &ActivityEvent::RetentionCleanup {
                            counts,
                            retention_days: days,
                        },
                        SYSTEM,
                        None,
                        now,
                    );
                    logged.push(e.clone());
                    e
                })
            })
            .await?;
        activity::emit(&logged);
        Ok(())
    }

    pub async fn open_sessions(&self) -> usize {
        self.poller.open_sessions().await
    }
}

fn failed(server: &Server, e: PollError) -> PollResult {
    PollResult {
        server_id: server.id,
        outcome: Err(e),
        host_key: None,
        platform: None,
        raw: None,
        duration: Duration::ZERO,
    }
}

/// The pure part of recording: from the server as stored and a poll result, the row update
/// and the activity events. Events fire on transitions only.
pub fn transition(
    current: &Server,
    result: &PollResult,
    docker_note_before: Option<&str>,
) -> (ServerUpdate, Vec<ActivityEvent>) {
    let now = Utc::now();
    let mut update = ServerUpdate {
        last_poll_at: Some(now),
        ..Default::default()
    };
    let mut events = Vec::new();
    if let Some(p) = &result.platform {
        if current.platform.as_ref() != Some(p) {
            events.push(ActivityEvent::PlatformDetected {
                platform: serde_json::to_value(p).unwrap_or_default(),
                summary: crate::probe::summary(p),
            });
        }
        update.platform = Some(p.clone());
    }
    update.raw = result.raw.clone();
    match &result.outcome {
        Ok(snapshot) => {
            if let Some(HostKeyCheck::FirstSeen(fp)) = &result.host_key {
                update.pin = Some(fp.clone());
                events.push(ActivityEvent::HostKeyPinned {
                    fingerprint: fp.clone(),
                });
            }
            if current.status != ServerStatus::Online {
                events.push(ActivityEvent::ServerOnline {
                    previous: current.status.as_str().to_string(),
                });
            }
            update.status = Some(ServerStatus::Online);
            update.last_sample_at = Some(snapshot.taken_at);
            let problems = (!snapshot.problems.is_empty()).then(|| {
                snapshot
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.kind, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            let had_problems = current.status == ServerStatus::Online && current.reason.is_some();
            match (&problems, had_problems) {
                (Some(p), false) => events.push(ActivityEvent::ServerDegraded {
                    problems: p.clone(),
                }),
                (None, true) => events.push(ActivityEvent::ServerRecovered),
                _ => {}
            }
            update.reason = Some(problems);
            let note = snapshot.docker.describe();
            if note.as_deref() != docker_note_before {
                match &note {
                    Some(m) => events.push(ActivityEvent::DockerUnavailable { message: m.clone() }),
                    None => events.push(ActivityEvent::DockerAvailable),
                }
                update.docker_note = Some(note);
            }
        }
        Err(e) => {
            let reason = format!("{}: {}", e.reason(), e);
            if let PollError::Ssh(SshError::HostKeyChanged { pinned, presented }) = e {
                let already = current.status == ServerStatus::HostKeyChanged
                    && current.pending_host_key_fingerprint.as_deref() == Some(presented.as_str());
                if !already {
                    events.push(ActivityEvent::HostKeyChanged {
                        pinned: pinned.clone(),
                        presented: presented.clone(),
                    });
                }
                update.status = Some(ServerStatus::HostKeyChanged);
                update.pending = Some(presented.clone());
            } else {
                if current.status != ServerStatus::Offline {
                    events.push(ActivityEvent::ServerOffline {
                        reason: e.reason().to_string(),
                        message: e.to_string(),
                    });
                }
                update.status = Some(ServerStatus::Offline);
            }
            update.reason = Some(Some(reason));
        }
    }
    (update, events)
}
