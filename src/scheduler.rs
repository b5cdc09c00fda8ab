//! When and how many: each enabled server is polled once per interval at a stable offset
//! (so a large fleet is spread evenly, not polled in bursts), under a bound on polls in
//! flight and a deadline per poll; failing servers back off exponentially with jitter. Each
//! outcome becomes stored samples and a status through one writer that batches
//! transactions, and an activity entry when (and only when) a status changes. Nothing leaves
//! a poll with `?`: one broken host never stops the others. Also runs retention.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::activity::{self, ActivityEvent, Actor};
use crate::config::Settings;
use crate::inventory::{Server, ServerStatus};
use crate::observe::Metrics;
use crate::poll::{HandshakeLimits, PollError, PollResult, PollTimeouts, Poller};
use crate::ssh::{HostKeyCheck, SshError};
use crate::store::{InventoryVersion, NewActivity, PollWrite, ServerUpdate, Store, StoreError};

/// How long in-flight polls may finish after shutdown is asked, before they are dropped
/// (unwritten: a poll's rows are written in one transaction or not at all).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(6);
/// How often the loop looks for due servers: the resolution of the schedule.
const RESOLUTION: Duration = Duration::from_millis(100);
/// How often the loop checks whether the inventory changed, so CLI and API changes reach
/// it; it re-reads the servers only when they did.
const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// The inventory is re-read at least this often even when its version says nothing
/// changed: a safety net that costs about one server row per poll at a 60 s interval.
const FULL_RELOAD_EVERY: Duration = Duration::from_secs(60);
/// Poll results written per transaction at most.
const BATCH: usize = 1024;
/// How long the writer waits for more results before writing a batch, at most: samples reach
/// the database this much later. Also at most 1/60 of the interval (1 s at the default 60 s),
/// so that a short interval, as in tests, still sees each poll written well before the next.
const WRITE_LINGER: Duration = Duration::from_secs(1);

/// A finished poll on its way to the writer.
struct Done {
    polled: Server,
    result: PollResult,
}

/// Polls the fleet. Shared by `serve` (the loop) and `poll --once`.
pub struct Scheduler {
    store: Store,
    poller: Poller,
    settings: Settings,
    metrics: Arc<Metrics>,
    /// Servers with a poll running; a server is never polled twice at once.
    in_flight: Mutex<HashSet<Uuid>>,
    /// Failed polls in a row per server, for the backoff (the stored count drives status).
    failures: Mutex<HashMap<Uuid, u32>>,
    semaphore: Semaphore,
}

impl Scheduler {
    pub fn new(store: Store, settings: Settings) -> Arc<Self> {
        Self::with_metrics(store, settings, Arc::new(Metrics::default()))
    }

    pub fn with_metrics(store: Store, settings: Settings, metrics: Arc<Metrics>) -> Arc<Self> {
        let poller = Poller::new(
            PollTimeouts {
                connect: Duration::from_secs(settings.connect_timeout_secs),
                auth: Duration::from_secs(settings.auth_timeout_secs),
                command: Duration::from_secs(settings.command_timeout_secs),
            },
            HandshakeLimits {
                per_second: settings.handshakes_per_second,
                per_target: settings.handshakes_per_target,
            },
            metrics.clone(),
            store.dir().to_path_buf(),
        );
        Arc::new(Self {
            store,
            poller,
            semaphore: Semaphore::new(settings.concurrency),
            settings,
            metrics,
            in_flight: Mutex::new(HashSet::new()),
            failures: Mutex::new(HashMap::new()),
        })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The poll loop, until `cancel` fires.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let tracker = TaskTracker::new();
        let hard_stop = CancellationToken::new();
        let (done_tx, done_rx) = mpsc::channel::<Done>(4096);
        let (backoff_tx, mut backoff_rx) = mpsc::unbounded_channel::<(Uuid, Instant)>();
        let writer = tokio::spawn(self.clone().writer(done_rx));
        let interval = self.settings.poll_interval();
        let start = Instant::now();
        let mut servers: HashMap<Uuid, Server> = HashMap::new();
        let mut due: HashMap<Uuid, Instant> = HashMap::new();
        let mut next_reload = start;
        let mut next_full_reload = start;
        let mut loaded: Option<InventoryVersion> = None;
        let mut next_retention = start;
        let mut tick = tokio::time::interval(RESOLUTION);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            if now >= next_retention {
                next_retention = now + Duration::from_secs(self.settings.retention_check_secs);
                if let Err(e) = self.retention().await {
                    tracing::error!(error = %e, "Retention run failed");
                }
            }
            if now >= next_reload {
                next_reload = now + RELOAD_EVERY.min(interval);
                let version = match self.store.inventory_version().await {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::error!(error = %e, "Cannot read the inventory version");
                        None
                    }
                };
                let unchanged = version.is_some() && version == loaded && now < next_full_reload;
                if !unchanged {
                    match self.store.servers().await {
                        Ok(list) => {
                            servers = list
                                .into_iter()
                                .filter(|s| s.enabled)
                                .map(|s| (s.id, s))
                                .collect();
                            due.retain(|id, _| servers.contains_key(id));
                            for id in servers.keys() {
                                due.entry(*id).or_insert_with(|| {
                                    next_slot(start, offset(*id, interval), interval, now)
                                });
                            }
                            let keep: HashSet<Uuid> = servers.keys().copied().collect();
                            self.poller.retain(&keep).await;
                            // The version was read before the servers: a change in between
                            // costs one more read, never a missed one.
                            loaded = version;
                            next_full_reload = now + FULL_RELOAD_EVERY;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "Cannot read the inventory; keeping the last one")
                        }
                    }
                }
            }
            while let Ok((id, until)) = backoff_rx.try_recv() {
                if let Some(t) = due.get_mut(&id) {
                    *t = (*t).max(until);
                }
            }
            for (id, slot) in due.iter_mut() {
                if *slot > now {
                    continue;
                }
                let scheduled = *slot;
                while *slot <= now {
                    *slot += interval;
                }
                let Some(server) = servers.get(id).cloned() else {
                    continue;
                };
                if !self.claim(*id) {
                    self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(server = %server.name, "Previous poll still running; skipping this one");
                    continue;
                }
                let this = self.clone();
                let hard_stop = hard_stop.clone();
                let done_tx = done_tx.clone();
                let backoff_tx = backoff_tx.clone();
                tracker.spawn(async move {
                    let id = server.id;
                    tokio::select! {
                        result = this.poll_scheduled(&server, scheduled) => {
                            if let Some(until) = this.backoff_after(id, &result) {
                                let _ = backoff_tx.send((id, until));
                            }
                            let _ = done_tx.send(Done { polled: server, result }).await;
                        }
                        _ = hard_stop.cancelled() => {}
                    }
                    this.release(id);
                });
            }
        }
        tracker.close();
        if timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
            // Usually silent hosts still inside their connect deadline: nothing of theirs was
            // written, and the next start polls them again.
            tracing::info!(
                "Polls still waiting on their hosts at shutdown; dropping them unwritten"
            );
            hard_stop.cancel();
            tracker.wait().await;
        }
        drop(done_tx);
        let _ = writer.await;
        self.poller.close_all().await;
    }

    /// Writes finished polls in batches: after the first result, whatever arrives within
    /// the linger (see [`WRITE_LINGER`]; up to [`BATCH`]) goes into the same transaction. The cost of a write
    /// is mostly per statement, not per row, so a batch of a second's polls costs about what
    /// one poll did; polls finish spread over the interval, so without the wait most batches
    /// held a single poll. A second poll of a server already in the batch starts the next
    /// batch (each server's update is computed from its row as stored).
    async fn writer(self: Arc<Self>, mut rx: mpsc::Receiver<Done>) {
        let linger = WRITE_LINGER.min(self.settings.poll_interval() / 60);
        let mut next: Option<Done> = None;
        loop {
            let first = match next.take() {
                Some(d) => d,
                None => match rx.recv().await {
                    Some(d) => d,
                    None => break,
                },
            };
            let deadline = Instant::now() + linger;
            let mut ids = HashSet::from([first.polled.id]);
            let mut batch = vec![first];
            while batch.len() < BATCH {
                // A closed channel (shutdown) ends the wait at once.
                let Ok(Some(d)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
                    break;
                };
                if !ids.insert(d.polled.id) {
                    next = Some(d);
                    break;
                }
                batch.push(d);
            }
            if let Err(e) = self.write(&batch).await {
                tracing::error!(error = %e, polls = batch.len(), "Cannot store poll results");
            }
        }
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

    /// When a failing server is next due: interval x 2^(failures-1) with +-20% jitter,
    /// capped; None after a success (the regular slot applies).
    fn backoff_after(&self, id: Uuid, result: &PollResult) -> Option<Instant> {
        let mut failures = self.failures.lock().ok()?;
        if result.outcome.is_ok() {
            failures.remove(&id);
            return None;
        }
        let n = failures.entry(id).or_insert(0);
        *n = n.saturating_add(1);
        let delay = backoff_delay(
            self.settings.poll_interval(),
            *n,
            Duration::from_secs(self.settings.backoff_max_secs),
            pseudo_random(id, *n),
        );
        Some(Instant::now() + delay)
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

    /// One server now: poll it and store the outcome. Returns what was stored.
    pub async fn poll_and_record(&self, server: Server) -> PollResult {
        let result = self.poll_scheduled(&server, Instant::now()).await;
        let batch = [Done {
            polled: server,
            result,
        }];
        if let Err(e) = self.write(&batch).await {
            tracing::error!(server = %batch[0].polled.name, error = %e, "Cannot store poll result");
        }
        let [done] = batch;
        done.result
    }

    /// Waits for a slot, polls under the overall deadline, counts the outcome.
    async fn poll_scheduled(&self, server: &Server, scheduled: Instant) -> PollResult {
        let Ok(_permit) = self.semaphore.acquire().await else {
            return failed(
                server,
                PollError::CommandFailed("scheduler is shutting down".into()),
            );
        };
        self.metrics
            .cycle_lag
            .observe(Instant::now().saturating_duration_since(scheduled));
        // No deadline around the whole poll: every step that waits on the host (connect and
        // handshake, authentication, probe, script) has its own inside the poller, and
        // waiting for a handshake slot is our pacing, which must not fail a host.
        let result = self.poller.poll(server).await;
        let outcome = match &result.outcome {
            Ok(s) if s.problems.is_empty() => "ok",
            Ok(_) => "partial",
            Err(e) => e.reason(),
        };
        self.metrics.poll_done(outcome, result.duration);
        result
    }

    /// Writes polls' outcomes and the status transitions they cause, in one transaction.
    async fn write(&self, batch: &[Done]) -> Result<(), StoreError> {
        let now = Utc::now();
        let system = Actor::system();
        let mut prepared = Vec::with_capacity(batch.len());
        // Re-read, in one query for the batch: a server may have been edited, trusted or
        // removed while it was polled.
        let ids: Vec<Uuid> = batch.iter().map(|d| d.polled.id).collect();
        let mut rows: HashMap<Uuid, Server> = self
            .store
            .servers_by_id(&ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        for d in batch {
            let Some(current) = rows.remove(&d.polled.id) else {
                continue;
            };
            // (A pin written by an earlier poll of this server is no such change.)
            let trusted_meanwhile = d.polled.host_key_fingerprint.is_some()
                && current.host_key_fingerprint != d.polled.host_key_fingerprint;
            if trusted_meanwhile || current.host != d.polled.host || current.port != d.polled.port {
                // Polled against an outdated registration; the next poll uses the new one.
                continue;
            }
            let (update, events) = transition(
                &current,
                &d.result,
                current.docker_note.as_deref(),
                self.settings.offline_after_failures,
            );
            let who = Some((current.id, current.name.as_str()));
            let entries: Vec<NewActivity> = events
                .iter()
                .map(|e| activity::entry(e, &system, who, now))
                .collect();
            prepared.push((current.id, d.result.outcome.as_ref().ok(), update, entries));
        }
        let writes: Vec<PollWrite<'_>> = prepared
            .iter()
            .map(|(id, snapshot, update, events)| PollWrite {
                server_id: *id,
                snapshot: *snapshot,
                update,
                events,
            })
            .collect();
        let started = std::time::Instant::now();
        self.store.record_polls(&writes).await?;
        self.metrics.db_write.observe(started.elapsed());
        for (_, _, _, entries) in &prepared {
            activity::emit(entries);
        }
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
                        &Actor::system(),
                        None,
                        now,
                    );
                    logged.push(e.clone());
                    e
                })
            })
            .await?;
        activity::emit(&logged);
        // Expired login sessions hold nothing but a hash; drop them with the samples.
        self.store.delete_expired_sessions(now).await?;
        Ok(())
    }
}

/// The wait before the next attempt after `failures` failed polls in a row:
/// interval x 2^(failures-1), capped at `max` (never below the interval), then scaled by
/// 0.8..1.2 with `unit` in [0, 1) so that hosts that failed together do not retry together.
fn backoff_delay(interval: Duration, failures: u32, max: Duration, unit: f64) -> Duration {
    let doubled = interval.as_secs_f64() * 2f64.powi(failures.clamp(1, 30) as i32 - 1);
    let capped = doubled.min(max.as_secs_f64()).max(interval.as_secs_f64());
    Duration::from_secs_f64(capped * (0.8 + 0.4 * unit.clamp(0.0, 1.0)))
}

/// A server's stable place in the interval: the same on every restart, spread evenly.
fn offset(id: Uuid, interval: Duration) -> Duration {
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(id.as_u64_pair().0 % ms)
}

/// The first slot at or after `now`: start + offset + k x interval.
fn next_slot(start: Instant, offset: Duration, interval: Duration, now: Instant) -> Instant {
    let first = start + offset;
    if first >= now {
        return first;
    }
    let behind = now.duration_since(first).as_secs_f64();
    let k = (behind / interval.as_secs_f64()).ceil();
    first + interval.mul_f64(k)
}

/// A number in [0, 1) that differs per server and attempt, for jitter (no RNG needed).
fn pseudo_random(id: Uuid, n: u32) -> f64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, n, std::process::id()).hash(&mut h);
    (h.finish() % 10_000) as f64 / 10_000.0
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
    offline_after_failures: u32,
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
            if let (Some(HostKeyCheck::FirstSeen(fp)), None) =
                (&result.host_key, &current.host_key_fingerprint)
            {
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
            update.consecutive_failures = Some(0);
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
                let failures = current.consecutive_failures.saturating_add(1);
                update.consecutive_failures = Some(failures);
                // Below the threshold a server that was up keeps its status: one lost
                // packet is not an outage and must not write an offline and an online
                // entry. A server never reached yet has nothing to keep.
                let was_up = matches!(current.status, ServerStatus::Online | ServerStatus::Stale);
                if !was_up || failures >= offline_after_failures.max(1) {
                    if current.status != ServerStatus::Offline {
                        events.push(ActivityEvent::ServerOffline {
                            reason: e.reason().to_string(),
                            message: e.to_string(),
                        });
                    }
                    update.status = Some(ServerStatus::Offline);
                }
            }
            update.reason = Some(Some(reason));
        }
    }
    (update, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let interval = Duration::from_secs(60);
        let id = Uuid::new_v4();
        assert_eq!(offset(id, interval), offset(id, interval));
        let offsets: Vec<Duration> = (0..1000)
            .map(|_| offset(Uuid::new_v4(), interval))
            .collect();
        assert!(offsets.iter().all(|o| *o < interval));
        // Spread: every 6-second tenth of the interval gets some servers.
        for tenth in 0..10 {
            let lo = Duration::from_secs(tenth * 6);
            let n = offsets
                .iter()
                .filter(|o| **o >= lo && **o < lo + Duration::from_secs(6))
                .count();
            assert!(n > 50, "tenth {tenth} has {n}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let i = Duration::from_secs(60);
        let max = Duration::from_secs(600);
        let mid = |n| backoff_delay(i, n, max, 0.5);
        assert_eq!(mid(1), Duration::from_secs(60));
        assert_eq!(mid(2), Duration::from_secs(120));
        assert_eq!(mid(3), Duration::from_secs(240));
        assert_eq!(mid(4), Duration::from_secs(480));
        assert_eq!(mid(5), Duration::from_secs(600));
        assert_eq!(mid(40), Duration::from_secs(600));
        assert_eq!(backoff_delay(i, 2, max, 0.0), Duration::from_secs(96));
        assert!(backoff_delay(i, 2, max, 0.999) < Duration::from_secs(144));
        // A cap below the interval never makes a failing host polled more often.
        assert_eq!(backoff_delay(i, 3, Duration::from_secs(10), 0.5), i);
        // Jitter differs between hosts.
        let a = pseudo_random(Uuid::new_v4(), 1);
        let b = pseudo_random(Uuid::new_v4(), 1);
        assert!((0.0..1.0).contains(&a) && a != b);
    }

    #[test]
    fn next_slot_is_the_first_one_not_in_the_past() {
        let start = Instant::now();
        let i = Duration::from_secs(10);
        let o = Duration::from_secs(3);
        assert_eq!(next_slot(start, o, i, start), start + o);
        assert_eq!(
            next_slot(start, o, i, start + Duration::from_secs(4)),
            start + Duration::from_secs(13)
        );
        assert_eq!(
            next_slot(start, o, i, start + Duration::from_secs(13)),
            start + Duration::from_secs(13)
        );
    }
}
