//! When and how many: each enabled server is polled once per interval at a stable offset
//! (so a large fleet is spread evenly, not polled in bursts), under a bound on polls in
//! flight and a deadline per poll; failing servers back off exponentially with jitter. Each
//! outcome becomes stored samples and a status through one writer that batches
//! transactions, and an activity entry when (and only when) a status changes. Nothing leaves
//! a poll with `?`: one broken host never stops the others. History upkeep (compaction,
//! rollups, retention) runs beside the loop in `maintenance`.

pub mod lease;
pub mod maintenance;
mod timing;
mod transition;
mod writer;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use maintenance::Maintenance;
pub use transition::transition;

use crate::activity;
use crate::alerts::outage::Correlator;
use crate::alerts::restarts::RestartTracker;
use crate::config::Settings;
use crate::inventory::Server;
use crate::observe::Metrics;
use crate::outcome::Outcome;
use crate::poll::{HandshakeLimits, PollError, PollResult, PollTimeouts, Poller};
use crate::store::{InventoryVersion, Store};
use timing::{backoff_delay, next_slot, offset, pseudo_random};
use writer::Done;

/// How long in-flight polls may finish after shutdown is asked, before they are dropped
/// (unwritten: a poll's rows are written in one transaction or not at all).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(6);
/// Due servers are started together when their slots fall this close: the loop sleeps until
/// the next slot (not on a fixed tick, which cost a small fleet a wake-up every 100 ms),
/// and a large fleet's slots a few ms apart still make one wake-up.
const COALESCE: Duration = Duration::from_millis(5);
/// How often the loop checks whether the inventory changed, so CLI and API changes reach
/// it; it re-reads the servers only when they did.
const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// The inventory is re-read at least this often even when its version says nothing
/// changed: a safety net that costs about one server row per poll at a 60 s interval.
const FULL_RELOAD_EVERY: Duration = Duration::from_secs(60);
/// A condition a host repeats at every poll is written once per this window, then counted.
const FOLD_WINDOW: Duration = Duration::from_secs(3600);
/// Poll results written per transaction at most.
const BATCH: usize = 1024;
/// How long the writer waits for more results before writing a batch, at most: samples reach
/// the database this much later. Also at most 1/60 of the interval (1 s at the default 60 s),
/// so that a short interval, as in tests, still sees each poll written well before the next.
const WRITE_LINGER: Duration = Duration::from_secs(1);

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
    /// Activity entries a host can bring back at every poll, folded per window.
    folding: activity::Folding,
    /// Outages of groups of servers, and when its groups were last read from the inventory.
    correlator: Mutex<Correlator>,
    /// Containers' restarts across polls, for `container_restarts`.
    restarts: Mutex<RestartTracker>,
    /// When the writer last read the inventory for its once-a-minute work (the correlator's
    /// groups, the stale sweep, silences that ended).
    minutely: Mutex<Option<chrono::DateTime<Utc>>>,
    /// Servers whose slot came while their previous poll still ran, until one starts again:
    /// the skip is warned about once per episode.
    skipping: SkipEpisodes,
    /// With several pollers on PostgreSQL: the hosts this one holds; it polls only those.
    leases: Option<Arc<lease::Leases>>,
    /// One write at a time: the writer task and `poll_now` both write, and a write's alert
    /// decisions (is this host in an outage?) must not interleave with another write taking
    /// notifications back for an outage that just began.
    writing: tokio::sync::Mutex<()>,
}

/// A silent host holds its poll for the whole connect deadline at every interval, so its
/// next slot finds the poll still running: one warning per such episode, not per interval.
#[derive(Debug, Default)]
struct SkipEpisodes(Mutex<HashSet<Uuid>>);

impl SkipEpisodes {
    /// A skip of `id`; true when it starts an episode.
    fn skipped(&self, id: Uuid) -> bool {
        self.0.lock().is_ok_and(|mut s| s.insert(id))
    }

    /// A poll of `id` started: its episode, if any, is over.
    fn started(&self, id: Uuid) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(&id);
        }
    }
}

impl Scheduler {
    pub fn new(store: Store, settings: Settings) -> Arc<Self> {
        Self::with_metrics(store, settings, Arc::new(Metrics::default()))
    }

    pub fn with_metrics(store: Store, settings: Settings, metrics: Arc<Metrics>) -> Arc<Self> {
        Self::with_leases(store, settings, metrics, None)
    }

    /// A scheduler that polls only the hosts `leases` holds (several pollers, issue #14).
    pub fn with_leases(
        store: Store,
        settings: Settings,
        metrics: Arc<Metrics>,
        leases: Option<Arc<lease::Leases>>,
    ) -> Arc<Self> {
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
        let correlator = Correlator::new(
            settings.outage_fraction,
            settings.poll_interval(),
            Duration::from_secs(settings.group_wait_secs),
        );
        Arc::new(Self {
            store,
            poller,
            semaphore: Semaphore::new(settings.concurrency),
            settings,
            metrics,
            in_flight: Mutex::new(HashSet::new()),
            failures: Mutex::new(HashMap::new()),
            folding: activity::Folding::new(FOLD_WINDOW),
            correlator: Mutex::new(correlator),
            writing: tokio::sync::Mutex::new(()),
            restarts: Mutex::new(RestartTracker::default()),
            minutely: Mutex::new(None),
            skipping: SkipEpisodes::default(),
            leases,
        })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The poll loop, until `cancel` fires: re-read the inventory when due, push back servers
    /// that failed, start the polls whose slot has come, and sleep until the next slot. Then let in-flight polls finish (for a grace period) and the writer
    /// drain.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let polls = Polls {
            tracker: TaskTracker::new(),
            hard_stop: CancellationToken::new(),
        };
        let (done_tx, done_rx) = mpsc::channel::<Done>(4096);
        let (backoff_tx, mut backoff_rx) = mpsc::unbounded_channel::<(Uuid, Instant)>();
        let writer = tokio::spawn(self.clone().writer(done_rx));
        let mut plan = Plan::new(Instant::now(), self.settings.poll_interval());
        loop {
            let now = Instant::now();
            self.reload_if_due(&mut plan, now).await;
            plan.push_back(&mut backoff_rx);
            for (server, slot) in plan.take_due(now + COALESCE) {
                self.dispatch(server, slot, &polls, &done_tx, &backoff_tx);
            }
            // A backoff only ever moves a slot later, so it need not wake the loop: it is
            // applied before the slots are taken at the next wake-up.
            tokio::select! {
                _ = cancel.cancelled() => break,
                () = tokio::time::sleep_until(plan.next_wake()) => {}
            }
        }
        polls.finish().await;
        drop(done_tx);
        let _ = writer.await;
        self.poller.close_all().await;
    }

    /// Re-reads the servers when the inventory's version changed (CLI and API edits reach
    /// the loop this way), and at least every [`FULL_RELOAD_EVERY`]; closes the sessions of
    /// servers no longer polled.
    async fn reload_if_due(&self, plan: &mut Plan, now: Instant) {
        let generation = self.leases.as_ref().map(|l| l.generation());
        if now < plan.next_reload && generation == plan.lease_generation {
            return;
        }
        plan.next_reload = now + RELOAD_EVERY.min(plan.interval);
        let version = match self.store.inventory_version().await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "Cannot read the inventory version");
                None
            }
        };
        let unchanged = version.is_some()
            && version == plan.loaded
            && now < plan.next_full_reload
            && generation == plan.lease_generation;
        if unchanged {
            return;
        }
        // The leases are read before the inventory: a host claimed by then had its previous
        // holder's last poll written before it could be claimed, so the read below sees it.
        let leased = self.leases.as_ref().map(|l| (l.assigned(), l.take_fresh()));
        match self.store.servers().await {
            Ok(mut list) => {
                if let Some((held, _)) = &leased {
                    list.retain(|s| held.contains(&s.id));
                }
                plan.lease_generation = generation;
                plan.replace_servers(list, now, leased.as_ref().map(|(_, fresh)| fresh));
                let keep: HashSet<Uuid> = plan.servers.keys().copied().collect();
                self.poller.retain(&keep).await;
                // The version was read before the servers: a change in between costs one
                // more read, never a missed one.
                plan.loaded = version;
                plan.next_full_reload = now + FULL_RELOAD_EVERY;
            }
            Err(e) => {
                if let (Some(leases), Some((_, fresh))) = (&self.leases, leased) {
                    leases.restore_fresh(fresh);
                }
                tracing::error!(error = %e, "Cannot read the inventory; keeping the last one")
            }
        }
    }

    /// Starts one server's poll as a task, unless its previous poll is still running. The
    /// result goes to the writer; a failure also reports when the server is next due.
    fn dispatch(
        self: &Arc<Self>,
        server: Server,
        slot: Instant,
        polls: &Polls,
        done_tx: &mpsc::Sender<Done>,
        backoff_tx: &mpsc::UnboundedSender<(Uuid, Instant)>,
    ) {
        // Fencing: a lease that was given up or not renewed in time is not polled on.
        if self.leases.as_ref().is_some_and(|l| !l.holds(server.id)) {
            return;
        }
        if !self.claim(server.id) {
            self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
            if self.skipping.skipped(server.id) {
                tracing::warn!(server = %server.name, "Previous poll still running; skipping this one (said once until a poll starts again)");
            } else {
                tracing::debug!(server = %server.name, "Previous poll still running; skipping this one");
            }
            return;
        }
        self.skipping.started(server.id);
        let this = self.clone();
        let hard_stop = polls.hard_stop.clone();
        let done_tx = done_tx.clone();
        let backoff_tx = backoff_tx.clone();
        polls.tracker.spawn(async move {
            let id = server.id;
            tokio::select! {
                result = this.poll_scheduled(&server, slot) => {
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
            return failed(server, PollError::ShuttingDown);
        };
        self.metrics
            .cycle_lag
            .observe(Instant::now().saturating_duration_since(scheduled));
        // No deadline around the whole poll: every step that waits on the host (connect and
        // handshake, authentication, probe, script) has its own inside the poller, and
        // waiting for a handshake slot is our pacing, which must not fail a host.
        let result = self.poller.poll(server).await;
        let outcome = match &result.outcome {
            Ok(s) if s.problems.is_empty() => Outcome::Ok,
            Ok(_) => Outcome::Partial,
            Err(e) => e.reason(),
        };
        self.metrics.poll_done(outcome, result.duration);
        result
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

/// The polls in flight: tracked so shutdown can wait for them, with a hard stop for those
/// still waiting on their hosts after the grace period.
struct Polls {
    tracker: TaskTracker,
    hard_stop: CancellationToken,
}

impl Polls {
    /// Waits up to [`SHUTDOWN_GRACE`] for in-flight polls, then drops the rest unwritten.
    async fn finish(self) {
        self.tracker.close();
        if timeout(SHUTDOWN_GRACE, self.tracker.wait()).await.is_err() {
            // Usually silent hosts still inside their connect deadline: nothing of theirs was
            // written, and the next start polls them again.
            tracing::info!(
                "Polls still waiting on their hosts at shutdown; dropping them unwritten"
            );
            self.hard_stop.cancel();
            self.tracker.wait().await;
        }
    }
}

/// The loop's state: which servers are polled, when each is next due (also in time order,
/// so the loop finds the next slot without a scan), and when the inventory is next looked at.
struct Plan {
    start: Instant,
    interval: Duration,
    servers: HashMap<Uuid, Server>,
    due: HashMap<Uuid, Instant>,
    queue: BTreeSet<(Instant, Uuid)>,
    loaded: Option<InventoryVersion>,
    next_reload: Instant,
    next_full_reload: Instant,
    /// The leases' generation the servers were filtered with.
    lease_generation: Option<u64>,
}

impl Plan {
    fn new(start: Instant, interval: Duration) -> Self {
        Self {
            start,
            interval,
            servers: HashMap::new(),
            due: HashMap::new(),
            queue: BTreeSet::new(),
            loaded: None,
            next_reload: start,
            next_full_reload: start,
            lease_generation: None,
        }
    }

    /// Takes the enabled servers of a fresh inventory read; a server new to the plan gets
    /// its stable slot, a known one keeps its due time (and any backoff). `handover` (with
    /// leases): a server new here may come from another poller, so its first slot is no
    /// earlier than one interval after its last poll (never two polls of a host in one
    /// interval); the hosts just claimed count as new, with the moment their previous holder
    /// may last have polled them, which a poll it never wrote leaves out of `last_poll_at`.
    fn replace_servers(
        &mut self,
        list: Vec<Server>,
        now: Instant,
        handover: Option<&HashMap<Uuid, Option<DateTime<Utc>>>>,
    ) {
        self.servers = list
            .into_iter()
            .filter(|s| s.enabled)
            .map(|s| (s.id, s))
            .collect();
        let fresh = handover.into_iter().flat_map(|f| f.keys());
        let gone: Vec<Uuid> = self
            .due
            .keys()
            .filter(|id| !self.servers.contains_key(id))
            .copied()
            .chain(fresh.copied())
            .collect();
        for id in gone {
            if let Some(t) = self.due.remove(&id) {
                self.queue.remove(&(t, id));
            }
        }
        let new: Vec<Uuid> = self
            .servers
            .keys()
            .filter(|id| !self.due.contains_key(id))
            .copied()
            .collect();
        let wall = Utc::now();
        for id in new {
            let slot = next_slot(self.start, offset(id, self.interval), self.interval, now);
            let written = self.servers.get(&id).and_then(|s| s.last_poll_at);
            let freed = handover.and_then(|f| f.get(&id).copied().flatten());
            let last = written.max(freed);
            // A host polled lately by another poller: due one interval after that poll (at
            // once when it has passed), not at this process's own slot for it, which could
            // be most of an interval away. After a long gap the slot spreads them again.
            let t = match last.filter(|_| handover.is_some()) {
                Some(last) => {
                    let since = (wall - last).to_std().unwrap_or_default();
                    if since < self.interval * 2 {
                        now + self.interval.saturating_sub(since)
                    } else {
                        slot
                    }
                }
                None => slot,
            };
            tracing::debug!(server = %id, last_written = ?written, freed = ?freed, due_in_ms = t.saturating_duration_since(now).as_millis() as u64, "Host new in this poller's plan");
            self.set_due(id, t);
        }
    }

    fn set_due(&mut self, id: Uuid, t: Instant) {
        if let Some(old) = self.due.insert(id, t) {
            self.queue.remove(&(old, id));
        }
        self.queue.insert((t, id));
    }

    /// When the loop must next look: the next slot, or the next inventory check.
    fn next_wake(&self) -> Instant {
        self.queue
            .first()
            .map_or(self.next_reload, |(t, _)| (*t).min(self.next_reload))
    }

    /// Moves failing servers' next slots back to the end of their backoff.
    fn push_back(&mut self, backoff_rx: &mut mpsc::UnboundedReceiver<(Uuid, Instant)>) {
        while let Ok((id, until)) = backoff_rx.try_recv() {
            if let Some(t) = self.due.get(&id).copied() {
                self.set_due(id, t.max(until));
            }
        }
    }

    /// The servers whose slot has come, each with the slot it was due at; their next slot
    /// moves on by whole intervals.
    fn take_due(&mut self, now: Instant) -> Vec<(Server, Instant)> {
        let mut out = Vec::new();
        while let Some(&(scheduled, id)) = self.queue.first() {
            if scheduled > now {
                break;
            }
            let mut next = scheduled;
            while next <= now {
                next += self.interval;
            }
            self.set_due(id, next);
            if let Some(server) = self.servers.get(&id) {
                out.push((server.clone(), scheduled));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ServerStatus;

    #[test]
    fn a_skipped_poll_is_warned_about_once_per_episode() {
        let episodes = SkipEpisodes::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(episodes.skipped(a));
        assert!(
            !episodes.skipped(a),
            "the second skip in a row is not a new episode"
        );
        assert!(episodes.skipped(b));
        episodes.started(a);
        assert!(
            episodes.skipped(a),
            "after a poll started, a skip starts a new episode"
        );
        assert!(!episodes.skipped(b));
    }

    #[test]
    fn the_loop_sleeps_until_the_next_slot_and_takes_servers_in_slot_order() {
        let start = Instant::now();
        let interval = Duration::from_secs(60);
        let mut plan = Plan::new(start, interval);
        plan.next_reload = start + Duration::from_secs(3600);
        let servers: Vec<Server> = (0..50)
            .map(|_| transition::tests::server(ServerStatus::Online, 0))
            .collect();
        plan.replace_servers(servers, start, None);
        let first = plan.next_wake();
        assert!(first >= start && first < start + interval);
        // Nothing is due before the first slot; at it, that server (and any within the
        // coalescing window) is taken, and the next wake-up is later.
        assert!(plan.take_due(first - Duration::from_millis(1)).is_empty());
        let taken = plan.take_due(first);
        assert!(!taken.is_empty());
        assert!(taken.iter().all(|(_, slot)| *slot <= first));
        assert!(plan.next_wake() > first);
        // Over one interval every server is taken exactly once, in slot order.
        let all = plan.take_due(first + interval - Duration::from_millis(1));
        assert_eq!(taken.len() + all.len(), 50);
        assert!(all.windows(2).all(|w| w[0].1 <= w[1].1));
        let ids: HashSet<Uuid> = taken.iter().chain(&all).map(|(s, _)| s.id).collect();
        assert_eq!(ids.len(), 50);
        // A backoff moves a slot later; a removed server leaves the queue.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (victim, _) = &all[0];
        tx.send((victim.id, start + Duration::from_secs(600)))
            .expect("send");
        plan.push_back(&mut rx);
        assert_eq!(plan.due[&victim.id], start + Duration::from_secs(600));
        let keep: Vec<Server> = plan
            .servers
            .values()
            .filter(|s| s.id != victim.id)
            .cloned()
            .collect();
        plan.replace_servers(keep, start, None);
        assert_eq!(plan.queue.len(), 49);
        assert!(plan.queue.iter().all(|(_, id)| *id != victim.id));
    }

    #[test]
    fn a_host_taken_over_is_due_an_interval_after_its_last_poll_or_at_once() {
        let start = Instant::now();
        let interval = Duration::from_secs(60);
        let mut plan = Plan::new(start, interval);
        let mut recent = transition::tests::server(ServerStatus::Online, 0);
        recent.last_poll_at = Some(Utc::now() - chrono::Duration::seconds(20));
        let mut overdue = transition::tests::server(ServerStatus::Online, 0);
        overdue.last_poll_at = Some(Utc::now() - chrono::Duration::seconds(90));
        let mut long_gone = transition::tests::server(ServerStatus::Online, 0);
        long_gone.last_poll_at = Some(Utc::now() - chrono::Duration::hours(3));
        let ids = (recent.id, overdue.id, long_gone.id);
        plan.replace_servers(
            vec![recent, overdue, long_gone],
            start,
            Some(&HashMap::new()),
        );
        let after = plan.due[&ids.0] - start;
        assert!(
            after >= Duration::from_secs(39) && after <= Duration::from_secs(41),
            "{after:?}"
        );
        assert_eq!(plan.due[&ids.1], start, "overdue: at once");
        // After a long gap the stable slot spreads the hosts again.
        assert_eq!(
            plan.due[&ids.2],
            next_slot(start, offset(ids.2, interval), interval, start)
        );
    }

    #[test]
    fn a_claimed_host_waits_an_interval_from_its_release_even_without_a_written_poll() {
        let start = Instant::now();
        let interval = Duration::from_secs(60);
        let mut plan = Plan::new(start, interval);
        // Its last written poll is long ago (the previous holder's last poll was refused or
        // never written), but it was given back 10 s ago: due 50 s from now.
        let mut moved = transition::tests::server(ServerStatus::Online, 0);
        moved.last_poll_at = Some(Utc::now() - chrono::Duration::hours(1));
        let mut kept = transition::tests::server(ServerStatus::Online, 0);
        kept.last_poll_at = Some(Utc::now() - chrono::Duration::seconds(5));
        let ids = (moved.id, kept.id);
        plan.replace_servers(
            vec![moved.clone(), kept.clone()],
            start,
            Some(&HashMap::new()),
        );
        let kept_due = plan.due[&ids.1];
        let fresh = HashMap::from([(ids.0, Some(Utc::now() - chrono::Duration::seconds(10)))]);
        plan.replace_servers(vec![moved.clone(), kept.clone()], start, Some(&fresh));
        let after = plan.due[&ids.0] - start;
        assert!(
            after >= Duration::from_secs(49) && after <= Duration::from_secs(51),
            "{after:?}"
        );
        assert_eq!(
            plan.due[&ids.1], kept_due,
            "a host held all along keeps its slot"
        );
        // Claimed again while still in the plan (its lease ran out meanwhile): it is taken
        // as new, not left at the slot it had.
        plan.set_due(ids.0, start);
        let fresh = HashMap::from([(ids.0, Some(Utc::now()))]);
        plan.replace_servers(vec![moved, kept], start, Some(&fresh));
        assert!(plan.due[&ids.0] - start >= Duration::from_secs(59));
        assert_eq!(plan.queue.len(), 2);
    }
}
